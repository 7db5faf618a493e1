"""Numbers from a graded table: the grade summary, and avg@K / pass@k / maj@K for `paced inspect`.

Only SCORED samples count (`scored` is the contract with `paced weight`): a problem's n is its
number of scored samples and c the scored samples graded correct. Problems with n = 0 are left
out of every mean and counted as `unscored_problems`.

- avg@K: the mean over problems of c / n.
- pass@k: the unbiased estimator 1 - C(n-c, k) / C(n, k) (Chen et al. 2021), averaged over the
  problems with n >= k, for k = 1, 2, 4, ... up to K (the largest n) and K itself.
- maj@K: per problem, the most frequent extracted answer among its scored samples wins (a tie
  goes to the answer seen at the lowest sample_index); the problem counts as solved when the
  first sample with that answer was graded correct. A problem without any extracted answer
  counts as not solved.

    report = evaluation_report(read_table("graded/", GRADES), group_by="difficulty")
    render_evaluation(report)        # rich tables on stderr
"""

from __future__ import annotations

import json
import math
from collections import Counter

import pyarrow as pa
from rich.markup import escape

from paced_curate.errors import ConfigError
from paced_curate.report import key_value_table, rows_table, show
from paced_curate.schema import VERDICTS

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


def _problems(table: pa.Table) -> dict[str, list[tuple[int, str | None, str, bool]]]:
    """problem_id -> [(sample_index, extracted_answer, verdict, scored)], problems in first-seen order."""
    columns = [table.column(name).to_pylist() for name in ("problem_id", "sample_index", "extracted_answer", "verdict", "scored")]
    problems: dict[str, list] = {}
    for problem_id, *sample in zip(*columns):
        problems.setdefault(problem_id, []).append(tuple(sample))
    return problems


def _majority_solved(samples: list[tuple[int, str | None, str, bool]]) -> bool:
    votes = sorted((index, answer.strip(), verdict) for index, answer, verdict, scored in samples if scored and answer is not None)
    if not votes:
        return False
    counts = Counter(answer for _, answer, _ in votes)
    first_seen: dict[str, tuple[int, str]] = {}
    for index, answer, verdict in votes:
        first_seen.setdefault(answer, (index, verdict))
    winner = max(counts, key=lambda answer: (counts[answer], -first_seen[answer][0]))
    return first_seen[winner][1] == "correct"


def _metrics(problems: list[list[tuple[int, str | None, str, bool]]]) -> dict:
    """avg@K, pass@k and maj@K over a list of problems' samples."""
    counts = []
    for samples in problems:
        n = sum(1 for sample in samples if sample[3])
        c = sum(1 for sample in samples if sample[3] and sample[2] == "correct")
        counts.append((n, c, samples))
    scored = [(n, c, samples) for n, c, samples in counts if n > 0]
    largest = max((n for n, _, _ in scored), default=0)
    out: dict = {
        "problems": len(scored),
        "unscored_problems": len(counts) - len(scored),
        "scored_samples": sum(n for n, _, _ in scored),
        "k": largest,
        "avg_at_k": sum(c / n for n, c, _ in scored) / len(scored) if scored else None,
        "maj_at_k": sum(_majority_solved(samples) for _, _, samples in scored) / len(scored) if scored else None,
        "pass_at_k": {},
        "pass_at_k_problems": {},
    }
    for k in _ks(largest):
        eligible = [(n, c) for n, c, _ in scored if n >= k]
        out["pass_at_k"][str(k)] = sum(pass_at_k(n, c, k) for n, c in eligible) / len(eligible)
        out["pass_at_k_problems"][str(k)] = len(eligible)
    return out


def _group_value(value):
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def evaluation_report(table: pa.Table, group_by: str | None = None) -> dict:
    """avg@K, pass@k and maj@K of a graded table, overall and per value of `group_by`.

    Args:
        table: a grades table (`schema.GRADES`).
        group_by: a column (e.g. difficulty, source); a problem's group is its first row's value.

    Returns:
        A JSON-ready dict: samples, problems, verdict counts, `overall` metrics, and `groups`
        (a list of {"value", metrics...}) when `group_by` is given. See the module docstring.

    Raises:
        ConfigError: `group_by` is not a column of the table.
    """
    if group_by is not None and group_by not in table.column_names:
        raise ConfigError(f"--group-by {group_by}: the graded table has no such column; columns: {', '.join(table.column_names)}")
    problems = _problems(table)
    verdicts = Counter(table.column("verdict").to_pylist())
    report: dict = {
        "samples": table.num_rows,
        "problems": len(problems),
        "verdicts": {verdict: verdicts.get(verdict, 0) for verdict in VERDICTS},
        "overall": _metrics(list(problems.values())),
        "group_by": group_by,
        "groups": [],
    }
    if group_by is not None:
        groups: dict = {}
        for problem_id, value in zip(table.column("problem_id").to_pylist(), table.column(group_by).to_pylist()):
            groups.setdefault(_group_value(value), {}).setdefault(problem_id, None)
        order = sorted(groups, key=lambda value: (value is None, str(type(value)), value if value is not None else 0))
        report["groups"] = [{"value": value} | _metrics([problems[pid] for pid in groups[value]]) for value in order]
    return report


def _metric_row(label: object, metrics: dict, ks: list[str]) -> list[object]:
    return [label, metrics["problems"], metrics["avg_at_k"], metrics["maj_at_k"]] + [metrics["pass_at_k"].get(k) for k in ks]


def render_evaluation(report: dict) -> None:
    """Print an evaluation report (from `evaluation_report`) as rich tables on stderr."""
    overall = report["overall"]
    ks = list(overall["pass_at_k"])
    big_k = overall["k"]
    header = ["", "problems", f"avg@{big_k}", f"maj@{big_k}"] + [f"pass@{k}" for k in ks]
    rows = [_metric_row("all", overall, ks)]
    rows += [_metric_row(escape(f"{report['group_by']}={group['value']}"), group, ks) for group in report["groups"]]
    show(rows_table(f"evaluation ({overall['scored_samples']:,} scored samples of {report['samples']:,})", header, rows))
    if overall["unscored_problems"]:
        show(key_value_table("note", [("problems without scored samples (left out)", overall["unscored_problems"])]))
    partial = {k: n for k, n in overall["pass_at_k_problems"].items() if n < overall["problems"]}
    if partial:
        show(key_value_table("pass@k over problems with n >= k only", [(f"pass@{k}", f"{n:,} problems") for k, n in partial.items()]))


# --- the `paced grade` summary --------------------------------------------------------------


def grade_summary(table: pa.Table) -> dict:
    """Verdict counts and rates, pass-rate spread and (with an audit column) grader disagreement.

    Args:
        table: a grades table, or at least its columns problem_id, sample_index, answer,
            extracted_answer, verdict, scored (and audit_verdict when audited).

    Returns:
        A JSON-ready dict: `verdicts`, `verdict_rates`, `scored`, `problems`, `problems_p0`,
        `problems_mid` (0 < p < 1), `problems_p1`, `problems_unscored`, `mean_pass_rate`, and
        `audit` ({"compared", "disagreements", "disagreement_rate", "examples"}) or None.
    """
    verdicts = Counter(table.column("verdict").to_pylist())
    total = table.num_rows
    counts = _counts(table)
    rates = [c / n for n, c, _ in counts if n > 0]
    unscored = sum(1 for n, _, _ in counts if n == 0)
    summary = {
        "verdicts": {verdict: verdicts.get(verdict, 0) for verdict in VERDICTS},
        "verdict_rates": {verdict: (verdicts.get(verdict, 0) / total if total else 0.0) for verdict in VERDICTS},
        "scored": sum(table.column("scored").to_pylist()),
        "problems": len(rates) + unscored,
        "problems_p0": sum(1 for p in rates if p == 0),
        "problems_mid": sum(1 for p in rates if 0 < p < 1),
        "problems_p1": sum(1 for p in rates if p == 1),
        "problems_unscored": unscored,
        "mean_pass_rate": sum(rates) / len(rates) if rates else None,
        "audit": _audit(table) if "audit_verdict" in table.column_names else None,
    }
    return summary


def _counts(table: pa.Table) -> list[tuple[int, int, str]]:
    per_problem: dict[str, list[int]] = {}
    columns = (table.column(name).to_pylist() for name in ("problem_id", "verdict", "scored"))
    for problem_id, verdict, scored in zip(*columns):
        entry = per_problem.setdefault(problem_id, [0, 0])
        entry[0] += bool(scored)
        entry[1] += bool(scored) and verdict == "correct"
    return [(n, c, problem_id) for problem_id, (n, c) in per_problem.items()]


def _audit(table: pa.Table) -> dict:
    """Disagreement between the grader and the audit grader, over samples both graded."""
    names = ("problem_id", "sample_index", "answer", "extracted_answer", "verdict", "audit_verdict")
    rows = zip(*(table.column(name).to_pylist() for name in names))
    compared, examples, disagreements = 0, [], 0
    for problem_id, sample_index, gold, extracted, verdict, audit in rows:
        if verdict not in GRADED or audit not in GRADED:
            continue
        compared += 1
        if (verdict == "correct") != (audit == "correct"):
            disagreements += 1
            if len(examples) < NUM_AUDIT_EXAMPLES:
                examples.append(
                    {"problem_id": problem_id, "sample_index": sample_index, "gold": gold, "extracted_answer": extracted, "verdict": verdict, "audit_verdict": audit}
                )
    return {
        "compared": compared,
        "disagreements": disagreements,
        "disagreement_rate": disagreements / compared if compared else None,
        "examples": examples,
    }


def render_grade_summary(result: dict) -> None:
    """Print the `paced grade` summary (a `GradeResult.to_dict()`) as rich tables on stderr."""
    total = result["samples"]
    rows = [[verdict, count, result["verdict_rates"][verdict]] for verdict, count in result["verdicts"].items()]
    show(rows_table(f"verdicts ({total:,} samples, grader {result['grader']})", ["verdict", "samples", "rate"], rows))
    show(
        key_value_table(
            "pass rates",
            [
                ("scored samples", result["scored"]),
                ("problems", result["problems"]),
                ("mean pass rate", result["mean_pass_rate"]),
                ("problems at p=0", result["problems_p0"]),
                ("problems at 0<p<1", result["problems_mid"]),
                ("problems at p=1", result["problems_p1"]),
                ("problems with no scored sample", result["problems_unscored"]),
            ],
        )
    )
    show(
        key_value_table(
            "this run",
            [
                ("graded now", result["graded"]),
                ("already graded (resumed)", result["resumed"]),
                ("distinct (answer, gold) pairs", result["distinct_pairs"]),
                ("dedup ratio", result["dedup_ratio"]),
                ("seconds", result["seconds"]),
                ("samples/s", result["samples_per_second"]),
                ("timeouts (workers killed)", result["timeouts"]),
                ("workers died", result["worker_deaths"]),
            ],
        )
    )
    audit = result.get("audit")
    if audit:
        show(
            key_value_table(
                f"audit: {result['grader']} vs {result['audit_grader']}",
                [("compared", audit["compared"]), ("disagreements", audit["disagreements"]), ("disagreement rate", audit["disagreement_rate"])],
            )
        )
        if audit["examples"]:
            header = ["problem_id", "sample", "gold", "extracted", result["grader"], result["audit_grader"]]
            # Problem ids and answers are user text: "[1, 2]" must not be read as rich markup.
            rows = [
                [escape(e["problem_id"]), e["sample_index"], escape(e["gold"]), escape(str(e["extracted_answer"])), e["verdict"], e["audit_verdict"]]
                for e in audit["examples"]
            ]
            show(rows_table("disagreements (examples)", header, rows))
