"""The default audit (#23 item 6): math-verify alone on a bounded sample of whole problems, with the
disagreement and what the choice of reading does to pass rates and weights; `--audit none` turns
it off."""

from __future__ import annotations

import json

import pyarrow as pa

from paced_curate.grade import GradeConfig, run_grade
from paced_curate.grade.audit import audit_rows
from tests.test_grade_runner import rollout, write_rollouts

ROWS = [
    # p: the clock time. paced: 4:30 correct, 2:15 incorrect (p = 0.5); math-verify alone
    # reads 2:15 as 2/15 = 4/30, so both correct (p = 1, weight 0).
    rollout("clock", 0, "It arrives at 2:15. $\\boxed{2:15}$", "4:30"),
    rollout("clock", 1, "$\\boxed{4:30}$", "4:30"),
    # the heading layout: paced reads 18, math-verify alone too.
    rollout("heading", 0, "#### Step 1: Eggs\n16 - 7 = 9\n#### Step 2: Income\nJanet makes 18 dollars every day.", "18"),
    rollout("heading", 1, "\\boxed{17}", "18"),
    rollout("cut", 0, "<think>it is 5", "5"),
    rollout("cut", 1, "\\boxed{5}", "5"),
]


def test_the_default_audit_reports_disagreement_and_what_it_does_to_weights(cli, tmp_path):
    path = write_rollouts(tmp_path / "r.parquet", ROWS)
    result = cli("grade", path, "-o", tmp_path / "graded", "--workers", "1", "--json")
    assert result.exit_code == 0, result.output
    audit = json.loads(result.stdout)["audit"]
    assert audit["kind"] == "math-verify" and audit["samples_limit"] == 200
    assert (audit["compared"], audit["not_compared"], audit["problems"]) == (6, 0, 3)
    # clock sample 0 (math-verify: correct) and cut sample 0 (math-verify reads the 5 in the unclosed trace).
    assert (audit["paced_only_correct"], audit["independent_only_correct"]) == (0, 2)
    assert audit["disagreements"] == 2 and audit["disagreement_rate"] == 2 / 6
    example = audit["examples"][0]
    assert (example["problem_id"], example["verdict"], example["independent_verdict"], example["extracted_answer"]) in {
        ("clock", "incorrect", "correct", "2:15"), ("cut", "no_answer", "correct", None)
    }
    # clock and cut: p 0.5 -> 1 under math-verify, weight p(1-p) 0.25 -> 0.
    assert audit["mean_abs_pass_rate_change"] == (0.5 + 0 + 0.5) / 3
    assert audit["problems_weight_changed"] == 2 and audit["problems_weight_zero_one_side"] == 2
    assert "audit: math vs math-verify alone on the whole completion" in result.stderr


def test_audit_none_turns_it_off_and_the_audit_is_not_a_resume_setting(cli, tmp_path):
    path = write_rollouts(tmp_path / "r.parquet", ROWS)
    first = run_grade(GradeConfig(rollouts=str(path), output=str(tmp_path / "graded"), workers=1, audit=None))
    assert first.summary["audit"] is None
    # The math-verify audit writes no column: an output made without it resumes with it.
    again = run_grade(GradeConfig(rollouts=str(path), output=str(tmp_path / "graded"), workers=1))
    assert again.graded == 0 and again.summary["audit"]["compared"] == 6
    result = cli("grade", path, "-o", tmp_path / "other", "--workers", "1", "--audit", "none", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["audit"] is None and "math-verify alone" not in result.stderr


def test_the_audit_sample_is_whole_problems_bounded_and_independent_of_parts(tmp_path):
    rows = [rollout(f"p{i}", j, "\\boxed{1}", "1") for i in range(30) for j in range(4)]
    path = write_rollouts(tmp_path / "r.parquet", rows)
    small = run_grade(GradeConfig(rollouts=str(path), output=str(tmp_path / "a"), workers=1, audit_samples=10, rows_per_part=7))
    other = run_grade(GradeConfig(rollouts=str(path), output=str(tmp_path / "b"), workers=2, audit_samples=10, rows_per_part=50))
    assert small.summary["audit"]["compared"] == 8 and small.summary["audit"]["problems"] == 2  # 3 problems would be 12 > 10
    assert small.summary["audit"] == other.summary["audit"]
    everything = run_grade(GradeConfig(rollouts=str(path), output=str(tmp_path / "c"), workers=1, audit_samples=0))
    assert everything.summary["audit"]["compared"] == 120


def test_audit_rows_take_at_least_one_problem_and_skip_samples_not_read():
    table = pa.table({
        "problem_id": ["a"] * 5 + ["b"] * 2,
        "verdict": ["correct", "incorrect", "truncated", "error", "no_answer", "correct", "correct"],
    })
    first = sorted({"a", "b"}, key=lambda p: __import__("hashlib").sha256(p.encode()).hexdigest())[0]
    rows = audit_rows(table, 1)
    assert {table.column("problem_id")[row].as_py() for row in rows} == {first}
    assert all(table.column("verdict")[row].as_py() in ("correct", "incorrect", "no_answer") for row in rows)
    assert audit_rows(table, 0) == [0, 1, 4, 5, 6]
