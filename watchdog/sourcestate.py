"""A module's metrics source as the daemon last saw it, kept in the journal's settings.

The daemon (:mod:`watchdog.daemon.sourcewatch`) writes ``source:{module}`` when it
changes: ``ok``, ``partial`` (some reads failed: which and why) or ``down`` (the fetch
failed as a whole: the error). ``status`` and the API read it so that a source that is
down is said, instead of the last verdict's "0 V2 samples in window".
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from watchdog.errors import JournalError
from watchdog.journal.base import Journal

SOURCE_KEY = "source:{module}"


def record_source(journal: Journal, module: str, state: dict[str, Any], at: float,
                  known: dict[str, Any] | None = None) -> None:
    """Keep the module's source state in the journal's settings when it changed (with
    ``since``, when it began); for display only, so a failed write is skipped.
    ``known``: the values this process last read or wrote, by key (compared instead of
    reading the journal at every tick; see :func:`remembered`)."""
    key = SOURCE_KEY.format(module=module)
    try:
        old = known[key] if known is not None and key in known else journal.setting(key)
        if isinstance(old, dict) and {k: v for k, v in old.items() if k != "since"} == state:
            if known is not None:
                known[key] = old  # as read (from the journal, or already known)
            return
        value = {**state, "since": at}
        journal.set_setting(key, value)
        remembered(known, key, value)
    except (sqlite3.Error, JournalError):
        if known is not None:
            known.pop(key, None)  # read again next time
        return


def remembered(known: dict[str, Any] | None, key: str, value: Any) -> None:
    """Keep ``value`` as the journal holds it (JSON: tuples come back as lists)."""
    if known is not None:
        known[key] = json.loads(json.dumps(value, default=str))


def source_note(state: object) -> str | None:
    """What ``status`` and the API say for a stored source state (None when it is ok)."""
    if not isinstance(state, dict) or state.get("state") not in ("down", "partial"):
        return None
    from watchdog.baseline import iso

    since = state.get("since")
    when = f" since {iso(since)}" if isinstance(since, int | float) else ""
    if state["state"] == "down":
        return f"source {state.get('source', '?')} down{when}: {state.get('error', '')}"
    problems = [str(p) for p in state.get("problems") or []]
    return f"source {state.get('source', '?')}: {'; '.join(problems)}{when}"
