"""`run_grade`: give every rollout sample a verdict and write the grades table, resumably.

    result = run_grade(GradeConfig(rollouts="rollouts/", output="graded/", grader="math"))
    graded = grade_table(rollouts_table, grader="math")          # in memory, no files

Rows keep the input order. A sample cut off at the token limit (finish_reason=length) gets
`truncated` and a failed rollout (finish_reason=error) gets `error` with its message; neither is
graded. The others go to the worker pool (`pool.py`), one task per distinct (grader, last boxed
answer or whole completion, gold), so samples that end in the same answer are graded once.
`scored` says whether a sample counts in the pass rate: correct, incorrect and no_answer
always; truncated when `--truncated wrong` (default); timeout and error when `--errors wrong`
(default `exclude`: a grading failure is recorded, never silently scored wrong).

A directory output is written in parts of `rows_per_part` rows; a rerun grades only the rows
after the last finished part.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import pyarrow as pa

from paced_curate.errors import ConfigError, ResumeMismatch
from paced_curate.grade.answers import ANSWER_FORMATS, DEFAULT_REASONING_TAGS, parse_reasoning_tags
from paced_curate.grade.graders import DEFAULT_TOLERANCE, GRADED_VERDICTS, GraderSpec, Outcome, load_grader, reduce_completion
from paced_curate.grade.metrics import grade_summary
from paced_curate.grade.pool import GradingPool
from paced_curate.io import STDIO, claim_stdout, input_digest, write_table
from paced_curate.partdir import PartDirectory, package_versions
from paced_curate.report import StageProgress, say
from paced_curate.samples import SampleFields, read_generations
from paced_curate.rollout.prompt_record import KEY as PROMPT_KEY
from paced_curate.rollout.prompt_record import inherited_prompt_record, schema_record
from paced_curate.schema import GRADES, ROLLOUT_FIELDS, ROLLOUTS, conform, stage_metadata

TRUNCATED_POLICIES = ("wrong", "exclude")
ERROR_POLICIES = ("exclude", "wrong")
GRADE_FIELDS = {f.name: f for f in GRADES.fields + GRADES.optional}
SUMMARY_COLUMNS = ["problem_id", "sample_index", "answer", "extracted_answer", "verdict", "scored"]


def _default_workers() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True, kw_only=True)
class GradeConfig:
    """Settings of `paced grade` (one field per flag)."""

    rollouts: str
    """The generations: a paced rollouts folder or file, or any tool's JSONL/JSON/CSV/Parquet file,
    Parquet folder or local Hugging Face dataset, or "-" for an Arrow stream on stdin."""
    output: str
    """Output folder (resumable part files), a NAME.parquet file, or "-" for an Arrow stream on stdout."""
    grader: str = "math"
    """math, exact, numeric, choice, or module:function (your own: (completion, gold) -> (verdict, extracted) or bool)."""
    workers: int = field(default_factory=_default_workers)
    """Grading processes; default: the number of CPUs."""
    timeout: float = 5.0
    """Seconds one sample may take; past it the worker is killed and the sample gets 'timeout'."""
    truncated: str = "wrong"
    """Samples cut off at the token limit: 'wrong' counts them as failures, 'exclude' leaves them out of the pass rate."""
    errors: str = "exclude"
    """Samples whose grading failed (timeout, error): 'exclude' leaves them out of the pass rate, 'wrong' counts them as failures."""
    tolerance: float | None = None
    """numeric grader: absolute or relative tolerance; default 1e-6."""
    audit: str | None = None
    """A second grader to grade every sample with as well; the disagreement rate is reported."""
    reasoning_tags: tuple[str, ...] = DEFAULT_REASONING_TAGS
    """Reasoning-trace tag pairs "OPEN,CLOSE": only the text after the last closing tag is graded, and
    a trace that never closes is no_answer (every grader, plugins included); ("none",) turns it off."""
    answer_format: str = "any"
    """any: the last box, else an "answer is" phrase, else the grader's fallback (the last number, ...);
    boxed: only the last \\boxed{} counts (no box: no_answer), for datasets that demand a boxed answer."""
    rows_per_part: int = 20000
    """Rows per part file of a directory output."""
    overwrite: bool = False
    """Delete an existing output and start afresh instead of resuming it."""
    fields: SampleFields = field(default_factory=SampleFields)
    """How generations written by other tools are read: column names and the --problems join
    (see paced_curate/samples.py)."""
    ray: str | None = None
    """Grade as Ray CPU tasks on a cluster: local, auto, or an address; --workers is then unused (#17)."""

    def __post_init__(self) -> None:
        problems = []
        if self.workers < 1:
            problems.append(f"--workers must be at least 1 (got {self.workers})")
        if not self.timeout > 0 or self.timeout == float("inf"):
            problems.append(f"--timeout must be a positive number of seconds (got {self.timeout})")
        if self.truncated not in TRUNCATED_POLICIES:
            problems.append(f"--truncated must be one of {', '.join(TRUNCATED_POLICIES)} (got {self.truncated!r})")
        if self.errors not in ERROR_POLICIES:
            problems.append(f"--errors must be one of {', '.join(ERROR_POLICIES)} (got {self.errors!r})")
        if self.tolerance is not None and not self.tolerance >= 0:
            problems.append(f"--tolerance must be >= 0 (got {self.tolerance})")
        if self.ray is not None and not self.ray.strip():  # (#17)
            problems.append("--ray needs an address: local, auto, or HOST:PORT / ray://HOST:PORT")
        if self.rows_per_part < 1:
            problems.append(f"--rows-per-part must be at least 1 (got {self.rows_per_part})")
        if self.answer_format not in ANSWER_FORMATS:
            problems.append(f"--answer-format must be one of {', '.join(ANSWER_FORMATS)} (got {self.answer_format!r})")
        try:
            parse_reasoning_tags(self.reasoning_tags)
        except ConfigError as error:
            problems.append(str(error))
        for name in (self.grader, self.audit):
            if name is not None:
                try:
                    load_grader(name)
                except ConfigError as error:
                    problems.append(str(error))
        if problems:
            raise ConfigError("; ".join(problems))

    def specs(self) -> tuple[GraderSpec, ...]:
        """The grader's spec, then the audit grader's if any."""
        names = (self.grader,) if self.audit is None else (self.grader, self.audit)
        tags = parse_reasoning_tags(self.reasoning_tags)
        return tuple(load_grader(name, self.tolerance, tags, self.answer_format) for name in names)

    def settings(self) -> dict:
        """What changes the rows: a resumed output must have been made with the same."""
        numeric = "numeric" in (self.grader, self.audit)
        tolerance = (DEFAULT_TOLERANCE if self.tolerance is None else self.tolerance) if numeric else None
        return {
            "grader": self.grader,
            "audit": self.audit,
            "truncated": self.truncated,
            "errors": self.errors,
            "timeout": self.timeout,
            "tolerance": tolerance,
            "reasoning_tags": [list(pair) for pair in parse_reasoning_tags(self.reasoning_tags)],
            "answer_format": self.answer_format,
        } | {name: value for name, value in asdict(self.fields).items() if value is not None and name != "problems"}


@dataclass(frozen=True)
class GradeResult:
    """What one `run_grade` call did, and the summary of the whole output."""

    output: str
    grader: str
    audit_grader: str | None
    samples: int
    """Rows in the output."""
    graded: int
    """Rows graded by this call."""
    resumed: int
    """Rows the output already held."""
    distinct_pairs: int
    """Grading tasks run: distinct (grader, answer, gold) triples among the rows that needed grading."""
    dedup_ratio: float
    """Gradings needed / tasks run (1.0 when nothing was graded)."""
    seconds: float
    timeouts: int
    """Samples (distinct pairs) that ran past --timeout."""
    worker_deaths: int
    summary: dict
    """`metrics.grade_summary` of the whole output: verdicts, rates, pass-rate spread, audit."""

    @property
    def samples_per_second(self) -> float:
        return self.graded / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        """Flat JSON-ready form (the summary's keys at the top level)."""
        out = asdict(self)
        summary = out.pop("summary")
        return out | summary | {"samples_per_second": self.samples_per_second}


class _SliceGrader:
    """Grades slices of a rollouts table with one pool, reusing verdicts across slices."""

    def __init__(self, specs: tuple[GraderSpec, ...], pool: GradingPool, truncated: str, errors: str) -> None:
        self.specs, self.pool, self.truncated, self.errors = specs, pool, truncated, errors
        self.cache: dict[tuple[int, str, str], Outcome] = {}
        self.requests = 0

    def grade(self, table: pa.Table, advance: Callable[[int], None] | None = None) -> pa.Table:
        """The grades table of `table` (a conformed rollouts table), rows in the same order."""
        completions = table.column("completion").to_pylist()
        golds = table.column("answer").to_pylist()
        finish = table.column("finish_reason").to_pylist()
        outcomes: list[list[Outcome | None]] = [[None] * table.num_rows for _ in self.specs]
        waiting: dict[tuple[int, str, str], list[int]] = {}
        outstanding = [0] * table.num_rows
        for row, reason in enumerate(finish):
            if reason != "stop":
                continue
            for index, spec in enumerate(self.specs):
                reduced = reduce_completion(spec, completions[row])
                if reduced is None:  # an unclosed trace, an open last box, no box in boxed mode
                    outcomes[index][row] = Outcome("no_answer", None)
                    continue
                key = (index, reduced, golds[row])
                self.requests += 1
                if key in self.cache:
                    outcomes[index][row] = self.cache[key]
                else:
                    waiting.setdefault(key, []).append(row)
                    outstanding[row] += 1
        if advance is not None:
            advance(sum(1 for count in outstanding if count == 0))
        tasks = list(waiting)

        def done(task_id: int, outcome: Outcome) -> None:
            key = tasks[task_id]
            self.cache[key] = outcome
            finished = 0
            for row in waiting[key]:
                outcomes[key[0]][row] = outcome
                outstanding[row] -= 1
                finished += outstanding[row] == 0
            if advance is not None and finished:
                advance(finished)

        self.pool.run(tasks, done)
        return self._table(table, outcomes)

    def _table(self, table: pa.Table, outcomes: list[list[Outcome | None]]) -> pa.Table:
        finish = table.column("finish_reason").to_pylist()
        errors_in = table.column("error").to_pylist()
        extracted, verdicts, scored, errors = [], [], [], []
        for row, reason in enumerate(finish):
            error = errors_in[row]
            if reason == "length":
                outcome, counts = Outcome("truncated", None), self.truncated == "wrong"
            elif reason == "error":
                outcome, counts = Outcome("error", None), self.errors == "wrong"
                error = error or "the rollout failed (no message)"
            else:
                outcome = outcomes[0][row]
                counts = outcome.verdict in GRADED_VERDICTS or self.errors == "wrong"
                error = outcome.error if outcome.error is not None else error
            extracted.append(outcome.extracted)
            verdicts.append(outcome.verdict)
            scored.append(counts)
            errors.append(error)
        new = {
            "error": errors,
            "extracted_answer": extracted,
            "verdict": verdicts,
            "grader": [self.specs[0].name] * table.num_rows,
            "scored": scored,
        }
        if len(self.specs) > 1:
            new["audit_verdict"] = [
                outcomes[1][row].verdict if reason == "stop" else verdict for row, (reason, verdict) in enumerate(zip(finish, verdicts))
            ]
        names = [f.name for f in ROLLOUT_FIELDS] + [name for name in GRADE_FIELDS if name in new and name != "error"]
        columns = [pa.array(new[name], GRADE_FIELDS[name].type) if name in new else table.column(name) for name in names]
        fields = [GRADE_FIELDS[name] for name in names]
        # Passthrough columns (difficulty, source, ...) follow the declared ones.
        for name in table.column_names:
            if name not in GRADE_FIELDS:
                columns.append(table.column(name))
                fields.append(table.schema.field(name))
        return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def grade_table(
    rollouts: pa.Table,
    grader: str = "math",
    *,
    workers: int | None = None,
    timeout: float = 5.0,
    truncated: str = "wrong",
    errors: str = "exclude",
    tolerance: float | None = None,
    reasoning_tags: tuple[str, ...] = DEFAULT_REASONING_TAGS,
    answer_format: str = "any",
) -> pa.Table:
    """Grade a rollouts table in memory (no files, no progress display).

    The workers come from a multiprocessing fork server, which imports the calling script's
    main module: in a script, call this under `if __name__ == "__main__":`.

    Args:
        rollouts: a rollouts table (`schema.ROLLOUTS`, passthrough columns allowed).
        grader: as `GradeConfig.grader`.
        workers: grading processes; default the number of CPUs.
        timeout, truncated, errors, tolerance, reasoning_tags, answer_format: as in `GradeConfig`.

    Returns:
        The grades table (`schema.GRADES`), rows in input order.

    Raises:
        ConfigError: a bad setting or grader. SchemaError: `rollouts` is not a rollouts table.
    """
    config = GradeConfig(
        rollouts="(in memory)", output="(in memory)", grader=grader, workers=workers or _default_workers(),
        timeout=timeout, truncated=truncated, errors=errors, tolerance=tolerance,
        reasoning_tags=(reasoning_tags,) if isinstance(reasoning_tags, str) else tuple(reasoning_tags), answer_format=answer_format,
    )
    table = conform(rollouts, ROLLOUTS, "rollouts table")
    specs = config.specs()
    with GradingPool(specs, workers=config.workers, timeout=config.timeout) as pool:
        graded = _SliceGrader(specs, pool, truncated, errors).grade(table)
    return graded.replace_schema_metadata(stage_metadata(GRADES.stage, {"settings": config.settings()}))


def _check_prefix(done: pa.Table, table: pa.Table, output: str) -> None:
    """A resumed output must hold the first rows of this input, in order."""
    if done.num_rows > table.num_rows:
        raise ResumeMismatch(f"{output}: holds {done.num_rows:,} rows but the rollouts have {table.num_rows:,}; pass --overwrite")
    for name in ("problem_id", "sample_index"):
        if not done.column(name).equals(table.column(name).slice(0, done.num_rows)):
            raise ResumeMismatch(f"{output}: its rows are not the first rows of these rollouts; pass --overwrite or choose another -o")


def run_grade(config: GradeConfig) -> GradeResult:
    """Grade every sample of `config.rollouts` and write the grades table.

    Raises:
        ConfigError: a bad setting or grader (checked before any work).
        InputError, SchemaError: the rollouts are missing, unreadable or lack columns.
        ResumeMismatch: the output was made with other settings or other rollouts.
    """
    specs = config.specs()
    if config.tolerance is not None and "numeric" not in (config.grader, config.audit):
        say(f"NOTE: --tolerance has no effect: it applies to the numeric grader only (grader is {config.grader})")
    if config.output == STDIO:
        claim_stdout()  # before the pool starts, so no worker inherits the data stream
    # The pool's fork server starts now and imports math-verify while the input is read.
    if config.ray is None:
        pool = GradingPool(specs, workers=config.workers, timeout=config.timeout)
    else:  # (#17) the same tasks as Ray CPU tasks, each with its own hard-kill pool
        from paced_curate.grade.ray_grade import ray_grading_pool

        pool = ray_grading_pool(config.ray, specs, timeout=config.timeout)
    with pool as pool:
        return _grade_into_output(config, specs, pool)


def _grade_into_output(config: GradeConfig, specs: tuple[GraderSpec, ...], pool: GradingPool) -> GradeResult:
    table = read_generations(config.rollouts, config.fields)
    settings = config.settings()
    inputs = {"rollouts": {"path": config.rollouts, "sha256": input_digest(config.rollouts)}}
    if config.fields.problems is not None:
        inputs["problems"] = {"path": config.fields.problems, "sha256": input_digest(config.fields.problems)}
    # Carried on to weight and export, which rebuild the student's prompts from it (#14).
    record = schema_record(table.schema) or (None if config.rollouts == STDIO else inherited_prompt_record(config.rollouts))
    out = None
    resumed = 0
    if config.output != STDIO:
        out = PartDirectory.open(config.output, spec=GRADES, settings=settings, inputs=inputs, overwrite=config.overwrite)
        if record is not None:
            out.provenance[PROMPT_KEY] = record
        done = out.read_done(["problem_id", "sample_index"])
        if done is not None:
            _check_prefix(done, table, config.output)
            resumed = done.num_rows
            say(f"resuming {config.output}: {resumed:,} of {table.num_rows:,} samples already graded")
    started = time.perf_counter()
    grader = _SliceGrader(specs, pool, config.truncated, config.errors)
    with StageProgress("grade", total=table.num_rows, unit="samples", completed=resumed, rates={"samples": "samples/s"}) as progress:

        def advance(count: int) -> None:
            progress.advance(count, samples=count)

        if out is None:
            graded = grader.grade(table, advance)
        else:
            for offset in range(resumed, table.num_rows, config.rows_per_part):
                out.write_part(grader.grade(table.slice(offset, config.rows_per_part), advance))
            if out.num_parts == 0:
                out.write_part(grader.grade(table, advance))  # no rows at all: an empty, readable part
    seconds = time.perf_counter() - started
    tasks = len(grader.cache)
    if out is None:
        provenance = {"settings": settings, "inputs": inputs, "versions": package_versions()}
        if record is not None:
            provenance[PROMPT_KEY] = record
        write_table(graded, STDIO, GRADES, provenance)
        summary = grade_summary(graded)
    else:
        columns = SUMMARY_COLUMNS + (["audit_verdict"] if config.audit else [])
        summary = grade_summary(out.read_done(columns))
    result = GradeResult(
        output=config.output,
        grader=config.grader,
        audit_grader=config.audit,
        samples=table.num_rows,
        graded=table.num_rows - resumed,
        resumed=resumed,
        distinct_pairs=tasks,
        dedup_ratio=grader.requests / tasks if tasks else 1.0,
        seconds=seconds,
        timeouts=pool.timeouts,
        worker_deaths=pool.deaths,
        summary=summary,
    )
    if out is not None:
        out.finish({k: v for k, v in result.to_dict().items() if k != "output"})
    return result
