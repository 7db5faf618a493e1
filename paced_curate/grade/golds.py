"""Refusing a gold answer the chosen grader cannot read, before any sample is graded.

A gold the grader cannot read would turn every sample of its problem into `error` (left out of
the pass rate) or into a wall of wrong verdicts: the problem would leave the weights silently.
Each distinct gold is checked once in the worker pool (math-verify can hang on a gold too), and
the first unreadable one is refused in one line naming the file, the line or row (as the reader
names it: `samples.read_located_generations`), problem and a built-in grader that reads it:

    gen.jsonl line 12: problem 'p7': gold answer '12:00 noon' cannot be read by the numeric
    grader; --grader math reads it as a clock time; 2 more problems have golds it cannot read

    layout = PoolLayout.build(specs)        # the grading specs plus one gold check per built-in grader
    table, where = read_located_generations("gen.jsonl")
    check_golds(table, layout, pool, "gen.jsonl", where)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

import pyarrow as pa

from paced_curate.errors import InputError
from paced_curate.grade.graders import BUILTIN, INDEPENDENT, GraderSpec
from paced_curate.grade.math_reader import unbalanced
from paced_curate.schema import row_name

GOLD_PREVIEW = 60
WORDS_RE = re.compile(r"[^\W\d_][^\W\d_\s.'-]*(?:[\s.'-]+[^\W\d_]+)*\.?")


@dataclass(frozen=True)
class PoolLayout:
    """The specs a grading pool holds, and where each kind of task finds its spec."""

    specs: tuple[GraderSpec, ...]
    num_graders: int
    """specs[:num_graders] grade (the grader, then a grader audit if any)."""
    gold_checks: dict[str, int]
    """Built-in grader name -> index of its gold-check spec."""
    independent: int
    """Index of the independent reading (math-verify alone on the whole completion)."""

    @classmethod
    def build(cls, graders: tuple[GraderSpec, ...]) -> PoolLayout:
        """Graders first (their indices are unchanged), then a gold check per built-in grader,
        then the independent reading."""
        base = graders[0]
        checks = tuple(replace(base, name=name, task="gold") for name in BUILTIN)
        independent = replace(base, name=INDEPENDENT, task="independent")
        specs = graders + checks + (independent,)
        return cls(specs, len(graders), {name: len(graders) + i for i, name in enumerate(BUILTIN)}, len(specs) - 1)


def _shown(gold: str) -> str:
    return repr(gold if len(gold) <= GOLD_PREVIEW else gold[:GOLD_PREVIEW] + "...")


def check_golds(table: pa.Table, layout: PoolLayout, pool, source: str, where: Callable[[int], str] = row_name) -> int:
    """Refuse the rollouts when the grader cannot read one of their gold answers.

    Args:
        table: a rollouts table (problem_id and answer columns).
        layout: the pool's layout (`PoolLayout.build`).
        pool: a `GradingPool` (or Ray pool) built with `layout.specs`.
        source: the input's name for the message.
        where: names a table row's position in the input ("line 4", "row 3"; default 0-based rows).

    Returns:
        The number of distinct golds checked (0 for a plugin grader, which reads golds itself).

    Raises:
        InputError: a gold is unreadable; one line naming the file, line or row, problem, the grader, and
            a built-in grader that reads it (or none).
    """
    grader = layout.specs[0]
    if grader.is_plugin or table.num_rows == 0:
        return 0
    first_row: dict[str, int] = {}
    for row, gold in enumerate(table.column("answer").to_pylist()):
        first_row.setdefault(gold, row)
    golds = list(first_row)
    index = layout.gold_checks[grader.name]
    outcomes = pool.run([(index, "", gold) for gold in golds])
    unreadable = [gold for gold, outcome in zip(golds, outcomes) if outcome.verdict != "correct"]
    if not unreadable:
        return len(golds)
    gold = min(unreadable, key=first_row.__getitem__)
    # A gold in words is text (math-verify would read "Paris" as a product of five symbols).
    order = ("exact", "choice", "math", "numeric") if WORDS_RE.fullmatch(gold.strip()) else BUILTIN
    others = [name for name in order if name != grader.name]
    readings = pool.run([(layout.gold_checks[name], "", gold) for name in others])
    readers = [(name, outcome.extracted) for name, outcome in zip(others, readings) if outcome.verdict == "correct"]
    row = first_row[gold]
    problem = table.column("problem_id")[row].as_py()
    fault = unbalanced(gold) if grader.name == "math" else None
    if fault is not None:
        # Malformed LaTeX (a cut-off answer): the exact grader would "read" it, which helps no one.
        readers = [(name, reading) for name, reading in readers if name != "exact"]
        hint = f"its braces or brackets do not balance ({fault}): fix the gold" + (f", or --grader {readers[0][0]} reads it as {readers[0][1]!r}" if readers else "")
    elif readers:
        name, reading = readers[0]
        hint = f"--grader {name} reads it as {reading if reading in ('a clock time', 'a ratio') else repr(reading)}"
    else:
        hint = "no built-in grader reads it: write a module:function grader"
    more = len(unreadable) - 1
    tail = f"; {more} more problem{'s have golds' if more > 1 else ' has a gold'} it cannot read" if more else ""
    raise InputError(
        f"{source} {where(row)}: problem {problem!r}: gold answer {_shown(gold)} cannot be read by the {grader.name} grader; {hint}{tail}"
    )
