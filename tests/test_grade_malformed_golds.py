"""A malformed LaTeX gold (`\\frac{`, `\\sqrt{2`, unbalanced braces or brackets) is refused by the
math grader's gold check: math-verify falls back to reading it as a plain string, which no answer
equals, so every sample of its problem was graded incorrect and the run exited 0."""

from __future__ import annotations

import pytest

from paced_curate.grade.graders import gold_reading
from paced_curate.grade.math_reader import unbalanced
from tests.conftest import assert_user_error, write_jsonl

# (gold, what does not balance)
MALFORMED = [
    ("\\frac{", "an unclosed '{'"),
    ("\\frac{1}{2", "an unclosed '{'"),
    ("\\sqrt{2", "an unclosed '{'"),
    ("x^{2", "an unclosed '{'"),
    ("\\boxed{5", "an unclosed '{'"),
    ("\\frac{1}{2}}", "an unmatched '}'"),
    ("}", "an unmatched '}'"),
    ("2}{3", "an unmatched '}'"),
    ("(1, 2", "an unclosed '('"),
    ("[0, 1", "an unclosed '['"),
    ("((1)", "an unclosed '('"),
    ("f(x", "an unclosed '('"),
    ("\\text{(a}", "an unclosed '('"),
    ("{)}", "an unclosed '{'"),
    ("\\{1, 2", "an unclosed '\\\\{'"),
    ("1, 2\\}", "an unmatched '\\\\}'"),
]
WELL_FORMED = [
    "\\frac{1}{2}",
    "\\frac{\\sqrt{3}}{2}",
    "x^{2}+1",
    "[0, 1)",  # half-open intervals: round and square brackets close each other
    "(-\\infty, 0]",
    "(1, 2) \\cup [3, 4]",
    "\\{1, 2\\}",
    "\\left\\{ x \\mid x > 0 \\right\\}",
    "\\left( \\frac{1}{2} \\right.",  # \right. pairs a bracket with nothing
    "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
    "\\(\\frac{1}{2}\\)",
    "\\[ \\frac{1}{2} \\]",
    "\\sqrt{2}",
    "12:00",
    "42",
]


@pytest.mark.parametrize("gold, fault", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_a_malformed_gold_is_unreadable_by_the_math_grader(gold, fault):
    assert unbalanced(gold) == fault
    assert gold_reading("math", gold) is None


@pytest.mark.parametrize("gold", WELL_FORMED)
def test_a_well_formed_gold_still_reads(gold):
    assert unbalanced(gold) is None
    assert gold_reading("math", gold) is not None


def _generations(tmp_path, golds):
    rows = [{"id": f"p{i}", "prompt": "q", "completion": "\\boxed{\\frac{1}{2}}", "answer": gold} for i, gold in enumerate(golds)]
    return write_jsonl(tmp_path / "gen.jsonl", rows)


@pytest.mark.parametrize("gold, fault", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_paced_grade_refuses_a_malformed_gold_before_any_work(cli, tmp_path, gold, fault):
    path = _generations(tmp_path, ["\\frac{1}{2}", gold])
    out = tmp_path / "graded"
    result = cli("grade", path, "-o", out, "--grader", "math", "--workers", "1")
    assert_user_error(
        result,
        f"{path} line 2: problem 'p1': gold answer {gold!r} cannot be read by the math grader; "
        f"its braces or brackets do not balance ({fault}): fix the gold",
    )
    assert "--grader exact" not in result.stderr, "the exact grader 'reads' anything; it is no remedy for malformed LaTeX"
    assert not out.exists()


def test_the_refusal_names_a_grader_that_reads_a_malformed_gold_when_one_does(cli, tmp_path):
    path = _generations(tmp_path, ["(B"])
    result = cli("grade", path, "-o", tmp_path / "graded", "--workers", "1")
    assert_user_error(result, "gold answer '(B' cannot be read by the math grader; its braces or brackets do not balance (an unclosed '('): fix the gold, or --grader choice reads it as 'B'")


def test_well_formed_golds_grade_as_before(cli, tmp_path):
    import json

    path = _generations(tmp_path, ["\\frac{1}{2}", "\\frac{2}{4}", "[0, 1)"])
    result = cli("grade", path, "-o", tmp_path / "graded.parquet", "--grader", "math", "--workers", "1", "--json")
    assert result.exit_code == 0, result.output
    import pyarrow.parquet as pq

    verdicts = pq.read_table(tmp_path / "graded.parquet").sort_by("problem_id").column("verdict").to_pylist()
    assert verdicts == ["correct", "correct", "incorrect"], json.loads(result.stdout)
