"""Verdict accuracy on the case table (#23): paced's graders against math-verify called alone.

Every row of tests/cases/verdicts.jsonl (a completion, a gold, the grader, the right verdict) is
graded twice: by paced (the row's grader, as `paced grade` runs it) and by the baseline people
usually call, math-verify alone on the whole completion with its default settings:
`verify(parse(gold), parse(completion))`, the gold wrapped in `$...$` when it has no delimiters.
A reading is right when it calls the sample correct exactly when the table does (a wrong answer
and a missing one both count as "not correct": both score 0 in a pass rate). A false positive is a
sample the table says is not correct that a reading calls correct: the worst direction for a
pass rate. Results are per grader and per kind of case.

    python bench/verdict_table.py                      # about a minute on 2 cores

Prints a table, then one JSON line last; writes bench/results/verdict_table.json.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import platform
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TABLE = ROOT / "tests" / "cases" / "verdicts.jsonl"
RESULTS = ROOT / "bench" / "results" / "verdict_table.json"


def math_verify_alone(completion: str, gold: str) -> str:
    """correct / incorrect / no_answer / error, as math-verify alone reads the whole completion."""
    from math_verify import parse, verify
    from math_verify.errors import TimeoutException

    try:
        gold_parsed = parse(gold if ("$" in gold or "\\boxed" in gold) else f"${gold}$")
        parsed = parse(completion)
        if not parsed:
            return "no_answer"
        return "correct" if verify(gold_parsed, parsed) else "incorrect"
    except (Exception, TimeoutException):
        return "error"


def paced_verdict(case: dict) -> str:
    from paced_curate.grade.answers import parse_reasoning_tags
    from paced_curate.grade.graders import load_grader, make_grader

    options = dict(case.get("options", {}))
    if "reasoning_tags" in options:
        options["reasoning_tags"] = parse_reasoning_tags(options["reasoning_tags"])
    try:
        return make_grader(load_grader(case["grader"], **options))(case["completion"], case["gold"]).verdict
    except Exception:
        return "error"


def _tally(rows: list[dict], key: str) -> dict:
    out: dict = defaultdict(lambda: {"cases": 0, "paced_right": 0, "math_verify_right": 0, "paced_false_positives": 0,
                                     "math_verify_false_positives": 0, "paced_errors": 0, "math_verify_errors": 0})
    for row in rows:
        for name in (row[key], "(all)"):
            entry = out[name]
            entry["cases"] += 1
            truth = row["verdict"] == "correct"
            for reader in ("paced", "math_verify"):
                said = row[reader]
                entry[f"{reader}_right"] += (said == "correct") == truth
                entry[f"{reader}_false_positives"] += said == "correct" and not truth
                entry[f"{reader}_errors"] += said == "error"
    for entry in out.values():
        entry["paced_accuracy"] = entry["paced_right"] / entry["cases"]
        entry["math_verify_accuracy"] = entry["math_verify_right"] / entry["cases"]
    return dict(sorted(out.items()))


def main() -> dict:
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    rows = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        if line.strip():
            case = json.loads(line)
            rows.append(case | {"paced": paced_verdict(case), "math_verify": math_verify_alone(case["completion"], case["gold"])})
    by_grader, by_kind = _tally(rows, "grader"), _tally(rows, "kind")
    print(f"{'':22} {'cases':>6} {'paced':>8} {'math-verify':>12} {'paced FP':>9} {'mv FP':>6}")
    for title, table in (("grader", by_grader), ("kind", by_kind)):
        print(f"-- by {title}")
        for name, entry in table.items():
            print(f"{name:22} {entry['cases']:6d} {entry['paced_accuracy']:8.3f} {entry['math_verify_accuracy']:12.3f}"
                  f" {entry['paced_false_positives']:9d} {entry['math_verify_false_positives']:6d}")
    result = {
        "bench": "verdict_table",
        "date": dt.date.today().isoformat(),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "command": "python bench/verdict_table.py",
        "table": str(TABLE.relative_to(ROOT)),
        "cases": len(rows),
        "by_grader": by_grader,
        "by_kind": by_kind,
        "paced_misses": [
            {k: row[k] for k in ("kind", "grader", "gold", "verdict", "paced", "completion")} for row in rows if (row["paced"] == "correct") != (row["verdict"] == "correct")
        ],
    }
    try:
        import math_verify

        result["math_verify_version"] = getattr(math_verify, "__version__", None)
    except ImportError:
        pass
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    summary = by_grader["(all)"]
    print(json.dumps({"bench": "verdict_table", "cases": len(rows), "paced_accuracy": summary["paced_accuracy"],
                      "math_verify_accuracy": summary["math_verify_accuracy"], "paced_false_positives": summary["paced_false_positives"],
                      "math_verify_false_positives": summary["math_verify_false_positives"]}))
    return result


if __name__ == "__main__":
    main()
