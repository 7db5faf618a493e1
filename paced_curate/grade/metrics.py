"""Numbers from a graded table: the grade summary, and avg@K / pass@k / maj@K for `paced inspect`.

Only SCORED samples count (`scored` is the contract with `paced weight`): a problem's n is its
number of scored samples and c the scored samples graded correct. Problems with n = 0 are left
out of every mean and counted as `unscored_problems`.

- avg@K: the mean over problems of c / n.
- pass@k: the unbiased estimator 1 - C(n-c, k) / C(n, k) (Chen et al. 2021) for k = 1, 2, 4, ...
  up to K (the largest n) and K itself, averaged over ONE set of problems for every k: those
  with n >= K. Problems with fewer scored samples (timeouts excluded, say) are left out of every
  pass@k and counted (`pass_at_k_left_out`), never dropped for some k only.
- maj@K: per problem, votes on answers grouped by the grader's own equivalence (math-verify for
  `math`, so `\\frac{1}{2}`, `0.5` and `1/2` are one answer; see `equivalence.same_answer`); correct
  samples all vote for the gold's answer. The problem is solved when the gold's group has the
  most votes. Tie rule: the group whose earliest vote has the lowest sample_index wins. A
  problem without any vote counts as not solved. See `majority_solved`.

    report = evaluation_report(read_table("graded/", GRADES), group_by="difficulty")
    render_evaluation(report)        # rich tables on stderr
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable

import pyarrow as pa
from rich.markup import escape

from paced_curate.errors import ConfigError
from paced_curate.grade.equivalence import same_answer
from paced_curate.grade.graders import DEFAULT_TOLERANCE
from paced_curate.report import key_value_table, rows_table, show
from paced_curate.schema import VERDICTS, read_metadata

GRADED = ("correct", "incorrect", "no_answer")
NUM_AUDIT_EXAMPLES = 5


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimate 1 - C(n-c, k) / C(n, k) for n samples with c correct.

    Computed as a product, which stays exact in floating point for large n (Chen et al. 2021).

    Example:
        >>> pass_at_k(4, 1, 2)     # 1 - C(3,2)/C(4,2) = 1 - 3/6
        0.5
    """
    assert 0 <= c <= n and 1 <= k <= n, (n, c, k)
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / j for j in range(n - c + 1, n + 1))


def _ks(largest: int) -> list[int]:
    ks, k = [], 1
    while k <= largest:
        ks.append(k)
        k *= 2
    if largest and ks[-1] != largest:
        ks.append(largest)
    return ks


Sample = tuple[int, "str | None", str, bool]
"""(sample_index, extracted_answer, verdict, scored)."""


def _problems(table: pa.Table) -> dict[str, list[Sample]]:
    """problem_id -> [(sample_index, extracted_answer, verdict, scored)], problems in first-seen order."""
    columns = [table.column(name).to_pylist() for name in ("problem_id", "sample_index", "extracted_answer", "verdict", "scored")]
    problems: dict[str, list] = {}
    for problem_id, *sample in zip(*columns):
        problems.setdefault(problem_id, []).append(tuple(sample))
    return problems


def majority_solved(samples: list[Sample], same: Callable[[str, str], bool]) -> bool:
    """Whether the majority answer of a problem's scored samples is correct (maj@K for one problem).

    Votes: every scored sample graded correct votes for the gold's answer (they are all equal to
    it, by the grader); every scored sample graded incorrect with an extracted answer votes for
    that answer; no_answer and unscored samples cast no vote. Incorrect answers are grouped by
    the grader's own equivalence `same` (`equivalence.same_answer`): each answer, in sample_index
    order, joins the first group whose first answer it equals, else starts a group. The group
    with the most votes wins; a tie goes to the group whose earliest vote has the lowest
    sample_index. Grouping is skipped when it cannot change the winner.
    """
    correct = [index for index, _, verdict, scored in samples if scored and verdict == "correct"]
    wrong = sorted((index, answer.strip()) for index, answer, verdict, scored in samples if scored and verdict == "incorrect" and answer and answer.strip())
    if not correct:
        return False
    if len(wrong) < len(correct):
        return True  # even one group of every wrong vote would lose
    # Same spelling first (cheap), then groups by equivalence among the distinct spellings.
    spellings: dict[str, list[int]] = {}
    for index, answer in wrong:
        spellings.setdefault(answer, []).append(index)
    best = (len(correct), -min(correct))
    groups: list[tuple[str, list[int]]] = []
    for answer, indices in spellings.items():  # in order of each spelling's first vote
        for representative, members in groups:
            if same(representative, answer):
                members.extend(indices)
                break
        else:
            groups.append((answer, members := list(indices)))
        if (len(members), -min(members)) > best:
            return False  # groups only grow: this one beats the gold's group whatever comes next
    return True


def _metrics(problems: list[list[Sample]], same: Callable[[str, str], bool], ks: list[int] | None = None) -> dict:
    """avg@K, pass@k and maj@K over a list of problems' samples.

    pass@k is averaged over ONE set of problems for every k: those with at least max(ks) scored
    samples (`pass_at_k_problems`); problems with fewer are counted in `pass_at_k_left_out`.
    """
    counts = []
    for samples in problems:
        n = sum(1 for sample in samples if sample[3])
        c = sum(1 for sample in samples if sample[3] and sample[2] == "correct")
        counts.append((n, c, samples))
    scored = [(n, c, samples) for n, c, samples in counts if n > 0]
    largest = max((n for n, _, _ in scored), default=0)
    ks = _ks(largest) if ks is None else ks
    needed = max(ks, default=0)
    eligible = [(n, c) for n, c, _ in scored if n >= needed] if ks else []
    out: dict = {
        "problems": len(scored),
        "unscored_problems": len(counts) - len(scored),
        "scored_samples": sum(n for n, _, _ in scored),
        "k": largest,
        "avg_at_k": sum(c / n for n, c, _ in scored) / len(scored) if scored else None,
        "maj_at_k": sum(majority_solved(samples, same) for _, _, samples in scored) / len(scored) if scored else None,
        "pass_at_k": {str(k): (sum(pass_at_k(n, c, k) for n, c in eligible) / len(eligible) if eligible else None) for k in ks},
        "pass_at_k_min_samples": needed,
        "pass_at_k_problems": len(eligible),
        "pass_at_k_left_out": len(scored) - len(eligible),
    }
    return out


def _tolerance(table: pa.Table) -> float:
    """The numeric grader's tolerance as recorded in the table's provenance, else the default."""
    try:
        tolerance = read_metadata(table.schema)["provenance"]["settings"]["tolerance"]
        return DEFAULT_TOLERANCE if tolerance is None else float(tolerance)
    except (KeyError, TypeError, ValueError):
        return DEFAULT_TOLERANCE


def _group_value(value):
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def evaluation_report(table: pa.Table, group_by: str | None = None, tolerance: float | None = None) -> dict:
    """avg@K, pass@k and maj@K of a graded table, overall and per value of `group_by`.

    Args:
        table: a grades table (`schema.GRADES`).
        group_by: a column with one value per problem (e.g. difficulty, source).
        tolerance: the numeric grader's tolerance for maj@K's equivalence; default: the one in
            the table's provenance, else 1e-6.

    Returns:
        A JSON-ready dict: samples, problems, verdict counts, `overall` metrics, `groups`
        (a list of {"value", metrics...}) when `group_by` is given, and `judge` (what a
        `--judge` changed, `summary.judge_counts`) or None. Every group reports pass@k
        for the overall k's, over its problems with at least the largest k scored samples.
        See the module docstring.

    Raises:
        ConfigError: `group_by` is not a column of the table, or a problem's rows hold
            different values in it (the message names the problem and two of the values).
    """
    if group_by is not None and group_by not in table.column_names:
        raise ConfigError(f"--group-by {group_by}: the graded table has no such column; columns: {', '.join(table.column_names)}")
    problems = _problems(table)
    graders = [name for name in dict.fromkeys(table.column("grader").to_pylist()) if name is not None]
    same = same_answer(graders[0] if len(graders) == 1 else "exact", _tolerance(table) if tolerance is None else tolerance)
    verdicts = Counter(table.column("verdict").to_pylist())
    overall = _metrics(list(problems.values()), same)
    report: dict = {
        "samples": table.num_rows,
        "problems": len(problems),
        "verdicts": {verdict: verdicts.get(verdict, 0) for verdict in VERDICTS},
        "overall": overall,
        "group_by": group_by,
        "groups": [],
        "judge": judge_section(table),
    }
    if group_by is not None:
        groups: dict = {}
        value_of: dict = {}
        for problem_id, value in zip(table.column("problem_id").to_pylist(), table.column(group_by).to_pylist()):
            value = _group_value(value)
            if value_of.setdefault(problem_id, value) != value:
                raise ConfigError(
                    f"--group-by {group_by}: problem {problem_id!r} has rows with different values "
                    f"({value_of[problem_id]!r} and {value!r}); group by a column with one value per problem"
                )
            groups.setdefault(value, {}).setdefault(problem_id, None)
        order = sorted(groups, key=lambda value: (value is None, str(type(value)), value if value is not None else 0))
        ks = [int(k) for k in overall["pass_at_k"]]
        report["groups"] = [{"value": value} | _metrics([problems[pid] for pid in groups[value]], same, ks) for value in order]
    return report


def _metric_row(label: object, metrics: dict, ks: list[str]) -> list[object]:
    return [label, metrics["problems"], metrics["avg_at_k"], metrics["maj_at_k"], metrics["pass_at_k_problems"]] + [
        metrics["pass_at_k"].get(k) for k in ks
    ]


def render_evaluation(report: dict) -> None:
    """Print an evaluation report (from `evaluation_report`) as rich tables on stderr."""
    overall = report["overall"]
    ks = list(overall["pass_at_k"])
    big_k = overall["k"]
    # "pass@k set": the problems every pass@k is averaged over (n >= the largest k).
    header = [escape(report["group_by"] or ""), "problems", f"avg@{big_k}", f"maj@{big_k}", "pass@k set"] + [f"pass@{k}" for k in ks]
    rows = [_metric_row("(all)", overall, ks)]
    rows += [_metric_row(escape(str(group["value"])), group, ks) for group in report["groups"]]
    show(rows_table(f"evaluation ({overall['scored_samples']:,} scored samples of {report['samples']:,})", header, rows))
    notes = []
    if overall["unscored_problems"]:
        notes.append(("problems without scored samples (left out of every number)", overall["unscored_problems"]))
    if overall["pass_at_k_left_out"]:
        notes.append(
            (f"problems with fewer than {overall['pass_at_k_min_samples']} scored samples (left out of every pass@k)", overall["pass_at_k_left_out"])
        )
    judge = report.get("judge")
    if judge:
        notes.append(("verdicts the judge changed (of samples it was asked about)", f"{judge['changed']:,} of {judge['asked']:,}"))
        if judge["readings"]["failed"]:
            notes.append(("judge requests that failed (rule verdict kept)", judge["readings"]["failed"]))
    if notes:
        show(key_value_table("note", notes))


def judge_section(table: pa.Table) -> dict | None:
    """The judge's counts for `paced inspect` (None when the table has no judge columns)."""
    from paced_curate.grade.summary import judge_counts

    return judge_counts(table) if "judge_verdict" in table.column_names else None


def grade_summary(table: pa.Table) -> dict:
    """See `summary.grade_summary` (kept here for callers that import it from metrics)."""
    from paced_curate.grade.summary import grade_summary as summary

    return summary(table)


def render_grade_summary(result: dict) -> None:
    """See `summary.render_grade_summary`."""
    from paced_curate.grade.summary import render_grade_summary as render

    render(result)
