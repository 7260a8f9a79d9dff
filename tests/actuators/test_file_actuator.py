"""The ``file`` actuator: formats as their consumers read them, permissions, atomicity."""

from __future__ import annotations

import grp
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from watchdog.actuators import FlagState
from watchdog.actuators.file import FileActuator
from watchdog.actuators.fileformats import FLAGD_SCHEMA, parse_env
from watchdog.errors import ActuatorError, ConfigError

V2_25 = FlagState("checkout-api", "v2", 25, False, "42")
KILLED = FlagState("checkout-api", "v1", 0, True, "43")


def write(tmp_path: Path, fmt: str, state: FlagState, **kwargs: Any) -> tuple[FileActuator, str]:
    actuator = FileActuator(path=str(tmp_path / f"{{module}}.{fmt}"), format=fmt, **kwargs)
    actuator.apply(state)
    return actuator, actuator.path_for(state.module).read_text()


# --- env: a systemd EnvironmentFile -------------------------------------------------------

def test_env_file_lines(tmp_path: Path) -> None:
    _, text = write(tmp_path, "env", V2_25)
    assert text.splitlines() == [
        "# managed by rollout-watchdog",
        "CHECKOUT_API_VERSION=v2",
        "CHECKOUT_API_TRAFFIC=25",
        "CHECKOUT_API_DECISION_ID=42",
        "WATCHDOG_KILL_SWITCH=0",
    ]


def test_env_prefix_kill_switch_name_and_fractional_traffic(tmp_path: Path) -> None:
    state = FlagState("transaction_pool", "v2", 12.5, False, "7")
    _, text = write(tmp_path, "env", state, prefix="MANA_", kill_switch_key="FORCE_V1_MODE")
    assert parse_env(text) == {"MANA_TRANSACTION_POOL_VERSION": "v2",
                               "MANA_TRANSACTION_POOL_TRAFFIC": "12.5",
                               "MANA_TRANSACTION_POOL_DECISION_ID": "7",
                               "FORCE_V1_MODE": "0"}
    _, text = write(tmp_path, "env", FlagState("transaction_pool", "v1", 0, True, "8"),
                    prefix="MANA_", kill_switch_key="FORCE_V1_MODE")
    assert "FORCE_V1_MODE=1" in text.splitlines()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_env_file_values_survive_a_shell_that_sources_the_file(tmp_path: Path) -> None:
    odd_id = 'run "7" $(touch pwned) `x` \\ ; end'
    actuator, _ = write(tmp_path, "env", FlagState("checkout-api", "v2", 25, False, odd_id))
    path = actuator.path_for("checkout-api")
    out = subprocess.run(
        ["bash", "-c", 'set -a; . "$1"; printf "%s\\n" "$CHECKOUT_API_TRAFFIC" '
                       '"$CHECKOUT_API_DECISION_ID" "$WATCHDOG_KILL_SWITCH"', "_", str(path)],
        capture_output=True, text=True, check=True, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert out.stdout.splitlines() == ["25", odd_id, "0"]
    assert not (tmp_path / "pwned").exists()
    assert actuator.read("checkout-api") == FlagState("checkout-api", "v2", 25, False, odd_id)


def test_env_shared_file_keeps_foreign_lines_and_other_modules(tmp_path: Path) -> None:
    path = tmp_path / "rollout.env"
    path.write_text("# hand-written\nLOG_LEVEL=debug\nCHECKOUT_TRAFFIC=5\nCHECKOUT_TRAFFIC=6\n")
    actuator = FileActuator(path=str(path), format="env")
    actuator.apply(FlagState("checkout", "v2", 50, False, "1"))
    actuator.apply(FlagState("sync_service", "v2", 5, False, "2"))
    lines = path.read_text().splitlines()
    assert lines[:3] == ["# hand-written", "LOG_LEVEL=debug", "CHECKOUT_TRAFFIC=50"]
    assert lines.count("CHECKOUT_TRAFFIC=50") == 1 and "CHECKOUT_TRAFFIC=6" not in lines
    assert "SYNC_SERVICE_TRAFFIC=5" in lines
    assert actuator.read("checkout") == FlagState("checkout", "v2", 50, False, "1")


# --- json and yaml ------------------------------------------------------------------------

def test_json_document(tmp_path: Path) -> None:
    _, text = write(tmp_path, "json", V2_25)
    assert json.loads(text) == {"kill_switch": False, "modules": {
        "checkout-api": {"version": "v2", "traffic_percent": 25, "decision_id": "42"}}}
    assert '"traffic_percent": 25,' in text  # an integer, not 25.0


def test_yaml_document_safe_loads(tmp_path: Path) -> None:
    _, text = write(tmp_path, "yaml", KILLED)
    assert yaml.safe_load(text) == {"kill_switch": True, "modules": {
        "checkout-api": {"version": "v1", "traffic_percent": 0, "decision_id": "43"}}}


def test_shared_json_file_keeps_other_modules_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_text(json.dumps({"owner": "team-a", "modules": {"legacy": {"x": 1}}}))
    actuator = FileActuator(path=str(path), format="json")
    actuator.apply(V2_25)
    doc = json.loads(path.read_text())
    assert doc["owner"] == "team-a" and doc["modules"]["legacy"] == {"x": 1}
    assert doc["modules"]["checkout-api"]["traffic_percent"] == 25


# --- flagd --------------------------------------------------------------------------------

def assert_valid_flagd(doc: dict[str, Any]) -> None:
    """The parts of https://flagd.dev/schema/v0/flags.json our files use."""
    assert doc["$schema"] == FLAGD_SCHEMA
    assert isinstance(doc["flags"], dict) and doc["flags"]
    for key, flag in doc["flags"].items():
        assert key and flag["state"] in ("ENABLED", "DISABLED")
        variants = flag["variants"]
        assert isinstance(variants, dict) and variants
        kinds = {type(v) if not isinstance(v, int | float) or isinstance(v, bool) else float
                 for v in variants.values()}
        assert len(kinds) == 1 and kinds <= {bool, str, float}, f"{key}: mixed variant types"
        assert flag["defaultVariant"] in variants
        for value in flag.get("metadata", {}).values():
            assert isinstance(value, str | int | float)
        if "targeting" in flag:
            buckets = flag["targeting"]["fractional"]
            assert len(buckets) >= 2
            for variant, weight in buckets:
                assert variant in variants
                assert isinstance(weight, int) and not isinstance(weight, bool) and weight >= 0
            assert sum(w for _, w in buckets) in (100, 10000)


def flagd_doc(tmp_path: Path, state: FlagState) -> dict[str, Any]:
    _, text = write(tmp_path, "flagd", state)
    doc: dict[str, Any] = json.loads(text)
    assert_valid_flagd(doc)
    return doc


def test_flagd_canary_splits_with_fractional_targeting(tmp_path: Path) -> None:
    flags = flagd_doc(tmp_path, V2_25)["flags"]
    version = flags["checkout-api-version"]
    assert version["variants"] == {"v1": "v1", "v2": "v2"}
    assert version["targeting"] == {"fractional": [["v2", 25], ["v1", 75]]}
    assert version["defaultVariant"] == "v1"  # no targeting key: the safe version
    assert version["metadata"]["decisionId"] == "42"
    traffic = flags["checkout-api-traffic"]
    assert traffic["variants"][traffic["defaultVariant"]] == 25
    assert flags["force-v1"]["defaultVariant"] == "off"
    assert flags["force-v1"]["variants"] == {"on": True, "off": False}


def test_flagd_fractional_percentage_uses_finer_weights(tmp_path: Path) -> None:
    flags = flagd_doc(tmp_path, FlagState("m", "v2", 12.5, False, "1"))["flags"]
    assert flags["m-version"]["targeting"] == {"fractional": [["v2", 1250], ["v1", 8750]]}
    assert flags["m-traffic"]["variants"] == {"12.5": 12.5}


def test_flagd_promotion_rollback_and_kill_switch(tmp_path: Path) -> None:
    promoted = flagd_doc(tmp_path, FlagState("m", "v2", 100, False, "1"))["flags"]
    assert promoted["m-version"]["defaultVariant"] == "v2"
    assert "targeting" not in promoted["m-version"]
    rolled_back = flagd_doc(tmp_path, FlagState("m", "v1", 0, False, "2"))["flags"]
    assert rolled_back["m-version"]["defaultVariant"] == "v1"
    assert "targeting" not in rolled_back["m-version"]
    killed = flagd_doc(tmp_path, FlagState("m", "v1", 0, True, "3"))["flags"]
    assert killed["force-v1"]["defaultVariant"] == "on"
    assert "targeting" not in killed["m-version"]


def test_flagd_shared_file_keeps_foreign_flags(tmp_path: Path) -> None:
    path = tmp_path / "flags.flagd.json"
    path.write_text(json.dumps({"flags": [{"key": "dark-mode", "state": "ENABLED",
                                           "variants": {"on": True, "off": False},
                                           "defaultVariant": "off"}]}))
    actuator = FileActuator(path=str(path), format="flagd", kill_switch_key="ForceV1Mode")
    actuator.apply(V2_25)
    doc = json.loads(path.read_text())
    assert_valid_flagd(doc)
    assert doc["flags"]["dark-mode"]["defaultVariant"] == "off"
    assert doc["flags"]["ForceV1Mode"]["defaultVariant"] == "off"


# --- robustness ---------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["json", "yaml", "flagd"])
def test_a_corrupt_file_never_blocks_a_rollback(tmp_path: Path, fmt: str) -> None:
    actuator = FileActuator(path=str(tmp_path / "{module}.flags"), format=fmt)
    path = actuator.path_for("m")
    path.write_text("{ not: [valid")
    with pytest.raises(ActuatorError):
        actuator.read("m")
    rollback = FlagState("m", "v1", 0, False, "9")
    actuator.apply(rollback)
    assert actuator.read("m") == rollback


def test_module_names_cannot_escape_the_directory(tmp_path: Path) -> None:
    inner = tmp_path / "flags"
    inner.mkdir()
    actuator = FileActuator(path=str(inner / "{module}.json"))
    actuator.apply(FlagState("../../evil", "v1", 0, False, "1"))
    assert [p.name for p in inner.iterdir()] == ["_._.._evil.json"]
    assert actuator.read("../../evil") == FlagState("../../evil", "v1", 0, False, "1")


def test_missing_directory_is_an_actuator_error(tmp_path: Path) -> None:
    actuator = FileActuator(path=str(tmp_path / "nope" / "{module}.json"))
    with pytest.raises(ActuatorError, match="nope"):
        actuator.apply(V2_25)


# --- permissions --------------------------------------------------------------------------

def mode_of(path: Path) -> int:
    return path.stat().st_mode & 0o7777


def test_default_mode_is_0640_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        actuator, _ = write(tmp_path, "env", V2_25)
    finally:
        os.umask(old)
    assert mode_of(actuator.path_for("checkout-api")) == 0o640


@pytest.mark.parametrize(("mode", "expected"), [("0600", 0o600), ("644", 0o644), (0o660, 0o660),
                                                ("0o640", 0o640)])
def test_configured_mode(tmp_path: Path, mode: int | str, expected: int) -> None:
    actuator, _ = write(tmp_path, "json", V2_25, mode=mode)
    assert mode_of(actuator.path_for("checkout-api")) == expected


def test_mode_is_restored_even_when_the_content_is_unchanged(tmp_path: Path) -> None:
    actuator, _ = write(tmp_path, "json", V2_25)
    path = actuator.path_for("checkout-api")
    path.chmod(0o666)
    actuator.apply(V2_25)
    assert mode_of(path) == 0o640


@pytest.mark.parametrize("mode", ["0999", "rw-r-----", 640, "01640", True])
def test_bad_modes_are_configuration_errors(tmp_path: Path, mode: Any) -> None:
    with pytest.raises(ConfigError):
        FileActuator(path=str(tmp_path / "x"), mode=mode)


def test_group_owner(tmp_path: Path) -> None:
    group = grp.getgrgid(os.getegid()).gr_name
    actuator, _ = write(tmp_path, "json", V2_25, group=group)
    assert actuator.path_for("checkout-api").stat().st_gid == os.getegid()
    with pytest.raises(ConfigError, match="unknown group"):
        FileActuator(path=str(tmp_path / "x"), group="no-such-group-here")


@pytest.mark.parametrize("kwargs", [{"format": "toml"}, {"prefix": "BAD-"},
                                    {"format": "env", "kill_switch_key": "1BAD"}])
def test_other_configuration_errors(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        FileActuator(path=str(tmp_path / "x"), **kwargs)


# --- atomicity ----------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["env", "flagd"])
def test_a_concurrent_reader_never_sees_a_partial_file(tmp_path: Path, fmt: str) -> None:
    actuator = FileActuator(path=str(tmp_path / "{module}.out"), format=fmt)
    path = actuator.path_for("checkout")
    actuator.apply(FlagState("checkout", "v1", 0, False, "0"))
    stop = threading.Event()
    bad: list[str] = []
    reads = [0]

    def reader() -> None:
        while not stop.is_set():
            text = path.read_text()
            reads[0] += 1
            try:
                state = actuator.read("checkout")
            except ActuatorError as err:  # a half-written file does not parse
                bad.append(str(err))
                continue
            if not text.endswith("\n") or state is None:
                bad.append(text)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(80):
            pct = (5, 25, 50, 75, 90)[i % 5]
            actuator.apply(FlagState("checkout", "v2", pct, False, str(10_000 + i)))
    finally:
        stop.set()
        thread.join()
    assert not bad, bad[:3]
    assert reads[0] > 20
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_writers_sharing_one_file_lose_no_update(tmp_path: Path) -> None:
    path = tmp_path / "shared.json"
    modules = [f"mod{i}" for i in range(4)]
    errors: list[BaseException] = []

    def writer(module: str) -> None:
        actuator = FileActuator(path=str(path), format="json")  # one instance per thread
        try:
            for i in range(15):
                actuator.apply(FlagState(module, "v2", i + 1, False, f"{module}-{i}"))
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(m,)) for m in modules]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    doc = json.loads(path.read_text())
    assert {m: doc["modules"][m]["traffic_percent"] for m in modules} == dict.fromkeys(modules, 15)


@pytest.mark.parametrize("path", ["{modul}.json", "x/{module}{.json", "x}.json",
                                  "{module[0]}.json", "{module.__class__}.json"])
def test_a_mistyped_placeholder_is_refused_when_configured(tmp_path: Path, path: str) -> None:
    # it once named one literal file for every module, found only when flags are written
    with pytest.raises(ConfigError, match="is not a placeholder"):
        FileActuator(str(tmp_path / path))
    FileActuator(str(tmp_path / "{module}.json"))  # the one placeholder left to fill
