"""The sample rollback message shipped as ``docs/slack-sample.json``.

Regenerate with ``python -m watchdog.notifiers.slack_sample > docs/slack-sample.json``;
a test fails when the file and the builder disagree, so the sample never goes stale.
Paste ``blocks`` into Slack's Block Kit Builder to see it rendered.
"""

from __future__ import annotations

import json
from typing import Any

from watchdog.notifiers import Notification
from watchdog.notifiers.slack_blocks import reply

DASHBOARD = ("https://grafana.example/d/rollout-watchdog?var-module={module}"
             "&from={from_ms}&to={to_ms}")
AT = 1_767_262_530.0  # 2026-01-01 10:15:30 UTC


def sample_rollback() -> Notification:
    latency = {
        "rule": "latency_p95_regression", "metric": "latency_p95_ms", "breached": True,
        "summary": "latency_p95_ms 131.6 vs baseline 94.02 (+40.0%; limit 98.72, z=6.84, "
                   "p=3.9e-12, n=60/1440)",
        "against": "baseline", "tolerance": 0.05, "test": "sequential", "observed": 131.6,
        "reference": 94.02, "limit": 98.72, "effect": 0.3997, "z": 6.84, "p_value": 3.9e-12,
        "se": 4.79, "n_v2": 60, "n_ref": 1440, "alpha": 0.01, "baseline_id": 3,
        "active_at": AT - 40.0}
    errors = {"rule": "error_rate_regression", "metric": "error_rate", "breached": False,
              "summary": "error_rate 0.0041 vs baseline 0.0039", "observed": 0.0041,
              "reference": 0.0039, "limit": 0.0089}
    throughput = {"rule": "throughput_regression", "metric": "throughput_rps",
                  "breached": None, "summary": "V2 is warming up", "warming": True}
    return Notification(
        key="decision:checkout-api:1767262530:rollback", module="checkout-api",
        kind="decision", action="rollback", severity="critical",
        title="checkout-api rolled back from 25 % to 0 %", stage=2, traffic_percent=0.0,
        reasons=("critical rule latency_p95_regression fired: V2 p95 latency is above V1 "
                 "by more than 5%", "2 consecutive critical verdicts (limit 2)"),
        evidence=(latency, errors, throughput), at=AT,
        links={"runbook_url": "https://runbooks.example/rollout-watchdog/latency"})


def sample_payload() -> dict[str, Any]:
    return reply(sample_rollback(), DASHBOARD).payload()


def main() -> None:
    print(json.dumps(sample_payload(), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
