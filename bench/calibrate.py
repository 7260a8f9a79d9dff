#!/usr/bin/env python3
"""Score a backtest command over a scenario folder, in parallel, with a per-shape table.

    python bench/calibrate.py DIR [-j 2] [--failures] [--save FILE] [-- CMD ...]
    python bench/calibrate.py DIR --in-process [--config RULES.yaml] [-j 2] ...

Same verdicts as ``../shared/scenarios/score`` (the scenario path is appended to CMD, which
must print the backtest JSON; default ``.venv/bin/rollout-watchdog backtest --json``):

  detected        regression rolled back at or after its onset (delay = rollback - onset)
  missed          regression not rolled back
  early           regression rolled back before its onset (a false rollback)
  false_rollback  healthy scenario rolled back
  promoted        healthy scenario promoted
  in_progress     healthy scenario neither promoted nor rolled back (any other outcome)
  error           the command failed three times (counted in the figures as a failure)

Prints one row per shape (truth.json's ``shape``), then the four target figures:
detection, false_rollback (healthy only, as score does; early counted apart), median
delay over detections, aa_promoted. ``--failures`` lists each failing scenario with the
reason the judge gave for its rollback (or its last decision).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

# this tree's watchdog package first (a PyPI package of the same name may be installed)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_CMD = [".venv/bin/rollout-watchdog", "backtest", "--json"]
FAIL = ("missed", "early", "false_rollback", "in_progress", "error")
RETRIES = 2


@dataclass
class Row:
    scenario: str
    shape: str
    expect: str
    onset: int | None
    verdict: str
    outcome: str
    rollback_at: int | None
    delay: int | None
    reason: str


def median(xs: list[int]) -> int | None:
    """The same median as score: the upper one of an even count."""
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else None


_RULES: Any = None  # the rule set of an --in-process worker


def _load_rules(config: str | None) -> None:
    global _RULES
    from watchdog.config.loader import load_default_rules, load_paths

    _RULES = load_paths([config]) if config else load_default_rules()
    tune(os.environ.get("WATCHDOG_TUNE", ""))


def tune(spec: str) -> None:
    """Apply ``name=value,name=value`` to the judge's settings (judge/tuning.py), as
    ``WATCHDOG_TUNE`` passes them to bench workers: sweep a constant without editing it."""
    from dataclasses import fields, replace

    from watchdog.judge.tuning import tuning, use
    if not spec.strip():
        return
    types = {f.name: f.type for f in fields(tuning())}
    update: dict[str, Any] = {}
    for item in spec.split(","):
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in types:
            raise SystemExit(f"WATCHDOG_TUNE: no setting {name!r} (judge/tuning.py)")
        kind = str(types[name])
        update[name] = (value.strip().lower() in ("1", "true", "yes") if kind == "bool"
                        else int(value) if kind == "int" else float(value))
    use(replace(tuning(), **update))


def judge_in_process(folder: str, truth: dict[str, Any]) -> Row:
    """The same replay as ``rollout-watchdog backtest --json``, without a process each."""
    from watchdog.backtest import replay
    from watchdog.backtest.scenario import load_scenario

    path = os.path.join(folder, truth["scenario"] + ".jsonl")
    try:
        res = replay.run(load_scenario(path), _RULES).to_json()
    except Exception as err:  # reported as the command's failure would be
        return Row(truth["scenario"], truth.get("shape") or "?", truth["expect"],
                   truth.get("onset"), "error", "error", None, None, str(err)[:300])
    return classify(truth, res)


def judge(cmd: list[str], folder: str, truth: dict[str, Any]) -> Row:
    path = os.path.join(folder, truth["scenario"] + ".jsonl")
    for attempt in range(RETRIES + 1):  # the judge's tree may be mid-edit: retry, then report
        p = subprocess.run([*cmd, path], capture_output=True, text=True)
        if p.returncode == 0:
            break
        time.sleep(2.0 * (attempt + 1))
    else:
        err = p.stderr.strip().splitlines()[-1:] or [f"exit {p.returncode}"]
        return Row(
            truth["scenario"],
            truth.get("shape") or "?",
            truth["expect"],
            truth.get("onset"),
            "error",
            "error",
            None,
            None,
            err[0][:300],
        )
    return classify(truth, json.loads(p.stdout))


def classify(truth: dict[str, Any], res: dict[str, Any]) -> Row:
    outcome = str(res.get("outcome", "?"))
    rolled = outcome == "rolled_back"
    at = res.get("rollback_at")
    delay = None
    if truth["expect"] == "rollback":
        if rolled and at is not None and at >= truth["onset"]:
            verdict, delay = "detected", int(at - truth["onset"])
        else:
            verdict = "early" if rolled else "missed"
    elif rolled:
        verdict = "false_rollback"
    else:
        verdict = "promoted" if outcome == "promoted" else "in_progress"
    decisions = res.get("decisions") or []
    pick = [d for d in decisions if d.get("action") == "rollback"] or decisions[-1:]
    reason = ""
    if pick:
        d = pick[0]
        reason = f"t={d.get('t')} {d.get('action')}: " + " | ".join(d.get("reasons") or [])
    return Row(
        truth["scenario"],
        truth.get("shape") or "?",
        truth["expect"],
        truth.get("onset"),
        verdict,
        outcome,
        at,
        delay,
        reason,
    )


def figures(rows: list[Row]) -> dict[str, Any]:
    reg = [r for r in rows if r.expect == "rollback"]
    aa = [r for r in rows if r.expect != "rollback"]
    delays = [r.delay for r in reg if r.verdict == "detected" and r.delay is not None]
    return {
        "scenarios": len(rows),
        "detection": len(delays) / len(reg) if reg else None,
        "false_rollback": sum(r.verdict == "false_rollback" for r in aa) / len(aa) if aa else None,
        "early": sum(r.verdict == "early" for r in reg),
        "median_delay_s": median(delays),
        "aa_promoted": sum(r.verdict == "promoted" for r in aa) / len(aa) if aa else None,
        "errors": sum(r.verdict == "error" for r in rows),
    }


def table(rows: list[Row]) -> str:
    by: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by[r.shape].append(r)
    cols = ("detected", "missed", "early", "false_rollback", "promoted", "in_progress", "error")
    head = f"{'shape':<30} {'n':>3} " + " ".join(f"{c[:8]:>8}" for c in cols)
    lines = [head + f" {'med_delay':>9} {'max_delay':>9}", "-" * (len(head) + 20)]
    for shape in sorted(by, key=lambda s: (not s.startswith("aa-"), s)):
        rs = by[shape]
        counts = " ".join(f"{sum(r.verdict == c for r in rs):>8}" for c in cols)
        delays = [r.delay for r in rs if r.delay is not None]
        med = median(delays)
        mx = max(delays) if delays else None
        flag = "  <--" if any(r.verdict in FAIL for r in rs) else ""
        lines.append(
            f"{shape:<30} {len(rs):>3} {counts} {'' if med is None else med:>9} "
            f"{'' if mx is None else mx:>9}{flag}"
        )
    return "\n".join(lines)


def fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cmd = DEFAULT_CMD
    if "--" in argv:
        cut = argv.index("--")
        argv, cmd = argv[:cut], argv[cut + 1 :]
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("folder")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--failures", action="store_true", help="list failing scenarios with reasons")
    ap.add_argument("--save", help="write per-scenario rows and figures as JSON here")
    ap.add_argument("--in-process", action="store_true",
                    help="replay in -j worker processes instead of one CLI process per "
                         "scenario (about 4x faster; same replay; ignores CMD)")
    ap.add_argument("--config", help="with --in-process: rule file instead of the defaults")
    args = ap.parse_args(argv)
    with open(os.path.join(args.folder, "truth.json")) as fh:
        truths = json.load(fh)
    started = time.time()
    if args.in_process:
        cmd = ["(in process)", args.config or "default rules"]
        with ProcessPoolExecutor(max_workers=max(1, args.jobs), initializer=_load_rules,
                                 initargs=(args.config,)) as procs:
            rows = list(procs.map(judge_in_process, [args.folder] * len(truths), truths,
                                  chunksize=4))
    else:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            rows = list(pool.map(lambda tr: judge(cmd, args.folder, tr), truths))
    print(table(rows))
    if args.failures:
        print("\nfailures:")
        for r in rows:
            if r.verdict in FAIL:
                onset = "" if r.onset is None else f" onset={r.onset}"
                print(f"  {r.scenario:<36} {r.verdict:<14}{onset} {r.reason[:400]}")
    fig = figures(rows)
    print(
        f"\nscenarios {fig['scenarios']} detection {fmt(fig['detection'])} "
        f"false_rollback {fmt(fig['false_rollback'])} early {fig['early']} "
        f"median_delay_s {fig['median_delay_s']} aa_promoted {fmt(fig['aa_promoted'])} "
        f"errors {fig['errors']} "
        f"seconds {time.time() - started:.1f}"
    )
    print(
        "targets: detection >= 0.95, false_rollback <= 0.01 and early 0, "
        "median_delay_s <= 60, aa_promoted >= 0.95"
    )
    if args.save:
        with open(args.save, "w") as out:
            json.dump(
                {"figures": fig, "command": cmd, "rows": [asdict(r) for r in rows]}, out, indent=1
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
