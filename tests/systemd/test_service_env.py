"""The environment the unit gives the daemon works with the project's settings code.

A child process gets what systemd hands a ``Type=notify`` service with this unit:
``NOTIFY_SOCKET`` (a real socket here), ``WATCHDOG_USEC``/``WATCHDOG_PID`` (which share the
project's ``WATCHDOG_`` prefix), ``WATCHDOG_DB`` from ``Environment=``, and
``CREDENTIALS_DIRECTORY`` holding ``slack_token`` from ``LoadCredential=``. It loads the
process settings and the Slack token, announces READY=1 and pings once.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, os
from watchdog.notifiers.slack_settings import SlackSettings, load_token
from watchdog.sdnotify import Notifier, WatchdogPinger
from watchdog.settings import load_settings

settings = load_settings()
token = load_token(SlackSettings())
notifier = Notifier()
pinger = WatchdogPinger.from_env(notifier)
notifier.ready(status="1 module")
pinger.tick()
print(json.dumps({"db": str(settings.db), "token": token.get_secret_value() if token else None,
                  "interval": pinger.interval, "pid": os.getpid()}))
"""


def test_the_service_environment(tmp_path: Path) -> None:
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "slack_token").write_text("xoxb-test-token\n")
    db = tmp_path / "state" / "journal.db"
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
           "NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "30000000",
           "WATCHDOG_DB": str(db), "CREDENTIALS_DIRECTORY": str(creds)}
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(env["NOTIFY_SOCKET"])
        sock.settimeout(5)
        result = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                                text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr[-3000:]
        got = json.loads(result.stdout)
        assert got == {"db": str(db), "token": "xoxb-test-token", "interval": 15.0,
                       "pid": got["pid"]}
        assert sock.recv(4096) == b"READY=1\nSTATUS=1 module"
        assert sock.recv(4096) == b"WATCHDOG=1"


def test_watchdog_pid_of_another_process_disables_the_pings(tmp_path: Path) -> None:
    """systemd sets WATCHDOG_PID to the main process; a child that inherits it must not
    ping (it would hide a hung daemon)."""
    env = {"PATH": "/usr/bin:/bin", "NOTIFY_SOCKET": str(tmp_path / "notify"),
           "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}
    code = ("from watchdog.sdnotify import Notifier, WatchdogPinger; "
            "print(WatchdogPinger.from_env(Notifier()).interval)")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None"
