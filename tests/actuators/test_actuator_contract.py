"""One contract suite over every built-in actuator, each against a real backend: files on
disk (every format), a flag service over HTTP on loopback (with and without a read URL), and
a real program run as a subprocess (with and without a read-back command)."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from watchdog import plugins
from watchdog.actuators import Actuator, FlagState
from watchdog.actuators.command import CommandActuator
from watchdog.actuators.file import FileActuator
from watchdog.actuators.webhook import WebhookActuator
from watchdog.errors import ActuatorError
from watchdog.model import Action, Decision

KINDS = ["file-json", "file-yaml", "file-env", "file-flagd", "webhook", "webhook-read-url",
         "command", "command-read-argv"]


@dataclass
class Harness:
    actuator: Actuator
    fingerprint: Callable[[], object]  # changes with every observable effect on the backend
    make_failing: Callable[[], Actuator]  # same kind, but its backend refuses


def no_sleep(_seconds: float) -> None:
    pass


def _file_harness(tmp_path: Path, fmt: str) -> Harness:
    actuator = FileActuator(path=str(tmp_path / f"flags-{{module}}.{fmt}"), format=fmt)

    def fingerprint() -> object:
        try:
            st = os.stat(actuator.path_for("checkout"))
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    return Harness(actuator, fingerprint, lambda: FileActuator(
        path=str(tmp_path / "no-such-dir" / "{module}"), format=fmt))


@pytest.fixture(params=KINDS)
def harness(request: pytest.FixtureRequest, tmp_path: Path,
            flagtool: list[str]) -> Iterator[Harness]:
    kind: str = request.param
    if kind.startswith("file-"):
        yield _file_harness(tmp_path, kind.removeprefix("file-"))
    elif kind.startswith("webhook"):
        service = request.getfixturevalue("flag_service")
        client = request.getfixturevalue("http_client")
        read_url = service.base + "/flags/{module}" if kind == "webhook-read-url" else None
        made: list[WebhookActuator] = []

        def webhook(secret: str) -> WebhookActuator:
            made.append(WebhookActuator(url=service.base + "/flags", secret=secret,
                                        read_url=read_url, timeout=2, max_attempts=2,
                                        sleep=no_sleep, client=client))
            return made[-1]

        yield Harness(webhook(service.secret.decode()), lambda: tuple(service.applied_keys),
                      lambda: webhook("not-the-shared-secret"))
        for actuator in made:
            actuator.close()
    else:
        store = str(tmp_path / "flags.json")
        argv = [*flagtool, "write", store, "{module}", "{version}", "{traffic_percent}",
                "{kill_switch}", "{decision_id}"]
        read_argv = [*flagtool, "read", store, "{module}"] if kind == "command-read-argv" \
            else None
        effects = Path(store + ".effects")
        yield Harness(
            CommandActuator(argv=argv, read_argv=read_argv, timeout=10),
            lambda: effects.read_text() if effects.exists() else "",
            lambda: CommandActuator(argv=[*flagtool, "fail", store], timeout=10))


def decision(traffic: float, action: Action = Action.ADVANCE, kill: bool = False,
             module: str = "checkout") -> Decision:
    return Decision(module=module, at=1000.0, action=action, traffic_percent=traffic,
                    from_stage=1, to_stage=2, reasons=("test",), kill_switch=kill)


def test_read_before_any_apply_is_none(harness: Harness) -> None:
    assert harness.actuator.read("checkout") is None


def test_apply_then_read_returns_the_state(harness: Harness) -> None:
    state = FlagState.of(decision(25), 7)
    harness.actuator.apply(state)
    assert harness.actuator.read("checkout") == state
    assert state == FlagState("checkout", "v2", 25.0, False, "7")


def test_applying_twice_has_one_effect(harness: Harness) -> None:
    state = FlagState.of(decision(50), 8)
    harness.actuator.apply(state)
    after_first = harness.fingerprint()
    harness.actuator.apply(state)
    assert harness.fingerprint() == after_first
    assert harness.actuator.read("checkout") == state
    harness.actuator.apply(FlagState.of(decision(75), 9))  # a real change is observable
    assert harness.fingerprint() != after_first


def test_rollback_state_is_written(harness: Harness) -> None:
    harness.actuator.apply(FlagState.of(decision(50), 10))
    rollback = FlagState.of(decision(0, Action.ROLLBACK), 11)
    assert (rollback.version, rollback.traffic_percent) == ("v1", 0)
    harness.actuator.apply(rollback)
    assert harness.actuator.read("checkout") == rollback


def test_kill_switch_state_is_written(harness: Harness) -> None:
    harness.actuator.apply(FlagState.of(decision(90), 12))
    killed = FlagState.of(decision(90, Action.ROLLBACK, kill=True), 13)
    assert (killed.version, killed.traffic_percent, killed.kill_switch) == ("v1", 0.0, True)
    harness.actuator.apply(killed)
    assert harness.actuator.read("checkout") == killed
    released = FlagState.of(decision(0, Action.RESUME), 14)
    harness.actuator.apply(released)
    assert harness.actuator.read("checkout") == released


def test_promotion_and_fractional_percentages_round_trip(harness: Harness) -> None:
    for i, traffic in enumerate((12.5, 100)):
        state = FlagState.of(decision(traffic), 20 + i)
        harness.actuator.apply(state)
        assert harness.actuator.read("checkout") == state


def test_modules_are_independent(harness: Harness) -> None:
    a = FlagState.of(decision(25, module="checkout"), 30)
    b = FlagState.of(decision(5, module="sync-service"), 31)
    harness.actuator.apply(a)
    harness.actuator.apply(b)
    assert harness.actuator.read("checkout") == a
    assert harness.actuator.read("sync-service") == b


def test_a_refusing_backend_raises_actuator_error(harness: Harness) -> None:
    failing = harness.make_failing()
    with pytest.raises(ActuatorError):
        failing.apply(FlagState.of(decision(0, Action.ROLLBACK), 40))
    assert harness.actuator.read("checkout") is None


@pytest.mark.parametrize("bad", [
    FlagState("checkout", "v3", 25, False, "1"),
    FlagState("checkout", "v2", 125, False, "1"),
    FlagState("checkout", "v2", float("nan"), False, "1"),
    FlagState("", "v2", 25, False, "1"),
])
def test_an_invalid_state_is_refused_before_anything_is_written(harness: Harness,
                                                               bad: FlagState) -> None:
    before = harness.fingerprint()
    with pytest.raises(ActuatorError):
        harness.actuator.apply(bad)
    assert harness.fingerprint() == before


@pytest.mark.parametrize(("name", "cls", "kwargs"), [
    ("file", FileActuator, {"path": "/tmp/{module}.env", "format": "env", "mode": "0640"}),
    ("webhook", WebhookActuator, {"url": "http://127.0.0.1:9/flags", "secret": "x",
                                  "timeout": 1}),
    ("command", CommandActuator, {"argv": ["true", "{module}"], "timeout": 5}),
])
def test_registered_as_entry_points_and_built_from_keywords(name: str, cls: type,
                                                            kwargs: dict[str, Any]) -> None:
    assert plugins.load("watchdog.actuators", name) is cls
    actuator = cls(**kwargs)
    assert actuator.name == name
    for method in ("apply", "read"):
        assert callable(getattr(actuator, method))
    assert list(inspect.signature(cls.apply).parameters) == ["self", "state"]
