"""Stages chained through pipes give the same tables as the same stages through files."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa

from paced_curate.io import read_table
from paced_curate.schema import GRADES, WEIGHTS
from tests.test_rollout import arithmetic_problems

PACED = [sys.executable, "-m", "paced_curate"]


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*PACED, *map(str, args)], capture_output=True, check=True, **kwargs)


def test_rollout_grade_weight_through_pipes_equals_files(tmp_path, tiny_model):
    problems = arithmetic_problems(tmp_path / "p.jsonl", 6)
    rollout = ["rollout", problems, "--model", tiny_model, "--engine", "hf", "-k", "3", "--max-tokens", "16"]
    weight = ["--estimator", "bayes"]  # a random model fails everything; bayes keeps the weights positive

    run(*rollout, "-o", tmp_path / "rollouts")
    run("grade", tmp_path / "rollouts", "-o", tmp_path / "graded", "--workers", "1")
    run("weight", tmp_path / "graded", "-o", tmp_path / "w_files.parquet", *weight)

    shell = (
        f"{' '.join(PACED)} {' '.join(map(str, rollout))} -o - "
        f"| {' '.join(PACED)} grade - -o - --workers 1 "
        f"| tee {tmp_path / 'graded.arrow'} "
        f"| {' '.join(PACED)} weight - -o {tmp_path / 'w_pipe.parquet'} {' '.join(weight)}"
    )
    done = subprocess.run(["bash", "-o", "pipefail", "-c", shell], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]

    graded_files = read_table(str(tmp_path / "graded"), GRADES)
    graded_pipe = pa.ipc.open_stream((tmp_path / "graded.arrow").read_bytes()).read_all()
    assert graded_pipe.to_pylist() == graded_files.to_pylist()
    by_file = read_table(str(tmp_path / "w_files.parquet"), WEIGHTS)
    by_pipe = read_table(str(tmp_path / "w_pipe.parquet"), WEIGHTS)
    assert by_pipe.to_pylist() == by_file.to_pylist()
    assert by_pipe.num_rows == 6 and all(w > 0 for w in by_pipe.column("weight").to_pylist())
