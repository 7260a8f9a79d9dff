"""The PyPI project ``watchdog`` (file-system events) uses our import name ``watchdog``.

Installing it beside rollout-watchdog shadows or overwrites our package. The console
entry point detects that before importing anything of ours and says what happened and
how to fix it (exit 2, no traceback). This test does it for real: one throw-away
virtual environment per session (under pytest's tmp dir) gets rollout-watchdog built
from this checkout (``--no-deps``; only ``click`` besides, which ``--version`` needs)
and the real ``watchdog`` package from PyPI (or pip's local cache).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


class Venv:
    def __init__(self, where: Path) -> None:
        self.where = where
        self.python = where / "bin" / "python"
        self.script = where / "bin" / "rollout-watchdog"

    def pip(self, *args: str) -> None:
        done = subprocess.run([str(self.python), "-m", "pip", "--disable-pip-version-check",
                               "--quiet", *args], capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            pytest.skip(f"pip {' '.join(args)} failed here (no index?): {done.stderr[-500:]}")

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.script), *args], capture_output=True, text=True,
                              timeout=120)


def _source_copy(dest: Path) -> Path:
    """A copy of what the build needs, so the build writes nothing into the checkout."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("watchdog", "rollout_watchdog"):
        shutil.copytree(ROOT / package, dest / package, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dest / name)
    return dest


@pytest.fixture(scope="session")
def clash_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Venv, Path]:
    base = tmp_path_factory.mktemp("clash")
    env = Venv(base / "venv")
    venv.EnvBuilder(with_pip=True).create(env.where)
    source = _source_copy(base / "src")
    env.pip("wheel", "--no-deps", "-w", str(base / "dist"), str(source))
    wheel = next((base / "dist").glob("rollout_watchdog-*.whl"))
    env.pip("install", "click>=8.1,<9")
    return env, wheel


def test_our_own_install_runs_then_the_file_events_package_is_detected_and_fixed(
        clash_env: tuple[Venv, Path]) -> None:
    env, wheel = clash_env
    env.pip("install", "--no-deps", "--force-reinstall", str(wheel))
    alone = env.run("--version")
    assert alone.returncode == 0 and "rollout-watchdog, version" in alone.stdout, alone

    env.pip("install", "watchdog")  # the file-events project overwrites watchdog/__init__.py
    clashed = env.run("--version")
    assert clashed.returncode == 2, clashed
    assert "Traceback" not in clashed.stderr, clashed.stderr
    assert "file-system events" in clashed.stderr
    assert "pip uninstall watchdog" in clashed.stderr
    assert "virtual environment" in clashed.stderr
    assert str(env.where) in clashed.stderr  # names where the foreign package sits

    # The fix the message gives works.
    env.pip("uninstall", "--yes", "watchdog")
    env.pip("install", "--no-deps", "--force-reinstall", str(wheel))
    fixed = env.run("--version")
    assert fixed.returncode == 0 and "rollout-watchdog, version" in fixed.stdout, fixed


def test_the_file_events_package_alone_is_detected(tmp_path: Path) -> None:
    """``watchdog`` resolves to a package that is not ours (e.g. it shadows an editable
    install of ours): the launcher, run in-process against a fake one, says so."""
    fake = tmp_path / "shadow" / "watchdog"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("# not rollout-watchdog\n")
    (fake / "events.py").write_text("")
    code = (f"import sys; sys.path[:0] = [{str(fake.parent)!r}, {str(ROOT)!r}]; "
            "from rollout_watchdog.launcher import main; main()")
    done = subprocess.run([sys.executable, "-c", code, "--version"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    assert str(fake) in done.stderr and "pip uninstall watchdog" in done.stderr
