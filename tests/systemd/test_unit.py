"""The shipped unit passes ``systemd-analyze verify``, scores <= 1.5 on ``systemd-analyze
security --offline=true``, carries the settings the daemon relies on, and its user can be
created by ``systemd-sysusers``.

``verify`` checks that ExecStart's program exists and is executable. The real path,
/opt/rollout-watchdog/venv/bin/rollout-watchdog, exists only on an installed machine, and
``--root=`` would need a whole systemd unit tree under the root, so the verify test writes a
copy of the unit into tmp_path whose ExecStart program (and nothing else: the test checks
that exactly one line differs) is a stub executable there. The security test reads the real
file: the offline scoring does not look at ExecStart.

Without systemd-analyze the tests skip, or fail when WATCHDOG_REQUIRE_REAL_SERVICES=1.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "rollout-watchdog.service"
SYSUSERS = ROOT / "systemd" / "rollout-watchdog.sysusers"
EXEC = "/opt/rollout-watchdog/venv/bin/rollout-watchdog"
MAX_EXPOSURE = 1.5
REQUIRE_ENV = "WATCHDOG_REQUIRE_REAL_SERVICES"
QUIET = {**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": "", "LC_ALL": "C.UTF-8"}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (apt-get install systemd)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}; {REQUIRE_ENV}=1")
        pytest.skip(reason)
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, env=QUIET,
                          check=False)


def settings(text: str) -> dict[str, list[str]]:
    """``Section.Key`` -> every value assigned, in order (systemd allows repeats)."""
    found: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return found


def verifiable_copy(unit_text: str, where: Path) -> Path:
    """The unit with ExecStart's program replaced by a stub executable under ``where``."""
    stub = where / "bin" / "rollout-watchdog"
    stub.parent.mkdir(parents=True)
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    copy = unit_text.replace(f"ExecStart={EXEC} ", f"ExecStart={stub} ")
    changed = [a for a, b in zip(unit_text.splitlines(), copy.splitlines(), strict=True)
               if a != b]
    assert len(changed) == 1 and changed[0].startswith("ExecStart="), changed
    target = where / UNIT.name  # same file name: verify names the unit after the file
    target.write_text(copy)
    return target


def verify_output(unit: Path) -> tuple[int, list[str]]:
    result = run(tool("systemd-analyze"), "verify", "--no-pager", str(unit))
    lines = [ln for ln in (result.stdout + result.stderr).splitlines() if ln.strip()]
    return result.returncode, lines


def exposure(unit: Path) -> tuple[float, str]:
    result = run(tool("systemd-analyze"), "security", "--offline=true", "--no-pager", str(unit))
    assert result.returncode == 0, result.stderr
    match = re.search(rf"Overall exposure level for {re.escape(unit.name)}: "
                      r"(\d+(?:\.\d+)?) (\S+)", result.stdout)
    assert match, result.stdout[-2000:]
    return float(match.group(1)), match.group(2)


# -- verify ---------------------------------------------------------------------------------

def test_verify_reports_nothing(tmp_path: Path) -> None:
    code, lines = verify_output(verifiable_copy(UNIT.read_text(), tmp_path))
    assert code == 0 and lines == [], lines


def test_verify_would_catch_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: an unknown key (exit 0, but a warning) and a missing
    program (exit 1) are both reported."""
    text = UNIT.read_text().replace("WatchdogSec=30s", "WatchdogSec=30s\nWatchDogSecs=30s")
    code, lines = verify_output(verifiable_copy(text, tmp_path))
    assert any("WatchDogSecs" in ln for ln in lines), lines
    missing = tmp_path / "missing"
    missing.mkdir()
    (missing / UNIT.name).write_text(UNIT.read_text().replace(
        f"ExecStart={EXEC}", f"ExecStart={tmp_path}/nowhere/rollout-watchdog"))
    code, lines = verify_output(missing / UNIT.name)
    assert code != 0 and any("not executable" in ln for ln in lines), lines


# -- security score -------------------------------------------------------------------------

def test_security_exposure_is_at_most_1_5() -> None:
    score, label = exposure(UNIT)
    assert score <= MAX_EXPOSURE, f"exposure {score} {label} > {MAX_EXPOSURE}"
    assert label == "OK"
    # the header comment records the measured score; keep it honest
    assert f"exposure level of {score} {label}" in UNIT.read_text()


def test_security_score_of_an_unhardened_unit_is_high(tmp_path: Path) -> None:
    """The parser reads the real number: a bare Type=notify unit scores about 9.6."""
    bare = tmp_path / "bare.service"
    bare.write_text(f"[Service]\nType=notify\nExecStart={EXEC}\n")
    score, label = exposure(bare)
    assert score > 9.0 and label == "UNSAFE"


# -- the settings the daemon and docs/systemd.md rely on --------------------------------------

def test_unit_settings() -> None:
    s = settings(UNIT.read_text())

    def one(key: str) -> str:
        assert key in s, f"{key} missing"
        assert len(s[key]) == 1, f"{key} set {len(s[key])} times"
        return s[key][0]

    assert one("Service.Type") == "notify"
    assert one("Service.NotifyAccess") == "main"
    assert one("Service.ExecStart") == f"{EXEC} run --config /etc/rollout-watchdog/watchdog.yaml"
    assert one("Service.ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one("Service.WatchdogSec") == "30s"
    assert one("Service.Restart") == "on-failure"
    assert one("Service.User") == one("Service.Group") == "rollout-watchdog"
    assert "Service.DynamicUser" not in s
    assert one("Service.StateDirectory") == "rollout-watchdog"
    assert one("Service.ConfigurationDirectory") == "rollout-watchdog"
    assert one("Service.LoadCredential") == "slack_token:/etc/rollout-watchdog/slack_token"
    assert one("Service.EnvironmentFile") == "-/etc/rollout-watchdog/env"
    assert "WATCHDOG_DB=%S/rollout-watchdog/journal.db" in s["Service.Environment"]
    assert one("Service.UMask") == "0027"
    assert one("Service.CapabilityBoundingSet") == ""
    assert one("Service.AmbientCapabilities") == ""
    assert one("Service.ProtectSystem") == "strict"
    assert one("Service.RestrictAddressFamilies") == "AF_UNIX AF_INET AF_INET6"
    assert s["Service.SystemCallFilter"][0] == "@system-service"
    # the file actuator fchown()s flag files: @chown (inside @privileged) must stay allowed
    denied = " ".join(v for v in s["Service.SystemCallFilter"] if v.startswith("~"))
    assert "@privileged" not in denied and "@chown" not in denied and "chown" not in denied
    for flag in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices",
                 "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
                 "ProtectControlGroups", "ProtectClock", "ProtectHostname", "RestrictNamespaces",
                 "RestrictRealtime", "RestrictSUIDSGID", "LockPersonality",
                 "MemoryDenyWriteExecute"):
        assert one(f"Service.{flag}") == "yes", flag
    assert one("Service.ProtectProc") == "invisible"
    # ProcSubset=pid hides /proc/stat and with it prometheus_client's process_* metrics
    assert "Service.ProcSubset" not in s
    assert one("Install.WantedBy") == "multi-user.target"


def test_sysusers_creates_the_unit_user(tmp_path: Path) -> None:
    sysusers = tool("systemd-sysusers")
    (tmp_path / "etc").mkdir()
    for name in ("passwd", "group"):
        (tmp_path / "etc" / name).write_text("")
    result = run(sysusers, f"--root={tmp_path}", str(SYSUSERS))
    assert result.returncode == 0, result.stderr
    user = one_line_for("rollout-watchdog", tmp_path / "etc" / "passwd").split(":")
    group = one_line_for("rollout-watchdog", tmp_path / "etc" / "group").split(":")
    assert user[3] == group[2]  # primary group is its own group
    assert 0 < int(user[2]) < 1000  # a system uid
    assert user[5:] == ["/var/lib/rollout-watchdog", "/usr/sbin/nologin"]
    assert settings(UNIT.read_text())["Service.User"] == [user[0]]


def one_line_for(name: str, path: Path) -> str:
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith(f"{name}:")]
    assert len(lines) == 1, lines
    return lines[0]
