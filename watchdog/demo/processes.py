"""Child processes of the demo and the benchmarks: started with their output in a log file,
killed with their parent (Linux PR_SET_PDEATHSIG), and always stopped on the way out."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any

from watchdog.demo.service import module_flags

PR_SET_PDEATHSIG = 1


class DemoError(Exception):
    """Something the demo needs did not work; the message says what and where to look."""


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def cli_command() -> list[str]:
    """How to run ``rollout-watchdog`` with this interpreter's installation."""
    script = Path(sys.executable).with_name("rollout-watchdog")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from watchdog.cli.main import main; main()"]


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class Child:
    def __init__(self, name: str, popen: subprocess.Popen[bytes], log: Path,
                 handle: IO[bytes]) -> None:
        self.name = name
        self.popen = popen
        self.log = log
        self._handle = handle

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text("utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.popen.kill()
                self.popen.wait(5)
        self._handle.close()
        return self.popen.returncode


class Children:
    """Every process started here is stopped on exit (last started, first stopped)."""

    def __init__(self) -> None:
        self.children: list[Child] = []
        self._old: dict[int, Any] = {}

    def __enter__(self) -> Children:
        # SIGTERM (a CI job cancelled) unwinds like Ctrl-C, so the finally blocks run
        for signum in (signal.SIGTERM, signal.SIGHUP):
            self._old[signum] = signal.signal(signum, self._raise)
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop_all()
        for signum, handler in self._old.items():
            signal.signal(signum, handler)

    @staticmethod
    def _raise(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    def start(self, name: str, argv: Sequence[str], log: Path,
              env: dict[str, str] | None = None, cwd: Path | None = None) -> Child:
        log.parent.mkdir(parents=True, exist_ok=True)
        handle = log.open("wb")
        try:
            popen = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=handle,
                                     stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        except OSError as err:
            handle.close()
            raise DemoError(f"cannot start {name} ({argv[0]}): {err}") from err
        child = Child(name, popen, log, handle)
        self.children.append(child)
        return child

    def stop(self, child: Child, timeout: float = 10.0) -> int | None:
        if child in self.children:
            self.children.remove(child)
        return child.stop(timeout)

    def stop_all(self) -> None:
        while self.children:
            self.stop(self.children[-1])


def service_argv(version: str, port: int, port_file: Path, *, regression: str = "none",
                 factor: float | None = None, flags: Path | None = None,
                 regress_at: float | None = None, seed: int | None = None,
                 rate: float | None = None) -> list[str]:
    argv = [sys.executable, "-m", "watchdog.demo.service", "--version", version,
            "--port", str(port), "--port-file", str(port_file), "--regression", regression]
    if factor is not None:
        argv += ["--factor", repr(factor)]
    if flags is not None:
        argv += ["--flags", str(flags)]
    if regress_at is not None:
        argv += ["--regress-at", repr(regress_at)]
    if seed is not None:
        argv += ["--seed", str(seed)]
    if rate is not None:
        argv += ["--rate", repr(rate)]
    return argv


def wait_for_port(child: Child, port_file: Path, timeout: float = 15.0) -> int:
    """The port a service bound (read from its port file), once /metrics answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise DemoError(f"{child.name} exited with status {child.popen.returncode}; "
                            f"its log ({child.log}):\n{child.tail()}")
        try:
            port = int(port_file.read_text("utf-8").strip())
        except (OSError, ValueError):
            time.sleep(0.05)
            continue
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                if r.status == 200:
                    return port
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise DemoError(f"{child.name} did not start serving within {timeout:g}s; its log "
                    f"({child.log}):\n{child.tail()}")


def http_json(url: str, method: str = "GET", timeout: float = 2.0) -> dict[str, Any]:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=timeout) as r:
        data = json.loads(r.read())
    if not isinstance(data, dict):
        raise DemoError(f"{url}: expected a JSON object")
    return data


def read_flags(path: Path, module: str) -> tuple[dict[str, Any] | None, str]:
    """(the module's flags, the file's text) of the file actuator's JSON flag file."""
    try:
        text = path.read_text("utf-8")
    except OSError:
        return None, ""
    return module_flags(path, module), text


def env_for_children() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("WATCHDOG_CONFIG", None)  # the generated config is passed explicitly
    env["PYTHONUNBUFFERED"] = "1"
    return env
