"""avg@K, pass@k and maj@K against hand-computed cases, and through `paced inspect --json`."""

from __future__ import annotations

import json
import random
from math import comb

import pyarrow as pa
import pytest

from paced_curate.errors import ConfigError
from paced_curate.grade.metrics import evaluation_report, grade_summary, pass_at_k
from paced_curate.io import write_table
from paced_curate.schema import GRADES, build_table
from tests.conftest import assert_user_error
from tests.test_schema import GRADE_ROW


@pytest.mark.parametrize(
    "n,c,k,expected",
    [
        (4, 1, 1, 0.25),
        (4, 1, 2, 1 - 3 / 6),  # 1 - C(3,2)/C(4,2)
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2)
        (8, 3, 4, 1 - comb(5, 4) / comb(8, 4)),
        (4, 0, 4, 0.0),
        (4, 3, 2, 1.0),  # fewer than k wrong samples: some k-subset must hold a correct one
        (200, 1, 100, 0.5),
    ],
)
def test_pass_at_k_is_the_unbiased_estimator(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def sample(problem_id, index, extracted, verdict, scored=True, difficulty="easy"):
    return GRADE_ROW | {"problem_id": problem_id, "sample_index": index, "extracted_answer": extracted, "verdict": verdict, "scored": scored, "difficulty": difficulty}


def graded(rows: list[dict]) -> pa.Table:
    plain = [{k: v for k, v in row.items() if k != "difficulty"} for row in rows]
    return build_table(plain, GRADES).append_column("difficulty", pa.array([row["difficulty"] for row in rows]))


ROWS = [
    # a: c=1 of n=4; "2" is the majority (two votes) and wrong -> maj 0.
    sample("a", 0, "2", "incorrect"), sample("a", 1, "2", "incorrect"), sample("a", 2, "3", "correct"), sample("a", 3, None, "no_answer"),
    # b: 4 of 4 -> maj 1.
    *[sample("b", i, "5", "correct") for i in range(4)],
    # c: n=2 (two timeouts excluded), c=1; a 1-1 tie goes to sample 0's answer "7" (correct).
    sample("c", 0, "7", "correct", difficulty="hard"), sample("c", 1, "8", "incorrect", difficulty="hard"),
    sample("c", 2, None, "timeout", scored=False, difficulty="hard"), sample("c", 3, None, "timeout", scored=False, difficulty="hard"),
    # d: nothing scored -> left out of every mean.
    sample("d", 0, None, "error", scored=False, difficulty="hard"),
]


def test_evaluation_report_matches_a_hand_computed_case():
    report = evaluation_report(graded(ROWS), group_by="difficulty")
    overall = report["overall"]
    assert (report["samples"], report["problems"]) == (13, 4)
    assert report["verdicts"] == {"correct": 6, "incorrect": 3, "no_answer": 1, "truncated": 0, "timeout": 2, "error": 1}
    assert (overall["problems"], overall["unscored_problems"], overall["scored_samples"], overall["k"]) == (3, 1, 10, 4)
    assert overall["avg_at_k"] == pytest.approx((1 / 4 + 1 + 1 / 2) / 3)
    assert overall["maj_at_k"] == pytest.approx(2 / 3)
    assert list(overall["pass_at_k"]) == ["1", "2", "4"]
    # Every pass@k over ONE set: the problems with n >= 4 (a and b); c (n = 2) is counted as left out (#12).
    assert (overall["pass_at_k_min_samples"], overall["pass_at_k_problems"], overall["pass_at_k_left_out"]) == (4, 2, 1)
    assert overall["pass_at_k"]["1"] == pytest.approx((0.25 + 1) / 2)
    assert overall["pass_at_k"]["2"] == pytest.approx((0.5 + 1) / 2)
    assert overall["pass_at_k"]["4"] == pytest.approx((1 + 1) / 2)
    easy, hard = report["groups"]
    assert (easy["value"], easy["problems"], easy["avg_at_k"], easy["maj_at_k"]) == ("easy", 2, pytest.approx(0.625), 0.5)
    assert (hard["value"], hard["problems"], hard["unscored_problems"], hard["avg_at_k"], hard["maj_at_k"]) == ("hard", 1, 1, 0.5, 1.0)
    # A group reports the overall k's, over its own problems with n >= 4: none here, and says so.
    assert hard["pass_at_k"] == {"1": None, "2": None, "4": None}
    assert (hard["pass_at_k_problems"], hard["pass_at_k_left_out"]) == (0, 1)


def test_row_order_does_not_change_the_report():
    shuffled = ROWS[:]
    random.Random(0).shuffle(shuffled)
    assert evaluation_report(graded(shuffled), "difficulty") == evaluation_report(graded(ROWS), "difficulty")


def test_majority_tie_goes_to_the_answer_seen_first_by_sample_index():
    rows = [sample("t", 1, "8", "incorrect"), sample("t", 0, "7", "correct"), sample("t", 2, "8", "incorrect"), sample("t", 3, "7", "correct")]
    assert evaluation_report(graded(rows))["overall"]["maj_at_k"] == 1.0
    rows[1] = sample("t", 5, "7", "correct")  # now "8" is seen first (index 1)
    assert evaluation_report(graded(rows))["overall"]["maj_at_k"] == 0.0


def test_non_power_of_two_k_is_reported_last():
    rows = [sample("x", i, str(i), "correct" if i == 0 else "incorrect") for i in range(6)]
    report = evaluation_report(graded(rows))["overall"]
    assert list(report["pass_at_k"]) == ["1", "2", "4", "6"] and report["pass_at_k"]["6"] == 1.0


def test_grade_summary_counts_pass_rate_spread():
    summary = grade_summary(graded(ROWS + [sample("e", 0, "1", "incorrect")]))
    assert (summary["problems"], summary["problems_p0"], summary["problems_mid"], summary["problems_p1"], summary["problems_unscored"]) == (5, 1, 2, 1, 1)
    assert summary["mean_pass_rate"] == pytest.approx((0.25 + 1 + 0.5 + 0) / 4)
    assert summary["scored"] == 11 and summary["audit"] is None


def test_inspect_json_and_group_by(cli, tmp_path):
    path = tmp_path / "graded.parquet"
    write_table(graded(ROWS), str(path), GRADES)
    result = cli("inspect", path, "--group-by", "difficulty", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["stage"] == "grades"
    assert report["evaluation"] == json.loads(json.dumps(evaluation_report(graded(ROWS), "difficulty")))
    shown = cli("inspect", path, "--group-by", "difficulty")
    assert shown.exit_code == 0, shown.output
    assert "maj@4" in shown.stderr and "pass@4" in shown.stderr and "│ hard" in shown.stderr
    assert "fewer than 4 scored samples (left out of every pass@k) │ 1" in shown.stderr
    assert_user_error(cli("inspect", path, "--group-by", "source"), "--group-by source: the graded table has no such column; columns: problem_id")


def votes(grader, answers):
    """A problem's samples from (extracted answer, verdict) pairs, graded by `grader`."""
    return [sample("m", i, answer, verdict) | {"grader": grader} for i, (answer, verdict) in enumerate(answers)]


# (grader, [(extracted, verdict) by sample_index], maj solved, why)
MAJORITY = [
    ("math", [("\\frac{1}{2}", "incorrect"), ("0.5", "incorrect"), ("1/2", "incorrect"), ("3", "correct"), ("3", "correct")], False,
     "the issue's example: \\frac{1}{2}, 0.5 and 1/2 are one answer with 3 votes, beating 2"),
    ("math", [("3", "correct"), ("\\frac{1}{2}", "incorrect"), ("0.5", "incorrect"), ("0.25", "incorrect")], False,
     "1/2 written twice beats one correct vote"),
    ("math", [("\\frac{6}{2}", "correct"), ("3.0", "correct"), ("\\frac{1}{2}", "incorrect"), ("2", "incorrect")], True,
     "correct answers spelled differently are one group (2 votes vs 1 and 1)"),
    ("math", [("2", "incorrect"), ("3", "correct"), ("\\frac{4}{2}", "incorrect"), ("3", "correct")], False,
     "a 2-2 tie: the group voted for first (sample 0) wins"),
    ("math", [("3", "correct"), ("2", "incorrect"), ("\\frac{4}{2}", "incorrect"), ("3", "correct")], True,
     "the same tie the other way round"),
    ("exact", [("1/2", "incorrect"), ("0.5", "incorrect"), ("3", "correct"), ("3", "correct")], True,
     "exact groups by spelling: 1/2 and 0.5 are two answers"),
    ("numeric", [("1,000", "incorrect"), ("1000", "incorrect"), ("1e3", "incorrect"), ("7", "correct"), ("7", "correct")], False,
     "numeric groups by value"),
    ("choice", [("(B)", "incorrect"), ("B", "incorrect"), ("C", "correct")], False, "choice groups by letter"),
    ("math", [(None, "no_answer"), (None, "no_answer"), ("3", "correct")], True, "no_answer casts no vote"),
    ("math", [("2", "incorrect"), ("2", "incorrect")], False, "no correct sample"),
]


@pytest.mark.parametrize("grader,answers,solved,why", MAJORITY, ids=[case[3] for case in MAJORITY])
def test_majority_votes_on_the_graders_equivalence(grader, answers, solved, why):
    assert evaluation_report(graded(votes(grader, answers)))["overall"]["maj_at_k"] == float(solved), why


def test_group_by_a_column_that_varies_within_a_problem_is_an_error(cli, tmp_path):
    rows = [sample("a", 0, "1", "correct", difficulty="easy"), sample("a", 1, "1", "correct", difficulty="hard")]
    with pytest.raises(ConfigError, match=r"--group-by difficulty: problem 'a' has rows with different values \('easy' and 'hard'\)"):
        evaluation_report(graded(rows), "difficulty")
    path = tmp_path / "graded.parquet"
    write_table(graded(rows), str(path), GRADES)
    assert_user_error(cli("inspect", path, "--group-by", "difficulty"), "--group-by difficulty: problem 'a' has rows with different values")
