"""The grading pool: hard timeouts on an input that really hangs math-verify, workers that raise
or die, and outcomes kept in task order. The plugin graders below run in the worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from paced_curate.grade.graders import GraderSpec, load_grader
from paced_curate.grade.pool import GradingPool

# math-verify 0.9 simplifies this tower for minutes (FIELD-NOTES: enormous powers).
HANGS_MATH_VERIFY = "\\boxed{9^{9^{9^{9}}}}"
TIMEOUT_S = 1.0
# Killing, reaping and restarting a worker, on a shared 2-core machine.
MARGIN_S = 4.0


class SurpriseBaseException(BaseException):
    """Not an Exception: `except Exception` in a worker would let it kill the worker."""


def raising_grader(completion, gold):
    """Raises what the completion names, else grades by equality."""
    if completion == "value error":
        raise ValueError("boom")
    if completion == "system exit":
        sys.exit(3)
    if completion == "keyboard interrupt":
        raise KeyboardInterrupt
    if completion == "base exception":
        raise SurpriseBaseException("deep")
    if completion == "die":
        os._exit(7)
    if completion == "sleep":
        time.sleep(600)
    return completion == gold


def test_the_pathological_input_really_hangs_math_verify_without_the_kill():
    code = f"from paced_curate.grade.graders import GraderSpec, make_grader; make_grader(GraderSpec('math'))({HANGS_MATH_VERIFY!r}, '3')"
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([sys.executable, "-c", code], timeout=3 * TIMEOUT_S + 1, capture_output=True)


def test_a_hanging_sample_times_out_within_the_limit_and_the_batch_completes():
    tasks = [(0, f"\\boxed{{{i}}}", "3") for i in range(6)]
    tasks.insert(2, (0, HANGS_MATH_VERIFY, "3"))
    with GradingPool([load_grader("math")], workers=1, timeout=TIMEOUT_S, chunk_size=8) as pool:
        pool.run([(0, "\\boxed{1}", "1")])  # start the worker outside the timed part
        started = time.monotonic()
        outcomes = pool.run(tasks)
        elapsed = time.monotonic() - started
    assert TIMEOUT_S <= elapsed < TIMEOUT_S + MARGIN_S, elapsed
    assert outcomes[2].verdict == "timeout" and outcomes[2].error == "grading took longer than 1 s; the worker was killed"
    # The hanging task sat mid-chunk: the tasks after it were requeued and graded by the replacement.
    others = outcomes[:2] + outcomes[3:]
    assert [o.verdict for o in others] == ["incorrect"] * 3 + ["correct"] + ["incorrect"] * 2
    assert [o.extracted for o in others] == [str(i) for i in range(6)]
    assert pool.timeouts == 1


@pytest.mark.parametrize(
    "completion,message",
    [
        ("value error", "ValueError: boom"),
        ("system exit", "SystemExit: 3"),
        ("keyboard interrupt", "KeyboardInterrupt: "),
        ("base exception", "SurpriseBaseException: deep"),
    ],
)
def test_any_exception_in_a_worker_becomes_an_error_verdict(completion, message):
    spec = load_grader(f"{__name__}:raising_grader")
    with GradingPool([spec], workers=1, timeout=30) as pool:
        outcomes = pool.run([(0, "a", "a"), (0, completion, "a"), (0, "b", "a")])
        assert pool.deaths == 0 and pool.timeouts == 0
    assert [o.verdict for o in outcomes] == ["correct", "error", "incorrect"]
    assert outcomes[1].error == message


def test_a_worker_that_dies_turns_its_task_into_an_error_and_is_replaced():
    spec = load_grader(f"{__name__}:raising_grader")
    tasks = [(0, "a", "a"), (0, "die", "a"), (0, "a", "a"), (0, "die", "a"), (0, "b", "a")]
    with GradingPool([spec], workers=2, timeout=30) as pool:
        outcomes = pool.run(tasks)
        assert pool.deaths == 2
    assert [o.verdict for o in outcomes] == ["correct", "error", "correct", "error", "incorrect"]
    assert outcomes[1].error == "the grading worker died (exit code 7)"


def test_a_plugin_that_sleeps_is_killed_like_any_other():
    spec = load_grader(f"{__name__}:raising_grader")
    with GradingPool([spec], workers=2, timeout=TIMEOUT_S) as pool:
        outcomes = pool.run([(0, "sleep", "a"), (0, "a", "a"), (0, "sleep", "a"), (0, "c", "c")])
    assert [o.verdict for o in outcomes] == ["timeout", "correct", "timeout", "correct"]


def test_several_graders_in_one_pool_and_order_is_kept_across_workers():
    specs = [GraderSpec("exact"), GraderSpec("numeric", tolerance=0.1)]
    tasks = [(i % 2, f"\\boxed{{{i}.05}}", str(i)) for i in range(40)]
    with GradingPool(specs, workers=2, timeout=30, chunk_size=3) as pool:
        outcomes = pool.run(tasks)
    # exact (even i) sees "i.05" != "i"; numeric (odd i) accepts it within 0.1.
    assert [o.verdict for o in outcomes] == ["incorrect", "correct"] * 20
    assert [o.extracted for o in outcomes] == [f"{i}.05" for i in range(40)]
