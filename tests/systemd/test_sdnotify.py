"""sd_notify over real AF_UNIX datagram sockets: a path bound in tmp_path and an abstract one.

The environment is handed to the code under test as a mapping, never patched in os.environ.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from watchdog.sdnotify import (
    Notifier,
    WatchdogPinger,
    monotonic_usec,
    notify_address,
    one_line,
    watchdog_interval,
)


class Listener:
    """A datagram socket playing systemd's part: what arrives is what was sent."""

    def __init__(self, sock: socket.socket, env_value: str) -> None:
        self.sock = sock
        self.env = {"NOTIFY_SOCKET": env_value}
        sock.settimeout(2.0)

    def receive(self) -> bytes:
        return self.sock.recv(8192)

    def nothing_pending(self) -> bool:
        self.sock.settimeout(0.05)
        try:
            self.sock.recv(8192)
        except (TimeoutError, BlockingIOError):
            return True
        finally:
            self.sock.settimeout(2.0)
        return False


@pytest.fixture
def path_listener(tmp_path: Path) -> Iterator[Listener]:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        yield Listener(sock, str(path))


@pytest.fixture
def abstract_listener() -> Iterator[Listener]:
    name = f"rollout-watchdog-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        yield Listener(sock, "@" + name)


@pytest.fixture(params=["path", "abstract"])
def listener(request: pytest.FixtureRequest, path_listener: Listener,
             abstract_listener: Listener) -> Listener:
    return path_listener if request.param == "path" else abstract_listener


# -- messages ------------------------------------------------------------------------------

def test_each_message_arrives_exactly_as_specified(listener: Listener) -> None:
    n = Notifier(listener.env)
    assert n.enabled
    assert n.ready()
    assert listener.receive() == b"READY=1"
    assert n.status("3 modules: checkout 25% healthy")
    assert listener.receive() == b"STATUS=3 modules: checkout 25% healthy"
    assert n.watchdog()
    assert listener.receive() == b"WATCHDOG=1"
    assert n.stopping()
    assert listener.receive() == b"STOPPING=1"
    assert n.errno(5)
    assert listener.receive() == b"ERRNO=5"
    assert n.extend_timeout(1.5)
    assert listener.receive() == b"EXTEND_TIMEOUT_USEC=1500000"
    assert n.ready(status="reloaded: 4 modules")
    assert listener.receive() == b"READY=1\nSTATUS=reloaded: 4 modules"
    assert n.failures == 0
    n.close()


def test_reloading_carries_the_monotonic_clock_in_microseconds(listener: Listener) -> None:
    n = Notifier(listener.env)
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert n.reloading(status="reloading rules")
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    lines = listener.receive().decode().split("\n")
    assert lines[0] == "RELOADING=1"
    key, _, value = lines[1].partition("=")
    assert key == "MONOTONIC_USEC"
    assert value.isdigit() and before <= int(value) <= after
    assert lines[2:] == ["STATUS=reloading rules"]
    n.close()


def test_monotonic_usec_is_clock_monotonic() -> None:
    # time.monotonic() is CLOCK_MONOTONIC on Linux; the two readings must be microseconds apart
    assert abs(monotonic_usec() - time.monotonic() * 1_000_000) < 1_000_000


def test_status_is_one_line_and_bounded(listener: Listener) -> None:
    n = Notifier(listener.env)
    n.status("first line\nsecond\r\n\tthird   word")
    assert listener.receive() == b"STATUS=first line second third word"
    n.status("é" * 5000)  # 2 bytes each: cut at 1024 bytes, never inside a character
    data = listener.receive()
    assert data == b"STATUS=" + ("é" * 512).encode()
    assert one_line("ab€", limit=4) == "ab"  # € is 3 bytes: dropped whole
    n.close()


def test_threads_share_one_notifier(listener: Listener) -> None:
    n = Notifier(listener.env)
    sent: list[bytes] = []
    got: list[bytes] = []
    done = threading.Event()

    def send(i: int) -> None:
        for j in range(25):
            if n.status(f"t{i} m{j}"):
                sent.append(f"STATUS=t{i} m{j}".encode())

    def drain() -> None:
        listener.sock.settimeout(0.2)
        while True:
            try:
                got.append(listener.sock.recv(8192))
            except TimeoutError:
                if done.is_set():
                    return

    reader = threading.Thread(target=drain)
    reader.start()
    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    reader.join()
    # every send reported as done arrived whole; the rest were counted as failures
    assert sorted(got) == sorted(sent)
    assert len(sent) + n.failures == 200 and len(sent) > 0
    n.close()


# -- no socket, bad socket -------------------------------------------------------------------

def test_without_notify_socket_everything_is_a_no_op() -> None:
    n = Notifier({})
    assert not n.enabled
    assert not n.ready() and not n.status("x") and not n.watchdog()
    assert not n.reloading() and not n.stopping()
    assert n.failures == 0
    pinger = WatchdogPinger.from_env(n, {"WATCHDOG_USEC": "30000000"})
    assert not pinger.enabled and not pinger.tick()


@pytest.mark.parametrize("value", ["", "relative/path", "@"])
def test_unusable_addresses_are_ignored(value: str) -> None:
    assert notify_address({"NOTIFY_SOCKET": value}) is None
    assert not Notifier({"NOTIFY_SOCKET": value}).ready()


def test_a_vanished_socket_does_not_raise_and_is_logged_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "gone"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        n = Notifier({"NOTIFY_SOCKET": str(path)})
        assert n.ready()
    path.unlink()
    with caplog.at_level(logging.DEBUG, logger="watchdog.sdnotify"):
        assert not n.ready()
        assert not n.watchdog()
        assert not n.status("still alive")
    assert n.failures == 3
    records = [r for r in caplog.records if r.name == "watchdog.sdnotify"]
    assert len(records) == 1 and records[0].levelno == logging.DEBUG
    n.close()


def test_sending_recovers_when_the_socket_comes_back(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "later"
    n = Notifier({"NOTIFY_SOCKET": str(path)})
    with caplog.at_level(logging.DEBUG, logger="watchdog.sdnotify"):
        assert not n.ready()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(str(path))
            sock.settimeout(2.0)
            assert n.ready()
            assert sock.recv(100) == b"READY=1"
        path.unlink()
        assert not n.ready()  # a new failure after a success is logged again
    assert len([r for r in caplog.records if r.name == "watchdog.sdnotify"]) == 2
    n.close()


def test_an_overlong_or_nul_path_does_not_raise(tmp_path: Path) -> None:
    assert not Notifier({"NOTIFY_SOCKET": "/" + "x" * 200}).ready()
    assert not Notifier({"NOTIFY_SOCKET": "/tmp/a\0b"}).ready()


def test_a_full_receive_queue_never_blocks(path_listener: Listener) -> None:
    n = Notifier(path_listener.env)
    start = time.monotonic()
    results = [n.status("x" * 1000) for _ in range(5000)]  # nobody reads: the queue fills
    assert time.monotonic() - start < 5
    assert results[0] and not results[-1]
    assert n.failures > 0
    n.close()


# -- watchdog interval -----------------------------------------------------------------------

def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "1000"}) == 0.0005


def test_watchdog_interval_respects_watchdog_pid() -> None:
    env = {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    assert watchdog_interval(env) == 15.0
    assert watchdog_interval({**env, "WATCHDOG_PID": "1"}) is None  # meant for another process
    assert watchdog_interval({**env, "WATCHDOG_PID": "4242"}, pid=4242) == 15.0
    assert watchdog_interval({**env, "WATCHDOG_PID": "abc"}) is None


@pytest.mark.parametrize("usec", ["", "0", "-5", "abc", "1.5", "30s"])
def test_watchdog_interval_is_none_without_a_usable_value(usec: str) -> None:
    assert watchdog_interval({"WATCHDOG_USEC": usec}) is None
    assert watchdog_interval({}) is None


# -- pinger ----------------------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_pinger_sends_at_most_once_per_interval(listener: Listener) -> None:
    clock = FakeClock()
    env = {**listener.env, "WATCHDOG_USEC": "30000000"}
    pinger = WatchdogPinger.from_env(Notifier(env), env, clock=clock)
    assert pinger.interval == 15.0
    assert pinger.tick()  # the first completed tick pings at once
    assert listener.receive() == b"WATCHDOG=1"
    for step in (1.0, 5.0, 14.9):
        clock.t = 1000.0 + step
        assert not pinger.tick()
    assert listener.nothing_pending()
    clock.t = 1015.0
    assert pinger.tick()
    assert listener.receive() == b"WATCHDOG=1"
    clock.t = 1016.0
    assert not pinger.tick()
    clock.t = 1100.0  # a long gap (a slow tick) pings on the next completed one
    assert pinger.tick()
    assert listener.receive() == b"WATCHDOG=1"
    assert pinger.pings == 3
    assert listener.nothing_pending()


def test_pinger_max_wait_brings_the_loop_back_before_the_next_ping() -> None:
    clock = FakeClock()
    pinger = WatchdogPinger(Notifier({}), 15.0, clock=clock)
    assert pinger.max_wait(60.0) == 15.0
    pinger.tick()
    clock.t += 10.0
    assert pinger.max_wait(60.0) == pytest.approx(5.0)
    assert pinger.max_wait(2.0) == 2.0
    clock.t += 20.0
    assert pinger.max_wait(60.0) == 0.0
    inert = WatchdogPinger(Notifier({}), None, clock=clock)
    assert inert.max_wait(60.0) == 60.0 and not inert.tick()


def test_pinger_without_watchdog_usec_is_inert(listener: Listener) -> None:
    pinger = WatchdogPinger.from_env(Notifier(listener.env), listener.env)
    assert not pinger.enabled and not pinger.tick()
    assert listener.nothing_pending()


@pytest.mark.parametrize("interval", [0.0, -1.0])
def test_pinger_refuses_a_non_positive_interval(interval: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        WatchdogPinger(Notifier({}), interval)
