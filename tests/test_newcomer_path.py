"""The newcomer path, as a new user meets it: a fresh clone, ``make demo``, then the
README's "Your own service with Prometheus" walkthrough run as written.

1. ``git clone`` of this repository at HEAD into a temporary folder, then ``make demo`` in
   it: exit 0 and the rollback outcome printed. So that this takes a minute and not a
   second pip install, the clone's ``.venv`` is a folder of symlinks to the running venv's
   entries with a stamp of its own, newer than the clone's pyproject.toml, so ``make``
   does not reinstall (the running venv and its stamp are left untouched).
   PYTHONPATH=<clone> makes every process import the clone's code (the editable install
   points at the working tree; PYTHONPATH comes before its finder). It runs in the
   background while part 2 runs.
2. The walkthrough: the blocks of README.md marked ``<!-- walkthrough: KIND -->`` (the
   convention and every substitution: tests/newcomer_readme.py), run in order against the
   demo's simulated V1 and V2 (watchdog/demo/service.py; V2 1.5x slower from 25 %) scraped
   by a real Prometheus (Debian's binary) with the README's relabelling: ``run --check``,
   ``baseline capture``, ``run &``, ``start``, ``status``. The daemon must roll V2 back
   after it regresses, and ``status`` exits 1 (rolled back). The walkthrough reads the
   working tree's README, so an edit is tested before it is committed.

Before the commands the test waits until Prometheus holds 25 s of V1 (a user's Prometheus
has history: ``query`` and ``baseline capture`` read it); after a background command, until
the daemon's API answers (a user sees it start). Only 127.0.0.1; every process is stopped
at the end. Without ``prometheus`` part 2 skips, or fails under
WATCHDOG_REQUIRE_REAL_SERVICES=1.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from watchdog.demo.processes import Child, Children, service_argv, wait_for_port
from watchdog.demo.service import module_flags

sys.path.insert(0, str(Path(__file__).parent))
import newcomer_readme as readme

sys.path.remove(str(Path(__file__).parent))

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.executable).parent.parent
README = ROOT / "README.md"  # the working tree's: an edit is tested before it is committed
REQUIRE_ENV = "WATCHDOG_REQUIRE_REAL_SERVICES"
DEMO_TIMEOUT = 240.0
ROLLBACK_TIMEOUT = 150.0
HISTORY = 25  # s of V1 scraped before the commands: 12 samples at the 2 s interval (10 needed)
REGRESS_AT = 25.0  # V2 regresses from the 2nd stage: 40 s (25 % and 50 %) to catch it


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- part 1: a fresh clone, make demo ----------------------------------------------------

class DemoRun:
    def __init__(self, folder: Path) -> None:
        self.clone = folder / "rollout-watchdog"
        subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT),
                        str(self.clone)], check=True, timeout=120, capture_output=True)
        venv = self.clone / ".venv"
        venv.mkdir()
        for entry in VENV.iterdir():
            if entry.name != ".installed":
                (venv / entry.name).symlink_to(entry)
        (venv / ".installed").touch()
        env = {k: v for k, v in os.environ.items()
               if k not in ("WATCHDOG_CONFIG", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
        env["PYTHONPATH"] = str(self.clone)
        self.log = folder / "make-demo.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(["make", "demo"], cwd=self.clone, env=env,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def wait(self) -> tuple[int, str]:
        try:
            code = self.proc.wait(DEMO_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.stop()
            code = -1
        return code, self.log.read_text("utf-8", errors="replace")

    def stop(self) -> None:
        """SIGTERM to make's group (the demo stops its own children on SIGTERM, and they
        die with it anyway: PR_SET_PDEATHSIG), then SIGKILL."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@pytest.fixture(scope="module")
def demo_in_clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    run = DemoRun(tmp_path_factory.mktemp("newcomer"))
    yield run
    run.stop()


# -- part 2: the Prometheus walkthrough --------------------------------------------------

def prometheus_bin() -> str:
    found = shutil.which("prometheus")
    if found is None:
        reason = "the prometheus binary is not on PATH"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_ENV}=1; run scripts/ensure-prometheus.sh)")
        pytest.skip(f"{reason} (run scripts/ensure-prometheus.sh as root to install it)")
    assert found is not None
    return found


def instant(port: int, query: str) -> list[dict[str, object]]:
    data = urllib.parse.urlencode({"query": query}).encode()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query", data=data,
                                timeout=5) as r:
        return list(json.load(r)["data"]["result"])


def wait_until(what: str, ok: Callable[[], object], timeout: float,
               child: Child | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and not child.alive():
            pytest.fail(f"{child.name} exited while waiting for {what}:\n{child.tail(40)}")
        try:
            if ok():
                return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"no {what} after {timeout:g}s" + (f":\n{child.tail(40)}" if child else ""))


def answers(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as r:
        return bool(r.status == 200)


def test_prometheus_walkthrough_as_written(demo_in_clone: DemoRun, tmp_path: Path) -> None:
    binary = prometheus_bin()
    found = readme.blocks(README.read_text("utf-8"))
    work = tmp_path / "walkthrough"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "WATCHDOG_CONFIG"}
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    flags = work / "journal.state" / "checkout.flags.json"
    with Children() as children:
        svc = {v: children.start(v.upper(), service_argv(
            v, 0, work / f"{v}.port", regression="latency" if v == "v2" else "none",
            factor=1.5 if v == "v2" else None, flags=flags if v == "v2" else None,
            regress_at=REGRESS_AT if v == "v2" else None), work / f"{v}.log", env=env)
            for v in ("v1", "v2")}
        v1_port, v2_port = (wait_for_port(svc[v], work / f"{v}.port") for v in ("v1", "v2"))
        ports = readme.Ports(v1_port, v2_port, free_port(), free_port())
        env["WATCHDOG_API_PORT"] = str(ports.api)

        prom_yml = work / "prometheus.yml"
        prom_yml.write_text(json.dumps(readme.prometheus_config(
            readme.one(found, "prometheus"), ports)))
        prom = children.start("prometheus", [
            binary, f"--config.file={prom_yml}", f"--storage.tsdb.path={work / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{ports.prometheus}", "--log.level=warn"],
            work / "prometheus.log", env=env)
        wait_until("Prometheus ready", lambda: answers(
            f"http://127.0.0.1:{ports.prometheus}/-/ready"), 30, prom)
        # the README's own check: both versions answer, with their module and version
        wait_until("v1 and v2 in count by (module, version) (up{module=\"checkout\"})",
                   lambda: len(instant(ports.prometheus, 'count by (module, version) '
                                       '(up{module="checkout"} == 1)')) == 2, 30, prom)

        # a user's Prometheus has history: HISTORY s of V1 (capture, query) before the commands
        wait_until(f"{HISTORY} s of V1 in Prometheus", lambda: instant(
            ports.prometheus, 'count_over_time(up{module="checkout",version="v1"}[1m]) '
            f'>= {HISTORY}'), HISTORY + 30, prom)
        (work / "watchdog.yaml").write_text(
            readme.watchdog_yaml(readme.one(found, "watchdog.yaml"), ports), "utf-8")
        (work / "rules.yaml").write_text(readme.accelerated_rules(), "utf-8")

        daemon: Child | None = None
        for cmd in (c for b in found if b.kind == "shell" for c in readme.commands(b, ports)):
            if cmd.argv[0] == "export":
                for assignment in cmd.argv[1:]:
                    name, _, value = assignment.partition("=")
                    env[name] = value
                continue
            assert cmd.argv[0] == "rollout-watchdog", \
                f"{cmd}: the test runs rollout-watchdog commands only (extend it)"
            if cmd.background:
                daemon = children.start("daemon", cmd.argv, work / "daemon.log", env=env,
                                        cwd=work)
                wait_until("the daemon's API", lambda: answers(
                    f"http://127.0.0.1:{ports.api}/health"), 30, daemon)
                continue
            if cmd.argv[1] == "status" and {"-w", "--watch"} & set(cmd.argv):
                argv = [a for a in cmd.argv if a not in ("-w", "--watch")]
                assert daemon is not None, f"{cmd}: no daemon started before"
                wait_for_rollback(argv, env, work, daemon)
                continue
            done = subprocess.run(cmd.argv, cwd=work, env=env, capture_output=True,
                                  text=True, timeout=60, check=False)
            assert done.returncode == 0, f"{cmd}: exit {done.returncode}\n" \
                f"{done.stdout[-2000:]}{done.stderr[-2000:]}"

        assert daemon is not None, "the walkthrough starts no daemon (`run &`)"
        status = subprocess.run(["rollout-watchdog", "status"], cwd=work, env=env,
                                capture_output=True, text=True, timeout=60, check=False)
        assert status.returncode == 1, status.stdout + status.stderr
        regressed = json.load(urllib.request.urlopen(
            f"http://127.0.0.1:{v2_port}/state", timeout=5))
        assert regressed["regressed"], "V2 was rolled back before it regressed"
        current = module_flags(flags, "checkout")
        assert current is not None
        assert (current["version"], current["traffic_percent"]) == ("v1", 0), current
        history = subprocess.run(["rollout-watchdog", "history", "--module", "checkout"],
                                 cwd=work, env=env, capture_output=True, text=True,
                                 timeout=60, check=False).stdout
        assert "rollback" in history and "latency_p95_regression" in history, history
        assert children.stop(daemon) is not None


def wait_for_rollback(argv: list[str], env: dict[str, str], work: Path,
                      daemon: Child) -> None:
    """``status`` every second until it exits 1 (rolled back) or something else ends it."""
    deadline = time.monotonic() + ROLLBACK_TIMEOUT
    while True:
        done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True,
                              timeout=60, check=False)
        if done.returncode == 1:
            return
        assert done.returncode == 0, f"{argv}: exit {done.returncode}\n{done.stdout}" \
            f"{done.stderr}"
        assert daemon.alive(), f"the daemon exited:\n{daemon.tail(40)}"
        assert time.monotonic() < deadline, \
            f"no rollback within {ROLLBACK_TIMEOUT:g}s:\n{done.stdout}\n{daemon.tail(40)}"
        time.sleep(1.0)


def test_make_demo_in_a_fresh_clone(demo_in_clone: DemoRun) -> None:
    code, output = demo_in_clone.wait()
    assert code == 0, output[-4000:]
    assert "outcome: ROLLED BACK" in output, output[-4000:]
