"""`run_estimate`: rollout -> grade -> weight in rounds, until every weight is known well enough.

    result = run_estimate(EstimateConfig(output="run/", adaptive=True, rollout=..., grade=..., weight=...))

A run directory holds, when finished:

    run/rollouts/         the student samples (ROLLOUTS parts, input order, sample_index ascending)
    run/graded/           their verdicts (GRADES parts, same order)
    run/weights.parquet   the WEIGHTS table (`paced weight` on run/graded with the weight flags)
    run/teacher_problems.parquet   the problems with weight > 0 (a problems table): the only ones
                          a teacher needs to write references for
    run/estimate.json     settings, every round (problems, samples, open problems, prior), the result

While it runs, each round lives in run/rounds/round-NNN/ (its problems, a `paced rollout`
output of samples n .. n + m - 1, and its `paced grade` output); both stages resume there
after a kill. The next round is a pure function of the finished rounds' graded counts, so a
rerun of the same command replays the same rounds and finishes with the same tables. At the
end the rounds are merged into run/rollouts and run/graded (resumable parts too), the weights
are written, estimate.json is marked complete, and run/rounds is deleted.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from paced_curate.errors import ConfigError, InputError, ResumeMismatch
from paced_curate.estimate.config import EstimateConfig
from paced_curate.estimate.plan import (
    Policy,
    RoundPlan,
    assess,
    first_round,
    next_round,
    problem_uniforms,
    projected_total,
)
from paced_curate.grade import run_grade
from paced_curate.io import (
    ESTIMATE_STATE,
    input_digest,
    read_manifest,
    read_table,
    write_json,
    write_parquet,
    write_table,
)
from paced_curate.partdir import PartDirectory, claim_output, settings_hash
from paced_curate.problems import FieldMap, read_problems
from paced_curate.report import plural, say
from paced_curate.rollout import run_rollout
from paced_curate.rollout.config import check_model
from paced_curate.rollout.prompt_record import KEY as PROMPT_KEY
from paced_curate.rollout.prompt_record import inherited_prompt_record
from paced_curate.schema import GRADES, PROBLEMS, ROLLOUTS
from paced_curate.weight import count_samples, run_weight
from paced_curate.weight.stats import save_weight_plot

STATE_FILE = ESTIMATE_STATE
ROUNDS_DIR = "rounds"
TEACHER_PROBLEMS = "teacher_problems.parquet"
OWNED = (STATE_FILE, ROUNDS_DIR, "rollouts", "graded", "weights.parquet", TEACHER_PROBLEMS)
ROUND_FIELDS = FieldMap(id_field="problem_id", prompt_field="prompt", answer_field="answer")


@dataclass(frozen=True)
class EstimateResult:
    """What `run_estimate` made."""

    output: str
    problems: int
    rounds: list[dict]
    """Per round: first_sample, count, problems, samples, open_after, samples_spent, projected_total, prior."""
    samples: int
    """Samples drawn in all."""
    reference_k: int
    """The fixed K the samples are compared with: K itself, or --match-k (default 8) when adaptive."""
    at_max_samples: int
    """Problems that drew the most samples a problem can get (K, or --max-samples)."""
    expected_rmse: float | None
    """--adaptive: root expected squared error per problem of the written raw weights under the
    final fitted prior (the stopping rule's model); None for a fixed K."""
    reference_rmse: float | None
    """--adaptive: the same for fixed K = reference_k plug-in weights, under the same prior."""
    zero_weight_problems: int
    """Problems with weight 0: no teacher reference needed."""
    prior: dict | None
    """The Beta prior of the final weights (bayes, eb)."""
    weights: str
    teacher_problems_file: str
    """The problems with weight > 0, for the teacher's references."""
    seconds: float
    weight_statistics: dict

    @property
    def samples_per_problem(self) -> float:
        return self.samples / self.problems

    @property
    def samples_saved(self) -> float:
        """Share of samples saved against fixed K = reference_k (negative: more samples than that)."""
        return 1.0 - self.samples / (self.problems * self.reference_k)

    @property
    def teacher_problems(self) -> int:
        """Problems a teacher must write references for (weight > 0)."""
        return self.problems - self.zero_weight_problems

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("weight_statistics")
        return out | {
            "samples_per_problem": self.samples_per_problem,
            "samples_saved": self.samples_saved,
            "teacher_problems": self.teacher_problems,
            "teacher_saved": self.zero_weight_problems / self.problems,
        }


def run_estimate(config: EstimateConfig) -> EstimateResult:
    """Run rounds of rollout -> grade -> posterior update, then write the merged tables and weights.

    Args:
        config: an `EstimateConfig`.

    Returns:
        An `EstimateResult`.

    Raises:
        ConfigError: a bad flag or model (before any work).
        InputError: the problem set is missing or malformed; the run directory holds other files.
        ResumeMismatch: the run directory holds a run made with other settings or problems.
    """
    started = time.perf_counter()
    run = Path(config.output)
    reads = {"problems": config.rollout.problems, "model": config.rollout.model if config.rollout.engine != "openai" else None}
    claim_output(run, kind="estimate", inputs=reads, overwrite=config.overwrite, clear=False)  # the rule every command follows (#26)
    check_model(config.rollout)  # (#24) before the run directory is made
    settings = config.settings()
    inputs = {"problems": {"path": config.rollout.problems, "sha256": input_digest(config.rollout.problems)}}
    # Read before --overwrite deletes anything: a bad problem file must not cost the old run.
    problems = read_problems(config.rollout.problems, config.rollout.fields)
    if config.overwrite:
        claim_output(run, kind="estimate", inputs=reads, overwrite=True)
    state = _open_run(run, config, settings, inputs)
    if state.get("complete"):
        say(f"{run}: already complete ({state['result']['samples']:,} samples); nothing to do")
        result = _result_from_state(config, state)
        # --plot is no setting of the run (it changes no table), so a finished run draws it on request.
        if config.weight.plot is not None:
            save_weight_plot(result.weight_statistics, config.weight.plot)
            say(f"wrote {config.weight.plot}")
        return result
    ids = problems.column("problem_id").to_pylist()
    count = len(ids)
    policy = config.policy()
    n_samples, n_correct, n_scored = (np.zeros(count, dtype=np.int64) for _ in range(3))
    plan: RoundPlan | None = first_round(policy, count)
    rounds: list[dict] = []
    open_before = count
    assessment = None
    uniforms = problem_uniforms(ids)
    while plan is not None:
        number = len(rounds)
        say(f"== round {number}: samples {plan.first_sample}-{plan.first_sample + plan.count - 1} of {plural(len(plan.problems), 'problem')}")
        graded = _run_round(config, problems, plan, run / ROUNDS_DIR / f"round-{number:03d}")
        _add_counts(graded, ids, n_samples, n_correct, n_scored)
        judged = {}
        if config.adaptive:
            assessment = assess(policy, n_samples, n_correct, n_scored, config.weight, uniforms)
            open_mask = assessment.open
            judged = {
                "prior": assessment.prior.to_dict(), "price": assessment.price, "share": assessment.share, "expected_rmse": assessment.expected_rmse,
                "reference_rmse": assessment.reference_rmse, "expected_samples_per_problem": assessment.expected_samples,
                "expected_waste": assessment.expected_waste,
            }
        else:
            open_mask = np.zeros(count, dtype=bool)
        done, plan = plan, next_round(policy, n_samples, open_mask)
        spent = int(n_samples.sum())
        n_open = int(open_mask.sum())
        projected = spent if plan is None else projected_total(policy, spent, n_open, open_before, plan.first_sample)
        open_before = n_open
        rounds.append({
            "round": number, "first_sample": done.first_sample, "count": done.count, "problems": len(done.problems),
            "samples": done.count * len(done.problems), "open_after": n_open, "samples_spent": spent,
            "projected_total": projected, **judged,
        })
        say(
            f"round {number} done: {n_open:,} of {plural(count, 'problem')} still open, {plural(spent, 'sample')} spent, "
            f"projected total {projected:,} ({projected / count:.2f} per problem; a fixed K = {policy.match_k} "
            f"would draw {count * policy.match_k:,})"
        )
        write_json(state | {"rounds": rounds}, run / STATE_FILE)
    return _finish(config, run, state, problems, ids, rounds, n_samples, n_correct, n_scored, assessment, started)


def _open_run(run: Path, config: EstimateConfig, settings: dict, inputs: dict) -> dict:
    """Create, resume or (with --overwrite) restart a run directory; returns its state."""
    if run.exists() and not run.is_dir():
        raise InputError(f"{run}: exists and is a file; -o names a run directory")
    run.mkdir(parents=True, exist_ok=True)
    state_file = run / STATE_FILE
    if config.overwrite:
        for name in OWNED:
            target = run / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        for extra in (run / "rollouts.paced", run / "graded.paced"):
            shutil.rmtree(extra, ignore_errors=True)
    if state_file.exists():
        import json

        state = json.loads(state_file.read_text())
        mismatch = state.get("settings_hash") != settings_hash(settings) or state.get("inputs") != inputs
        if mismatch and not state.get("complete") and not _samples_drawn(run):
            # An earlier attempt failed before drawing anything (a wrong --model, an unreadable
            # problem file): nothing to keep, so the corrected command simply starts.
            say(f"restarting {run}: the earlier attempt drew no samples")
            shutil.rmtree(run / ROUNDS_DIR, ignore_errors=True)
            return _new_state(state_file, settings, inputs)
        if mismatch:
            before, now = state.get("settings", {}), settings
            changed = [key for key in sorted(set(before) | set(now)) if before.get(key) != now.get(key)]
            if state.get("inputs") != inputs:
                changed.append(f"the problems ({config.rollout.problems})")
            raise ResumeMismatch(
                f"{run}: holds a paced estimate run made with other settings ({', '.join(changed)}); "
                "pass --overwrite to start afresh or choose another -o"
            )
        if not state.get("complete"):
            say(f"resuming {run}: finished rounds and parts are kept")
        return state
    foreign = [p.name for p in run.iterdir() if p.name not in OWNED and not p.name.endswith(".paced")]
    if foreign or any((run / name).exists() for name in OWNED):
        shown = foreign[0] if foreign else next(name for name in OWNED if (run / name).exists())
        advice = "--overwrite replaces only an estimate run's own files, so choose another -o" if config.overwrite else "choose another -o or pass --overwrite"
        raise InputError(f"{run}: exists and is not a paced estimate run (it holds {shown!r}); {advice}")
    return _new_state(state_file, settings, inputs)


def _new_state(state_file: Path, settings: dict, inputs: dict) -> dict:
    """Write and return the state of a run that has drawn nothing yet."""
    state = {"stage": "estimate", "complete": False, "settings": settings, "settings_hash": settings_hash(settings), "inputs": inputs}
    write_json(state, state_file)
    return state


def _samples_drawn(run: Path) -> bool:
    """Whether any round of the run has written a rollout or grade part (its own problem copy aside)."""
    return any(part.name != "problems.parquet" for part in (run / ROUNDS_DIR).rglob("*.parquet"))


def _run_round(config: EstimateConfig, problems: pa.Table, plan: RoundPlan, folder: Path) -> str:
    """Roll out and grade one round (both resumable); returns the graded folder."""
    folder.mkdir(parents=True, exist_ok=True)
    problem_file = folder / "problems.parquet"
    if not problem_file.exists():
        # Written once: a resumed round must see the same file (its hash is in the rollout's manifest).
        write_parquet(problems.take(pa.array(plan.problems)), problem_file)
    rollout = replace(
        config.rollout, problems=str(problem_file), output=str(folder / "rollouts"), samples=plan.count,
        first_sample=plan.first_sample, fields=ROUND_FIELDS, overwrite=False,
    )
    # A finished stage is not reopened: resuming it rewrites its manifest, which changes the
    # rollouts' content hash that the grade output was made from.
    if not is_complete(folder / "rollouts"):
        run_rollout(rollout)
    grade = replace(config.grade, rollouts=str(folder / "rollouts"), output=str(folder / "graded"), overwrite=False)
    if not is_complete(folder / "graded"):
        run_grade(grade)
    return str(folder / "graded")


def is_complete(directory: Path) -> bool:
    """Whether a stage output directory is finished (its manifest says so)."""
    manifest = read_manifest(directory) if directory.is_dir() else None
    return bool(manifest and manifest.get("complete"))


def _add_counts(graded: str, ids: list[str], n_samples: np.ndarray, n_correct: np.ndarray, n_scored: np.ndarray) -> None:
    counts = count_samples(graded)
    position = {problem_id: index for index, problem_id in enumerate(ids)}
    rows = np.array([position[p] for p in counts.column("problem_id").to_pylist()], dtype=np.int64)
    n_samples[rows] += counts.column("n_samples").to_numpy()
    n_correct[rows] += counts.column("n_correct").to_numpy()
    n_scored[rows] += counts.column("n_scored").to_numpy()


def _merge(run: Path, name: str, spec, rounds: int, ids: list[str], settings: dict, inputs: dict, per_part: int) -> None:
    """Merge the rounds' `name` tables into run/name: input order, sample_index ascending (resumable)."""
    out = PartDirectory.open(run / name, spec=spec, settings=settings, inputs=inputs)
    if out.manifest.get("complete"):
        return
    # Carried on to weight and export, which rebuild the student's prompts from it (#14).
    if (record := inherited_prompt_record(run / ROUNDS_DIR / "round-000" / name)) is not None:
        out.provenance[PROMPT_KEY] = record
    done = out.read_done(["problem_id"])
    done_ids = set() if done is None else set(done.column("problem_id").to_pylist())
    tables = [read_table(str(run / ROUNDS_DIR / f"round-{r:03d}" / name), spec) for r in range(rounds)]
    merged = pa.concat_tables(tables, promote_options="permissive")
    order = pa.array(np.arange(len(ids)))
    position = pc.index_in(merged.column("problem_id"), value_set=pa.array(ids))
    merged = merged.append_column("_order", pc.take(order, position))
    merged = merged.sort_by([("_order", "ascending"), ("sample_index", "ascending")])
    todo = [problem_id for problem_id in ids if problem_id not in done_ids]
    for start in range(0, len(todo), per_part):
        chunk = pa.array(todo[start : start + per_part])
        rows = merged.filter(pc.is_in(merged.column("problem_id"), value_set=chunk)).drop_columns(["_order"])
        out.write_part(rows)
    out.finish(summary={"rows": merged.num_rows, "rounds": rounds})


def _finish(config, run, state, problems, ids, rounds, n_samples, n_correct, n_scored, assessment, started) -> EstimateResult:
    say("== merging the rounds and writing the weights")
    settings, inputs = state["settings"], state["inputs"]
    _merge(run, "rollouts", ROLLOUTS, len(rounds), ids, settings, inputs, config.rollout.problems_per_part)
    _merge(run, "graded", GRADES, len(rounds), ids, settings, inputs, config.rollout.problems_per_part)
    weights = str(run / "weights.parquet")
    try:
        weighed = run_weight(replace(config.weight, graded=str(run / "graded"), output=weights))
    except ConfigError as error:
        # The samples are drawn and graded: other weight flags need no new run.
        raise ConfigError(f"{error}; the graded samples are kept in {run / 'graded'}: weigh them with `paced weight {run / 'graded'} -o W.parquet ...`") from None
    for warning in weighed.warnings:
        say(f"warning: {warning}")
    # Teacher compute follows the weights: problems with weight 0 are never trained on.
    positive = {p for p, w in zip(weighed.table.column("problem_id").to_pylist(), weighed.table.column("weight").to_pylist()) if w > 0}
    keep = [index for index, problem_id in enumerate(ids) if problem_id in positive]
    write_table(problems.take(pa.array(keep, type=pa.int64())), str(run / TEACHER_PROBLEMS), PROBLEMS, {"settings": settings, "inputs": inputs})
    policy: Policy = config.policy()
    # The last round's assessment judged the final counts: the model's error of the written weights.
    expected_rmse = assessment.written_rmse if assessment is not None else None
    reference_rmse = assessment.reference_rmse if assessment is not None else None
    stats = weighed.statistics
    result = EstimateResult(
        output=str(run), problems=len(ids), rounds=rounds, samples=int(n_samples.sum()), reference_k=policy.match_k,
        at_max_samples=int((n_samples >= policy.max_samples).sum()), expected_rmse=expected_rmse, reference_rmse=reference_rmse,
        zero_weight_problems=int(stats["zero_weight_problems"]),
        prior=_final_prior(config, n_correct, n_scored), weights=weights, teacher_problems_file=str(run / TEACHER_PROBLEMS), seconds=time.perf_counter() - started,
        weight_statistics=stats,
    )
    write_json(state | {"rounds": rounds, "complete": True, "result": result.to_dict()}, run / STATE_FILE)
    shutil.rmtree(run / ROUNDS_DIR, ignore_errors=True)
    return result


def _final_prior(config: EstimateConfig, n_correct: np.ndarray, n_scored: np.ndarray) -> dict | None:
    from paced_curate.weight.runner import weight_prior

    counts = pa.table({"n_correct": n_correct, "n_scored": n_scored})
    prior = weight_prior(counts, config.weight)
    return None if prior is None else prior.to_dict()


def _result_from_state(config: EstimateConfig, state: dict) -> EstimateResult:
    import pyarrow.parquet as pq

    from paced_curate.weight import weight_statistics

    saved = state["result"]
    stats = weight_statistics(pq.read_table(saved["weights"]))
    fields = {name: saved[name] for name in EstimateResult.__dataclass_fields__ if name in saved}
    return EstimateResult(**fields | {"weight_statistics": stats})


def teacher_saving_line(result: EstimateResult) -> str:
    """How much teacher generation the weights save: problems with weight 0 need no reference."""
    share = result.zero_weight_problems / result.problems
    line = (
        f"teacher references are needed for {result.teacher_problems:,} of {plural(result.problems, 'problem')} "
        f"(weight > 0, listed in {result.teacher_problems_file}); the other {result.zero_weight_problems:,} ({share:.0%}) "
        "need no teacher generation"
    )
    if result.prior is not None and result.zero_weight_problems == 0:
        line += " (a Bayes weight is never exactly 0; --min-weight drops the small ones)"
    return line


def summary_rows(result: EstimateResult) -> list[tuple[str, object]]:
    """The result as rows of a two-column table."""
    adaptive = result.expected_rmse is not None
    rows = [
        ("problems", result.problems),
        ("rounds", len(result.rounds)),
        ("samples", f"{result.samples:,} ({result.samples_per_problem:.2f} per problem)"),
    ]
    if adaptive:
        rows += [
            (f"saved vs fixed K = {result.reference_k}", f"{result.samples_saved:.1%}"),
            ("expected weight RMSE (fitted prior)", f"{result.expected_rmse:.4f} (fixed K = {result.reference_k} plug-in: {result.reference_rmse:.4f})"),
        ]
    rows.append(("problems at the most samples", result.at_max_samples))
    if result.prior is not None:
        rows.append(("prior on p", describe_prior(result.prior)))
    rows += [
        ("zero-weight problems (no teacher needed)", f"{result.zero_weight_problems:,} of {result.problems:,}"),
        ("weights", result.weights),
        ("seconds", f"{result.seconds:.1f}"),
    ]
    return rows


def describe_prior(prior: dict) -> str:
    """A prior as recorded in estimate.json, in one line."""
    fitted = " fitted" if prior["fitted"] else ""
    if "zero" in prior:
        return f"P(p=0) {prior['zero']:.3g}, P(p=1) {prior['one']:.3g}, else Beta({prior['a']:.3g}, {prior['b']:.3g}){fitted}"
    return f"Beta({prior['a']:.3g}, {prior['b']:.3g}){fitted}"
