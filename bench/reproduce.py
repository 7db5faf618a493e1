"""The pre-registered comparison (README, "Does PACED help here?") on the built-in world.

Eight students per world: base (no training), unweighted, hard filter (band 0.125-0.875),
PACED fkl, PACED rkl, PACED fkl-then-rkl, PACED floor (fkl-then-rkl on PACED weights with
`--floor 0.01`, `comparison.FLOOR`), and AKL (unweighted, adaptive KL); all distilled from the
same teacher on the same references with the same step budget. Each seed is a world: its own
pool, held-out sets disjoint from it (`toy.world.world_sets`, #21), student rollouts and
references (`demo.prepare_world`, the preparation `paced demo` uses), and its own training seed. Reported: accuracy on the
held-out pool set (frontier additions and out-of-reach products), the hard set and the probe
(its change from the base student is forgetting), training and teacher tokens, steps to
reach unweighted's final held-out accuracy, and paired differences against unweighted
with 95% Student-t intervals over the worlds, and Holm-corrected over every trained method and
the three accuracy metrics as one family (`comparison.paired_family`).

    .venv/bin/python bench/reproduce.py                  # 5 worlds, every method (about 35 minutes, models cached)
    .venv/bin/python bench/reproduce.py --quick          # 1 world, fast sizes and models

Prints the tables, then one JSON line; writes bench/results/reproduce.json and
bench/results/reproduce_curves.png. Finished worlds are kept in the work folder
(rows.json per world), so a rerun after an interruption resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="worlds (each with its own training seed)")
    parser.add_argument("--quick", action="store_true", help="one world, the fast demo sizes and models")
    parser.add_argument("--steps", type=int, default=None, help="override the distillation steps")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: one core, as on one heavy slot)")
    parser.add_argument("--workdir", default=str(ROOT / "bench" / "work" / "reproduce"))
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "reproduce.json"))
    args = parser.parse_args()
    import torch

    # one thread: on a shared 2-core machine, two threads per process oversubscribe the cores
    # and made training 9x slower (measured while building this); results depend on it slightly
    torch.set_num_threads(args.threads)
    from paced_curate.comparison import ALL_METHODS, plot_curves, show_summary, summarise
    from paced_curate.demo import DemoConfig, prepare_world, run_methods

    seeds = 1 if args.quick else args.seeds
    started = time.perf_counter()
    rows = []
    for seed in range(seeds):
        work = Path(args.workdir) / f"world{seed}"
        base = DemoConfig.small(str(work), seed) if args.quick else DemoConfig(workdir=str(work), seed=seed)
        # hf rollouts: for 0.14M-1M parameter models on CPU, transformers beats vLLM's start-up and per-step overhead
        config = dataclasses.replace(base, methods=ALL_METHODS, engine="hf", **({"distill_steps": args.steps} if args.steps else {}))
        done = work / "rows.json"
        if done.exists() and json.loads(done.read_text())["config"] == _jsonable(config):
            print(f"== world {seed}: done before, reusing {done}", file=sys.stderr)
            rows += json.loads(done.read_text())["rows"]
            continue
        print(f"== world {seed} of {seeds}", file=sys.stderr)
        world_started = time.perf_counter()
        prepared = prepare_world(config, work)
        world_rows = run_methods(config, prepared, seed=seed, world=seed)
        for row in world_rows:
            row["references"] = prepared.references
        done.write_text(json.dumps({"config": _jsonable(config), "rows": world_rows, "seconds": time.perf_counter() - world_started}) + "\n")
        rows += world_rows
    summary = summarise(rows)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    plot = plot_curves(rows, output.with_name(output.stem + "_curves.png"))
    show_summary(summary, seeds=seeds, what="worlds")
    result = {
        "benchmark": "reproduce",
        "seeds": seeds,
        "methods": ["base", *ALL_METHODS],
        "summary": summary,
        "rows": rows,
        "plot": str(plot.relative_to(ROOT)) if plot and plot.is_relative_to(ROOT) else (str(plot) if plot else None),
        # per-world fields (workdir, seed) and the demo's training-seed count do not describe the bench
        "setup": {k: v for k, v in _jsonable(config).items() if k not in ("workdir", "seed", "seeds")},
        "seconds": time.perf_counter() - started,
        "command": " ".join(sys.argv),
        "versions": __import__("paced_curate.partdir", fromlist=["package_versions"]).package_versions(),
        "hardware": {"cpus": os.cpu_count(), "torch_threads": args.threads, "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d"),
    }
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


def _jsonable(config) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config)))


if __name__ == "__main__":
    main()
