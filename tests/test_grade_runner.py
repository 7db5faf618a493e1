"""`paced grade` end to end: verdicts in order, the truncation and error policies, deduplication,
resume after a real crash, pipes, the audit grader, and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from paced_curate.grade import GradeConfig, grade_table, run_grade
from paced_curate.grade.graders import GraderSpec, make_grader
from paced_curate.io import read_table, write_table
from paced_curate.schema import GRADES, ROLLOUTS, build_table, read_metadata
from tests.conftest import assert_user_error
from tests.test_schema import ROLLOUT_ROW

ROOT = Path(__file__).resolve().parent.parent


def rollout(problem_id: str, index: int, completion: str, gold: str, finish: str = "stop", error: str | None = None) -> dict:
    return ROLLOUT_ROW | {
        "problem_id": problem_id, "sample_index": index, "answer": gold, "completion": completion, "finish_reason": finish, "error": error,
    }


def write_rollouts(path: Path, rows: list[dict], difficulty: list[str] | None = None) -> Path:
    table = build_table(rows, ROLLOUTS)
    if difficulty is not None:
        table = table.append_column("difficulty", pa.array(difficulty))
    write_table(table, str(path), ROLLOUTS)
    return path


MIXED = [
    rollout("p1", 0, "Half of one is \\boxed{\\frac{1}{2}}.", "1/2"),
    rollout("p1", 1, "It is \\boxed{0.25}", "1/2"),
    rollout("p1", 2, "I am not sure.", "1/2"),
    rollout("p1", 3, "Let me expand \\boxed{", "1/2", finish="length"),
    rollout("p2", 0, "", "7", finish="error", error="server said 500"),
    rollout("p2", 1, "\\boxed{7}", "7"),
]


def test_grade_writes_verdicts_in_input_order_with_passthrough_columns(cli, tmp_path):
    rollouts = write_rollouts(tmp_path / "r.parquet", MIXED, difficulty=["easy"] * 4 + ["hard"] * 2)
    result = cli("grade", rollouts, "-o", tmp_path / "graded", "--workers", "2", "--json")
    assert result.exit_code == 0, result.output
    graded = read_table(str(tmp_path / "graded"), GRADES)
    columns = ["problem_id", "sample_index", "verdict", "extracted_answer", "scored", "error", "grader", "difficulty"]
    assert graded.select(columns).to_pylist() == [
        dict(zip(columns, row))
        for row in [
            ("p1", 0, "correct", "\\frac{1}{2}", True, None, "math", "easy"),
            ("p1", 1, "incorrect", "0.25", True, None, "math", "easy"),
            ("p1", 2, "no_answer", None, True, None, "math", "easy"),
            ("p1", 3, "truncated", None, True, None, "math", "easy"),
            ("p2", 0, "error", None, False, "server said 500", "math", "hard"),
            ("p2", 1, "correct", "7", True, None, "math", "hard"),
        ]
    ]
    assert graded.column("completion").to_pylist() == [row["completion"] for row in MIXED]
    summary = json.loads(result.stdout)
    assert summary["verdicts"] == {"correct": 2, "incorrect": 1, "no_answer": 1, "truncated": 1, "timeout": 0, "error": 1}
    # p1: 1 of 4 scored samples correct; p2: 1 of 1 (the failed rollout is excluded).
    assert (summary["problems_p0"], summary["problems_mid"], summary["problems_p1"]) == (0, 1, 1)
    assert summary["mean_pass_rate"] == pytest.approx((0.25 + 1.0) / 2)
    assert "mean pass rate" in result.stderr and "problems at 0<p<1" in result.stderr
    manifest = json.loads((tmp_path / "graded.paced" / "manifest.json").read_text())
    assert manifest["complete"] and manifest["settings"]["grader"] == "math" and manifest["summary"]["samples"] == 6


@pytest.mark.parametrize(
    "flags,scored_truncated,scored_error,p1_rate",
    [
        ([], True, False, 0.25),
        (["--truncated", "exclude"], False, False, 1 / 3),
        (["--errors", "wrong"], True, True, 0.25),
    ],
    ids=["defaults", "truncated excluded", "errors counted wrong"],
)
def test_truncation_and_error_policies_decide_what_is_scored(cli, tmp_path, flags, scored_truncated, scored_error, p1_rate):
    rollouts = write_rollouts(tmp_path / "r.parquet", MIXED)
    result = cli("grade", rollouts, "-o", tmp_path / "graded", "--workers", "1", "--json", *flags)
    assert result.exit_code == 0, result.output
    scored = read_table(str(tmp_path / "graded"), GRADES).column("scored").to_pylist()
    assert (scored[3], scored[4]) == (scored_truncated, scored_error)
    p2_rate = 0.5 if scored_error else 1.0
    assert json.loads(result.stdout)["mean_pass_rate"] == pytest.approx((p1_rate + p2_rate) / 2)


def repeating_rollouts(num_problems: int = 6, samples: int = 8) -> list[dict]:
    """Samples with different reasoning that end in a few distinct answers, as real rollouts do."""
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight"]
    rows = []
    for p in range(num_problems):
        gold = f"\\frac{{{p + 1}}}{{2}}"
        finals = [f"\\boxed{{{(p + 1) / 2}}}", f"\\boxed{{{p + 2}}}", f"\\boxed{{\\dfrac{{{p + 1}}}{{2}}}}", "no idea"]
        for i in range(samples):
            rows.append(rollout(f"p{p}", i, f"Step {words[i]}: we reason it through. So {finals[(i * (p + 1)) % 4]}", gold))
    return rows


def test_dedup_gives_the_same_verdicts_as_grading_every_sample(tmp_path):
    rows = repeating_rollouts()
    rollouts = write_rollouts(tmp_path / "r.parquet", rows)
    result = run_grade(GradeConfig(rollouts=str(rollouts), output=str(tmp_path / "graded"), workers=2))
    graded = read_table(str(tmp_path / "graded"), GRADES)
    # The reference: math-verify on each whole completion, no reduction and no cache.
    grade = make_grader(GraderSpec("math"))
    reference = [grade(row["completion"], row["answer"]) for row in rows]
    assert graded.column("verdict").to_pylist() == [o.verdict for o in reference]
    assert graded.column("extracted_answer").to_pylist() == [o.extracted for o in reference]
    assert {"correct", "incorrect", "no_answer"} <= set(graded.column("verdict").to_pylist())
    assert result.distinct_pairs < len(rows)
    assert result.dedup_ratio == pytest.approx(len(rows) / result.distinct_pairs)


def slow_equal(completion, gold):
    """A plugin grader; slow when PACED_TEST_SLOW_GRADER is set, so a run can be killed midway."""
    if os.environ.get("PACED_TEST_SLOW_GRADER"):
        time.sleep(0.3)
    return completion.strip() == gold


def test_resume_after_a_killed_run_equals_an_uninterrupted_run(cli, tmp_path):
    rows = [rollout(f"p{i // 3}", i % 3, str(i % 4), "1") for i in range(12)]
    rollouts = write_rollouts(tmp_path / "r.parquet", rows)
    grader = f"{__name__}:{slow_equal.__name__}"
    out = tmp_path / "graded"
    args = ["grade", str(rollouts), "-o", str(out), "--grader", grader, "--workers", "1", "--rows-per-part", "3"]
    env = os.environ | {"PACED_TEST_SLOW_GRADER": "1", "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    process = subprocess.Popen([sys.executable, "-m", "paced_curate", *args], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (out / "part-00000.parquet").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    finished = sorted(p.name for p in out.glob("part-*.parquet"))
    assert 1 <= len(finished) < 4, finished
    assert_user_error(cli("inspect", out), "is unfinished; rerun the command that wrote it")
    assert_user_error(cli(*args[:-4], "--grader", "exact"), f"was made with grader='{grader}' (now 'exact')")

    resumed = cli(*args)
    assert resumed.exit_code == 0, resumed.output
    assert f"resuming {out}: {3 * len(finished)} of 12 samples already graded" in resumed.stderr
    fresh = cli(*args[:3], str(tmp_path / "fresh"), *args[4:])
    assert fresh.exit_code == 0, fresh.output
    assert read_table(str(out), GRADES).to_pylist() == read_table(str(tmp_path / "fresh"), GRADES).to_pylist()
    assert read_table(str(out), GRADES).column("verdict").to_pylist() == ["correct" if i % 4 == 1 else "incorrect" for i in range(12)]


def test_rerunning_a_finished_output_grades_nothing(tmp_path):
    rollouts = write_rollouts(tmp_path / "r.parquet", MIXED)
    config = GradeConfig(rollouts=str(rollouts), output=str(tmp_path / "graded"), workers=1)
    first = run_grade(config)
    again = run_grade(config)
    assert (first.graded, again.graded, again.resumed, again.distinct_pairs) == (6, 0, 6, 0)
    assert again.summary == first.summary


def test_pipe_in_and_out_through_real_processes(tmp_path):
    rollouts = write_rollouts(tmp_path / "r.parquet", MIXED)
    stream = pa.BufferOutputStream()
    with pa.ipc.new_stream(stream, pq.read_schema(rollouts)) as writer:
        writer.write_table(pq.read_table(rollouts))
    done = subprocess.run(
        [sys.executable, "-m", "paced_curate", "grade", "-", "-o", "-", "--workers", "1"],
        input=stream.getvalue().to_pybytes(), capture_output=True, check=True, cwd=tmp_path,
    )
    table = pa.ipc.open_stream(done.stdout).read_all()
    assert read_metadata(table.schema)["stage"] == "grades"
    assert table.column("verdict").to_pylist() == ["correct", "incorrect", "no_answer", "truncated", "error", "correct"]
    assert b"verdicts" in done.stderr


def test_audit_grades_twice_and_reports_disagreement(cli, tmp_path):
    rows = [rollout("p", 0, "\\boxed{0.5}", "1/2"), rollout("p", 1, "\\boxed{1/2}", "1/2"), rollout("p", 2, "\\boxed{3}", "1/2")]
    rollouts = write_rollouts(tmp_path / "r.parquet", rows)
    result = cli("grade", rollouts, "-o", tmp_path / "graded", "--audit", "exact", "--workers", "1", "--json")
    assert result.exit_code == 0, result.output
    graded = read_table(str(tmp_path / "graded"), GRADES)
    assert graded.column("verdict").to_pylist() == ["correct", "correct", "incorrect"]
    assert graded.column("audit_verdict").to_pylist() == ["incorrect", "correct", "incorrect"]
    audit = json.loads(result.stdout)["audit"]
    assert (audit["compared"], audit["disagreements"]) == (3, 1)
    assert audit["examples"] == [
        # math-verify's own extracted text: its normalisation writes 0.5 as \frac{1}{2}.
        {"problem_id": "p", "sample_index": 0, "gold": "1/2", "extracted_answer": "\\frac{1}{2}", "verdict": "correct", "audit_verdict": "incorrect"}
    ]
    assert "disagreements (examples)" in result.stderr


def test_grade_table_in_memory_keeps_order_and_extra_columns():
    table = build_table(MIXED, ROLLOUTS).append_column("source", pa.array(list("abcdef")))
    graded = grade_table(table, "math", workers=1, truncated="exclude")
    assert graded.column("source").to_pylist() == list("abcdef")
    assert graded.column("verdict").to_pylist() == ["correct", "incorrect", "no_answer", "truncated", "error", "correct"]
    assert graded.column("scored").to_pylist() == [True, True, True, False, False, True]
    assert graded.schema.field("verdict").type == pa.string() and "audit_verdict" not in graded.column_names


def test_bad_inputs_are_one_line_errors(cli, tmp_path):
    good = write_rollouts(tmp_path / "r.parquet", MIXED)
    no_completion = tmp_path / "no_completion.parquet"
    pq.write_table(pq.read_table(good).drop_columns(["completion", "finish_reason"]), no_completion)
    out = tmp_path / "out"
    assert_user_error(
        cli("grade", no_completion, "-o", out),
        f"{no_completion}: not a valid rollouts table: missing columns 'completion', 'finish_reason'",
    )
    assert_user_error(cli("grade", good, "-o", out, "--grader", "sympy"), "unknown grader 'sympy': choose math, exact, numeric, choice")
    assert_user_error(
        cli("grade", good, "-o", out, "--grader", "no_such_module_xyz:grade"),
        "grader 'no_such_module_xyz:grade': module 'no_such_module_xyz' does not import: ModuleNotFoundError",
    )
    assert_user_error(
        cli("grade", good, "-o", out, "--grader", "os:getcwd"),
        "grader 'os:getcwd': must accept (completion, gold) as two positional arguments; its signature is getcwd()",
    )
    assert_user_error(
        cli("grade", good, "-o", out, "--workers", "0", "--truncated", "drop"),
        "--workers must be at least 1 (got 0); --truncated must be one of wrong, exclude (got 'drop')",
    )
    assert_user_error(cli("grade", good, "-o", "-", "--json"), "--json and -o - both write to stdout; choose one")
    assert_user_error(cli("grade", tmp_path / "missing.parquet", "-o", out), f"{tmp_path / 'missing.parquet'}: no such file or directory")
    assert not out.exists() or not any(out.glob("part-*"))


@pytest.mark.parametrize("errors,scored", [("exclude", False), ("wrong", True)])
def test_a_hanging_sample_is_recorded_as_timeout_and_scored_by_the_errors_policy(cli, tmp_path, errors, scored):
    from tests.test_grade_pool import HANGS_MATH_VERIFY

    rows = [rollout("p", 0, HANGS_MATH_VERIFY, "3"), rollout("p", 1, "\\boxed{3}", "3")]
    rollouts = write_rollouts(tmp_path / "r.parquet", rows)
    result = cli("grade", rollouts, "-o", tmp_path / "graded", "--timeout", "1", "--workers", "1", "--errors", errors, "--json")
    assert result.exit_code == 0, result.output
    graded = read_table(str(tmp_path / "graded"), GRADES)
    assert graded.column("verdict").to_pylist() == ["timeout", "correct"]
    assert graded.column("scored").to_pylist() == [scored, True]
    assert graded.column("error").to_pylist() == ["grading took longer than 1 s; the worker was killed", None]
    summary = json.loads(result.stdout)
    assert summary["timeouts"] == 1 and summary["mean_pass_rate"] == (0.5 if scored else 1.0)


def test_empty_rollouts_give_an_empty_readable_output(tmp_path):
    rollouts = write_rollouts(tmp_path / "r.parquet", [])
    result = run_grade(GradeConfig(rollouts=str(rollouts), output=str(tmp_path / "graded"), workers=1))
    assert result.samples == 0 and result.summary["mean_pass_rate"] is None
    assert read_table(str(tmp_path / "graded"), GRADES).num_rows == 0


TRACED = [
    rollout("t1", 0, "<think>maybe \\boxed{4}. No: 2x+1=13 gives x=6</think> The solution is x = 6.", "4"),
    rollout("t1", 1, "<think>it must be \\boxed{4}", "4"),
    rollout("t1", 2, "<think>ok</think> so \\boxed{3} no, \\boxed{4", "4"),
    rollout("t1", 3, "<think>ok</think> It is 4.", "4"),
    rollout("t1", 4, "<r>\\boxed{5}</r> \\boxed{4}", "4"),
]


def test_reasoning_tags_and_answer_format_through_the_cli(cli, tmp_path):
    """The #12 rules reach `paced grade`: traces (default and given tags), open boxes, --answer-format boxed."""
    rollouts = write_rollouts(tmp_path / "r.parquet", TRACED)
    default = cli("grade", rollouts, "-o", tmp_path / "default", "--workers", "1")
    assert default.exit_code == 0, default.output
    verdicts = read_table(str(tmp_path / "default"), GRADES).column("verdict").to_pylist()
    assert verdicts == ["incorrect", "no_answer", "no_answer", "correct", "correct"]
    strict = cli("grade", rollouts, "-o", tmp_path / "strict", "--workers", "1", "--answer-format", "boxed",
                 "--reasoning-tags", "<think>,</think>", "--reasoning-tags", "<r>,</r>")
    assert strict.exit_code == 0, strict.output
    table = read_table(str(tmp_path / "strict"), GRADES)
    assert table.column("verdict").to_pylist() == ["no_answer", "no_answer", "no_answer", "no_answer", "correct"]
    # Both settings change the verdicts, so a resumed output must have been made with the same.
    settings = GradeConfig(rollouts="r", output="o", answer_format="boxed", reasoning_tags=("<think>,</think>", "<r>,</r>")).settings()
    assert settings["answer_format"] == "boxed" and settings["reasoning_tags"] == [["<think>", "</think>"], ["<r>", "</r>"]]
    assert GradeConfig(rollouts="r", output="o", reasoning_tags=("none",)).settings()["reasoning_tags"] == []
    assert_user_error(cli("grade", rollouts, "-o", tmp_path / "x", "--reasoning-tags", "<think>"), "--reasoning-tags '<think>': give OPEN,CLOSE")
    assert_user_error(cli("grade", rollouts, "-o", tmp_path / "x", "--answer-format", "strict"), "--answer-format must be one of any, boxed")
