"""The paper's comparison on the built-in world, at equal training steps, over 3 seeds.

Students: base (no training), unweighted (uniform weights), hard filter (band kernel,
0.125 <= p <= 0.875), PACED fkl, and PACED fkl-then-rkl (all others fkl-then-rkl too), each
distilled from the same teacher on the same references for the same number of steps.
Reported: accuracy on held-out hard problems (6-7 terms) and on easy problems (2-3 terms,
where a drop is forgetting), as mean and standard deviation over seeds. The paper's two
claims are checked and the verdicts written down, whatever they are.

    .venv/bin/python bench/reproduce.py              # 3 seeds, full demo sizes (about 20 minutes with cached models)
    .venv/bin/python bench/reproduce.py --quick      # 1 seed, fast sizes

Prints a table, then one JSON line, and writes bench/results/reproduce.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VARIANTS = [
    # (name, weighting, loss)
    ("unweighted", "unweighted", "fkl-then-rkl"),
    ("hard filter", "hard filter", "fkl-then-rkl"),
    ("PACED fkl", "paced", "fkl"),
    ("PACED fkl-then-rkl", "paced", "fkl-then-rkl"),
]


def run_seed(config, work: Path) -> list[dict]:
    from paced_curate import demo
    from paced_curate.toy.pretrain import trained_model
    from paced_curate.toy.zoo import student_spec, teacher_spec

    work.mkdir(parents=True, exist_ok=True)
    files = demo.write_problem_sets(config, work)
    teacher, student = trained_model(teacher_spec(config.fast)), trained_model(student_spec(config.fast))
    demo.rollout(config, files["pool"], student, work / "rollouts", config.samples)
    demo.grade(work / "rollouts", work / "graded", audit=False)
    weights = {
        "paced": demo.weight(work / "graded", work / "weights.parquet", kernel="beta"),
        "unweighted": demo.weight(work / "graded", work / "weights_uniform.parquet", kernel="uniform"),
        "hard filter": demo.weight(work / "graded", work / "weights_band.parquet", kernel="band"),
    }
    demo.rollout(config, files["pool"], teacher, work / "teacher_rollouts", 2)
    demo.grade(work / "teacher_rollouts", work / "teacher_graded", audit=False)
    exports = {name: demo.export(files["pool"], path, work / "teacher_graded", work / f"data_{demo.slug(name)}", config) for name, path in weights.items()}
    students = {"base": student}
    for name, weighting, loss in VARIANTS:
        students[name] = demo.distill(exports[weighting], student, teacher, work / "runs" / demo.slug(name), config, loss=loss)
    return demo.evaluate_students(students, files, config)


def summarise(per_seed: list[list[dict]]) -> dict:
    names = [row["student"] for row in per_seed[0]]
    summary = {}
    for name in names:
        rows = [next(r for r in table if r["student"] == name) for table in per_seed]
        summary[name] = {}
        for metric in ("hard", "easy", "hard_gain", "easy_change"):
            values = [r[metric] for r in rows]
            summary[name][metric] = {
                "mean": statistics.fmean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "values": values,
            }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one seed, the fast demo sizes")
    parser.add_argument("--workdir", default=str(ROOT / "bench" / "work" / "reproduce"))
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "reproduce.json"))
    args = parser.parse_args()
    from paced_curate.demo import DemoConfig

    seeds = 1 if args.quick else args.seeds
    started = time.perf_counter()
    per_seed = []
    for seed in range(seeds):
        base = DemoConfig.small(args.workdir, seed) if args.quick else DemoConfig(workdir=args.workdir, seed=seed)
        config = replace(base, workdir=str(Path(args.workdir) / f"seed{seed}"))
        print(f"== seed {seed}", file=sys.stderr)
        per_seed.append(run_seed(config, Path(config.workdir)))
    summary = summarise(per_seed)
    paced, unweighted = summary["PACED fkl-then-rkl"], summary["unweighted"]
    claims = {
        "paced_beats_unweighted_on_hard": paced["hard"]["mean"] > unweighted["hard"]["mean"],
        "paced_forgets_less_on_easy": paced["easy_change"]["mean"] > unweighted["easy_change"]["mean"],
    }
    result = {
        "benchmark": "reproduce",
        "seeds": seeds,
        "summary": summary,
        "claims": claims,
        "per_seed": per_seed,
        "setup": {k: v for k, v in vars(DemoConfig.small(args.workdir) if args.quick else DemoConfig()).items() if k != "workdir"},
        "seconds": time.perf_counter() - started,
        "command": " ".join(sys.argv),
        "versions": __import__("paced_curate.partdir", fromlist=["package_versions"]).package_versions(),
        "hardware": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d"),
    }
    width = max(map(len, summary))
    print(f"{'student'.ljust(width)}  hard (mean ± sd)     easy (mean ± sd)     easy vs base", file=sys.stderr)
    for name, metrics in summary.items():
        hard, easy, change = metrics["hard"], metrics["easy"], metrics["easy_change"]
        print(f"{name.ljust(width)}  {hard['mean']:.3f} ± {hard['std']:.3f}      {easy['mean']:.3f} ± {easy['std']:.3f}      {change['mean']:+.3f}", file=sys.stderr)
    print(f"claims: {claims}", file=sys.stderr)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
