"""Adaptive rollouts on the built-in world: `paced estimate --adaptive` (defaults) against fixed K = 8.

The simulated student (`bench/simulated_student.py`) measures the written weights against known
pass rates on pools of many shapes; this bench does the same on the built-in world's real
student, and then the distillation check of #22 (item 5; design in bench/adaptive_prereg.md).

Weights: each problem of the demo's pool gets 80 student samples, once. Samples 16..79 are the
ground truth: w = c (n - c) / (n (n - 1)) from those 64, the unbiased estimate of p (1 - p), so the
truth's own noise adds the same to every method's squared error. Samples 0..15 feed the methods:
fixed K = 8 plug-in weights (the paper), fixed K = 16, and the adaptive defaults, replayed with
`paced_curate.estimate.plan` (the code `paced estimate` runs; an adaptive run's sample i is the
fixed-K run's sample i). One real `paced estimate --adaptive` run checks that the replay is what
the command does.

Distillation: students distilled on the pool with (A) fixed K = 8 plug-in weights and (B) the
adaptive run's weights, the same teacher references, the demo's steps and loss, 5 training
seeds; held-out accuracy, paired by seed, B - A with its 95% interval against the equivalence
margin fixed in advance (0.03). It runs only when the world's evaluation sets share no prompt
with the pool; otherwise the JSON says so and why.

    .venv/bin/python bench/adaptive.py                      # everything (models cached; about an hour on 2 cores)
    .venv/bin/python bench/adaptive.py --distill-seeds 0    # the weights only

Prints tables, then one JSON line; writes bench/results/adaptive.json. Work files go to --work
(default /tmp/paced-bench-adaptive) and are reused by a rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # the prior fits are tiny; BLAS threads only contend

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TEMPLATE = "{prompt}\n"
MAX_TOKENS = 96
METHOD_SAMPLES = 16
TRUTH_SAMPLES = 64
# Held-out accuracy difference (adaptive - fixed K = 8) inside which the two count as equivalent;
# fixed before the run (bench/adaptive_prereg.md).
EQUIVALENCE_MARGIN = 0.03
DISTILL_SEEDS = 5


def rollout_config(problems: Path, model: Path, output: Path, samples: int, first_sample: int, engine: str):
    from paced_curate.rollout import RolloutConfig
    from paced_curate.rollout.prompts import PromptFormat

    return RolloutConfig(
        problems=str(problems), model=str(model), output=str(output), samples=samples, first_sample=first_sample,
        temperature=1.0, max_tokens=MAX_TOKENS, seed=0, engine=engine, dtype="float32", batch_size=1024 if engine == "hf" else None,
        prompt_format=PromptFormat(template=TEMPLATE, chat_template="off"),
    )


def sample_pool(problems: Path, student: Path, work: Path, engine: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Samples 0..79 of every problem, graded; returns ids and (problems x 80) correct and scored matrices."""
    from paced_curate.estimate.runner import is_complete
    from paced_curate.grade import GradeConfig, run_grade
    from paced_curate.io import read_table
    from paced_curate.problems import read_problems
    from paced_curate.rollout import run_rollout
    from paced_curate.schema import GRADES

    ids = read_problems(str(problems)).column("problem_id").to_pylist()
    position = {problem_id: i for i, problem_id in enumerate(ids)}
    total = METHOD_SAMPLES + TRUTH_SAMPLES
    correct, scored = np.zeros((len(ids), total), bool), np.zeros((len(ids), total), bool)
    for part, (first, count) in {"methods": (0, METHOD_SAMPLES), "truth": (METHOD_SAMPLES, TRUTH_SAMPLES)}.items():
        rollouts, graded = work / f"{part}_rollouts", work / f"{part}_graded"
        if not is_complete(rollouts):
            run_rollout(rollout_config(problems, student, rollouts, count, first, engine))
        if not is_complete(graded):
            run_grade(GradeConfig(rollouts=str(rollouts), output=str(graded)))
        table = read_table(str(graded), GRADES).select(["problem_id", "sample_index", "verdict", "scored"])
        rows = np.array([position[p] for p in table.column("problem_id").to_pylist()])
        cols = table.column("sample_index").to_numpy()
        ok = table.column("scored").to_numpy(zero_copy_only=False)
        correct[rows, cols] = ok & (np.array(table.column("verdict").to_pylist()) == "correct")
        scored[rows, cols] = ok
    return ids, correct, scored


def counts_at(correct: np.ndarray, scored: np.ndarray, n_samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n_correct, n_scored) of each problem's first n_samples samples."""
    mask = np.arange(correct.shape[1])[None, :] < n_samples[:, None]
    return (correct & mask).sum(1), (scored & mask).sum(1)


def estimate_config(problems: Path, student: Path, output: Path, engine: str):
    """`paced estimate --adaptive` at its defaults, as the command builds it."""
    from paced_curate.estimate import EstimateConfig
    from paced_curate.estimate.config import weight_defaults
    from paced_curate.grade import GradeConfig
    from paced_curate.weight import WeightConfig

    estimator, min_weight = weight_defaults(True, None, None)
    return EstimateConfig(
        output=str(output), rollout=rollout_config(problems, student, output, 1, 0, engine), grade=GradeConfig(rollouts="-", output="-"),
        weight=WeightConfig(graded="-", estimator=estimator, min_weight=min_weight), adaptive=True,
    )


def replay_adaptive(config, ids: list[str], correct: np.ndarray, scored: np.ndarray):
    """The adaptive policy on pre-drawn samples; returns (samples per problem, last assessment)."""
    from paced_curate.estimate import assess, first_round, next_round
    from paced_curate.estimate.plan import problem_uniforms

    policy, uniforms = config.policy(), problem_uniforms(ids)
    n_samples = np.zeros(correct.shape[0], dtype=np.int64)
    plan = first_round(policy, len(n_samples))
    while plan is not None:
        n_samples[plan.problems] += plan.count
        c, n = counts_at(correct, scored, n_samples)
        state = assess(policy, n_samples, c, n, config.weight, uniforms)
        plan = next_round(policy, n_samples, state.open)
    return n_samples, state


def weights_against_truth(ids, correct, scored, config) -> dict:
    """Samples per problem, RMSE (overall and on 0.1 < truth < 0.9) and shares at weight 0 of each method."""
    from paced_curate.weight import estimate

    truth_c = correct[:, METHOD_SAMPLES:].sum(1)
    truth_n = scored[:, METHOD_SAMPLES:].sum(1)
    truth = truth_c * (truth_n - truth_c) / np.maximum(truth_n * (truth_n - 1), 1)
    rate = truth_c / np.maximum(truth_n, 1)
    middle = (rate > 0.1) & (rate < 0.9)
    never = truth_c == 0

    def row(written: np.ndarray, n_samples: np.ndarray) -> dict:
        error = written - truth
        return {
            "samples_per_problem": float(n_samples.mean()), "rmse": float(np.sqrt(np.mean(error**2))),
            "middle_rmse": float(np.sqrt(np.mean(error[middle] ** 2))), "middle_zero_share": float(np.mean(written[middle] == 0)),
            "never_solved_zero_share": float(np.mean(written[never] == 0)) if never.any() else None,
        }

    rows = {}
    for k in (8, 16):
        n_samples = np.full(len(ids), k)
        c, n = counts_at(correct, scored, n_samples)
        rows[f"fixed K={k}"] = row(estimate(c, n, estimator="empirical").mean, n_samples)
    n_samples, state = replay_adaptive(config, ids, correct[:, :METHOD_SAMPLES], scored[:, :METHOD_SAMPLES])
    rows["adaptive (defaults)"] = row(state.written, n_samples)
    return {
        "problems": len(ids), "mean_truth_pass_rate": float(rate.mean()), "middle_problems": int(middle.sum()),
        "never_solved_in_truth": int(never.sum()), "methods": rows, "replay": (n_samples, state),
    }


# --- the distillation check ---------------------------------------------------------------------


def normalised(prompt: str) -> str:
    return " ".join(prompt.lower().split())


def overlap_with_pool(files: dict[str, Path]) -> dict[str, int]:
    """How many prompts of each evaluation set also occur in the pool (normalised text)."""
    def prompts(path: Path) -> set[str]:
        return {normalised(json.loads(line)["prompt"]) for line in path.read_text().splitlines() if line.strip()}

    pool = prompts(files["pool"])
    from paced_curate.demo import EVAL_SETS

    return {name: len(prompts(files[name]) & pool) for name in EVAL_SETS}


def verdict(low: float, high: float, margin: float) -> str:
    """The pre-registered reading of a paired interval (bench/adaptive_prereg.md)."""
    if -margin < low and high < margin:
        return "equivalent"
    if high < 0:
        return "worse"
    if low > 0:
        return "better"
    return "inconclusive"


def distill_check(world, weights: dict[str, Path], work: Path, seeds: int, fast: bool = False) -> dict:
    """Distil the demo's student with each weighting over `seeds` training seeds; paired differences
    (adaptive - fixed K = 8) on each held-out set with 95% intervals and the verdict against the margin."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from paced_curate import demo
    from paced_curate.comparison import interval
    from paced_curate.estimate.runner import is_complete
    from paced_curate.problems import read_problems
    from paced_curate.toy.pretrain import trained_model
    from paced_curate.toy.zoo import student_spec, teacher_spec

    config, files = world
    teacher, student = trained_model(teacher_spec(fast)), trained_model(student_spec(fast))
    work.mkdir(parents=True, exist_ok=True)
    # Teacher compute follows the weights: references only for problems some weighting trains on.
    trained_on = set()
    for path in weights.values():
        table = pq.read_table(path, columns=["problem_id", "weight"])
        trained_on |= {p for p, w in zip(table.column("problem_id").to_pylist(), table.column("weight").to_pylist()) if w > 0}
    problems = read_problems(str(files["pool"]))
    keep = [i for i, p in enumerate(problems.column("problem_id").to_pylist()) if p in trained_on]
    teacher_problems = work / "teacher_problems.parquet"
    pq.write_table(problems.take(pa.array(keep)), teacher_problems)
    if not is_complete(work / "teacher_graded"):
        demo.rollout(config, teacher_problems, teacher, work / "teacher_rollouts", config.teacher_samples)
        demo.grade(work / "teacher_rollouts", work / "teacher_graded", audit=False)
    eval_files = {name: files[name] for name in demo.EVAL_SETS}
    rows = []
    for name, path in weights.items():
        slug = name.replace(" ", "_").replace("=", "")
        data = demo.export(files["pool"], path, work / "teacher_graded", work / f"data_{slug}", config)
        for seed in range(seeds):
            # A finished run's row is kept beside it, so a rerun trains only what is missing.
            saved = work / "runs" / f"{slug}-{seed}.json"
            if saved.exists():
                row = json.loads(saved.read_text())
            else:
                result = demo.distill(data, student, teacher, work / "runs" / f"{slug}-{seed}", config, seed=seed)
                row = {"weights": name, "seed": seed, "train_tokens": result.response_tokens}
                row |= demo.evaluate(Path(result.final_model), eval_files, config, seed)
                saved.write_text(json.dumps(row))
            rows.append(row)
            print(f"  distilled {name} seed {seed}: {row}", file=sys.stderr)
    by = {(r["weights"], r["seed"]): r for r in rows}
    arms = list(weights)
    summary = {name: {s: interval([by[name, seed][s] for seed in range(seeds)]) for s in demo.EVAL_SETS} for name in arms}
    paired = {}
    for s in demo.EVAL_SETS:
        diffs = [by[arms[1], seed][s] - by[arms[0], seed][s] for seed in range(seeds)]
        ci = interval(diffs)
        paired[s] = ci | {"per_seed": diffs, "verdict": verdict(ci["low"], ci["high"], EQUIVALENCE_MARGIN) if ci["low"] is not None else None}
    return {
        "ran": True, "runs": rows, "summary": summary, "paired_difference": {"of": f"{arms[1]} - {arms[0]}", **paired},
        "margin": EQUIVALENCE_MARGIN, "seeds": seeds, "steps": config.distill_steps, "batch_size": config.batch_size,
        "loss": "fkl-then-rkl", "eval_samples": config.eval_samples, "teacher_problems": len(keep), "pool_problems": problems.num_rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=240, help="problems in the pool")
    parser.add_argument("--engine", default="hf", help="rollout engine (hf is the fastest for these tiny models on CPU)")
    parser.add_argument("--distill-seeds", type=int, default=DISTILL_SEEDS, help="training seeds of the distillation check (0: skip it)")
    parser.add_argument("--fast", action="store_true", help="the fast toy models and the demo's --fast sizes (a quick check of the bench itself)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/paced-bench-adaptive"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "adaptive.json")
    args = parser.parse_args()

    import pyarrow.parquet as pq

    from paced_curate import demo
    from paced_curate.estimate import run_estimate
    from paced_curate.partdir import package_versions
    from paced_curate.toy.pretrain import trained_model
    from paced_curate.toy.zoo import student_spec

    started = time.perf_counter()
    args.work.mkdir(parents=True, exist_ok=True)
    student = trained_model(student_spec(args.fast))
    base = demo.DemoConfig.small(str(args.work)) if args.fast else demo.DemoConfig()
    world_config = demo.with_workdir(base, args.work, num_problems=args.problems, engine=args.engine)
    files = demo.write_problem_sets(world_config, args.work)
    ids, correct, scored = sample_pool(files["pool"], student, args.work / "pool", args.engine)
    config = estimate_config(files["pool"], student, args.work / "estimate_run", args.engine)
    weights = weights_against_truth(ids, correct, scored, config)
    replayed_samples, replayed = weights.pop("replay")
    print(f"\nbuilt-in pool: {len(ids)} problems, mean pass rate {weights['mean_truth_pass_rate']:.3f}", file=sys.stderr)
    print(f"{'method':<22} {'samples':>8} {'RMSE':>7} {'middle RMSE':>11} {'middle zero':>11} {'never-solved zero':>17}", file=sys.stderr)
    for name, r in weights["methods"].items():
        never = "-" if r["never_solved_zero_share"] is None else f"{r['never_solved_zero_share']:.2f}"
        print(f"{name:<22} {r['samples_per_problem']:>8.2f} {r['rmse']:>7.4f} {r['middle_rmse']:>11.4f} {r['middle_zero_share']:>11.3f} {never:>17}", file=sys.stderr)

    # The replay is what the command does: one real run at the defaults.
    real = run_estimate(config)
    table = pq.read_table(real.weights, columns=["problem_id", "n_samples", "weight_raw"])
    samples = dict(zip(table.column("problem_id").to_pylist(), table.column("n_samples").to_pylist()))
    raw = dict(zip(table.column("problem_id").to_pylist(), table.column("weight_raw").to_pylist()))
    real_check = {
        "samples": real.samples, "rounds": len(real.rounds), "seconds": real.seconds,
        "replay_samples_match": [samples[p] for p in ids] == replayed_samples.tolist(),
        "replay_weights_match": bool(np.allclose([raw[p] for p in ids], replayed.written, rtol=1e-9, atol=1e-12)),
        "zero_weight_problems": real.zero_weight_problems,
    }
    distill = None
    if args.distill_seeds:
        shared = overlap_with_pool(files)
        if any(shared.values()):
            distill = {"ran": False, "why": f"evaluation prompts also in the pool: {shared}; the check needs disjoint sets (the world fix of #21)"}
            print(f"\ndistillation check not run: {distill['why']}", file=sys.stderr)
        else:
            k8 = args.work / "weights_k8.parquet"
            if not k8.exists():
                from paced_curate.io import read_table, write_table
                from paced_curate.schema import GRADES
                from paced_curate.weight import WeightConfig, run_weight
                import pyarrow.compute as pc

                graded = read_table(str(args.work / "pool" / "methods_graded"), GRADES)
                write_table(graded.filter(pc.less(graded.column("sample_index"), 8)), str(args.work / "graded_k8.parquet"), GRADES, {})
                run_weight(WeightConfig(graded=str(args.work / "graded_k8.parquet"), output=str(k8)))
            arms = {"fixed K=8 plug-in": k8, "adaptive (defaults)": Path(real.weights)}
            distill = distill_check((world_config, files), arms, args.work / "distill", args.distill_seeds, args.fast) | {"overlap_with_pool": shared}
            for s, d in distill["paired_difference"].items():
                if isinstance(d, dict):
                    print(f"  {s}: {d['mean']:+.3f} ({d['low']:+.3f}, {d['high']:+.3f}) -> {d['verdict']}", file=sys.stderr)

    out = {
        "benchmark": "adaptive", "design": "bench/adaptive_prereg.md", "defaults": config.settings() | {"weight": {
            "estimator": config.weight.estimator, "min_weight": config.weight.min_weight}},
        "weights": weights, "real_run": real_check, "distill": distill,
        "setup": {
            "fast": args.fast, "student": str(student.name), "engine": args.engine, "max_tokens": MAX_TOKENS, "method_samples": METHOD_SAMPLES,
            "truth_samples": TRUTH_SAMPLES, "kernel": "p(1-p)", "truth": "unbiased c(n-c)/(n(n-1)) from samples 16..79",
        },
        "seconds": time.perf_counter() - started,
        "command": "bench/adaptive.py " + " ".join(sys.argv[1:]),
        "versions": package_versions(),
        "hardware": {"cpus": os.cpu_count(), "processor": platform.machine(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d"),
    }
    out["defaults"].pop("rollout", None)
    out["defaults"].pop("grade", None)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({"benchmark": "adaptive", "weights": weights["methods"], "real_run": real_check,
                      "distill": distill if distill is None or not distill.get("ran") else distill["paired_difference"]}))


if __name__ == "__main__":
    main()
