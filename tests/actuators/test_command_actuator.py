"""The ``command`` actuator, running a real program (the flag tool from conftest)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from watchdog.actuators import FlagState
from watchdog.actuators.command import CommandActuator, substitute
from watchdog.errors import ActuatorError, ConfigError

STATE = FlagState("checkout", "v2", 25, False, "42")


def calls(store: Path) -> list[list[str]]:
    log = Path(f"{store}.calls")
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.parametrize("hostile", [
    "a b", "x; touch pwned", "$(touch pwned)", "`touch pwned`", "a' 'b", 'q"uo"te',
    "line\nbreak", "{version}", "--kubeconfig=/etc/evil", "* ? [a-z]",
])
def test_placeholders_stay_inside_their_argument(tmp_path: Path, flagtool: list[str],
                                                  hostile: str) -> None:
    store = tmp_path / "flags.json"
    actuator = CommandActuator(argv=[*flagtool, "record", str(store), "{module}",
                                     "--traffic={traffic_percent}", "{decision_id}",
                                     "{version}-{kill_switch}", "{module}{decision_id}"],
                               cwd=str(tmp_path))
    actuator.apply(FlagState(hostile, "v2", 12.5, True, hostile))
    assert calls(store) == [["record", str(store), hostile, "--traffic=12.5", hostile,
                             "v2-1", hostile + hostile]]
    assert not (tmp_path / "pwned").exists()


def test_substitution_is_single_pass() -> None:
    values = {"module": "{decision_id}", "decision_id": "7"}
    assert substitute(["{module}", "x{decision_id}y", "{unknown}", "{"], values) == \
        ["{decision_id}", "x7y", "{unknown}", "{"]


def test_state_is_also_in_the_environment(tmp_path: Path) -> None:
    out = tmp_path / "env.json"
    script = ("import json, os, sys; json.dump({k: v for k, v in os.environ.items() "
              "if k.startswith(('ROLLOUT_', 'EXTRA'))}, open(sys.argv[1], 'w'))")
    CommandActuator(argv=[sys.executable, "-c", script, str(out)], env={"EXTRA": "yes"},
                    inherit_env=False).apply(STATE)
    assert json.loads(out.read_text()) == {
        "EXTRA": "yes", "ROLLOUT_MODULE": "checkout", "ROLLOUT_VERSION": "v2",
        "ROLLOUT_TRAFFIC_PERCENT": "25", "ROLLOUT_KILL_SWITCH": "0", "ROLLOUT_DECISION_ID": "42"}


def test_non_zero_exit_raises_with_the_stderr_tail(tmp_path: Path, flagtool: list[str]) -> None:
    actuator = CommandActuator(argv=[*flagtool, "fail", str(tmp_path / "s")], stderr_tail=300)
    with pytest.raises(ActuatorError) as caught:
        actuator.apply(STATE)
    message = str(caught.value)
    assert "exit status 3" in message
    assert message.endswith("flags service refused the change")
    assert "x" * 200 in message and len(message) < 500  # the tail, not all 5000 bytes
    assert actuator.read("checkout") is None  # nothing confirmed


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_timeout_kills_the_whole_process_group(tmp_path: Path, flagtool: list[str]) -> None:
    store = tmp_path / "s"
    actuator = CommandActuator(argv=[*flagtool, "hang", str(store)], timeout=1)
    started = time.monotonic()
    with pytest.raises(ActuatorError, match=r"timed out after 1s.*started, now hanging"):
        actuator.apply(STATE)
    assert time.monotonic() - started < 5
    child = int(Path(f"{store}.child").read_text())
    deadline = time.monotonic() + 3
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the grandchild survived the timeout"


def test_missing_program_is_an_actuator_error(tmp_path: Path) -> None:
    with pytest.raises(ActuatorError, match="cannot start"):
        CommandActuator(argv=[str(tmp_path / "no-such-tool"), "{module}"]).apply(STATE)


def test_read_back_mismatch_is_an_actuator_error(tmp_path: Path, flagtool: list[str]) -> None:
    store = tmp_path / "s"
    lying = json.dumps({"version": "v1", "traffic_percent": 0, "kill_switch": False})
    actuator = CommandActuator(argv=[*flagtool, "record", str(store), "{module}"],
                               read_argv=[*flagtool, "print", str(store), lying])
    with pytest.raises(ActuatorError, match="read-back mismatch"):
        actuator.apply(STATE)
    assert actuator.read("checkout") == FlagState("checkout", "v1", 0, False, "")


@pytest.mark.parametrize(("printed", "expected"), [
    ("null", None), ("", None), ("not json", "not JSON"), ("[1, 2]", "expected a JSON object"),
    ('{"module": "other", "version": "v1", "traffic_percent": 0, "kill_switch": false}',
     "not 'checkout'"),
])
def test_read_argv_output(tmp_path: Path, flagtool: list[str], printed: str,
                          expected: str | None) -> None:
    actuator = CommandActuator(argv=["true"],
                               read_argv=[*flagtool, "print", str(tmp_path / "s"), printed])
    if expected is None:
        assert actuator.read("checkout") is None
    else:
        with pytest.raises(ActuatorError, match=expected):
            actuator.read("checkout")


@pytest.mark.parametrize("kwargs", [
    {"argv": "kubectl set env deployment/x A={traffic_percent}"},
    {"argv": []},
    {"argv": ["tool", "{traffic}"]},
    {"argv": ["tool"], "read_argv": ["get", "{version}"]},
    {"argv": ["tool"], "timeout": 0},
])
def test_configuration_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        CommandActuator(**kwargs)


def test_repr_shows_the_templates() -> None:
    actuator = CommandActuator(argv=["kubectl", "set", "env", "X={traffic_percent}"])
    assert repr(actuator) == ("CommandActuator(argv=['kubectl', 'set', 'env', "
                              "'X={traffic_percent}'], read_argv=None)")
