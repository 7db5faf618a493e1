"""The `paced grade` summary: verdict counts, pass-rate spread, answers not read (per grader,
with what they do to the pass rates), the judge's changes, and the audits; rendered on stderr.

    summary = grade_summary(graded_table)
    render_grade_summary(result.to_dict())
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
from rich.markup import escape

from paced_curate.report import key_value_table, rows_table, show
from paced_curate.schema import JUDGE_VERDICTS, VERDICTS

GRADED = ("correct", "incorrect", "no_answer")
NUM_AUDIT_EXAMPLES = 5


def grade_summary(table: pa.Table) -> dict:
    """Verdict counts and rates, pass-rate spread and (with an audit column) grader disagreement.

    Args:
        table: a grades table, or at least its columns problem_id, sample_index, answer,
            extracted_answer, verdict, scored (and audit_verdict when audited).

    Returns:
        A JSON-ready dict: `verdicts`, `verdict_rates`, `scored`, `problems`, `problems_p0`,
        `problems_mid` (0 < p < 1), `problems_p1`, `problems_unscored`, `mean_pass_rate`,
        `unread` (per grader: the no_answer, error and timeout verdicts with examples and what
        they do to the pass rates, see `unread_verdicts`), `judge` (`judge_counts`) or None, and
        `audit` ({"kind": "grader", "compared", "disagreements", "disagreement_rate", "examples"}) or None.
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
        "unread": unread_verdicts(table),
        "judge": judge_counts(table) if "judge_verdict" in table.column_names else None,
        "audit": _audit(table) if "audit_verdict" in table.column_names else None,
    }
    return summary


UNREAD = ("no_answer", "error", "timeout")
NUM_UNREAD_EXAMPLES = 3


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def unread_verdicts(table: pa.Table) -> dict:
    """The verdicts that say a sample was not read, per grader, and what they do to pass rates.

    For each grader in the `grader` column: for no_answer, error and timeout, the samples, the
    problems they touch and up to three examples (problem, sample, gold, extracted answer, error
    message). no_answer is scored as a failure, so it can pull a pass rate down: reported are the
    mean pass rate as written and as it would be with no_answer samples left out, and the
    problems whose every scored sample is no_answer (p = 0 only because nothing was read).
    error and timeout follow `--errors`: reported are the problems that lose samples to them,
    those left with no scored sample at all, and the mean pass rate with these samples left out
    and with them counted wrong.

    Returns:
        {grader: {"no_answer": {...}, "error": {...}, "timeout": {...}, "mean_pass_rate",
        "mean_pass_rate_without_no_answer", "problems_all_no_answer",
        "mean_pass_rate_failures_excluded", "mean_pass_rate_failures_wrong",
        "problems_losing_samples_to_failures", "problems_unscored_by_failures"}}
    """
    names = ["problem_id", "sample_index", "answer", "extracted_answer", "verdict", "scored"]
    columns = {name: table.column(name).to_pylist() for name in names}
    graders = table.column("grader").to_pylist() if "grader" in table.column_names else ["(grader)"] * table.num_rows
    messages = table.column("error").to_pylist() if "error" in table.column_names else [None] * table.num_rows
    out: dict = {}
    per: dict = {}
    for row, grader in enumerate(graders):
        grader = grader or "(grader)"
        entry = out.setdefault(grader, {verdict: {"samples": 0, "problems": 0, "examples": []} for verdict in UNREAD})
        problem = per.setdefault(grader, {}).setdefault(columns["problem_id"][row], {"n": 0, "c": 0, "na": 0, "failed": 0, "failed_scored": 0, "seen": set()})
        verdict, scored = columns["verdict"][row], columns["scored"][row]
        problem["n"] += bool(scored)
        problem["c"] += bool(scored) and verdict == "correct"
        problem["na"] += bool(scored) and verdict == "no_answer"
        if verdict in ("error", "timeout"):
            problem["failed"] += 1
            problem["failed_scored"] += bool(scored)
        if verdict in UNREAD:
            item = entry[verdict]
            item["samples"] += 1
            if verdict not in problem["seen"]:
                problem["seen"].add(verdict)
                item["problems"] += 1
            if len(item["examples"]) < NUM_UNREAD_EXAMPLES:
                item["examples"].append({
                    "problem_id": columns["problem_id"][row], "sample_index": columns["sample_index"][row], "gold": columns["answer"][row],
                    "extracted_answer": columns["extracted_answer"][row], "error": messages[row],
                })
    for grader, problems in per.items():
        stats = problems.values()
        out[grader] |= {
            "mean_pass_rate": _mean([p["c"] / p["n"] for p in stats if p["n"]]),
            "mean_pass_rate_without_no_answer": _mean([p["c"] / (p["n"] - p["na"]) for p in stats if p["n"] - p["na"]]),
            "problems_all_no_answer": sum(1 for p in stats if p["n"] and p["na"] == p["n"]),
            "mean_pass_rate_failures_excluded": _mean([p["c"] / (p["n"] - p["failed_scored"]) for p in stats if p["n"] - p["failed_scored"]]),
            "mean_pass_rate_failures_wrong": _mean(
                [p["c"] / (p["n"] + p["failed"] - p["failed_scored"]) for p in stats if p["n"] + p["failed"] - p["failed_scored"]]
            ),
            "problems_losing_samples_to_failures": sum(1 for p in stats if p["failed"]),
            "problems_unscored_by_failures": sum(1 for p in stats if p["failed"] and not p["n"]),
        }
    return out


def judge_counts(table: pa.Table) -> dict:
    """What a judge (`paced grade --judge`) did in a graded table: samples it was asked about,
    verdicts it changed (rule_verdict -> verdict), its readings, and replies it could not give."""
    judged = table.column("judge_verdict").to_pylist()
    rules = table.column("rule_verdict").to_pylist() if "rule_verdict" in table.column_names else [None] * table.num_rows
    verdicts = table.column("verdict").to_pylist()
    asked = [row for row, value in enumerate(judged) if value is not None]
    changed = Counter(f"{rules[row]} -> {verdicts[row]}" for row in asked if rules[row] is not None and rules[row] != verdicts[row])
    readings = Counter(judged[row] for row in asked)
    return {
        "asked": len(asked),
        "changed": sum(changed.values()),
        "changes": dict(sorted(changed.items())),
        "readings": {name: readings.get(name, 0) for name in JUDGE_VERDICTS},
    }


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
        "kind": "grader",
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
    render_unread(result.get("unread") or {})
    judge = result.get("judge")
    if judge:
        rows = [("asked (rules said incorrect or no_answer)", judge["asked"]), ("verdicts changed to correct", judge["changed"])]
        rows += [(f"  {change}", count) for change, count in judge["changes"].items()]
        rows += [(f"judge said {name}", count) for name, count in judge["readings"].items() if count]
        if "requests" in judge:
            rows += [("requests sent (this run)", judge["requests"]), ("answered from the cache", judge["cache_hits"])]
            if judge["gave_up"]:
                rows.append(("judge given up (failed repeatedly)", "yes"))
        show(key_value_table(f"judge: {escape(str(judge.get('model', '')))}", rows))
    audit = result.get("audit")
    if audit and audit.get("kind") == "math-verify":
        render_independent_audit(audit, result["grader"])
    elif audit:
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


def render_unread(unread: dict) -> None:
    """The samples no answer was read from, per grader, and what they do to the pass rates."""
    for grader, entry in unread.items():
        if not any(entry[verdict]["samples"] for verdict in UNREAD):
            continue
        rows = [(f"{verdict} samples (problems)", f"{entry[verdict]['samples']:,} ({entry[verdict]['problems']:,})") for verdict in UNREAD]
        rows += [
            ("mean pass rate as scored", entry["mean_pass_rate"]),
            ("... with no_answer left out", entry["mean_pass_rate_without_no_answer"]),
            ("problems whose every scored sample is no_answer", entry["problems_all_no_answer"]),
            ("problems losing samples to error/timeout", entry["problems_losing_samples_to_failures"]),
            ("... left with no scored sample", entry["problems_unscored_by_failures"]),
            ("mean pass rate, failures left out / counted wrong",
             f"{_shown_rate(entry['mean_pass_rate_failures_excluded'])} / {_shown_rate(entry['mean_pass_rate_failures_wrong'])}"),
        ]
        show(key_value_table(f"answers not read ({escape(grader)} grader)", rows))
        examples = [(verdict, e) for verdict in UNREAD for e in entry[verdict]["examples"]]
        if examples:
            header = ["verdict", "problem_id", "sample", "gold", "extracted", "error"]
            show(rows_table("not read (examples)", header, [
                [verdict, escape(str(e["problem_id"])), e["sample_index"], escape(str(e["gold"])), escape(str(e["extracted_answer"] or "-")), escape(str(e["error"] or ""))]
                for verdict, e in examples
            ]))


def _shown_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def render_independent_audit(audit: dict, grader: str) -> None:
    """The math-verify audit: disagreement on a bounded sample and what it does to the weights."""
    limit = audit["samples_limit"] or "all"
    rows = [
        ("samples compared (limit)", f"{audit['compared']:,} ({limit})"),
        ("not compared (math-verify timed out or failed)", audit["not_compared"]),
        ("disagreements", audit["disagreements"]),
        ("disagreement rate", audit["disagreement_rate"]),
        (f"correct by {grader} only", audit["paced_only_correct"]),
        ("correct by math-verify only", audit["independent_only_correct"]),
        ("problems compared", audit["problems"]),
        ("mean |change| of pass rate", audit["mean_abs_pass_rate_change"]),
        ("mean |change| of weight p(1-p)", audit["mean_abs_weight_change"]),
        ("problems whose weight changes by > 0.05", audit["problems_weight_changed"]),
        ("problems at weight 0 under one reading only", audit["problems_weight_zero_one_side"]),
    ]
    show(key_value_table(f"audit: {grader} vs math-verify alone on the whole completion", rows))
    if audit["examples"]:
        header = ["problem_id", "sample", "gold", grader, "extracted", "math-verify", "extracted"]
        show(rows_table("disagreements (examples)", header, [
            [escape(str(e["problem_id"])), e["sample_index"], escape(str(e["gold"])), e["verdict"], escape(str(e["extracted_answer"])),
             e["independent_verdict"], escape(str(e["independent_extracted"]))]
            for e in audit["examples"]
        ]))
