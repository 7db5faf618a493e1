"""Ctrl-C (SIGINT to the parent process) ends a command with exit code 130 and one line (#24).

Each test starts a real `paced` process, waits until it has written its first part, sends
SIGINT to that process alone (its workers, the fork server and vLLM's engine processes get
nothing), and checks: exit code 130, one line on stderr, no traceback from the parent or any
worker, no worker left running, and that rerunning the same command resumes and finishes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from paced_curate.cli.app import INTERRUPTED

LINE = f"error: {INTERRUPTED}"


def _run_until_first_part(command: list[str], output: Path, timeout: float = 600, pattern: str = "part-*.parquet") -> tuple[int, str, list[psutil.Process]]:
    """Start `command`, SIGINT it once `output` holds a file matching `pattern` (a Parquet part);
    returns (exit code, stderr, its former children)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + timeout
    while not any(output.rglob(pattern)) and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert process.poll() is None, f"the command ended before it could be interrupted:\n{process.stderr.read()}"
    children = psutil.Process(process.pid).children(recursive=True)
    os.kill(process.pid, signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return process.returncode, stderr, children


def _assert_interrupted_cleanly(code: int, stderr: str, children: list[psutil.Process]) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 130, stderr
    assert lines[-1] == LINE, stderr
    assert [line for line in lines if line.startswith("error:")] == [LINE], stderr
    for word in ("Traceback", "KeyboardInterrupt", "leaked", "Warning"):
        assert word not in stderr, stderr
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"left running: {[p.pid for p in alive]}"


def test_ctrl_c_during_grade_exits_130_in_one_line_and_the_rerun_resumes(tmp_path):
    generations = tmp_path / "generations.jsonl"
    rows = [{"id": f"q{i}", "completion": f"so the answer is \\boxed{{{4 * i + j}}}", "answer": str(4 * i)} for i in range(500) for j in range(4)]
    generations.write_text("".join(json.dumps(row) + "\n" for row in rows))
    output = tmp_path / "graded"
    command = [sys.executable, "-m", "paced_curate", "grade", str(generations), "-o", str(output), "--workers", "2", "--rows-per-part", "100"]

    _assert_interrupted_cleanly(*_run_until_first_part(command, output))

    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    import pyarrow.dataset as ds

    assert ds.dataset(str(output)).count_rows() == len(rows)


def test_ctrl_c_during_an_hf_rollout_exits_130_in_one_line_and_the_rerun_resumes(tiny_model, tmp_path):
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps({"id": f"q{i}", "question": f"{i} + 1 =", "answer": str(i + 1)}) + "\n" for i in range(40)))
    output = tmp_path / "rollouts"
    command = [
        sys.executable, "-m", "paced_curate", "rollout", str(problems), "--model", str(tiny_model), "-o", str(output), "--engine", "hf",
        "-k", "2", "--max-tokens", "16", "--batch-size", "4", "--problems-per-part", "2", "--chat-template", "off",
    ]

    _assert_interrupted_cleanly(*_run_until_first_part(command, output))

    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr
    import pyarrow.dataset as ds

    assert ds.dataset(str(output)).count_rows() == 80


def test_ctrl_c_during_an_estimate_exits_130_in_one_line_and_the_rerun_finishes(tiny_model, tmp_path):
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps({"id": f"q{i}", "question": f"{i} + 1 =", "answer": str(i + 1)}) + "\n" for i in range(24)))
    output = tmp_path / "run"
    command = [
        sys.executable, "-m", "paced_curate", "estimate", str(problems), "--model", str(tiny_model), "-o", str(output), "--engine", "hf",
        "-k", "2", "--max-tokens", "16", "--batch-size", "4", "--problems-per-part", "2", "--chat-template", "off", "--workers", "1",
        "--kernel", "uniform",  # the random model answers nothing right: p(1-p) would weigh every problem 0
    ]

    _assert_interrupted_cleanly(*_run_until_first_part(command, output))

    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    import pyarrow.dataset as ds

    assert ds.dataset(str(output / "rollouts")).count_rows() == 48


def test_ctrl_c_during_distill_exits_130_in_one_line(tmp_path):
    from paced_curate.toy.models import TinyModelSpec, build_tiny_model
    from tests.test_distill_data import make_export

    student = build_tiny_model(tmp_path / "student", TinyModelSpec(init_seed=0))
    teacher = build_tiny_model(tmp_path / "teacher", TinyModelSpec(init_seed=1))
    data = make_export(tmp_path, n=8)
    output = tmp_path / "runs"
    command = [
        sys.executable, "-m", "paced_curate", "distill", str(data), "--student", str(student), "--teacher", str(teacher), "-o", str(output),
        "--max-steps", "100000", "--batch-size", "2", "--template", "{prompt}=", "--chat-template", "off", "--device", "cpu",
    ]
    _assert_interrupted_cleanly(*_run_until_first_part(command, output, pattern="metrics.jsonl"))


@pytest.mark.slow
def test_ctrl_c_during_a_vllm_rollout_exits_130_in_one_line_and_stops_the_engine(tiny_model, tmp_path):
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps({"id": f"q{i}", "question": f"{i} + 1 =", "answer": str(i + 1)}) + "\n" for i in range(4000)))
    output = tmp_path / "rollouts"
    command = [
        sys.executable, "-m", "paced_curate", "rollout", str(problems), "--model", str(tiny_model), "-o", str(output),
        "-k", "4", "--max-tokens", "64", "--problems-per-part", "8", "--max-in-flight", "16", "--kv-cache-gib", "0.25", "--chat-template", "off",
    ]
    _assert_interrupted_cleanly(*_run_until_first_part(command, output))
