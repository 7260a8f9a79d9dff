#!/usr/bin/env python3
"""How ``rollout-watchdog check`` scales with the number of modules.

    .venv/bin/python bench/check_scale.py [--sizes 100,1000,2000,10000] [--files 1]

For each size N, writes N modules into a temporary folder (``--files`` rule files, the
modules spread evenly over them) and times the installed ``rollout-watchdog check`` on it
in a subprocess (wall clock, start-up included). Modules alternate between two shapes:
a full module (the one of the shipped ``rules/worker_pool.yaml``: 6 metrics, 9 rules,
renamed) and a bare ``{name: ..., include_defaults: true}`` (merged with the shipped
defaults' ``*`` module). Also prints the size of the generated YAML, the number of
modules ``check`` reported, and µs per module; growth is linear when µs/module stays
within a factor of 2 of the smallest size's. Sizes over the loader's limits
(:mod:`watchdog.config.limits`) are refused by ``check`` with a clear message, which is
printed instead of a time.

    .venv/bin/python bench/check_scale.py --worst

Times :func:`watchdog.daemon.config.load_config` (what a SIGHUP reload runs on the
daemon's main thread, before it takes any module's lock) in process on the worst inputs
found under the default limits: a flat list just under ``YAML_NODES``, ``MODULES`` bare
``include_defaults`` modules, full modules up to ``YAML_NODES`` (near ``FILE_BYTES``),
and alias bombs (refused before expansion). Prints seconds and the peak RSS so far.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "rules" / "worker_pool.yaml"


def module_template() -> str:
    """The worker pool's module (list item and below), with its name as ``{NAME}``."""
    text = SOURCE.read_text("utf-8")
    body = text[text.index("\nmodules:\n") + len("\nmodules:\n"):]
    body = "\n".join(line for line in body.splitlines() if not line.lstrip().startswith("#"))
    return re.sub(r"^  - name: \S+", "  - name: {NAME}", body, count=1, flags=re.M) + "\n"


def write_rules(folder: Path, modules: int, files: int) -> int:
    template = module_template()
    per_file = -(-modules // files)
    written = 0
    for f in range(files):
        parts = ["modules:\n"]
        for i in range(f * per_file, min(modules, (f + 1) * per_file)):
            if i % 2 == 0:
                parts.append(template.replace("{NAME}", f"bench.full_{i}"))
            else:
                parts.append(f"  - {{name: bench.defaults_{i}, include_defaults: true}}\n")
        path = folder / f"bench_{f:03d}.yaml"
        path.write_text("".join(parts), "utf-8")
        written += path.stat().st_size
    return written


def time_check(folder: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    script = Path(sys.executable).parent / "rollout-watchdog"
    began = time.perf_counter()
    done = subprocess.run([str(script), "check", str(folder)], capture_output=True,
                          text=True, check=False, timeout=3600)
    return time.perf_counter() - began, done


def worst() -> None:
    import resource

    from watchdog.config import limits
    from watchdog.config.yamlload import NodeBudget, load_yaml
    from watchdog.daemon.config import load_config
    from watchdog.errors import ConfigError

    nodes, most = limits.YAML_NODES.default, limits.MODULES.default
    template = module_template()
    counted = NodeBudget.fresh()
    load_yaml("modules:\n" + template.replace("{NAME}", "x"), "template", counted)
    per_module = counted.used
    bomb = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    bomb += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    cases = {
        f"flat list of {nodes - 10:,} scalars": "modules: [" + "1," * (nodes - 11) + "1]\n",
        f"{most:,} include_defaults modules": "modules:\n" + "".join(
            f"  - {{name: m{i}, include_defaults: true}}\n" for i in range(most)),
        f"{nodes // per_module:,} full modules": "modules:\n" + "".join(
            template.replace("{NAME}", f"f{i}") for i in range(nodes // per_module)),
        "alias bomb 9**9": "\n".join(bomb) + "\nmodules: *a8\n",
    }
    print(f"{'input':>34} {'MB':>6} {'seconds':>8} {'peak RSS':>9}  result")
    with tempfile.TemporaryDirectory(prefix="check-worst-") as tmp:
        config = Path(tmp) / "watchdog.yaml"
        config.write_text("source: {plugin: file}\nactuators: [{plugin: file}]\n"
                          "modules: [checkout]\nrules: [rules.yaml]\n")
        for name, text in cases.items():
            (Path(tmp) / "rules.yaml").write_text(text)
            began = time.perf_counter()
            try:
                load_config(str(config))
                result = "loaded"
            except ConfigError as err:
                first = next((i for i in err.issues if "rules.yaml" in i.file), None)
                result = "rules loaded" if first is None else f"refused: {first.message[:90]}"
            seconds = time.perf_counter() - began
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{name:>34} {len(text) / 1e6:>6.2f} {seconds:>8.2f} {rss:>7.0f}MB  {result}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,2000,10000")
    parser.add_argument("--files", type=int, default=1, help="rule files per size")
    parser.add_argument("--worst", action="store_true",
                        help="time load_config (a reload) on the worst inputs instead")
    args = parser.parse_args()
    if args.worst:
        worst()
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'modules':>8} {'files':>5} {'YAML':>9} {'seconds':>8} {'us/module':>10}  result")
    first: float | None = None
    linear = True
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="check-scale-") as tmp:
            size = write_rules(Path(tmp), n, args.files)
            seconds, done = time_check(Path(tmp))
        last = (done.stdout.strip().splitlines() or done.stderr.strip().splitlines()
                or ["(no output)"])[-1]
        if done.returncode != 0:
            refused = [ln for ln in done.stderr.splitlines() if "limit" in ln] or [last]
            print(f"{n:>8} {args.files:>5} {size / 1e6:>7.2f}MB {seconds:>8.2f} {'-':>10}  "
                  f"refused (exit {done.returncode}): {refused[0][:160]}")
            continue
        per = seconds / n * 1e6
        first = per if first is None else first
        linear = linear and per <= 2 * first
        print(f"{n:>8} {args.files:>5} {size / 1e6:>7.2f}MB {seconds:>8.2f} {per:>10.0f}  {last}")
    print(f"linear (us/module within 2x of the smallest size's): {'yes' if linear else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
