"""Running a stage's check before the step to it (issue 20 item 5): a command or a webhook.

The engine asks :meth:`CheckRunner.result` at each tick while the rollout is ready for a
stage that has a check; the first ask starts the check, later ones read its result. In
the daemon a check runs in its own thread, so a slow load test never delays a tick (and
so never delays a rollback); a backtest runs it inline (``background=False``). A check is
run once per attempt at a stage (a new stage start runs it again); a failed one again
after its ``retry``.

A command gets ``WATCHDOG_MODULE``, ``WATCHDOG_STAGE`` (1-based) and
``WATCHDOG_TRAFFIC_PERCENT`` in its environment; exit status 0 passes. A webhook gets the
same as a JSON POST; a 2xx answer passes. Either fails on its ``timeout``.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from watchdog.config.planparts import StageCheck
from watchdog.rollout.promotion import CheckResult

OUTPUT_SHOWN = 200


@dataclass
class _Run:
    result: CheckResult | None = None
    seen_done_at: float | None = None
    thread: threading.Thread | None = None


@dataclass
class CheckRunner:
    background: bool = True
    _runs: dict[tuple[str, int, float], _Run] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def result(self, module: str, stage: int, traffic: float, attempt: float,
               spec: StageCheck, now: float) -> CheckResult:
        """The check's state for this attempt at ``stage`` (0-based), started if due."""
        key = (module, stage, attempt)
        with self._lock:
            for old in [k for k in self._runs if k[:2] == key[:2] and k != key]:
                del self._runs[old]  # an earlier attempt at this stage
            run = self._runs.get(key)
            if run is not None and run.result is not None and run.seen_done_at is None:
                run.seen_done_at = now
            due = run is None or (run.result is not None and run.result.state == "failed"
                                  and run.seen_done_at is not None
                                  and now - run.seen_done_at >= spec.retry)
            if due:
                run = self._runs[key] = _Run()
                if self.background:
                    run.thread = threading.Thread(
                        target=self._finish, args=(run, module, stage, traffic, spec),
                        name=f"check-{module}", daemon=True)
                    run.thread.start()
            assert run is not None
        if due and not self.background:
            self._finish(run, module, stage, traffic, spec)
            run.seen_done_at = now
        return run.result or CheckResult("running", f"{_what(spec)} is running")

    def _finish(self, run: _Run, module: str, stage: int, traffic: float,
                spec: StageCheck) -> None:
        run.result = run_check(module, stage, traffic, spec)


def _what(spec: StageCheck) -> str:
    return f"check `{' '.join(spec.command)}`" if spec.command else \
        f"check webhook {spec.webhook}"


def run_check(module: str, stage: int, traffic: float, spec: StageCheck) -> CheckResult:
    what = _what(spec)
    payload = {"module": module, "stage": stage + 1, "traffic_percent": traffic}
    if spec.command:
        env = {**os.environ, "WATCHDOG_MODULE": module, "WATCHDOG_STAGE": str(stage + 1),
               "WATCHDOG_TRAFFIC_PERCENT": f"{traffic:g}"}
        try:
            done = subprocess.run(spec.command, env=env, capture_output=True, text=True,
                                  timeout=spec.timeout, check=False)
        except subprocess.TimeoutExpired:
            return CheckResult("failed", f"{what} timed out after {spec.timeout:g}s")
        except OSError as err:
            return CheckResult("failed", f"{what} cannot run: {err.strerror or err}")
        said = (done.stdout.strip() or done.stderr.strip())[-OUTPUT_SHOWN:]
        if done.returncode == 0:
            return CheckResult("passed", f"{what} passed" + (f": {said}" if said else ""))
        return CheckResult("failed", f"{what} exited {done.returncode}"
                                     + (f": {said}" if said else ""))
    assert spec.webhook is not None
    request = urllib.request.Request(spec.webhook, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"},
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=spec.timeout) as answer:
            status = answer.status
    except urllib.error.HTTPError as err:
        return CheckResult("failed", f"{what} answered {err.code}")
    except (urllib.error.URLError, OSError) as err:
        return CheckResult("failed", f"{what} failed: {getattr(err, 'reason', err)}")
    if 200 <= status < 300:
        return CheckResult("passed", f"{what} answered {status}")
    return CheckResult("failed", f"{what} answered {status}")
