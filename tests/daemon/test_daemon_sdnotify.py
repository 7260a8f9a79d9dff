"""The real daemon speaks sd_notify over a real unix datagram socket, as systemd sees it:
READY=1 once it is up, STATUS= after ticks, WATCHDOG=1 from the evaluation loop,
RELOADING=1 then READY=1 around SIGHUP, STOPPING=1 on SIGTERM (then exit 0)."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path
from typing import Any


class Listener:
    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.lines: list[str] = []

    def until(self, wanted: str, timeout: float = 20.0) -> list[str]:
        """Collect messages until a line equal to ``wanted`` (or starting with it) arrives."""
        start = len(self.lines)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.lines.extend(data.decode().splitlines())
            if any(line.startswith(wanted) for line in self.lines[start:]):
                return self.lines[start:]
        raise AssertionError(f"no {wanted!r} within {timeout}s; got {self.lines[start:]}")

    def close(self) -> None:
        self.sock.close()


def test_the_daemon_reports_ready_status_watchdog_reload_and_stop(
        dkit: Any, spawn: Any, tmp_path: Path) -> None:
    setup = dkit.make_setup(tmp_path / "d", pace="200ms")
    listener = Listener(tmp_path / "notify.sock")
    try:
        proc = spawn(setup, env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
                                 "WATCHDOG_USEC": "2000000"})
        got = listener.until("READY=1")
        assert not any(line.startswith("STOPPING") for line in got)
        assert any(line.startswith("STATUS=") for line in listener.until("STATUS="))
        # pings come from the evaluation loop, at most every half of WatchdogSec (1 s)
        listener.until("WATCHDOG=1", timeout=5)
        listener.until("WATCHDOG=1", timeout=5)
        proc.signal(signal.SIGHUP)
        around = listener.until("RELOADING=1")
        assert any(line.startswith("MONOTONIC_USEC=") for line in around + listener.lines[-3:])
        listener.until("READY=1")  # ready again once the reload is done
        proc.signal(signal.SIGTERM)
        listener.until("STOPPING=1")
        assert proc.wait() == 0, proc.log()[-2000:]
    finally:
        listener.close()
