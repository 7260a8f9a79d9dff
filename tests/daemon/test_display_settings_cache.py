"""A tick keeps its module's display-only settings (``source:<module>``,
``verdict:<module>``) without reading them back from the journal at every tick: the daemon
remembers what it last read or wrote (at 1,000 modules, two journal reads a tick). Only
the module's guard writes them; when the lease changes hands the remembered values are
dropped, so what another instance wrote meanwhile is read, and corrected, again.

The real Daemon on a real SQLite journal and the file source (its recording is long past:
every tick holds for lack of data, with a verdict); the journal's ``setting`` is wrapped
only to list the keys read."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from watchdog.daemon.leases import Change
from watchdog.daemon.service import Daemon

M = "m000"


def daemon_with(tmp_path: Path, dkit: Any) -> Daemon:
    setup = dkit.make_setup(tmp_path, actuator="file")
    setup.rules.write_text(
        "modules:\n  - name: \"*\"\n    include_defaults: true\n"
        "    interval: 10s\n    plan: {stages: [5, 100], hold: 1d}\n")
    text = setup.config.read_text().replace("modules: [{name: checkout, auto_start: true}]",
                                            f"modules: [{{name: {M}, auto_start: true}}]")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("clock:"))
    setup.config.write_text(text + "\n")
    return Daemon(str(setup.config), env=dict(os.environ))


def test_display_settings_are_read_once_and_again_after_the_lease_moved(
        tmp_path: Path, dkit: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    daemon = daemon_with(tmp_path, dkit)
    try:
        journal = daemon.engines[M].journal
        read: list[str] = []
        real = journal.setting

        def setting(key: str, default: Any = None) -> Any:
            read.append(key)
            return real(key, default)

        monkeypatch.setattr(journal, "setting", setting)
        for _ in range(3):
            daemon.tick(M)
        verdict = journal.setting(f"verdict:{M}")
        assert verdict is not None and journal.setting(f"source:{M}") is not None
        read.clear()
        daemon.tick(M)
        assert [k for k in read if k.startswith(("verdict:", "source:"))] == []

        # another instance guarded the module meanwhile and wrote its own verdict
        journal.set_setting(f"verdict:{M}", {**verdict, "kind": "written-by-another"})
        lease = daemon.guard.held()[M]
        daemon._lease_changed(Change(M, lease, lease))
        daemon.tick(M)
        assert f"verdict:{M}" in read
        assert journal.setting(f"verdict:{M}")["kind"] == verdict["kind"]
    finally:
        daemon.stop()
