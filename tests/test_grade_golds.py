"""Nothing leaves a pass rate silently (#23): a gold the grader cannot read is refused before any
work, in one line naming file, row, problem and a grader that reads it; the summary counts the
answers not read, per grader, and says what they do to the pass rates."""

from __future__ import annotations

import json

import pytest

from paced_curate.errors import InputError
from paced_curate.grade import GradeConfig, grade_table, run_grade
from paced_curate.grade.graders import gold_reading
from paced_curate.grade.summary import grade_summary
from paced_curate.io import read_table
from paced_curate.schema import GRADES, ROLLOUTS, build_table
from tests.conftest import assert_user_error, write_jsonl
from tests.test_grade_runner import rollout

# (grader, gold, readable by that grader?, the grader the refusal names, how it reads it)
GOLDS = [
    ("numeric", "4:30", False, "math", "a clock time"),
    ("numeric", "1:2", False, "math", "a ratio"),
    ("numeric", "x^2+1", False, "math", "'x^2+1'"),
    ("numeric", "Paris", False, "exact", "'paris'"),
    ("choice", "42", False, "math", "'42'"),
    ("choice", "A or B", False, "exact", "'aorb'"),
    ("math", "$$", False, None, None),
    ("numeric", "10,\\!000", True, None, None),
    ("numeric", "\\frac{\\sqrt{3}}{2}", True, None, None),
    ("numeric", "twenty-five", True, None, None),
    ("numeric", "25\\%", True, None, None),
    ("math", "12:00", True, None, None),
    ("math", "1:2", True, None, None),
    ("math", "(3, \\infty)", True, None, None),
    ("choice", "(b)", True, None, None),
    ("exact", "Paris", True, None, None),
]


@pytest.mark.parametrize("grader,gold,readable,reader,reading", GOLDS, ids=[f"{c[0]}: {c[1]}" for c in GOLDS])
def test_which_golds_each_grader_reads(grader, gold, readable, reader, reading):
    assert (gold_reading(grader, gold) is not None) is readable
    if reader is not None:
        assert gold_reading(reader, gold) is not None


def generations(tmp_path, golds):
    rows = [{"id": f"p{i}", "prompt": "q", "completion": "\\boxed{5}", "answer": gold} for i, gold in enumerate(golds)]
    return write_jsonl(tmp_path / "gen.jsonl", rows)


REFUSED = [case for case in GOLDS if not case[2] and case[3] is not None]


@pytest.mark.parametrize("grader,gold,readable,reader,reading", REFUSED, ids=[f"{c[0]}: {c[1]}" for c in REFUSED])
def test_an_unreadable_gold_is_refused_before_any_work_naming_row_problem_and_a_reader(cli, tmp_path, grader, gold, readable, reader, reading):
    fill = {"numeric": "5", "choice": "B", "math": "5", "exact": "x"}[grader]  # golds the grader reads
    path = generations(tmp_path, [fill, fill, gold])
    out = tmp_path / "graded"
    result = cli("grade", path, "-o", out, "--grader", grader, "--workers", "1")
    assert_user_error(
        result, f"{path} line 3: problem 'p2': gold answer {gold!r} cannot be read by the {grader} grader; --grader {reader} reads it as {reading}"
    )
    assert not out.exists(), "nothing is written before the golds are checked"


def test_a_gold_no_built_in_grader_reads_says_so(cli, tmp_path):
    path = generations(tmp_path, ["$$"])
    result = cli("grade", path, "-o", tmp_path / "graded", "--workers", "1")
    assert_user_error(result, "gold answer '$$' cannot be read by the math grader; no built-in grader reads it: write a module:function grader")


def test_the_refusal_counts_the_other_unreadable_golds_and_names_the_first_row(tmp_path):
    path = generations(tmp_path, ["5", "Paris", "Lyon", "Rome"])
    with pytest.raises(InputError) as caught:
        run_grade(GradeConfig(rollouts=str(path), output=str(tmp_path / "graded"), grader="numeric", workers=1))
    message = str(caught.value)
    assert message.startswith(f"{path} line 2: problem 'p1': gold answer 'Paris' cannot be read by the numeric grader; --grader exact reads it")
    assert message.endswith("; 2 more problems have golds it cannot read") and "\n" not in message


def test_grade_table_refuses_too_and_a_plugin_reads_its_own_golds():
    table = build_table([rollout("p", 0, "\\boxed{5}", "4:30")], ROLLOUTS)
    with pytest.raises(InputError, match="cannot be read by the numeric grader; --grader math reads it as a clock time"):
        grade_table(table, "numeric", workers=1)
    graded = grade_table(table, "tests.test_grade_graders:boolean_grader", workers=1)
    assert graded.column("verdict").to_pylist() == ["incorrect"]


def test_the_issue_golds_now_grade_instead_of_error(tmp_path):
    """#23: gold 12:00 made every sample `error`; MATH's 10,\\!000 did the same for the numeric grader."""
    rows = [rollout("t", 0, "\\boxed{12:00}", "12:00"), rollout("t", 1, "\\boxed{1:00}", "12:00")]
    graded = grade_table(build_table(rows, ROLLOUTS), "math", workers=1)
    assert graded.column("verdict").to_pylist() == ["correct", "incorrect"]
    rows = [rollout("m", 0, "\\boxed{10000}", "10,\\!000"), rollout("m", 1, "\\boxed{1,\\!000}", "10,\\!000")]
    graded = grade_table(build_table(rows, ROLLOUTS), "numeric", workers=1)
    assert graded.column("verdict").to_pylist() == ["correct", "incorrect"]


def test_the_summary_counts_answers_not_read_and_their_effect_on_pass_rates(cli, tmp_path):
    rows = [
        rollout("a", 0, "\\boxed{5}", "5"), rollout("a", 1, "I give up.", "5"), rollout("a", 2, "\\boxed{4}", "5"), rollout("a", 3, "<think>hm", "5"),
        rollout("b", 0, "no idea", "7"), rollout("b", 1, "not sure", "7"),
        rollout("c", 0, "\\boxed{3}", "3"), rollout("c", 1, "oops", "3", finish="error", error="server 500"),
        rollout("d", 0, "x", "2", finish="error", error="server 500"),
    ]
    path = tmp_path / "r.parquet"
    from tests.test_grade_runner import write_rollouts

    write_rollouts(path, rows)
    result = cli("grade", path, "-o", tmp_path / "graded", "--workers", "1", "--audit", "none", "--json")
    assert result.exit_code == 0, result.output
    unread = json.loads(result.stdout)["unread"]["math"]
    assert (unread["no_answer"]["samples"], unread["no_answer"]["problems"]) == (4, 2)
    assert (unread["error"]["samples"], unread["error"]["problems"]) == (2, 2)
    assert unread["timeout"]["samples"] == 0
    assert [e["problem_id"] for e in unread["no_answer"]["examples"]] == ["a", "a", "b"]
    assert unread["error"]["examples"][0]["error"] == "server 500"
    # a: 1/4 scored, b: 0/2, c: 1/1 (the error is left out), d: no scored sample.
    assert unread["mean_pass_rate"] == pytest.approx((0.25 + 0 + 1) / 3)
    assert unread["mean_pass_rate_without_no_answer"] == pytest.approx((0.5 + 1) / 2)  # b has no answer at all: left out
    assert unread["problems_all_no_answer"] == 1
    assert unread["problems_losing_samples_to_failures"] == 2 and unread["problems_unscored_by_failures"] == 1
    assert unread["mean_pass_rate_failures_excluded"] == pytest.approx((0.25 + 0 + 1) / 3)
    assert unread["mean_pass_rate_failures_wrong"] == pytest.approx((0.25 + 0 + 0.5 + 0) / 4)
    assert "answers not read (math grader)" in result.stderr and "not read (examples)" in result.stderr


def test_the_summary_is_per_grader():
    graded = read_table_like([("p", 0, "math", "no_answer"), ("q", 0, "exact", "correct"), ("q", 1, "exact", "no_answer")])
    unread = grade_summary(graded)["unread"]
    assert set(unread) == {"math", "exact"}
    assert unread["math"]["no_answer"]["samples"] == 1 and unread["exact"]["no_answer"]["samples"] == 1
    assert unread["exact"]["mean_pass_rate"] == 0.5


def read_table_like(rows):
    import pyarrow as pa

    return pa.table({
        "problem_id": [r[0] for r in rows], "sample_index": [r[1] for r in rows], "answer": ["1"] * len(rows),
        "extracted_answer": [None] * len(rows), "verdict": [r[3] for r in rows], "scored": [True] * len(rows),
        "grader": [r[2] for r in rows], "error": [None] * len(rows),
    })


def test_graded_output_still_reads_with_the_grades_schema(tmp_path):
    path = generations(tmp_path, ["5", "6"])
    run_grade(GradeConfig(rollouts=str(path), output=str(tmp_path / "graded"), workers=1))
    table = read_table(str(tmp_path / "graded"), GRADES)
    assert table.column("verdict").to_pylist() == ["correct", "incorrect"]
    assert "judge_verdict" not in table.column_names and "rule_verdict" not in table.column_names
