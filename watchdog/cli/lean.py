"""The daemon's HTTP libraries, imported without the optional parts it never runs.

When they are installed beside them, httpx imports its command-line client (``rich``,
``pygments``) and httpcore imports ``trio`` (for clients running under trio), both at
import time. The daemon's clients (scrape and Prometheus sources, webhook actuator) are
synchronous and never use either; in a development environment (schemathesis brings
rich, selenium brings trio) they cost the ``rollout-watchdog run`` process about 6 MiB
resident (bench/footprint.py). :func:`import_http_lean` imports httpx and httpcore with
those two hidden, before anything else imports them. Both libraries catch the
ImportError and go on without them; should a version not, the libraries are imported
as they are.
"""

from __future__ import annotations

import importlib
import sys

HIDDEN = ("httpx._main", "trio")
"""httpx's command-line client and trio: an ImportError while httpx and httpcore load."""
LIBRARIES = ("httpcore", "httpx")


def import_http_lean() -> bool:
    """Import httpcore and httpx with :data:`HIDDEN` hidden; False (and nothing hidden)
    when one of them was imported already or would not import without them. Later
    imports of ``trio`` or ``httpx._main`` work as usual."""
    if any(name in sys.modules for name in (*LIBRARIES, *HIDDEN)):
        return False
    for name in HIDDEN:
        sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        for name in LIBRARIES:
            importlib.import_module(name)
        return True
    except ImportError:
        for name in [n for n in sys.modules if n.split(".")[0] in LIBRARIES]:
            del sys.modules[name]  # half-imported: imported again, as is, by its users
        return False
    finally:
        for name in HIDDEN:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
