"""Real backends for the actuator tests: a flag service over HTTP on loopback, and a small
flag tool program (Python, run as a real subprocess) that keeps flags in a JSON file."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

SECRET = "s3cr3t-for-the-tests-only"


@dataclass
class Reply:
    """A scripted reply for the next request of one method (consumed in order)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool


class FlagService:
    """Verifies X-Watchdog-Signature (timestamp + "." + body, five-minute window), applies
    each Idempotency-Key once, serves GET /flags/<module>."""

    def __init__(self, secret: str = SECRET, tolerance: float = 300.0) -> None:
        self.secret = secret.encode()
        self.tolerance = tolerance
        self.states: dict[str, dict[str, Any]] = {}
        self.applied_keys: list[str] = []
        self.seen: list[Seen] = []
        self.scripts: dict[str, list[Reply]] = {"POST": [], "GET": []}
        self.read_override: dict[str, Any] | None = None
        self.release = threading.Event()
        self.lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                service.handle(self, "POST")

            def do_GET(self) -> None:
                service.handle(self, "GET")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                       daemon=True)

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        stamp = headers.get("x-watchdog-timestamp", "")
        given = headers.get("x-watchdog-signature", "")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > self.tolerance:
            return False
        mac = hmac.new(self.secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(given, "sha256=" + mac)

    def handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        body = req.rfile.read(int(req.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in req.headers.items()}
        ok = self.verify(headers, body)
        with self.lock:
            self.seen.append(Seen(method, req.path, headers, body, ok))
            scripted = self.scripts[method].pop(0) if self.scripts[method] else None
        if scripted is not None:
            if scripted.delay:
                self.release.wait(scripted.delay)
            return self.reply(req, scripted.status, scripted.body, scripted.headers)
        if not ok:
            return self.reply(req, 401, '{"error": "bad signature"}')
        if method == "POST":
            state = json.loads(body)
            with self.lock:
                key = headers.get("idempotency-key", "")
                if key not in self.applied_keys:
                    self.applied_keys.append(key)
                    self.states[state["module"]] = state
            return self.reply(req, 200, '{"ok": true}')
        module = req.path.rsplit("/", 1)[-1]
        with self.lock:
            state = self.read_override or self.states.get(module)
        if state is None:
            return self.reply(req, 404, '{"error": "no such module"}')
        return self.reply(req, 200, json.dumps(state))

    @staticmethod
    def reply(req: BaseHTTPRequestHandler, status: int, body: str,
              headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        try:
            req.send_response(status)
            for name, value in (headers or {}).items():
                req.send_header(name, value)
            req.send_header("Content-Type", "application/json")
            req.send_header("Content-Length", str(len(data)))
            req.end_headers()
            req.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
            pass

    def queue(self, method: str, status: int, headers: dict[str, str] | None = None,
              body: str = "", delay: float = 0.0) -> None:
        """Answer the next ``method`` request this way (instead of normally)."""
        with self.lock:
            self.scripts[method].append(Reply(status, headers or {}, body, delay))

    def posts(self) -> list[Seen]:
        return [s for s in self.seen if s.method == "POST"]


@pytest.fixture(scope="session")
def http_client() -> Iterator[httpx.Client]:
    """One client for the webhook tests (building one loads the CA bundle: slow)."""
    client = httpx.Client(follow_redirects=False)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def flag_service() -> Iterator[FlagService]:
    service = FlagService()
    service.thread.start()
    try:
        yield service
    finally:
        service.release.set()
        service.server.shutdown()
        service.server.server_close()
        service.thread.join(timeout=5)


FLAGTOOL = textwrap.dedent('''
    """flagtool: keeps flags in a JSON file, like a real flag CLI would."""
    import json, os, sys, time

    def load(path):
        try:
            with open(path) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def main():
        cmd, path = sys.argv[1], sys.argv[2]
        with open(path + ".calls", "a") as f:
            f.write(json.dumps(sys.argv[1:]) + "\\n")
        if cmd == "write":
            module, version, traffic, kill, decision = sys.argv[3:8]
            state = {"module": module, "version": version,
                     "traffic_percent": float(traffic) if "." in traffic else int(traffic),
                     "kill_switch": kill == "1", "decision_id": decision}
            data = load(path)
            if data.get(module) != state:  # idempotent: an identical write changes nothing
                data[module] = state
                with open(path + ".tmp", "w") as f:
                    json.dump(data, f)
                os.replace(path + ".tmp", path)
                with open(path + ".effects", "a") as f:
                    f.write(decision + "\\n")
        elif cmd == "read":
            print(json.dumps(load(path).get(sys.argv[3])))
        elif cmd == "print":
            print(sys.argv[3])
        elif cmd == "fail":
            sys.stderr.write("x" * 5000 + "\\nflags service refused the change\\n")
            sys.exit(3)
        elif cmd == "hang":
            import subprocess
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            with open(path + ".child", "w") as f:
                f.write(str(child.pid))
            sys.stderr.write("started, now hanging\\n")
            sys.stderr.flush()
            time.sleep(60)

    main()
''')


@pytest.fixture
def flagtool(tmp_path: Path) -> list[str]:
    """argv prefix that runs the flag tool: ``[python, flagtool.py]``."""
    script = tmp_path / "flagtool.py"
    script.write_text(FLAGTOOL)
    return [sys.executable, "-I", "-S", str(script)]
