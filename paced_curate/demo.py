"""`paced demo`: the whole pipeline on the built-in world, with real components, and the comparison.

    paced demo --workdir demo-work          # full (minutes); `--fast` is the small version the tests run

`prepare_world` is the preparation that `paced demo` and `bench/reproduce.py` share (each step
says what it does on stderr, and every artifact lands in the work folder):
 1. the world (`toy.world`): a distillation pool of additions (the frontier) mixed with
    products (beyond the student's reach); held-out sets from the pool's distribution, a
    harder one (the longest chains) and the probe (differences, never distilled); the teacher
    and student models (trained once, then cached);
 2. `paced rollout` (vLLM, K samples) of the student on the pool, `paced grade` (math-verify,
    audited with reasoning-gym's own scorer), `paced weight` (PACED's beta kernel, printing
    the pass-rate histogram; uniform weights; the band kernel for the hard filter);
 3. teacher references, generated first only for the problems PACED gives weight > 0 (what
    PACED alone needs; the saving is printed), then for the rest (the baselines need them);
 4. `paced export` one dataset per weighting.
`run_methods` then distills the student once per method (`comparison.METHODS`) with learning
curves from `paced distill --eval`, and evaluates every student on the held-out sets.
`paced demo` runs a few training seeds of a few methods on one prepared world and prints the
table with 95% intervals; `bench/reproduce.py` runs every method over the registered worlds (bench/reproduce_prereg.md).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from paced_curate.report import say

DEMO_TEMPLATE = "{prompt}\n"
MAX_TOKENS = 96
AUDIT_GRADER = "paced_curate.toy.world:reasoning_gym_grader"
EVAL_SETS = ("heldout", "hard", "probe")


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """Sizes of one demo (or one bench world)."""

    workdir: str = "demo-work"
    """Folder for every artifact (problems, rollouts, weights, exports, runs, results)."""
    fast: bool = False
    """A smaller, quicker version with the fast models (used by the tests)."""
    seed: int = 0
    """Seed of the world: problem sets and rollouts (training seeds are `seeds`)."""
    num_problems: int = 480
    """Problems in the distillation pool."""
    pool_terms: tuple[int, int] = (2, 7)
    """Number of terms of the pool's additions (the difficulty ladder)."""
    beyond_share: float = 0.25
    """Share of the pool that is products (beyond the student's reach)."""
    hard_terms: tuple[int, int] = (6, 7)
    """Number of terms of the harder held-out set's additions."""
    num_eval: int = 96
    """Problems in each held-out set."""
    samples: int = 8
    """K: student samples per pool problem."""
    engine: str = "vllm"
    """Rollout engine of the student and teacher rollouts (vllm, or hf: faster for models this small on CPU)."""
    teacher_samples: int = 2
    """Teacher samples per pool problem (a correct one becomes the reference)."""
    eval_samples: int = 2
    """Samples per held-out problem (accuracy = mean over them, temperature 1)."""
    distill_steps: int = 80
    """Training steps of every distilled student."""
    batch_size: int = 32
    """Problems per training step."""
    lr: float = 1e-3
    """Peak learning rate of distillation."""
    curve_every: int = 20
    """Steps between points of the learning curves (`paced distill --eval-every`) on the held-out pool set."""
    methods: tuple[str, ...] = ("unweighted", "PACED fkl-then-rkl")
    """Methods to train (names in `comparison.METHODS`); base is always evaluated."""
    seeds: int = 3
    """Training seeds per method (data order, rkl samples, evaluation samples), on the one prepared world."""

    @classmethod
    def small(cls, workdir: str, seed: int = 0) -> "DemoConfig":
        """The `--fast` sizes."""
        return cls(
            workdir=workdir, fast=True, seed=seed, num_problems=48, pool_terms=(2, 4), hard_terms=(4, 4), num_eval=16,
            samples=4, eval_samples=2, distill_steps=6, batch_size=8, curve_every=3, methods=("unweighted", "PACED fkl-then-rkl"), seeds=1,
        )


@dataclass
class Prepared:
    """What `prepare_world` made: problem files, models, exports per weighting, reference costs."""

    work: Path
    files: dict[str, Path]
    teacher: Path
    student: Path
    exports: dict[str, Path]
    teacher_tokens: dict[str, int]
    """Teacher completion tokens generated for the problems each weighting trains on."""
    references: dict = field(default_factory=dict)
    """Counts of the two teacher passes (PACED's weight > 0 problems, then the rest)."""


@dataclass
class DemoResult:
    """The comparison's rows and summary, and where everything was written."""

    workdir: str
    rows: list[dict]
    summary: dict
    plot: str | None
    seconds: float

    def to_dict(self) -> dict:
        return {"workdir": self.workdir, "rows": self.rows, "summary": self.summary, "plot": self.plot, "seconds": self.seconds}


def run_demo(config: DemoConfig) -> DemoResult:
    """Prepare the world, train `config.methods` over `config.seeds` training seeds, print the table."""
    from paced_curate.comparison import plot_curves, show_summary, summarise

    started = time.perf_counter()
    work = Path(config.workdir)
    prepared = prepare_world(config, work, audit=True)
    rows = []
    for seed in range(config.seeds):
        say(f"== 5. training seed {seed + 1} of {config.seeds}: distill each method, evaluate on the held-out sets")
        rows += run_methods(config, prepared, seed, world=config.seed)
    summary = summarise(rows)
    plot = plot_curves(rows, work / "learning_curves.png")
    show_summary(summary, seeds=config.seeds, what="training seeds on one world")
    say(scope_note(config, summary))
    result = DemoResult(workdir=str(work), rows=rows, summary=summary, plot=str(plot) if plot else None, seconds=time.perf_counter() - started)
    (work / "results.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    if plot:
        say(f"learning curves: {plot}")
    say(f"done in {result.seconds:.0f} s; everything is in {work}")
    return result


def scope_note(config: DemoConfig, summary: dict) -> str:
    """What the demo's verdicts cover, said under its tables so that they are not read as the comparison's outcome."""
    tested = bool(summary.get("holm") and summary["holm"]["m"])
    what = (f"the verdicts above cover {config.seeds} training seeds on world {config.seed} only (the noise of training, not of worlds)"
            if tested else f"{config.seeds} training seed{'s' if config.seeds != 1 else ''} on one world: nothing is tested")
    return f"{what}; whether PACED helps is the pre-registered comparison over 12 worlds: docs/example.md ('Does PACED help here?')"


def prepare_world(config: DemoConfig, work: Path, audit: bool = False) -> Prepared:
    """Steps 1-4 of the module docstring: problem sets, models, weights, references, exports.

    Args:
        config: sizes and the world's seed.
        work: folder for the artifacts (created).
        audit: also grade the student's samples with reasoning-gym's scorer (`paced grade --audit`).
    """
    from paced_curate.comparison import METHODS, WEIGHTINGS
    from paced_curate.toy.pretrain import trained_model
    from paced_curate.toy.zoo import student_spec, teacher_spec

    work.mkdir(parents=True, exist_ok=True)
    say(f"== 1. the world: problems and models (work folder {work})")
    files = write_problem_sets(config, work)
    teacher = trained_model(teacher_spec(config.fast))
    student = trained_model(student_spec(config.fast))

    say(f"== 2. student rollouts ({config.engine}), grading (math-verify), PACED weights and the baselines' weights")
    rollout(config, files["pool"], student, work / "rollouts", config.samples)
    grade(work / "rollouts", work / "graded", audit=audit)
    needed = sorted({METHODS[name][0] for name in config.methods} | {"paced"})
    weights = {name: weight(work / "graded", work / f"weights_{slug(name)}.parquet", WEIGHTINGS[name], show_stats=name == "paced") for name in needed}

    say("== 3. teacher references: first for the problems PACED gives weight > 0, then for the rest")
    references, teacher_tokens, counts = teacher_references(config, files["pool"], weights, teacher, work)

    say("== 4. export: one dataset per weighting")
    exports = {name: export(files["pool"], weights[name], references[name], work / f"data_{slug(name)}", config) for name in needed}
    return Prepared(work=work, files=files, teacher=teacher, student=student, exports=exports, teacher_tokens=teacher_tokens, references=counts)


def slug(name: str) -> str:
    return name.replace(" ", "_")


def write_problem_sets(config: DemoConfig, work: Path) -> dict[str, Path]:
    """The pool and the held-out sets (README, "The built-in example", says why each is there).

    pool: additions over `pool_terms` mixed with products (`beyond_share`); heldout: fresh
    problems from the same distribution; hard: additions over `hard_terms`; probe: differences.
    `toy.world.world_sets` draws them: no held-out problem is a pool problem, even with its
    operands reordered.
    """
    from paced_curate.contamination import find_overlap

    sets = problem_sets(config)
    files = {}
    for name, problems in sets.items():
        files[name] = work / f"problems_{name}.jsonl"
        files[name].write_text("".join(json.dumps(p.row()) + "\n" for p in problems))
    counts = ", ".join(f"{name} {len(problems)}" for name, problems in sets.items())
    pool = [(p.problem_id, p.prompt, p.answer) for p in sets["pool"]]
    shared = sum(len(find_overlap([(p.problem_id, p.prompt, p.answer) for p in sets[name]], pool).eval_ids) for name in EVAL_SETS)
    assert shared == 0, f"{shared} held-out problems are pool problems"  # world_sets draws them disjoint (#21)
    say(f"problem sets from reasoning-gym basic_arithmetic: {counts} (pool: {1 - config.beyond_share:.0%} additions, {config.beyond_share:.0%} products); "
        f"held-out problems that are also pool problems (normalised prompt; gold answer + prompt): {shared}")
    return files


def problem_sets(config: DemoConfig) -> dict:
    """The world's problem sets for `config` (`toy.world.world_sets` with its sizes): {"pool", "heldout", "hard", "probe"} -> problems."""
    from paced_curate.toy.world import world_sets

    shares = {"add": 1 - config.beyond_share, "mul": config.beyond_share}
    return world_sets(config.seed, config.num_problems, config.num_eval, shares, config.pool_terms, config.hard_terms)


def rollout(config: DemoConfig, problems: Path, model: Path, output: Path, samples: int) -> int:
    """`paced rollout` with vLLM at temperature 1; returns the completion tokens generated."""
    from paced_curate.rollout import RolloutConfig, run_rollout
    from paced_curate.rollout.prompts import PromptFormat

    result = run_rollout(RolloutConfig(
        problems=str(problems), model=str(model), output=str(output), samples=samples, temperature=1.0,
        max_tokens=MAX_TOKENS, seed=config.seed, dtype="float32", prompt_format=PromptFormat(template=DEMO_TEMPLATE, chat_template="off"), overwrite=True,
        engine=config.engine,
    ))
    say(f"rollout {model.name}: {result.samples} samples, {result.tokens_per_second:,.0f} tokens/s, truncated {result.truncated}")
    return result.samples


def grade(rollouts: Path, output: Path, audit: bool) -> None:
    from paced_curate.grade import GradeConfig, run_grade
    from paced_curate.grade.metrics import render_grade_summary

    result = run_grade(GradeConfig(rollouts=str(rollouts), output=str(output), audit=AUDIT_GRADER if audit else None, overwrite=True))
    render_grade_summary(result.to_dict())


def weight(graded: Path, output: Path, settings: dict, show_stats: bool = False) -> Path:
    """`paced weight` with `settings` (`comparison.WEIGHTINGS`: kernel, band, floor)."""
    from paced_curate.weight import WeightConfig, render_weight_statistics, run_weight

    # Every demo stage starts afresh in its work folder; weights too, now that they need the flag (#26).
    result = run_weight(WeightConfig(graded=str(graded), output=str(output), overwrite=True, **settings))
    if show_stats:
        render_weight_statistics(result.statistics)
    return output


def teacher_references(config: DemoConfig, pool: Path, weights: dict[str, Path], teacher: Path, work: Path):
    """Teacher rollouts, graded: PACED's weight > 0 problems first, then the rest, joined for the baselines.

    Returns:
        (references per weighting, teacher tokens per weighting, counts): a weighting whose
        positive-weight problems all lie in PACED's set uses the first pass only.
    """
    import pyarrow as pa

    from paced_curate.io import read_table, write_table
    from paced_curate.schema import GRADES, WEIGHTS

    positive = {name: _positive_ids(read_table(str(path), WEIGHTS)) for name, path in weights.items()}
    rows = [json.loads(line) for line in pool.read_text().splitlines()]
    active = [row for row in rows if row["problem_id"] in positive["paced"]]
    rest = [row for row in rows if row["problem_id"] not in positive["paced"]]
    graded = {}
    for part, subset in (("active", active), ("rest", rest)):
        if not subset:
            continue
        problems = work / f"problems_pool_{part}.jsonl"
        problems.write_text("".join(json.dumps(row) + "\n" for row in subset))
        rollout(config, problems, teacher, work / f"teacher_rollouts_{part}", config.teacher_samples)
        grade(work / f"teacher_rollouts_{part}", work / f"teacher_graded_{part}", audit=False)
        graded[part] = read_table(str(work / f"teacher_graded_{part}"), GRADES)
    combined = pa.concat_tables(list(graded.values()), promote_options="permissive")
    write_table(combined, str(work / "teacher_graded_all.parquet"), GRADES)
    tokens = {}
    for pid, count in zip(combined.column("problem_id").to_pylist(), combined.column("completion_tokens").to_pylist()):
        tokens[pid] = tokens.get(pid, 0) + count
    all_tokens = sum(tokens.values())
    references, teacher_tokens = {}, {}
    for name, ids in positive.items():
        only_active = ids <= positive["paced"] and "active" in graded
        references[name] = work / ("teacher_graded_active" if only_active else "teacher_graded_all.parquet")
        teacher_tokens[name] = sum(tokens.get(pid, 0) for pid in ids)
    saved = all_tokens - teacher_tokens["paced"]
    say(
        f"PACED needs teacher references for {len(active)} of {len(rows)} pool problems (weight > 0): "
        f"{teacher_tokens['paced']:,} of {all_tokens:,} teacher tokens, saving {saved:,} ({saved / max(all_tokens, 1):.0%}); "
        f"the other {len(rest)} are generated only for the baselines"
    )
    counts = {"pool": len(rows), "paced_active": len(active), "rest": len(rest), "teacher_tokens_all": all_tokens}
    return references, teacher_tokens, counts


def _positive_ids(table) -> set[str]:
    return {pid for pid, w in zip(table.column("problem_id").to_pylist(), table.column("weight").to_pylist()) if w > 0}


def export(problems: Path, weights: Path, references: Path, output: Path, config: DemoConfig) -> Path:
    from paced_curate.export import ExportConfig, run_export

    result = run_export(ExportConfig(problems=str(problems), weights=str(weights), output=str(output), references=str(references), seed=config.seed, overwrite=True))
    say(f"export {output.name}: {result.num_rows} rows (dropped {result.dropped})")
    return output


def distill(data: Path, student: Path, teacher: Path, output: Path, config: DemoConfig, loss: str = "fkl-then-rkl", seed: int = 0, curve: Path | None = None):
    """`paced distill` with the config's budget; with `curve`, `--eval` on it every `curve_every` steps.

    Returns:
        The `DistillResult`.
    """
    from paced_curate.distill import DistillConfig, run_distill

    # the world's held-out sets are disjoint from the pool by construction; refuse to train if that ever breaks (#21)
    evaluation = dict(eval_problems=str(curve), eval_every=config.curve_every, eval_samples=config.eval_samples,
                      eval_max_tokens=MAX_TOKENS, eval_workers=1, eval_overlap="error") if curve else {}
    return run_distill(DistillConfig(
        shards=str(data), student=str(student), teacher=str(teacher), output=str(output), loss=loss,
        max_steps=config.distill_steps, batch_size=config.batch_size, lr=config.lr, seed=seed, overwrite=True,
        warmup_steps=10,  # the registered comparison's warm-up (README), pinned when distill's default began to scale with the run
        template=DEMO_TEMPLATE, chat_template="off", rkl_max_tokens=MAX_TOKENS, checkpoint_every=0, log_every=max(config.distill_steps // 2, 1),
        **evaluation,
    ))


def run_methods(config: DemoConfig, prepared: Prepared, seed: int, world: int) -> list[dict]:
    """Distill the student once per method with training seed `seed`; evaluate base and each on the held-out sets.

    Returns:
        One row per student: method, world, seed, accuracy per held-out set (and per skill on
        the pool set), training tokens, teacher tokens, learning curve [(step, pass@1)].
    """
    from paced_curate.comparison import METHODS

    rows = [{"method": "base", "world": world, "seed": seed, "train_tokens": 0, "teacher_tokens": 0, "curve": []}
            | evaluate(prepared.student, prepared.files, config, seed)]
    for name in config.methods:
        weighting, loss = METHODS[name]
        result = distill(prepared.exports[weighting], prepared.student, prepared.teacher, prepared.work / "runs" / f"{slug(name)}-seed{seed}",
                         config, loss=loss, seed=seed, curve=prepared.files["heldout"])
        curve = [(record["step"], record["pass_at_1"]) for record in result.evaluations]
        row = {"method": name, "world": world, "seed": seed, "train_tokens": result.response_tokens,
               "teacher_tokens": prepared.teacher_tokens[weighting], "curve": curve}
        row |= evaluate(Path(result.final_model), prepared.files, config, seed)
        rows.append(row)
        say(f"{name} (seed {seed}): " + ", ".join(f"{key} {row[key]:.3f}" for key in EVAL_SETS))
    return rows


def evaluate(model: Path, files: dict[str, Path], config: DemoConfig, seed: int) -> dict:
    """Accuracy (mean over samples, temperature 1) on each held-out set, and per skill on the pool set."""
    from paced_curate.grade import grade_table
    from paced_curate.problems import read_problems
    from paced_curate.rollout import RolloutConfig, rollout_table
    from paced_curate.rollout.hf_engine import HfEngine
    from paced_curate.rollout.prompts import PromptFormat

    engine = HfEngine.load(str(model), batch_size=256)
    out = {}
    for name in EVAL_SETS:
        settings = RolloutConfig(
            problems="-", model=str(model), output="-", engine="hf", samples=config.eval_samples, temperature=1.0,
            max_tokens=MAX_TOKENS, seed=seed, prompt_format=PromptFormat(template=DEMO_TEMPLATE, chat_template="off"),
        )
        graded = grade_table(rollout_table(settings, read_problems(str(files[name])), engine), grader="math", workers=1)
        verdicts = graded.column("verdict").to_pylist()
        out[name] = sum(v == "correct" for v in verdicts) / len(verdicts)
        if name == "heldout":
            for skill in ("add", "mul"):
                chosen = [v for v, s in zip(verdicts, graded.column("skill").to_pylist()) if s == skill]
                out[f"heldout_{skill}"] = sum(v == "correct" for v in chosen) / len(chosen) if chosen else None
    return out


def with_workdir(config: DemoConfig, workdir: Path, **changes) -> DemoConfig:
    """The config with another work folder (and other changes)."""
    return replace(config, workdir=str(workdir), **changes)
