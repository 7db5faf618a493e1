"""Adaptive rollouts: the weights of fixed K = 8 from fewer student samples (`paced estimate --adaptive`).

On the built-in world's student and two pools (the demo's pool: additions on a ladder of
difficulties plus products beyond the student's reach; and an easier pool with another
pass-rate spread), each problem gets 80 samples, once:

- samples 16..79 are the ground truth: w = c (n - c) / (n (n - 1)) from those 64, the unbiased
  estimate of p (1 - p), so the truth's own noise adds the same amount to every method's MSE
  and never favours one;
- samples 0..15 feed the methods. An adaptive run's sample i is the fixed-K run's sample i
  (same seed), so every method is replayed exactly on these samples: fixed K with the plug-in
  estimator (the paper) and with `eb`, and the adaptive policy (`paced_curate.estimate.plan`,
  the code `paced estimate` runs) over a grid of tolerances and round sizes.

Reported per method: samples per problem, weight RMSE against the truth, and Spearman's rank
correlation of the weights. The goal: an adaptive setting reaches the RMSE of fixed K = 8
plug-in with at least 40% fewer samples on the built-in pool. One real `paced estimate
--adaptive` run at the defaults checks that the replay is what the command does.

Then (unless --distill-seeds 0) the student is distilled with four weightings (same
references, the demo's steps and loss, 3 seeds) and evaluated on the demo's held-out sets
(heldout, hard, probe), paired by training seed against fixed K = 8 plug-in: the adaptive run's
weights (eb, what `paced estimate --adaptive` writes), fixed K = 8 plug-in (the paper), and the
two crossings that tell the estimator's part from the sampling's: fixed K = 8 with eb, and the
adaptive run's samples with the plug-in estimator.

    .venv/bin/python bench/adaptive.py                      # everything (about 35 minutes on 2 cores, models cached)
    .venv/bin/python bench/adaptive.py --distill-seeds 0    # the sample-efficiency part only

Prints tables, then one JSON line; writes bench/results/adaptive.json and adaptive.png. Work
files go to --work (default /tmp/paced-bench-adaptive) and are reused by a rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TEMPLATE = "{prompt}\n"
MAX_TOKENS = 96
METHOD_SAMPLES = 16
TRUTH_SAMPLES = 64
FIXED_K = (2, 4, 8, 16)
TOLERANCES = (0.02, 0.03, 0.035, 0.04, 0.045, 0.05, 0.055, 0.06, 0.065, 0.07, 0.08, 0.10)
SCHEDULES = ((4, 4), (4, 2), (2, 2))  # (min_samples, round_samples); max_samples = 16
EB = dict(kernel="beta", estimator="eb", alpha=1.0, beta=1.0, low=None, high=None, prior_a=0.5, prior_b=0.5)


def rollout_config(problems: Path, model: Path, output: Path, samples: int, first_sample: int, engine: str):
    from paced_curate.rollout import RolloutConfig
    from paced_curate.rollout.prompts import PromptFormat

    return RolloutConfig(
        problems=str(problems), model=str(model), output=str(output), samples=samples, first_sample=first_sample,
        temperature=1.0, max_tokens=MAX_TOKENS, seed=0, engine=engine, dtype="float32", batch_size=1024 if engine == "hf" else None,
        prompt_format=PromptFormat(template=TEMPLATE, chat_template="off"),
    )


def sample_pool(name: str, problems: Path, student: Path, work: Path, engine: str) -> tuple[list[str], np.ndarray, np.ndarray]:
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
        rollouts, graded = work / name / f"{part}_rollouts", work / name / f"{part}_graded"
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


def replay_adaptive(policy, correct: np.ndarray, scored: np.ndarray):
    """Run the adaptive policy on pre-drawn samples; returns (samples per problem, final assessment)."""
    from paced_curate.estimate import assess, first_round, next_round

    n_samples = np.zeros(correct.shape[0], dtype=np.int64)
    plan = first_round(policy, len(n_samples))
    while plan is not None:
        n_samples[plan.problems] += plan.count
        c, n = counts_at(correct, scored, n_samples)
        state = assess(policy, n_samples, c, n, **EB)
        plan = next_round(policy, n_samples, state.open)
    return n_samples, state


def evaluate_methods(correct: np.ndarray, scored: np.ndarray) -> tuple[list[dict], np.ndarray]:
    """Every method's samples per problem, weight RMSE and rank correlation against the truth."""
    from scipy.stats import spearmanr

    from paced_curate.estimate import Policy
    from paced_curate.weight import estimate

    truth_c = correct[:, METHOD_SAMPLES:].sum(1)
    truth_n = scored[:, METHOD_SAMPLES:].sum(1)
    truth = truth_c * (truth_n - truth_c) / np.maximum(truth_n * (truth_n - 1), 1)
    rows = []

    def add(method: str, weights: np.ndarray, n_samples: np.ndarray, **extra) -> None:
        rho = spearmanr(weights, truth).statistic
        rows.append({
            "method": method, "samples_per_problem": float(n_samples.mean()),
            "rmse": float(np.sqrt(np.mean((weights - truth) ** 2))), "spearman": float(rho), **extra,
        })

    for k in FIXED_K:
        n_samples = np.full(correct.shape[0], k)
        c, n = counts_at(correct, scored, n_samples)
        for estimator, label in (("empirical", "plug-in"), ("eb", "eb")):
            add(f"fixed K={k} {label}", estimate(c, n, estimator=estimator).mean, n_samples, kind="fixed", k=k, estimator=label)
    for min_samples, round_samples in SCHEDULES:
        for tolerance in TOLERANCES:
            policy = Policy(min_samples=min_samples, max_samples=METHOD_SAMPLES, round_samples=round_samples, tolerance=tolerance)
            n_samples, state = replay_adaptive(policy, correct, scored)
            add(
                f"adaptive eb min={min_samples} step={round_samples} tol={tolerance:g}", state.mean, n_samples, kind="adaptive",
                min_samples=min_samples, round_samples=round_samples, tolerance=tolerance,
            )
            # What `paced estimate --adaptive` writes by default: plug-in weights on the same samples.
            c, n = counts_at(correct, scored, n_samples)
            add(
                f"adaptive plug-in min={min_samples} step={round_samples} tol={tolerance:g}", estimate(c, n, estimator="empirical").mean, n_samples,
                kind="adaptive plug-in", min_samples=min_samples, round_samples=round_samples, tolerance=tolerance,
            )
    return rows, truth


def cheapest_matching(rows: list[dict], target: dict, rank_too: bool) -> dict | None:
    """The adaptive setting with the fewest samples whose RMSE is at most the target's (and,
    with `rank_too`, whose rank correlation is at least the target's)."""
    matching = [
        r for r in rows
        if r["kind"] == "adaptive" and r["rmse"] <= target["rmse"] and (not rank_too or r["spearman"] >= target["spearman"])
    ]
    return min(matching, key=lambda r: (r["samples_per_problem"], r["rmse"])) if matching else None


def real_run(problems: Path, student: Path, work: Path, engine: str):
    """`paced estimate --adaptive` at its defaults (the command itself, not the replay)."""
    from paced_curate.estimate import EstimateConfig, run_estimate
    from paced_curate.grade import GradeConfig
    from paced_curate.weight import WeightConfig

    from paced_curate import demo
    from paced_curate.estimate.config import DEFAULT_MIN_SAMPLES, DEFAULT_ROUND_SAMPLES, DEFAULT_TOLERANCE

    output = work / f"estimate_run-{DEFAULT_MIN_SAMPLES}-{DEFAULT_ROUND_SAMPLES}-{DEFAULT_TOLERANCE:g}"
    config = EstimateConfig(
        output=str(output), rollout=rollout_config(problems, student, output, 1, 0, engine),
        grade=GradeConfig(rollouts="-", output="-"), weight=WeightConfig(graded="-", estimator="eb"), adaptive=True,
    )
    return config, run_estimate(config)


def save_plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from paced_curate.io import atomic_path

    pools = list(results)
    figure, axes = plt.subplots(1, len(pools), figsize=(6 * len(pools), 4.2), squeeze=False)
    for axis, pool in zip(axes[0], pools):
        rows = results[pool]["methods"]
        for label, color in (("plug-in", "#C44E52"), ("eb", "#4C72B0")):
            fixed = [r for r in rows if r["kind"] == "fixed" and r["estimator"] == label]
            axis.plot([r["samples_per_problem"] for r in fixed], [r["rmse"] for r in fixed], "o-", color=color, label=f"fixed K, {label}")
            for r in fixed:
                axis.annotate(f"K={r['k']}", (r["samples_per_problem"], r["rmse"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        for (min_samples, step), marker in zip(SCHEDULES, ("s", "^", "D")):
            adaptive = sorted(
                (r for r in rows if r["kind"] == "adaptive" and (r["min_samples"], r["round_samples"]) == (min_samples, step)),
                key=lambda r: r["samples_per_problem"],
            )
            axis.plot([r["samples_per_problem"] for r in adaptive], [r["rmse"] for r in adaptive], marker + "--", color="#55A868", alpha=0.5 + 0.2 * SCHEDULES.index((min_samples, step)),
                      markersize=4, label=f"adaptive eb, min {min_samples}, +{step}/round")
        target = next(r for r in rows if r["method"] == "fixed K=8 plug-in")
        axis.axhline(target["rmse"], color="#C44E52", linewidth=0.8, linestyle=":")
        axis.axvline(0.6 * 8, color="gray", linewidth=0.8, linestyle=":")
        axis.set_xlabel("student samples per problem")
        axis.set_ylabel("weight RMSE vs 64-sample truth")
        axis.set_title(f"{pool} pool ({results[pool]['problems']} problems)")
        axis.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)


# The weightings distilled with: (graded table, estimator). "adaptive eb" is what `paced estimate
# --adaptive` writes; the other two separate the estimator's part from the sampling's part.
DISTILL_WEIGHTINGS = {
    "fixed K=8 plug-in": ("k8", "empirical"),
    "fixed K=8 eb": ("k8", "eb"),
    "adaptive eb": ("adaptive", "eb"),
    "adaptive plug-in": ("adaptive", "empirical"),
}


def slug(name: str) -> str:
    return name.replace(" ", "_").replace("=", "")


def distill_comparison(world, ids: list[str], graded: dict[str, Path], work: Path, seeds: int) -> dict:
    """Distil the demo's student with each of `DISTILL_WEIGHTINGS` (same references, the demo's
    steps and loss, `seeds` training seeds); held-out accuracy per seed, paired differences
    against fixed K = 8 plug-in (the paper's weights).

    Args:
        world: (DemoConfig, problem files) of the built-in world; its pool is the one sampled.
        graded: graded tables by key: "k8" (samples 0..7 of every problem), "adaptive" (the
            `paced estimate --adaptive` run's).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from paced_curate import demo
    from paced_curate.problems import read_problems
    from paced_curate.toy.pretrain import trained_model
    from paced_curate.toy.zoo import student_spec, teacher_spec
    from paced_curate.weight import WeightConfig, run_weight

    config, files = world
    teacher, student = trained_model(teacher_spec()), trained_model(student_spec())
    work.mkdir(parents=True, exist_ok=True)
    weights = {name: work / f"weights_{slug(name)}.parquet" for name in DISTILL_WEIGHTINGS}
    for name, (key, estimator) in DISTILL_WEIGHTINGS.items():
        run_weight(WeightConfig(graded=str(graded[key]), output=str(weights[name]), estimator=estimator))
    # Teacher compute follows the weights: references only for problems some weighting trains on.
    trained_on = set()
    for path in weights.values():
        table = pq.read_table(path, columns=["problem_id", "weight"])
        trained_on |= {p for p, w in zip(table.column("problem_id").to_pylist(), table.column("weight").to_pylist()) if w > 0}
    problems = read_problems(str(files["pool"]))
    keep = [i for i, p in enumerate(problems.column("problem_id").to_pylist()) if p in trained_on]
    teacher_problems = work / "teacher_problems.parquet"
    pq.write_table(problems.take(pa.array(keep)), teacher_problems)
    demo.rollout(config, teacher_problems, teacher, work / "teacher_rollouts", config.teacher_samples)
    demo.grade(work / "teacher_rollouts", work / "teacher_graded", audit=False)
    eval_files = {name: files[name] for name in demo.EVAL_SETS}
    rows = []
    for name, path in weights.items():
        data = demo.export(files["pool"], path, work / "teacher_graded", work / f"data_{slug(name)}", config)
        table = pq.read_table(path, columns=["weight", "weight_raw"])
        zero = sum(w == 0 for w in table.column("weight_raw").to_pylist())
        for seed in range(seeds):
            # A finished run's row is kept next to it, so a rerun of the bench trains only what is missing.
            run, saved = work / "runs" / f"{slug(name)}-{seed}", work / "runs" / f"{slug(name)}-{seed}.json"
            if saved.exists():
                row = json.loads(saved.read_text())
            else:
                result = demo.distill(data, student, teacher, run, config, seed=seed)
                row = {"weights": name, "seed": seed, "train_tokens": result.response_tokens, "zero_weight_problems": zero}
                row |= demo.evaluate(Path(result.final_model), eval_files, config, seed)
                saved.write_text(json.dumps(row))
            rows.append(row)
            print(f"  distilled {name} seed {seed}: {row}", file=sys.stderr)
    summary, differences = {}, {}
    for name in weights:
        mine = [r for r in rows if r["weights"] == name]
        summary[name] = {
            set_name: {"mean": statistics.mean(r[set_name] for r in mine), "sd": statistics.stdev(r[set_name] for r in mine) if len(mine) > 1 else 0.0}
            for set_name in demo.EVAL_SETS
        }
    # Paired by training seed (same data order and rkl sample seeds), against fixed K = 8 plug-in.
    by_seed = {(r["weights"], r["seed"]): r for r in rows}
    for name in weights:
        if name != "fixed K=8 plug-in":
            differences[name] = {}
            for set_name in demo.EVAL_SETS:
                diffs = [by_seed[name, seed][set_name] - by_seed["fixed K=8 plug-in", seed][set_name] for seed in range(seeds)]
                differences[name][set_name] = {"mean": statistics.mean(diffs), "per_seed": diffs}
    return {
        "runs": rows, "summary": summary, "paired_difference_vs_fixed_k8_plug_in": differences, "steps": config.distill_steps,
        "batch_size": config.batch_size, "loss": "fkl-then-rkl", "seeds": seeds, "eval_samples": config.eval_samples,
        "teacher_problems": len(keep), "pool_problems": problems.num_rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=240, help="problems per pool")
    parser.add_argument("--engine", default="hf", help="rollout engine (hf is the fastest for these tiny models on CPU)")
    parser.add_argument("--distill-seeds", type=int, default=3, help="seeds of the distillation comparison (0: skip it)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/paced-bench-adaptive"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "adaptive.json")
    args = parser.parse_args()

    from paced_curate import demo
    from paced_curate.estimate.config import DEFAULT_MIN_SAMPLES, DEFAULT_ROUND_SAMPLES, DEFAULT_TOLERANCE
    from paced_curate.partdir import package_versions
    from paced_curate.toy.pretrain import trained_model
    from paced_curate.toy.world import make_problems
    from paced_curate.toy.zoo import student_spec

    started = time.perf_counter()
    args.work.mkdir(parents=True, exist_ok=True)
    student = trained_model(student_spec())
    # The built-in pool is the demo's (additions on a ladder of terms, plus products beyond the
    # student's reach), at --problems problems; the second pool: the two easiest rungs only.
    world_config = demo.with_workdir(demo.DemoConfig(), args.work, num_problems=args.problems, engine=args.engine)
    world_files = demo.write_problem_sets(world_config, args.work)
    low, _ = world_config.pool_terms
    files = {"built-in": world_files["pool"], "easy": args.work / "problems_easy.jsonl"}
    files["easy"].write_text("".join(json.dumps(p.row()) + "\n" for p in make_problems(7002, args.problems, (low, low + 1), prefix="easy")))
    pools = {"built-in": f"demo pool: additions of {world_config.pool_terms} terms, {world_config.beyond_share:.0%} products",
             "easy": f"additions of ({low}, {low + 1}) terms"}
    results, matrices = {}, {}
    for name in pools:
        ids, correct, scored = sample_pool(name, files[name], student, args.work, args.engine)
        rows, truth = evaluate_methods(correct, scored)
        matrices[name] = (ids, correct, scored)
        target = next(r for r in rows if r["method"] == "fixed K=8 plug-in")
        best = cheapest_matching(rows, target, rank_too=False)
        strict = cheapest_matching(rows, target, rank_too=True)
        cheapest_eb = min((r for r in rows if r["kind"] == "fixed" and r["estimator"] == "eb" and r["rmse"] <= target["rmse"]), key=lambda r: r["k"], default=None)
        default = next(
            r for r in rows if r["kind"] == "adaptive"
            and (r["min_samples"], r["round_samples"], r["tolerance"]) == (DEFAULT_MIN_SAMPLES, DEFAULT_ROUND_SAMPLES, DEFAULT_TOLERANCE)
        )
        truth_p = correct[:, METHOD_SAMPLES:].sum(1) / np.maximum(scored[:, METHOD_SAMPLES:].sum(1), 1)
        results[name] = {
            "problems": len(ids), "pool": pools[name],
            "truth_pass_rate_histogram": np.histogram(truth_p, bins=10, range=(0, 1))[0].tolist(),
            "mean_pass_rate": float(truth_p.mean()),
            "target_fixed_k8_plug_in": target,
            "cheapest_adaptive_matching_target": best,
            "samples_saved_by_cheapest": (1 - best["samples_per_problem"] / 8) if best else None,
            "cheapest_fixed_eb_matching_rmse": cheapest_eb,
            "cheapest_adaptive_matching_rmse_and_rank": strict,
            "samples_saved_by_cheapest_rmse_and_rank": (1 - strict["samples_per_problem"] / 8) if strict else None,
            "default_adaptive": default,
            "default_adaptive_plug_in": next(
                r for r in rows if r["kind"] == "adaptive plug-in"
                and (r["min_samples"], r["round_samples"], r["tolerance"]) == (DEFAULT_MIN_SAMPLES, DEFAULT_ROUND_SAMPLES, DEFAULT_TOLERANCE)
            ),
            "default_matches_target": default["rmse"] <= target["rmse"],
            "default_matches_target_rank": default["spearman"] >= target["spearman"],
            "samples_saved_by_default": 1 - default["samples_per_problem"] / 8,
            "methods": rows,
        }
        print(f"\n{name} pool: {len(ids)} problems, mean pass rate {truth_p.mean():.3f}", file=sys.stderr)
        print(f"{'method':<44} {'samples/problem':>15} {'RMSE':>8} {'Spearman':>9}", file=sys.stderr)
        for r in rows:
            if r["kind"] == "fixed" or r["tolerance"] in (0.03, 0.05, 0.07) or r is best or r is default or r is strict:
                marks = [label for label, row in (("target", target), ("default", default), ("cheapest, RMSE", best), ("cheapest, RMSE and rank", strict)) if r is row]
                mark = f" <- {', '.join(marks)}" if marks else ""
                print(f"{r['method']:<44} {r['samples_per_problem']:>15.2f} {r['rmse']:>8.4f} {r['spearman']:>9.3f}{mark}", file=sys.stderr)

    # The replay is what the command does: one real run at the defaults on the built-in pool.
    config, real = real_run(files["built-in"], student, args.work / "built-in", args.engine)
    ids, correct, scored = matrices["built-in"]
    replayed_samples, replayed = replay_adaptive(config.policy(), correct[:, :METHOD_SAMPLES], scored[:, :METHOD_SAMPLES])
    import pyarrow.parquet as pq

    real_weights = pq.read_table(real.weights)
    real_ids = real_weights.column("problem_id").to_pylist()
    real_samples = dict(zip(real_ids, real_weights.column("n_samples").to_pylist()))
    real_raw = dict(zip(real_ids, real_weights.column("weight_raw").to_pylist()))
    real_check = {
        "samples": real.samples, "rounds": len(real.rounds), "seconds": real.seconds,
        "replay_samples_match": [real_samples[p] for p in ids] == replayed_samples.tolist(),
        "replay_weights_match": bool(np.allclose([real_raw[p] for p in ids], replayed.mean, rtol=1e-9, atol=1e-12)),
        "zero_weight_problems": real.zero_weight_problems,
    }
    distill = None
    if args.distill_seeds:
        k8 = args.work / "built-in" / "graded_k8.parquet"
        if not k8.exists():
            from paced_curate.io import read_table, write_table
            from paced_curate.schema import GRADES
            import pyarrow.compute as pc

            graded = read_table(str(args.work / "built-in" / "methods_graded"), GRADES)
            write_table(graded.filter(pc.less(graded.column("sample_index"), 8)), str(k8), GRADES, {})
        graded = {"k8": k8, "adaptive": Path(config.output) / "graded"}
        distill = distill_comparison((world_config, world_files), ids, graded, args.work / "distill", args.distill_seeds)
        print("\nheld-out accuracy (mean over seeds, sd):", file=sys.stderr)
        for name, sets in distill["summary"].items():
            print(f"  {name:<20} " + "  ".join(f"{s} {v['mean']:.3f} ({v['sd']:.3f})" for s, v in sets.items()), file=sys.stderr)

    built_in = results["built-in"]
    out = {
        "benchmark": "adaptive",
        "goal": "adaptive eb reaches the weight RMSE of fixed K=8 plug-in with >= 40% fewer samples on the built-in pool",
        # The goal: some adaptive setting reaches fixed K=8 plug-in's RMSE with >= 40% fewer samples.
        "passed": bool((built_in["samples_saved_by_cheapest"] or 0) >= 0.4),
        # Stricter: the same with the weights' rank correlation at least as good too.
        "passed_with_rank_correlation_too": bool((built_in["samples_saved_by_cheapest_rmse_and_rank"] or 0) >= 0.4),
        "defaults": {"min_samples": DEFAULT_MIN_SAMPLES, "max_samples": METHOD_SAMPLES, "round_samples": DEFAULT_ROUND_SAMPLES, "tolerance": DEFAULT_TOLERANCE},
        "pools": results,
        "real_run": real_check,
        "distill": distill,
        "setup": {
            "student": str(student.name), "engine": args.engine, "max_tokens": MAX_TOKENS, "method_samples": METHOD_SAMPLES,
            "truth_samples": TRUTH_SAMPLES, "kernel": "p(1-p)", "truth": "unbiased c(n-c)/(n(n-1)) from samples 16..79",
        },
        "seconds": time.perf_counter() - started,
        "command": "bench/adaptive.py " + " ".join(sys.argv[1:]),
        "versions": package_versions(),
        "hardware": {"cpus": os.cpu_count(), "processor": platform.machine(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    save_plot(results, args.out.with_suffix(".png"))
    print(json.dumps({k: out[k] for k in ("benchmark", "passed", "passed_with_rank_correlation_too", "defaults")} | {
        name: {"target": {k: r["target_fixed_k8_plug_in"][k] for k in ("rmse", "spearman")},
               "default": {k: r["default_adaptive"][k] for k in ("samples_per_problem", "rmse", "spearman")},
               "samples_saved_by_default": r["samples_saved_by_default"], "samples_saved_by_cheapest": r["samples_saved_by_cheapest"],
               "samples_saved_by_cheapest_rmse_and_rank": r["samples_saved_by_cheapest_rmse_and_rank"]}
        for name, r in results.items()
    } | {"real_run": real_check, "distill": distill["summary"] if distill else None}))


if __name__ == "__main__":
    main()
