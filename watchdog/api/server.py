"""Serving the API with uvicorn on a background thread (the daemon's, and the tests').

:class:`ApiServer` binds the socket itself, so a port in use or a refused address is an
error raised by :meth:`ApiServer.start` rather than a log line in another thread, and
refuses to listen beyond loopback without a token (:func:`check_bind`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from watchdog.api.settings import ApiSettings, check_bind
from watchdog.errors import ConfigError, Issue, WatchdogError


class ApiServer:
    """``start()`` returns once the API answers; ``stop()`` shuts it down (idempotent)."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0,
                 token: SecretStr | None = None, log_level: str = "warning",
                 port_from: Issue | None = None) -> None:
        """``port_from``: where the port was set, for the error when it is taken (file,
        line and the setting's name as the message, e.g. ``api.port``)."""
        check_bind(host, token)
        self.app = app
        self.host = host
        self.requested_port = port
        self.port_from = port_from or Issue("WATCHDOG_API_PORT", 0, "WATCHDOG_API_PORT")
        self.config = uvicorn.Config(app, host=host, port=port, log_level=log_level,
                                     access_log=False, lifespan="off", server_header=False,
                                     timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(self.config)
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, app: FastAPI, settings: ApiSettings, token: SecretStr | None,
                      log_level: str = "warning") -> ApiServer:
        return cls(app, settings.host, settings.port, token, log_level)

    @property
    def port(self) -> int:
        if self._socket is None:
            raise WatchdogError("the API server is not started")
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self._socket = _bind(self.host, self.requested_port, self.port_from)
        self._thread = threading.Thread(target=self.server.run, args=([self._socket],),
                                        name="watchdog-api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise WatchdogError(f"the API server did not start on {self.host}:"
                                    f"{self.requested_port}; see the log")
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()

    def __enter__(self) -> ApiServer:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def _bind(host: str, port: int, port_from: Issue) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as err:
        raise ConfigError([Issue("WATCHDOG_API_HOST", 0,
                                 f"cannot listen on {host!r}: {err.strerror or err}")]
                          ) from err
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        sock.close()
        name = "" if port_from.message == port_from.file else f"{port_from.message}: "
        raise ConfigError([Issue(port_from.file, port_from.line,
                                 f"{name}cannot listen on {host}:{port}: "
                                 f"{err.strerror or err}")]) from err
    sock.set_inheritable(False)
    return sock
