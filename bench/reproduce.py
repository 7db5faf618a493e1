"""The pre-registered comparison (bench/reproduce_prereg.md; docs/example.md, "Does PACED help here?") on the built-in world.

Eight students per world: base (no training), unweighted, hard filter (band 0.125-0.875),
PACED fkl, PACED rkl, PACED fkl-then-rkl, PACED floor (fkl-then-rkl on PACED weights with
`--floor 0.01`, `comparison.FLOOR`), and AKL (unweighted, adaptive KL); all distilled from the
same teacher on the same references with the same step budget. Each world has its own pool,
held-out sets disjoint from it (`toy.world.world_sets`, #21), student rollouts and references
(`demo.prepare_world`, the preparation `paced demo` uses), and its own training seed (the
world's number). Reported: accuracy on the held-out pool set (frontier additions and
out-of-reach products), the hard set and the probe (its change from the base student is
forgetting), training and teacher tokens, steps to reach unweighted's final held-out
accuracy, paired differences against unweighted with 95% Student-t intervals over the worlds,
and the registered family (`comparison.REGISTERED_PAIRS` x held-out, hard, probe change: 18
comparisons), Holm-corrected, with simultaneous intervals and a verdict each
(`comparison.paired_family`).

    .venv/bin/python bench/reproduce.py                  # the registered worlds (10-21), every method
    .venv/bin/python bench/reproduce.py --worlds 9 --output bench/results/reproduce_timing.json   # one world outside them
    .venv/bin/python bench/reproduce.py --quick          # world 99 only, fast sizes and models (a smoke run)

Prints the tables, then one JSON line; writes bench/results/reproduce.json and
bench/results/reproduce_curves.png, with the registration (the prereg file and the commit
that last changed it) and the settings. Finished worlds are kept in the work folder
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


REGISTERED_WORLDS = tuple(range(10, 22))
"""The worlds bench/reproduce_prereg.md registers: none of them was used by an earlier run or to choose a setting."""
PREREG = ROOT / "bench" / "reproduce_prereg.md"


def parse_worlds(spec: str) -> list[int]:
    """'10-17', '9' or '10,12,14-15' -> sorted world numbers (each >= 0)."""
    worlds = set()
    for part in spec.split(","):
        low, _, high = part.strip().partition("-")
        if not low.isdigit() or (high and not high.isdigit()) or (high and int(high) < int(low)):
            raise SystemExit(f"--worlds: {part!r} is not a world number or a range like 10-17")
        worlds |= set(range(int(low), int(high or low) + 1))
    return sorted(worlds)


def registration() -> dict:
    """The prereg file and the commit that last changed it (its text is in the repository at that commit)."""
    import subprocess

    def git(*args):
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("log", "-1", "--format=%H %cI", "--", str(PREREG.relative_to(ROOT)))
    dirty = git("status", "--porcelain", "--", str(PREREG.relative_to(ROOT)))
    return {"file": str(PREREG.relative_to(ROOT)), "commit": commit.split()[0] if commit else None,
            "committed": commit.split()[1] if commit else None, "uncommitted_changes": bool(dirty)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", default=None,
                        help="worlds to run: 10-21 (the registered ones, the default), 9, or 10,12,14-15")
    parser.add_argument("--quick", action="store_true", help="one world (99 unless --worlds), the fast demo sizes and models")
    parser.add_argument("--steps", type=int, default=None, help="override the distillation steps")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: one core, as on one heavy slot)")
    parser.add_argument("--workdir", default=str(ROOT / "bench" / "work" / "reproduce"))
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "reproduce.json"))
    args = parser.parse_args()
    # a smoke run stays off the registered worlds unless told otherwise
    worlds = parse_worlds(args.worlds or ("99" if args.quick else f"{REGISTERED_WORLDS[0]}-{REGISTERED_WORLDS[-1]}"))[: 1 if args.quick else None]
    import torch

    # one thread: on a shared 2-core machine, two threads per process oversubscribe the cores
    # and made training 9x slower (measured while building this); results depend on it slightly
    torch.set_num_threads(args.threads)
    from paced_curate.comparison import ALL_METHODS, ALPHA, FAMILY_METRICS, REGISTERED_PAIRS, plot_curves, show_summary, summarise
    from paced_curate.demo import DemoConfig, prepare_world, run_methods

    started = time.perf_counter()
    rows, seconds = [], {}
    for number, world in enumerate(worlds, start=1):
        work = Path(args.workdir) / f"world{world}"
        base = DemoConfig.small(str(work), world) if args.quick else DemoConfig(workdir=str(work), seed=world)
        # hf rollouts: for 0.14M-1M parameter models on CPU, transformers beats vLLM's start-up and per-step overhead
        config = dataclasses.replace(base, methods=ALL_METHODS, engine="hf", **({"distill_steps": args.steps} if args.steps else {}))
        done = work / "rows.json"
        if done.exists() and json.loads(done.read_text())["config"] == _jsonable(config):
            print(f"== world {world}: done before, reusing {done}", file=sys.stderr)
            kept = json.loads(done.read_text())
            rows += kept["rows"]
            seconds[world] = kept["seconds"]
            continue
        print(f"== world {world} ({number} of {len(worlds)}), {time.strftime('%Y-%m-%d %H:%M:%S')}", file=sys.stderr)
        world_started = time.perf_counter()
        prepared = prepare_world(config, work)
        # the training seed is the world's number: every world has its own data order, rkl and evaluation samples
        world_rows = run_methods(config, prepared, seed=world, world=world)
        for row in world_rows:
            row["references"] = prepared.references
        seconds[world] = time.perf_counter() - world_started
        done.write_text(json.dumps({"config": _jsonable(config), "rows": world_rows, "seconds": seconds[world],
                                    "finished": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")
        rows += world_rows
    summary = summarise(rows)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    plot = plot_curves(rows, output.with_name(output.stem + "_curves.png"))
    show_summary(summary, seeds=len(worlds), what="worlds")
    result = {
        "benchmark": "reproduce",
        "registration": registration(),
        "worlds": worlds,
        "registered_worlds": list(REGISTERED_WORLDS),
        "methods": ["base", *ALL_METHODS],
        "family": {"pairs": [list(pair) for pair in REGISTERED_PAIRS], "metrics": list(FAMILY_METRICS), "alpha": ALPHA,
                   "test": "two-sided paired Student-t over worlds, Holm-corrected over the family; simultaneous intervals at 1 - alpha/m"},
        "summary": summary,
        "rows": rows,
        "plot": str(plot.relative_to(ROOT)) if plot and plot.is_relative_to(ROOT) else (str(plot) if plot else None),
        # per-world fields (workdir, seed) and the demo's training-seed count do not describe the bench
        "setup": {k: v for k, v in _jsonable(config).items() if k not in ("workdir", "seed", "seeds")},
        # the models every world shares (trained once, cached): a rerun elsewhere trains slightly different ones
        "models": models(args.quick),
        "world_seconds": seconds,
        "seconds": time.perf_counter() - started,
        "command": " ".join(sys.argv),
        "versions": __import__("paced_curate.partdir", fromlist=["package_versions"]).package_versions(),
        "hardware": {"cpus": os.cpu_count(), "torch_threads": args.threads, "platform": platform.platform(),
                     "load_average": os.getloadavg()},
        "date": time.strftime("%Y-%m-%d"),
    }
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


def models(fast: bool) -> dict:
    """sha256 of the cached teacher's and student's weights (`toy.pretrain.trained_model`, cached by config hash)."""
    import hashlib

    from paced_curate.toy.pretrain import trained_model
    from paced_curate.toy.zoo import student_spec, teacher_spec

    out = {}
    for name, spec in (("teacher", teacher_spec(fast)), ("student", student_spec(fast))):
        path = trained_model(spec) / "model.safetensors"
        out[name] = {"folder": path.parent.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    return out


def _jsonable(config) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config)))


if __name__ == "__main__":
    main()
