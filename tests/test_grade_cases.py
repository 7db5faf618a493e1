"""The case table (#23): every row of tests/cases/verdicts.jsonl graded by the real graders (real
math-verify), on the whole completion as `paced grade` sees it, must give its verdict (and its
extracted answer, where the row names one). A new report becomes one line of that file.

A row: kind, grader, gold, verdict, optional extracted, optional options (tolerance,
answer_format, reasoning_tags), completion, optional why, source (the public issue, test or
dataset format the case comes from) and, for variants of a kind the issue reported, "report".
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from paced_curate.grade.answers import parse_reasoning_tags
from paced_curate.grade.graders import BUILTIN, GRADED_VERDICTS, gold_reading, load_grader, make_grader, reduce_completion

TABLE = Path(__file__).parent / "cases" / "verdicts.jsonl"
FIELDS = {"kind", "grader", "gold", "verdict", "extracted", "options", "completion", "why", "source", "report"}
OPTIONS = {"tolerance", "answer_format", "reasoning_tags"}
# The kinds of fault #23 reported, each fixed as a kind and written here with its variants.
REPORTED_KINDS = {
    "clock-time", "ratio", "markdown-heading", "code-block", "answer-tags", "non-english-labels", "choice-prose",
    "few-shot-run-on", "math-thousands", "interval-inequality", "notation", "numeric-readable", "reasoning-tags",
    "multiple-boxes", "box-free-tail",
}
# Mined from public graders' tests and harness formats, to keep what already worked.
MINED_KINDS = {"equivalence", "near-miss", "answer-phrase", "last-box", "exact-string"}


def load_cases() -> list[dict]:
    rows = []
    for number, line in enumerate(TABLE.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            rows.append(json.loads(line) | {"line": number})
    return rows


CASES = load_cases()


def spec_of(case: dict):
    options = dict(case.get("options", {}))
    if "reasoning_tags" in options:
        options["reasoning_tags"] = parse_reasoning_tags(options["reasoning_tags"])
    return load_grader(case["grader"], **options)


def test_the_table_is_large_sourced_and_well_formed():
    assert len(CASES) >= 300, len(CASES)
    kinds = Counter(case["kind"] for case in CASES)
    assert set(kinds) == REPORTED_KINDS | MINED_KINDS, set(kinds) ^ (REPORTED_KINDS | MINED_KINDS)
    thin = {kind: count for kind, count in kinds.items() if count < 10}
    assert not thin, f"kinds with fewer than 10 variants: {thin}"
    for case in CASES:
        where = f"{TABLE.name} line {case['line']}"
        assert set(case) - {"line"} <= FIELDS, (where, set(case) - FIELDS)
        assert case["grader"] in BUILTIN, where
        assert case["verdict"] in GRADED_VERDICTS, (where, "a case never expects error or timeout")
        assert case["source"].startswith("https://"), (where, case["source"])
        assert set(case.get("options", {})) <= OPTIONS, where
        assert case.get("report", "#23") == "#23", where
    incorrect = sum(1 for case in CASES if case["verdict"] != "correct")
    assert incorrect >= 150, f"near misses keep false positives out; only {incorrect} cases expect a wrong or missing answer"


@pytest.mark.parametrize("case", CASES, ids=[f"{case['line']}-{case['kind']}" for case in CASES])
def test_case(case):
    spec = spec_of(case)
    tolerance = case.get("options", {}).get("tolerance", 1e-6)
    assert gold_reading(case["grader"], case["gold"], tolerance) is not None, "the grader must read the gold (else paced refuses it)"
    grade = make_grader(spec)
    direct = tuple(grade(case["completion"], case["gold"]))
    reduced = reduce_completion(spec, case["completion"])
    via_parent = ("no_answer", None, None) if reduced is None else tuple(grade(reduced, case["gold"]))
    assert direct == via_parent, ("reducing in the parent must not change the outcome", direct, via_parent)
    assert direct[0] != "error", direct
    assert direct[0] == case["verdict"], (case.get("why"), direct)
    if "extracted" in case:
        assert direct[1] == case["extracted"], (case.get("why"), direct)
