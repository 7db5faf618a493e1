"""Stages chained through pipes give the same tables as the same stages through files.

tests/test_pipe_contract.py holds the contract for every engine; here, README's own pipeline
runs exactly as written (#26).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from paced_curate.io import read_table
from paced_curate.rollout.prompt_record import schema_record
from paced_curate.schema import GRADES, WEIGHTS
from tests.conftest import Cli, write_jsonl
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


# --- README's pipeline, run as written (#26) ----------------------------------------------------

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_pipelines() -> list[str]:
    """The command lines of README's fenced shell blocks that pipe into `paced grade -`."""
    lines = []
    for block in re.findall(r"```(?:bash|sh|shell|console)?\n(.*?)```", README.read_text(), re.S):
        if "| paced grade -" not in block:
            continue
        for line in block.replace("\\\n", " ").splitlines():
            if "| paced grade -" in line:
                lines.append(line.strip().removeprefix("$ "))
    return lines


def stages(line: str) -> list[list[str]]:
    """A pipeline's commands as argument lists (no shell expansion: README's line must need none)."""
    assert "$" not in line and "`" not in line, f"README's pipeline needs the shell to expand something: {line}"
    return [shlex.split(part) for part in line.split("|")]


def option(argv: list[str], *names: str) -> str:
    index = next(i for i, arg in enumerate(argv) if arg in names)
    return argv[index + 1]


def test_readme_has_a_pipeline_through_rollout_grade_and_weight():
    lines = readme_pipelines()
    assert lines, "README.md has no fenced shell block piping into 'paced grade -'"
    for line in lines:
        assert [argv[:2] for argv in stages(line)] == [["paced", "rollout"], ["paced", "grade"], ["paced", "weight"]], line
        assert option(stages(line)[0], "-o", "--output") == "-" and option(stages(line)[1], "-o", "--output") == "-"


@pytest.mark.parametrize("line", readme_pipelines())
def test_readme_pipeline_runs_as_written_with_the_default_engine(line, tiny_model, tmp_path, monkeypatch):
    """README's line runs verbatim, with vLLM (the default engine), in a folder where its
    placeholders exist: the problem file it names is written there (16 sums with one-digit
    answers, which the random tiny model's last digit hits now and then, so some pass rates lie
    strictly between 0 and 1 and README's default weights are not all 0) and the model folder it
    names is a link to the tiny test model. Nothing in the line is replaced.

    The same stages are then run on folders, in-process (sharing the session's vLLM engine), with
    two substitutions: `-` and `-o -` become folders, and the model path is the tiny model's own
    path (the same model; its path is the engine cache's key). The weights must be equal, rows and
    prompt record.
    """
    rollout, grade, weight = stages(line)
    problems = Path(rollout[2])
    assert not problems.is_absolute() and problems.suffix == ".jsonl", f"README's problem set {problems}: expected a relative .jsonl"
    model = Path(option(rollout, "--model", "-m"))
    assert not model.is_absolute(), model
    write_jsonl(tmp_path / problems, [{"id": f"s{i:02d}", "question": f"{i % 5} + {i % 4} =", "answer": str(i % 5 + i % 4)} for i in range(16)])
    (tmp_path / model).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / model).symlink_to(tiny_model, target_is_directory=True)
    weights = tmp_path / option(weight, "-o", "--output")

    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-c", f"set -o pipefail; {line}"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-4000:]

    monkeypatch.chdir(tmp_path)
    cli = Cli()
    replay = [
        [str(tiny_model) if arg == str(model) else arg for arg in rollout[1:]],
        grade[1:],
        weight[1:],
    ]
    outputs = ["files_rollouts", "files_graded", "files_weights.parquet"]
    previous = None
    for argv, output in zip(replay, outputs):
        argv = [previous if arg == "-" and previous is not None and i == 1 else arg for i, arg in enumerate(argv)]
        flag = next(i for i, arg in enumerate(argv) if arg in ("-o", "--output"))
        argv[flag + 1] = output
        result = cli(*argv)
        assert result.exit_code == 0, (argv, result.output[-3000:])
        previous = output
    by_pipe = read_table(str(weights), WEIGHTS)
    by_files = read_table(str(tmp_path / "files_weights.parquet"), WEIGHTS)
    assert by_pipe.num_rows == 16 and by_pipe.to_pylist() == by_files.to_pylist()
    assert 0 < sum(w > 0 for w in by_pipe.column("weight").to_pylist()) < 16
    record = schema_record(by_pipe.schema)
    assert record is not None and record == schema_record(by_files.schema)
