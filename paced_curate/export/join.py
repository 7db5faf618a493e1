"""The join behind `paced export`: problems x weights (x teacher references) -> one row per example.

Rows come out sorted by (problem_id, reference index), the canonical order that the seeded
shuffle starts from. Bad inputs are refused with one line that names the file and a few ids;
problems that are left out (no weight, weight 0, no correct reference) are counted.

    rows, report = join_rows(problems, weights, references, JoinOptions(refs_per_problem=2), sources)
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from paced_curate.errors import InputError
from paced_curate.schema import EXPORT

SHOWN_IDS = 3
EXPORTED_COLUMNS = ("weight", "pass_rate", "n_samples", "n_correct", "reference")
"""Columns the export adds; a problem-set column with one of these names would be ambiguous."""


@dataclass(frozen=True, kw_only=True)
class JoinOptions:
    """How the join treats references, weight-0 problems and problems without a weight."""

    refs_per_problem: int = 1
    drop_zero: bool = True
    missing: str = "drop"


@dataclass(frozen=True, kw_only=True)
class Sources:
    """Names of the inputs, for error messages."""

    problems: str
    weights: str


@dataclass
class JoinReport:
    """What the join kept and what it left out."""

    num_problems: int
    """Problems exported (a problem with R references gives R rows)."""
    dropped: dict[str, int] = field(default_factory=dict)
    """Problems left out, by reason: no_weight, zero_weight, no_reference."""
    short_references: int = 0
    """Exported problems with fewer correct references than asked for."""


def few(ids: list[str]) -> str:
    """The first few ids, quoted, and how many more there are."""
    shown = ", ".join(repr(i) for i in ids[:SHOWN_IDS])
    return shown + (f" and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else "")


def join_rows(
    problems: pa.Table,
    weights: pa.Table,
    references: pa.Table | None,
    options: JoinOptions,
    sources: Sources,
) -> tuple[pa.Table, JoinReport]:
    """Join a problem set, its weights and (optionally) graded teacher references.

    Args:
        problems: the problem set, as `problems.read_problems` returns it.
        weights: a weights table (`schema.WEIGHTS`), one row per problem.
        references: a graded teacher table (`schema.GRADES`), or None.
        options: see `JoinOptions`.
        sources: the inputs' names, used in messages.

    Returns:
        The rows in `schema.EXPORT` layout (declared columns, then `reference` when references
        are given, `messages` for chat problems, then the problem set's other columns), sorted
        by (problem_id, reference index), and a `JoinReport`.

    Raises:
        InputError: weights name problems that are not in the problem set, a weight repeats or
            is negative or not finite, problems lack a weight under `missing="error"`, or a
            problem-set column clashes with an exported one.
    """
    _check_clashes(problems, sources.problems)
    weight_ids = weights.column("problem_id").to_pylist()
    values = weights.column("weight").to_pylist()
    _check_weights(weight_ids, values, sources.weights)
    problem_ids = problems.column("problem_id").to_pylist()
    problem_row = {pid: index for index, pid in enumerate(problem_ids)}
    unknown = sorted(pid for pid in weight_ids if pid not in problem_row)
    if unknown:
        raise InputError(
            f"{sources.weights}: {len(unknown)} problem ids are not in the problem set {sources.problems}: "
            f"{few(unknown)}; export with the problem set these weights were computed for"
        )
    weight_row = {pid: index for index, pid in enumerate(weight_ids)}
    no_weight = sorted(pid for pid in problem_ids if pid not in weight_row)
    if no_weight and options.missing == "error":
        raise InputError(
            f"{sources.problems}: {len(no_weight)} problems have no weight in {sources.weights}: "
            f"{few(no_weight)}; weigh them with 'paced weight' or pass --missing drop"
        )
    kept = sorted(pid for pid in problem_ids if pid in weight_row)
    report = JoinReport(num_problems=0, dropped={"no_weight": len(no_weight)})
    zero = [pid for pid in kept if values[weight_row[pid]] == 0]
    report.dropped["zero_weight"] = len(zero) if options.drop_zero else 0
    if options.drop_zero:
        kept = [pid for pid in kept if values[weight_row[pid]] != 0]

    chosen: dict[str, list[str]] | None = None
    if references is not None:
        chosen = pick_references(references, options.refs_per_problem)
        report.dropped["no_reference"] = sum(1 for pid in kept if pid not in chosen)
        kept = [pid for pid in kept if pid in chosen]
        report.short_references = sum(1 for pid in kept if len(chosen[pid]) < options.refs_per_problem)
    report.num_problems = len(kept)

    problem_take, weight_take, texts = [], [], []
    for pid in kept:
        for text in chosen[pid] if chosen is not None else [None]:
            problem_take.append(problem_row[pid])
            weight_take.append(weight_row[pid])
            texts.append(text)
    return _assemble(problems, weights, problem_take, weight_take, texts if chosen is not None else None), report


def pick_references(graded: pa.Table, per_problem: int) -> dict[str, list[str]]:
    """The `per_problem` correct completions with the lowest sample_index, per problem id."""
    correct = graded.filter(pc.equal(graded.column("verdict"), "correct"))
    correct = correct.select(["problem_id", "sample_index", "completion"]).sort_by(
        [("problem_id", "ascending"), ("sample_index", "ascending")]
    )
    chosen: dict[str, list[str]] = {}
    for pid, completion in zip(correct.column("problem_id").to_pylist(), correct.column("completion").to_pylist()):
        texts = chosen.setdefault(pid, [])
        if len(texts) < per_problem:
            texts.append(completion)
    return chosen


def _check_clashes(problems: pa.Table, source: str) -> None:
    clashes = [name for name in problems.column_names if name in EXPORTED_COLUMNS]
    if clashes:
        raise InputError(
            f"{source}: column '{clashes[0]}' clashes with the '{clashes[0]}' column that paced export adds; "
            "rename it in the problem set"
        )


def _check_weights(ids: list[str], values: list[float], source: str) -> None:
    repeated = sorted(pid for pid, count in Counter(ids).items() if count > 1)
    if repeated:
        raise InputError(f"{source}: problem ids appear more than once: {few(repeated)}; a weights table has one row per problem")
    for row, (pid, value) in enumerate(zip(ids, values)):
        if not math.isfinite(value) or value < 0:
            raise InputError(
                f"{source} row {row}: problem {pid!r} has weight {value}; weights must be finite and >= 0 (re-run 'paced weight')"
            )


def _assemble(
    problems: pa.Table, weights: pa.Table, problem_take: list[int], weight_take: list[int], texts: list[str | None] | None
) -> pa.Table:
    picked = problems.take(pa.array(problem_take, pa.int64()))
    scores = weights.take(pa.array(weight_take, pa.int64()))
    columns: dict[str, pa.ChunkedArray | pa.Array] = {name: picked.column(name) for name in ("problem_id", "prompt", "answer")}
    for name in ("weight", "pass_rate", "n_samples", "n_correct"):
        columns[name] = scores.column(name)
    if texts is not None:
        columns["reference"] = pa.array(texts, pa.string())
    if "messages" in picked.column_names:
        columns["messages"] = picked.column("messages")
    declared = EXPORT.schema_for(list(columns))
    fields = list(declared)
    for name in picked.column_names:
        if name not in columns:
            columns[name] = picked.column(name)
            fields.append(picked.schema.field(name))
    arrays = [columns[f.name] for f in fields]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
