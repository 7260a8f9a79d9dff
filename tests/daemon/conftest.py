"""The daemon as a real process: a replayed scenario (file source, replay clock), flags
flipped by a ``command`` actuator that keeps an actuation log, and process handling.

Every process a test starts is killed in the fixture's finalizer.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from watchdog.backtest.replay import capture_baselines
from watchdog.backtest.scenario import load_scenario
from watchdog.config.loader import load_paths
from watchdog.journal import base, open_journal

SCENARIOS = Path(__file__).resolve().parents[1] / "data" / "scenarios"
EXE = Path(sys.executable).with_name("rollout-watchdog")

# the actuator: args decision_id module version traffic kill. It logs every application,
# then writes the flags atomically. FAIL_FILE holds how many more applications must fail.
ACT_SH = r"""#!/bin/sh
set -e
if [ -s "$ACT_DIR/fail" ]; then
  n=$(cat "$ACT_DIR/fail")
  if [ "$n" -gt 0 ]; then echo $((n - 1)) > "$ACT_DIR/fail"; echo "injected failure" >&2; exit 3; fi
fi
touch "$ACT_DIR/started-$1"
[ -n "$ACT_SLEEP" ] && sleep "$ACT_SLEEP"
echo "$1 $2 $3 $4 $5" >> "$ACT_DIR/actuations.log"
kill=false; [ "$5" = 1 ] && kill=true
printf '{"version": "%s", "traffic_percent": %s, "kill_switch": %s, "decision_id": "%s"}\n' \
  "$3" "$4" "$kill" "$1" > "$ACT_DIR/$2.json.tmp"
mv "$ACT_DIR/$2.json.tmp" "$ACT_DIR/$2.json"
"""
READ_SH = """#!/bin/sh
cat "$ACT_DIR/$1.json" 2>/dev/null || echo null
"""
FAST_PLAN = "[5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 100]"


@dataclass
class Setup:
    """Files of one daemon set-up in ``root``."""

    root: Path
    scenario: Path
    config: Path = field(init=False)
    rules: Path = field(init=False)
    db: Path = field(init=False)

    def __post_init__(self) -> None:
        self.db_url: str | None = None
        self.config = self.root / "watchdog.yaml"
        self.rules = self.root / "rules.yaml"
        self.db = self.root / "journal.db"

    def write_rules(self, plan: str = FAST_PLAN, hold: str = "40s",
                    extra_modules: str = "") -> None:
        self.rules.write_text(
            "modules:\n"
            "  - name: checkout\n"
            "    include_defaults: true\n"
            f"    plan: {{stages: {plan}, hold: {hold}}}\n" + extra_modules)

    def write_config(self, *, pace: str = "30ms", actuator: str = "command",
                     modules: str = "[{name: checkout, auto_start: true}]",
                     act_sleep: str = "", extra: str = "") -> None:
        if actuator == "command":
            act = (f"  - plugin: command\n    options:\n"
                   f"      argv: [/bin/sh, {self.root / 'act.sh'}, \"{{decision_id}}\", "
                   f"\"{{module}}\", \"{{version}}\", \"{{traffic_percent}}\", "
                   f"\"{{kill_switch}}\"]\n"
                   f"      read_argv: [/bin/sh, {self.root / 'read.sh'}, \"{{module}}\"]\n"
                   f"      env: {{ACT_DIR: \"{self.root}\", ACT_SLEEP: \"{act_sleep}\"}}\n")
        else:
            act = "  - plugin: file\n    options: {path: \"{state_dir}/{module}.json\"}\n"
        self.config.write_text(
            f"db: journal.db\nrules: [rules.yaml]\n"
            f"source: {{plugin: file, options: {{path: \"{self.scenario}\"}}}}\n"
            f"actuators:\n{act}notifiers: [{{plugin: log}}]\n"
            f"modules: {modules}\n"
            f"clock: {{kind: replay, start: 0, step: 10s, end: 3600, pace: {pace}}}\n"
            f"outbox: {{poll_interval: 100ms, backoff: 50ms, max_backoff: 200ms}}\n" + extra)

    def use_journal(self, url: str, modules: tuple[str, ...] = ("checkout",)) -> None:
        """Point the config at ``url`` (a PostgreSQL journal) and capture the baselines
        of ``modules`` there."""
        text = self.config.read_text().replace("db: journal.db\n", f"db: \"{url}\"\n", 1)
        self.config.write_text(text)
        self.db_url = url
        for module in modules:
            self.baselines(module)

    def journal(self) -> base.Journal:
        return open_journal(self.db_url or str(self.db))

    def baselines(self, module: str = "checkout") -> None:
        sc = load_scenario(self.scenario)
        if module != sc.module:
            from dataclasses import replace
            sc = replace(sc, module=module)
        rules = load_paths([self.rules])
        journal = self.journal()
        try:
            capture_baselines(journal, sc, [m for m in rules.for_module(module).metrics
                                            if m in sc.metrics])
        finally:
            journal.close()

    def actuations(self) -> list[tuple[int, str, str, float, bool]]:
        log = self.root / "actuations.log"
        if not log.exists():
            return []
        out = []
        for line in log.read_text().splitlines():
            i, module, version, traffic, kill = line.split()
            out.append((int(i), module, version, float(traffic), kill == "1"))
        return out

    def flags(self, module: str = "checkout") -> dict[str, Any] | None:
        path = self.root / f"{module}.json"
        data: dict[str, Any] | None = json.loads(path.read_text()) if path.exists() else None
        return data

    def fail_next(self, n: int) -> None:
        (self.root / "fail").write_text(f"{n}\n")


def make_setup(root: Path, scenario: str = "reg-latency-creep-2067.jsonl",
               **config: Any) -> Setup:
    root.mkdir(parents=True, exist_ok=True)
    (root / "act.sh").write_text(ACT_SH)
    (root / "read.sh").write_text(READ_SH)
    s = Setup(root, SCENARIOS / scenario)
    s.write_rules()
    s.write_config(**config)
    s.baselines()
    return s


class Proc:
    """One daemon process; its stderr (the log) goes to a file."""

    def __init__(self, setup: Setup, life: int, env: dict[str, str] | None = None) -> None:
        self.log_path = setup.root / f"daemon-{life}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            [str(EXE), "run", "--config", str(setup.config)], cwd=setup.root,
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})})

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.popen.poll() is not None:
                raise AssertionError(f"daemon exited ({self.popen.returncode}) before "
                                     f"{text!r}:\n{self.log()[-3000:]}")
            time.sleep(0.02)
        raise AssertionError(f"no {text!r} within {timeout}s:\n{self.log()[-3000:]}")

    def signal(self, signum: int) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signum)

    def wait(self, timeout: float = 20.0) -> int:
        code = self.popen.wait(timeout)
        self._log.close()
        return code

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)
        self._log.close()


@pytest.fixture
def spawn() -> Iterator[Callable[..., Proc]]:
    started: list[Proc] = []

    def start(setup: Setup, env: dict[str, str] | None = None) -> Proc:
        proc = Proc(setup, len(started), env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()


def until(check: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")


def _journal_fixtures() -> Any:
    """tests/journal/conftest.py (its PostgreSQL server), loaded by path: importlib mode
    cannot import a conftest by name."""
    name = "watchdog_tests_journal_conftest"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).parents[1] / "journal" / "conftest.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """A real PostgreSQL server for the session (see tests/journal/conftest.py)."""
    fixtures = _journal_fixtures()
    try:
        server = fixtures.PgServer()
    except (OSError, RuntimeError, KeyError, fixtures.psycopg.Error) as err:
        yield err
        return
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg(pg_server: Any) -> Any:
    """The server (``pg.new_schema()``: the URL of a new, empty journal); a skip when it
    cannot start here, a failure under WATCHDOG_REQUIRE_REAL_SERVICES=1."""
    if isinstance(pg_server, Exception):
        _journal_fixtures().missing(f"PostgreSQL cannot start here: {pg_server}")
    return pg_server


@pytest.fixture
def dkit() -> SimpleNamespace:
    """The helpers above, for test modules (importlib mode cannot import a conftest)."""
    return SimpleNamespace(make_setup=make_setup, until=until, FAST_PLAN=FAST_PLAN,
                           SCENARIOS=SCENARIOS, EXE=EXE)
