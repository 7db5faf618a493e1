"""`paced demo`: the whole pipeline on the built-in arithmetic world, with real components.

    paced demo --workdir demo-work          # full (minutes); `--fast` is the small version the tests run

Steps (each says what it does on stderr, and every artifact lands in the work folder):
 1. the world: reasoning-gym problems (a training pool with a spread of difficulty, held-out
    hard and easy sets) and the teacher and student models (trained once, then cached);
 2. `paced rollout` (vLLM, K samples) of the student on the pool, `paced grade` (math-verify,
    audited with reasoning-gym's own scorer), `paced weight` (prints the pass-rate histogram);
 3. teacher references: `paced rollout` + `paced grade` with the teacher;
 4. `paced export` three datasets with the same references: PACED weights, uniform weights
    (the unweighted baseline) and the band kernel (the hard filter);
 5. `paced distill` (fkl-then-rkl) of the student on each, with the same step budget;
 6. evaluation of the base and the three trained students on held-out hard problems
    (accuracy) and easy problems (forgetting), printed as a table like the paper's.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa

from paced_curate.report import rows_table, say, show
from paced_curate.toy.world import make_problems

DEMO_TEMPLATE = "{prompt}\n"
MAX_TOKENS = 96
AUDIT_GRADER = "paced_curate.toy.world:reasoning_gym_grader"


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """Sizes of one demo run."""

    workdir: str = "demo-work"
    """Folder for every artifact (problems, rollouts, weights, exports, runs, results)."""
    fast: bool = False
    """A smaller, quicker version (used by the tests)."""
    seed: int = 0
    """Seed of the problem sets, rollouts and training."""
    num_problems: int = 600
    """Problems in the pool PACED weights."""
    pool_terms: tuple[int, int] = (2, 7)
    """Number of terms of the pool's problems (the difficulty ladder)."""
    hard_terms: tuple[int, int] = (6, 7)
    """Number of terms of the held-out hard problems."""
    easy_terms: tuple[int, int] = (2, 3)
    """Number of terms of the held-out easy problems."""
    num_eval: int = 100
    """Problems in each held-out set (hard and easy)."""
    samples: int = 8
    """K: student samples per problem."""
    eval_samples: int = 4
    """Samples per held-out problem (accuracy = mean over them)."""
    distill_steps: int = 150
    """Training steps for every distilled student."""
    batch_size: int = 32
    """Problems per training step."""
    lr: float = 1e-3
    """Peak learning rate of distillation."""

    @classmethod
    def small(cls, workdir: str, seed: int = 0) -> "DemoConfig":
        """The `--fast` sizes."""
        return cls(
            workdir=workdir, fast=True, seed=seed, num_problems=48, pool_terms=(2, 4), hard_terms=(4, 4), easy_terms=(2, 2),
            num_eval=16, samples=4, eval_samples=2, distill_steps=6, batch_size=8,
        )


@dataclass
class DemoResult:
    """Accuracy of each student on the held-out sets, and where everything was written."""

    workdir: str
    table: list[dict]
    seconds: float

    def to_dict(self) -> dict:
        return {"workdir": self.workdir, "table": self.table, "seconds": self.seconds}


def run_demo(config: DemoConfig) -> DemoResult:
    """Run the whole pipeline on the arithmetic world (see the module docstring)."""
    from paced_curate.toy.zoo import student_spec, teacher_spec
    from paced_curate.toy.pretrain import trained_model

    started = time.perf_counter()
    work = Path(config.workdir)
    work.mkdir(parents=True, exist_ok=True)
    say(f"== 1. the world: problems and models (work folder {work})")
    files = write_problem_sets(config, work)
    teacher = trained_model(teacher_spec(config.fast))
    student = trained_model(student_spec(config.fast))

    say("== 2. student rollouts (vLLM), grading (math-verify, audited by reasoning-gym), PACED weights")
    rollout(config, files["pool"], student, work / "rollouts", config.samples)
    grade(work / "rollouts", work / "graded", audit=True)
    weights = {
        "paced": weight(work / "graded", work / "weights.parquet", kernel="beta", show_stats=True),
        "unweighted": weight(work / "graded", work / "weights_uniform.parquet", kernel="uniform"),
        "hard filter": weight(work / "graded", work / "weights_band.parquet", kernel="band"),
    }

    say("== 3. teacher references: teacher rollouts, graded")
    rollout(config, files["pool"], teacher, work / "teacher_rollouts", 2)
    grade(work / "teacher_rollouts", work / "teacher_graded", audit=False)

    say("== 4. export: one dataset per weighting, same references")
    exports = {name: export(files["pool"], path, work / "teacher_graded", work / f"data_{slug(name)}", config) for name, path in weights.items()}

    say("== 5. distill the student on each (fkl-then-rkl, same step budget)")
    students = {"teacher": teacher, "base": student}
    for name, data in exports.items():
        students[name] = distill(data, student, teacher, work / "runs" / slug(name), config)

    say("== 6. evaluate on held-out hard problems (accuracy) and easy problems (forgetting)")
    table = evaluate_students(students, files, config)
    show_table(table)
    result = DemoResult(workdir=str(work), table=table, seconds=time.perf_counter() - started)
    (work / "results.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    say(f"done in {result.seconds:.0f} s; everything is in {work}")
    return result


def slug(name: str) -> str:
    return name.replace(" ", "_")


def write_problem_sets(config: DemoConfig, work: Path) -> dict[str, Path]:
    """The training pool, and held-out hard and easy sets (term ranges from the config)."""
    sets = {
        "pool": make_problems(config.seed * 10 + 1, config.num_problems, config.pool_terms, prefix="pool"),
        "hard": make_problems(config.seed * 10 + 2, config.num_eval, config.hard_terms, prefix="hard"),
        "easy": make_problems(config.seed * 10 + 3, config.num_eval, config.easy_terms, prefix="easy"),
    }
    files = {}
    for name, problems in sets.items():
        files[name] = work / f"problems_{name}.jsonl"
        files[name].write_text("".join(json.dumps(p.row()) + "\n" for p in problems))
    counts = ", ".join(f"{name} {len(problems)}" for name, problems in sets.items())
    say(f"problem sets from reasoning-gym basic_arithmetic: {counts}")
    return files


def rollout(config: DemoConfig, problems: Path, model: Path, output: Path, samples: int) -> None:
    from paced_curate.rollout import RolloutConfig, run_rollout
    from paced_curate.rollout.prompts import PromptFormat

    result = run_rollout(RolloutConfig(
        problems=str(problems), model=str(model), output=str(output), samples=samples, temperature=1.0,
        max_tokens=MAX_TOKENS, seed=config.seed, dtype="float32", prompt_format=PromptFormat(template=DEMO_TEMPLATE, chat_template="off"), overwrite=True,
    ))
    say(f"rollout {model.name}: {result.samples} samples, {result.tokens_per_second:,.0f} tokens/s, truncated {result.truncated}")


def grade(rollouts: Path, output: Path, audit: bool) -> None:
    from paced_curate.grade import GradeConfig, run_grade
    from paced_curate.grade.metrics import render_grade_summary

    result = run_grade(GradeConfig(rollouts=str(rollouts), output=str(output), audit=AUDIT_GRADER if audit else None, overwrite=True))
    render_grade_summary(result.to_dict())


def weight(graded: Path, output: Path, kernel: str, show_stats: bool = False) -> Path:
    from paced_curate.weight import WeightConfig, render_weight_statistics, run_weight

    options = {"low": 0.125, "high": 0.875} if kernel == "band" else {}
    result = run_weight(WeightConfig(graded=str(graded), output=str(output), kernel=kernel, **options))
    if show_stats:
        render_weight_statistics(result.statistics)
    return output


def export(problems: Path, weights: Path, references: Path, output: Path, config: DemoConfig) -> Path:
    from paced_curate.export import ExportConfig, run_export

    result = run_export(ExportConfig(problems=str(problems), weights=str(weights), output=str(output), references=str(references), seed=config.seed, overwrite=True))
    say(f"export {output.name}: {result.num_rows} rows (dropped {result.dropped})")
    return output


def distill(data: Path, student: Path, teacher: Path, output: Path, config: DemoConfig, loss: str = "fkl-then-rkl") -> Path:
    from paced_curate.distill import DistillConfig, run_distill

    result = run_distill(DistillConfig(
        shards=str(data), student=str(student), teacher=str(teacher), output=str(output), loss=loss,
        max_steps=config.distill_steps, batch_size=config.batch_size, lr=config.lr, seed=config.seed, overwrite=True,
        template=DEMO_TEMPLATE, chat_template="off", rkl_max_tokens=MAX_TOKENS, checkpoint_every=0, log_every=50,
    ))
    return Path(result.final_model)


def evaluate_students(students: dict[str, Path], files: dict[str, Path], config: DemoConfig) -> list[dict]:
    """Accuracy (mean over samples) of each student on the hard and easy held-out sets."""
    from paced_curate.grade import grade_table
    from paced_curate.problems import read_problems
    from paced_curate.rollout import RolloutConfig, rollout_table
    from paced_curate.rollout.hf_engine import HfEngine
    from paced_curate.rollout.prompts import PromptFormat

    sets = {name: read_problems(str(files[name])) for name in ("hard", "easy")}
    rows = []
    for name, path in students.items():
        engine = HfEngine.load(str(path), batch_size=256)
        row = {"student": name}
        for set_name, problems in sets.items():
            settings = RolloutConfig(
                problems="-", model=str(path), output="-", engine="hf", samples=config.eval_samples, temperature=1.0,
                max_tokens=MAX_TOKENS, seed=config.seed + 7, prompt_format=PromptFormat(template=DEMO_TEMPLATE, chat_template="off"),
            )
            graded = grade_table(rollout_table(settings, problems, engine), grader="math")
            verdicts = graded.column("verdict").to_pylist()
            row[set_name] = sum(v == "correct" for v in verdicts) / len(verdicts)
        rows.append(row)
    base = next(row for row in rows if row["student"] == "base")
    for row in rows:
        row["hard_gain"] = row["hard"] - base["hard"]
        row["easy_change"] = row["easy"] - base["easy"]
    return rows


def show_table(table: list[dict]) -> None:
    show(rows_table(
        "held-out accuracy (mean over samples); easy change < 0 is forgetting",
        ["student", "hard", "vs base", "easy", "vs base"],
        [[r["student"], r["hard"], r["hard_gain"], r["easy"], r["easy_change"]] for r in table],
    ))
