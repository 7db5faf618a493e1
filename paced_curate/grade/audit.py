"""The default audit of `paced grade`: an independent reading of a bounded sample, and what the
choice of reading does to the pass rates and weights.

The independent reading is math-verify called alone on the whole completion with its default
extraction (`graders.INDEPENDENT`), as most RL and evaluation code calls it. The sample is whole
problems, taken in the order of a hash of their id (the same problems whatever the batch size or
number of workers, and a problem's pass rate needs all its samples) until `max_samples` samples
that ended normally are covered (at least one problem). Each is graded in the worker pool, under
the same deadline as grading. Reported: how often the two readings disagree on "correct", in
both directions, with examples; and, per audited problem, the pass rate p under each reading and
the PACED weight w(p) = p (1 - p) (the default kernel a = b = 1): the mean |change| and how many
problems change weight by more than 0.05 or fall to weight 0 under one reading only.

    report = independent_audit(graded_table, layout, pool, max_samples=200)
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

import pyarrow as pa

GRADED = ("correct", "incorrect", "no_answer")
NUM_EXAMPLES = 5
WEIGHT_CHANGE = 0.05


def _order(problem_id: str) -> str:
    return hashlib.sha256(problem_id.encode()).hexdigest()


def audit_rows(table: pa.Table, max_samples: int) -> list[int]:
    """Rows of the sampled problems: whole problems in hash order until `max_samples` rows whose
    verdict is correct, incorrect or no_answer are covered (0: every problem)."""
    ids = table.column("problem_id").to_pylist()
    verdicts = table.column("verdict").to_pylist()
    rows_of: dict[str, list[int]] = defaultdict(list)
    for row, (problem, verdict) in enumerate(zip(ids, verdicts)):
        if verdict in GRADED:
            rows_of[problem].append(row)
    chosen: list[int] = []
    for problem in sorted(rows_of, key=_order):
        if max_samples and chosen and len(chosen) + len(rows_of[problem]) > max_samples:
            break
        chosen.extend(rows_of[problem])
    return sorted(chosen)


def _weight(p: float) -> float:
    return p * (1 - p)


def independent_audit(table: pa.Table, index: int, pool, max_samples: int) -> dict:
    """Grade a bounded sample of `table` with the independent reading and compare.

    Args:
        table: graded rows with problem_id, sample_index, completion, answer, extracted_answer, verdict.
        index: the independent reading's index in the pool's specs (`golds.PoolLayout.independent`).
        pool: the grading pool.
        max_samples: most samples to read (whole problems); 0 for all.

    Returns:
        A JSON-ready dict: `kind` ("math-verify"), `compared`, `not_compared` (timeouts or errors of
        the independent reading), `disagreements`, `disagreement_rate`, `paced_only_correct`,
        `independent_only_correct`, `examples`, and `problems` / `mean_abs_pass_rate_change` /
        `mean_abs_weight_change` / `problems_weight_changed` / `problems_weight_zero_one_side`.
    """
    rows = audit_rows(table, max_samples)
    columns = {name: table.column(name).to_pylist() for name in ("problem_id", "sample_index", "completion", "answer", "extracted_answer", "verdict")}
    tasks, task_of = [], {}
    for row in rows:
        key = (columns["completion"][row], columns["answer"][row])
        if key not in task_of:
            task_of[key] = len(tasks)
            tasks.append((index, *key))
    outcomes = pool.run(tasks) if tasks else []
    compared = not_compared = paced_only = other_only = 0
    examples = []
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # n, c paced, c independent
    for row in rows:
        outcome = outcomes[task_of[(columns["completion"][row], columns["answer"][row])]]
        if outcome.verdict not in GRADED:
            not_compared += 1
            continue
        compared += 1
        ours, theirs = columns["verdict"][row] == "correct", outcome.verdict == "correct"
        entry = counts[columns["problem_id"][row]]
        entry[0] += 1
        entry[1] += ours
        entry[2] += theirs
        if ours != theirs:
            paced_only += ours
            other_only += theirs
            if len(examples) < NUM_EXAMPLES:
                examples.append({
                    "problem_id": columns["problem_id"][row], "sample_index": columns["sample_index"][row], "gold": columns["answer"][row],
                    "extracted_answer": columns["extracted_answer"][row], "verdict": columns["verdict"][row],
                    "independent_extracted": outcome.extracted, "independent_verdict": outcome.verdict,
                })
    changes = []
    for n, ours, theirs in counts.values():
        p, q = ours / n, theirs / n
        changes.append((abs(p - q), abs(_weight(p) - _weight(q)), (_weight(p) == 0) != (_weight(q) == 0)))
    disagreements = paced_only + other_only
    return {
        "kind": "math-verify",
        "samples_limit": max_samples,
        "compared": compared,
        "not_compared": not_compared,
        "disagreements": disagreements,
        "disagreement_rate": disagreements / compared if compared else None,
        "paced_only_correct": paced_only,
        "independent_only_correct": other_only,
        "examples": examples,
        "problems": len(changes),
        "mean_abs_pass_rate_change": sum(c[0] for c in changes) / len(changes) if changes else None,
        "mean_abs_weight_change": sum(c[1] for c in changes) / len(changes) if changes else None,
        "problems_weight_changed": sum(1 for c in changes if c[1] > WEIGHT_CHANGE),
        "problems_weight_zero_one_side": sum(1 for c in changes if c[2]),
    }
