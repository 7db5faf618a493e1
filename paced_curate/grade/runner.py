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

Before any work, every distinct gold is checked with the grader (golds.py): one it cannot read
is refused in one line. With `--judge`, samples the rules call incorrect or no_answer are put to
a verifier model (judge.py). After grading, the default audit reads a bounded sample with
math-verify alone and reports how the verdicts and weights would differ (audit.py).

A directory output is written in parts of `rows_per_part` rows; a rerun grades only the rows
after the last finished part.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import pyarrow as pa

from paced_curate.errors import ConfigError, ResumeMismatch
from paced_curate.grade.answers import ANSWER_FORMATS, DEFAULT_REASONING_TAGS, answer_region, answer_text, parse_reasoning_tags
from paced_curate.grade.audit import independent_audit
from paced_curate.grade.golds import PoolLayout, check_golds
from paced_curate.grade.graders import DEFAULT_TOLERANCE, GRADED_VERDICTS, INDEPENDENT, GraderSpec, Outcome, load_grader, reduce_completion
from paced_curate.grade.judge import JUDGED, Judge, JudgeItem, JudgeSettings, load_prompt
from paced_curate.grade.summary import grade_summary
from paced_curate.grade.pool import GradingPool
from paced_curate.io import STDIO, input_digest
from paced_curate.partdir import PartDirectory, claim_output, run_provenance
from paced_curate.pipes import ArrowStdout, claim_stdout
from paced_curate.report import StageProgress, say
from paced_curate.samples import SampleFields, read_located_generations
from paced_curate.rollout.prompt_record import KEY as PROMPT_KEY
from paced_curate.rollout.prompt_record import inherited_prompt_record, schema_record
from paced_curate.schema import GRADES, ROLLOUT_FIELDS, ROLLOUTS, conform, stage_metadata

TRUNCATED_POLICIES = ("wrong", "exclude")
ERROR_POLICIES = ("exclude", "wrong")
GRADE_FIELDS = {f.name: f for f in GRADES.fields + GRADES.optional}
SUMMARY_COLUMNS = ["problem_id", "sample_index", "answer", "extracted_answer", "verdict", "scored", "grader", "error"]
JUDGE_COLUMNS = ["rule_verdict", "judge_verdict", "judge_reply"]
AUDIT_COLUMNS = ["problem_id", "sample_index", "completion", "answer", "extracted_answer", "verdict"]
NO_AUDIT = ("none",)


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
    audit: str | None = INDEPENDENT
    """math-verify (default): read a bounded sample (`audit_samples`) with math-verify alone on the
    whole completion and report how often it disagrees and what that does to pass rates and
    weights; a grader name: grade every sample with it too (an `audit_verdict` column); none or
    None: no audit."""
    audit_samples: int = 200
    """Most samples the math-verify audit reads (whole problems, chosen by a hash of their id); 0 for all."""
    reasoning_tags: tuple[str, ...] = DEFAULT_REASONING_TAGS
    """Reasoning-trace tag pairs "OPEN,CLOSE": only the text after the last closing tag is graded, and
    a trace that never closes is no_answer (every grader, plugins included); ("none",) turns it off."""
    answer_format: str = "any"
    """any: the last box, else an "answer is" phrase, else the grader's fallback (the last number, ...);
    boxed: only the last \\boxed{} counts (no box: no_answer), for datasets that demand a boxed answer."""
    rows_per_part: int = 20000
    """Rows per part file of a folder output (per record batch of an Arrow stream on stdout)."""
    overwrite: bool = False
    """Delete an existing output and start afresh instead of resuming it."""
    fields: SampleFields = field(default_factory=SampleFields)
    """How generations written by other tools are read: column names and the --problems join
    (see paced_curate/samples.py)."""
    ray: str | None = None
    """Grade as Ray CPU tasks on a cluster: local, auto, or an address; --workers is then unused (#17)."""
    judge: str | None = None
    """A verifier model's OpenAI base URL: samples the rules call incorrect or no_answer are put to it (#23)."""
    judge_model: str | None = None
    """The verifier's served model name (with `judge`)."""
    judge_prompt: str | None = None
    """A file with the judge's prompt template ({question}, {answer}, {response}, {gold}); default: judge.DEFAULT_PROMPT."""
    judge_concurrency: int = 8
    """Most judge requests in flight."""
    judge_max_tokens: int = 64
    """Longest judge reply, in tokens."""

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
        for name in (self.grader, self.audit_grader):
            if name is not None:
                try:
                    load_grader(name)
                except ConfigError as error:
                    problems.append(str(error))
        if self.audit_samples < 0:
            problems.append(f"--audit-samples must be >= 0 (got {self.audit_samples})")
        if (self.judge is None) != (self.judge_model is None):
            problems.append("--judge and --judge-model go together: the server's URL and the model it serves")
        elif self.judge is not None:
            try:
                self.judge_settings()
            except ConfigError as error:
                problems.append(str(error))
        if problems:
            raise ConfigError("; ".join(problems))

    @property
    def audit_grader(self) -> str | None:
        """The grader an audit grades every sample with, or None (no audit, or the math-verify reading)."""
        return None if self.audit is None or self.audit in NO_AUDIT or self.audit == INDEPENDENT else self.audit

    def judge_settings(self) -> JudgeSettings | None:
        """The judge's settings, or None without --judge.

        Raises:
            ConfigError: a bad URL, model, prompt file or number.
        """
        if self.judge is None or self.judge_model is None:
            return None
        return JudgeSettings(url=self.judge, model=self.judge_model, prompt=load_prompt(self.judge_prompt),
                             concurrency=self.judge_concurrency, max_tokens=self.judge_max_tokens)

    def specs(self) -> tuple[GraderSpec, ...]:
        """The grader's spec, then the audit grader's if any."""
        names = (self.grader,) if self.audit_grader is None else (self.grader, self.audit_grader)
        tags = parse_reasoning_tags(self.reasoning_tags)
        return tuple(load_grader(name, self.tolerance, tags, self.answer_format) for name in names)

    def settings(self) -> dict:
        """What changes the rows: a resumed output must have been made with the same."""
        numeric = "numeric" in (self.grader, self.audit_grader)
        tolerance = (DEFAULT_TOLERANCE if self.tolerance is None else self.tolerance) if numeric else None
        judge = self.judge_settings()
        # The math-verify audit writes no column, so it is not a setting a resumed output must share.
        return {
            "grader": self.grader,
            "audit": self.audit_grader,
            "truncated": self.truncated,
            "errors": self.errors,
            "timeout": self.timeout,
            "tolerance": tolerance,
            "reasoning_tags": [list(pair) for pair in parse_reasoning_tags(self.reasoning_tags)],
            "answer_format": self.answer_format,
        } | ({} if judge is None else {"judge": {
            "model": judge.model, "prompt_sha256": hashlib.sha256(judge.prompt.encode()).hexdigest()[:16], "max_tokens": judge.max_tokens,
        }}) | {name: value for name, value in asdict(self.fields).items() if value is not None and name != "problems"}


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

    def __init__(self, specs: tuple[GraderSpec, ...], pool: GradingPool, truncated: str, errors: str, judge: Judge | None = None) -> None:
        self.specs, self.pool, self.truncated, self.errors, self.judge = specs, pool, truncated, errors, judge
        self.cache: dict[tuple[int, str, str], Outcome] = {}
        self.requests = 0

    def grade(self, table: pa.Table, advance: Callable[[int], None] | None = None) -> pa.Table:
        """The grades table of `table` (a conformed rollouts table), rows in the same order."""
        completions = table.column("completion").to_pylist()
        golds = table.column("answer").to_pylist()
        finish = table.column("finish_reason").to_pylist()
        outcomes: list[list[Outcome | None]] = [[None] * table.num_rows for _ in self.specs]
        reduced_main: list[str | None] = [None] * table.num_rows
        waiting: dict[tuple[int, str, str], list[int]] = {}
        outstanding = [0] * table.num_rows
        for row, reason in enumerate(finish):
            if reason != "stop":
                continue
            for index, spec in enumerate(self.specs):
                reduced = reduce_completion(spec, completions[row])
                if index == 0:
                    reduced_main[row] = reduced
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
        judged = None if self.judge is None else self._ask_judge(table, outcomes[0], reduced_main)
        return self._table(table, outcomes, judged)

    def _ask_judge(self, table: pa.Table, outcomes: list[Outcome | None], reduced: list[str | None]) -> dict[int, tuple[str, str]]:
        """The judge's (verdict, reply) for the rows the rules call incorrect or no_answer."""
        rows = [row for row, outcome in enumerate(outcomes) if outcome is not None and outcome.verdict in JUDGED and reduced[row] is not None]
        if not rows:
            return {}
        spec = self.specs[0]
        prompts, completions, golds = (table.column(name).to_pylist() for name in ("prompt", "completion", "answer"))
        items = []
        for row in rows:
            region = answer_region(completions[row], spec.reasoning_tags) or ""
            response = region if spec.is_plugin else answer_text(region)
            answer = outcomes[row].extracted or reduced[row] or ""
            items.append(JudgeItem(question=prompts[row], answer=answer, response=response, gold=golds[row]))
        return dict(zip(rows, self.judge.ask(items)))

    def _table(self, table: pa.Table, outcomes: list[list[Outcome | None]], judged: dict[int, tuple[str, str]] | None = None) -> pa.Table:
        finish = table.column("finish_reason").to_pylist()
        errors_in = table.column("error").to_pylist()
        extracted, verdicts, scored, errors, rule_verdicts = [], [], [], [], []
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
            rule_verdicts.append(outcome.verdict)
            verdict = outcome.verdict
            if judged and row in judged and judged[row][0] == "correct":
                verdict = "correct"  # the judge's second opinion; the rules' verdict stays in rule_verdict
            extracted.append(outcome.extracted)
            verdicts.append(verdict)
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
                outcomes[1][row].verdict if reason == "stop" else verdict for row, (reason, verdict) in enumerate(zip(finish, rule_verdicts))
            ]
        if judged is not None:
            new["rule_verdict"] = rule_verdicts
            new["judge_verdict"] = [judged[row][0] if row in judged else None for row in range(table.num_rows)]
            new["judge_reply"] = [judged[row][1] if row in judged else None for row in range(table.num_rows)]
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
    """Grade a rollouts table in memory (no files, no progress display, no audit).

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
        InputError: the grader cannot read a gold answer (golds.check_golds).
    """
    config = GradeConfig(
        rollouts="(in memory)", output="(in memory)", grader=grader, workers=workers or _default_workers(),
        timeout=timeout, truncated=truncated, errors=errors, tolerance=tolerance, audit=None,
        reasoning_tags=(reasoning_tags,) if isinstance(reasoning_tags, str) else tuple(reasoning_tags), answer_format=answer_format,
    )
    table = conform(rollouts, ROLLOUTS, "rollouts table")
    specs = config.specs()
    layout = PoolLayout.build(specs)
    with GradingPool(layout.specs, workers=config.workers, timeout=config.timeout) as pool:
        check_golds(table, layout, pool, "rollouts table")
        graded = _SliceGrader(specs, pool, truncated, errors).grade(table)
    return graded.replace_schema_metadata(stage_metadata(GRADES.stage, {"settings": config.settings()}))


def _grade_to_stdout(
    table: pa.Table, grader: _SliceGrader, advance: Callable[[int], None], rows_per_part: int, provenance: dict, record: dict | None
) -> pa.Table:
    """Grade `table` into an Arrow stream on stdout, a record batch per `rows_per_part` rows as they are graded.

    The stream's schema metadata holds the provenance a part file records, the prompt record
    included (#26). Returns the whole grades table (for the summary).
    """
    if record is not None:
        provenance = provenance | {PROMPT_KEY: record}
    metadata = stage_metadata(GRADES.stage, provenance)
    stream = ArrowStdout()
    parts = []
    for offset in range(0, max(table.num_rows, 1), rows_per_part):  # an empty input: one empty batch
        part = grader.grade(table.slice(offset, rows_per_part), advance)
        stream.write(part.replace_schema_metadata(metadata))
        parts.append(part)
    stream.close()
    return pa.concat_tables(parts)


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
        InputError, SchemaError: the rollouts are missing, unreadable or lack columns, or the
            grader cannot read one of their gold answers (checked before any sample is graded).
        ResumeMismatch: the output was made with other settings or other rollouts.
    """
    specs = config.specs()
    if config.tolerance is not None and "numeric" not in (config.grader, config.audit_grader):
        say(f"NOTE: --tolerance has no effect: it applies to the numeric grader only (grader is {config.grader})")
    if config.judge is None and config.judge_prompt is not None:
        say("NOTE: --judge-prompt has no effect without --judge")
    inputs = _check_output(config)  # -o is checked before any work (#26)
    if config.output == STDIO:
        claim_stdout()  # before the pool starts, so no worker inherits the data stream
    layout = PoolLayout.build(specs)
    # The pool's fork server starts now and imports math-verify while the input is read.
    if config.ray is None:
        pool = GradingPool(layout.specs, workers=config.workers, timeout=config.timeout)
    else:  # (#17) the same tasks as Ray CPU tasks, each with its own hard-kill pool
        from paced_curate.grade.ray_grade import ray_grading_pool

        pool = ray_grading_pool(config.ray, layout.specs, timeout=config.timeout)
    with pool as pool:
        return _grade_into_output(config, layout, pool, inputs)


def _inputs(config: GradeConfig) -> dict[str, dict]:
    inputs = {"rollouts": {"path": config.rollouts, "sha256": input_digest(config.rollouts)}}
    if config.fields.problems is not None:
        inputs["problems"] = {"path": config.fields.problems, "sha256": input_digest(config.fields.problems)}
    return inputs


def _check_output(config: GradeConfig) -> dict[str, dict] | None:
    """Check -o by the rule every command follows, deleting nothing; returns the inputs' record (None for stdout)."""
    if config.output == STDIO:
        return None
    inputs = _inputs(config)
    paths = {name: entry["path"] for name, entry in inputs.items()}
    claim_output(
        config.output, kind=GRADES.stage, inputs=paths, overwrite=config.overwrite, settings=config.settings(),
        recorded_inputs=inputs, clear=False,
    )
    return inputs


def _grade_into_output(config: GradeConfig, layout: PoolLayout, pool: GradingPool, inputs: dict[str, dict] | None) -> GradeResult:
    specs = layout.specs[: layout.num_graders]
    table, where = read_located_generations(config.rollouts, config.fields)
    check_golds(table, layout, pool, "stdin" if config.rollouts == STDIO else config.rollouts, where)
    # Only now, the input read and its golds readable, may --overwrite delete the old output.
    out = None if inputs is None else PartDirectory.open(
        config.output, spec=GRADES, settings=config.settings(), inputs=inputs, overwrite=config.overwrite
    )
    settings = config.settings()
    inputs = _inputs(config) if out is None else out.provenance["inputs"]
    # Carried on to weight and export, which rebuild the student's prompts from it (#14).
    record = schema_record(table.schema) or (None if config.rollouts == STDIO else inherited_prompt_record(config.rollouts))
    resumed = 0
    if out is not None:
        if record is not None:
            out.provenance[PROMPT_KEY] = record
        done = out.read_done(["problem_id", "sample_index"])
        if done is not None:
            _check_prefix(done, table, config.output)
            resumed = done.num_rows
            say(f"resuming {config.output}: {resumed:,} of {table.num_rows:,} samples already graded")
    judge_settings = config.judge_settings()
    judge = None if judge_settings is None else Judge(judge_settings)
    started = time.perf_counter()
    grader = _SliceGrader(specs, pool, config.truncated, config.errors, judge)
    try:
        with StageProgress("grade", total=table.num_rows, unit="samples", completed=resumed, rates={"samples": "samples/s"}) as progress:

            def advance(count: int) -> None:
                progress.advance(count, samples=count)

            if out is None:
                graded = _grade_to_stdout(table, grader, advance, config.rows_per_part, run_provenance(settings, inputs), record)
            else:
                for offset in range(resumed, table.num_rows, config.rows_per_part):
                    out.write_part(grader.grade(table.slice(offset, config.rows_per_part), advance))
                if out.num_parts == 0:
                    out.write_part(grader.grade(table, advance))  # no rows at all: an empty, readable part
    finally:
        if judge is not None:
            judge.close()
    seconds = time.perf_counter() - started
    tasks = len(grader.cache)
    timeouts, deaths = pool.timeouts, pool.deaths  # grading's own, before the audit uses the pool
    if out is None:
        summary = grade_summary(graded)
    else:
        columns = SUMMARY_COLUMNS + (["audit_verdict"] if config.audit_grader else []) + (JUDGE_COLUMNS if judge else [])
        summary = grade_summary(out.read_done(columns))
    if judge is not None:
        summary["judge"] = (summary.get("judge") or {}) | {
            "requests": judge.stats.requests, "cache_hits": judge.stats.cache_hits, "failed_requests": judge.stats.failures,
            "gave_up": judge.stats.gave_up, "model": judge.settings.model,
        }
    if config.audit == INDEPENDENT:
        audited = graded.select(AUDIT_COLUMNS) if out is None else out.read_done(AUDIT_COLUMNS)
        summary["audit"] = independent_audit(audited, layout.independent, pool, config.audit_samples)
    result = GradeResult(
        output=config.output,
        grader=config.grader,
        audit_grader=config.audit_grader or (INDEPENDENT if config.audit == INDEPENDENT else None),
        samples=table.num_rows,
        graded=table.num_rows - resumed,
        resumed=resumed,
        distinct_pairs=tasks,
        dedup_ratio=grader.requests / tasks if tasks else 1.0,
        seconds=seconds,
        timeouts=timeouts,
        worker_deaths=deaths,
        summary=summary,
    )
    if out is not None:
        out.finish({k: v for k, v in result.to_dict().items() if k != "output"})
    return result
