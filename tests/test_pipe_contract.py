"""Pipes are a contract for every engine (#26): the stages chained through `-` give exactly what
the same stages give through files.

For vLLM (the default engine, in a real shell pipeline with `set -o pipefail`), transformers
(`--engine hf`) and the OpenAI engine against a real vLLM server (`vllm_server`):

    paced rollout P --model M -o - | tee r.arrow | paced grade - -o - | tee g.arrow
      | paced weight - -o - | tee w.arrow | paced export P - -o e/ --format trl --references R

is compared with the same four commands run on folders and files: the same rows at every stage,
the same weights, and the same prompt record (the rollout's prompt format, carried in each
stream's schema metadata), so the trl export made from piped weights renders the student's
prompt. The rollout stream spans ten record batches and the grade stream eight, so a lost tail
(#26: vLLM's rollout stream lost its last buffer at exit) or a lost batch shows. The file path
runs in-process and shares the session's vLLM engine with tests/test_rollout_vllm.py.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest

from paced_curate.io import read_manifest, read_table
from paced_curate.rollout.prompt_record import rendered_prompt, schema_record
from paced_curate.schema import GRADES, ROLLOUTS, WEIGHTS, read_metadata
from tests.conftest import Cli, write_jsonl
from tests.test_export import make_references

PACED = [sys.executable, "-m", "paced_curate"]
NUM_PROBLEMS, SAMPLES, PER_PART, ROWS_PER_PART = 40, 3, 4, 16
ROLLOUT_FLAGS = ["-k", str(SAMPLES), "--max-tokens", "16", "--problems-per-part", str(PER_PART)]
GRADE_FLAGS = ["--workers", "2", "--rows-per-part", str(ROWS_PER_PART)]
WEIGHT_FLAGS = ["--estimator", "bayes"]  # a random model fails everything; bayes keeps every weight positive
NO_RECORD_NOTE = "the weights record no prompt format"


@dataclass(frozen=True)
class Runs:
    """One engine's pipeline, through files and through pipes."""

    folder: Path
    problems: Path
    pipe_stderr: str


def engine_flags(engine: str, model: Path, url: str | None) -> list[str]:
    if engine == "vllm":
        return []  # the default engine, as a user types it
    if engine == "hf":
        return ["--engine", "hf"]
    return ["--engine", "openai", "--base-url", url, "--tokenizer", str(model)]


@pytest.fixture(scope="module", params=["vllm", "hf", "openai"])
def runs(request, tiny_model, tmp_path_factory) -> Runs:
    engine = request.param
    url = request.getfixturevalue("vllm_server") if engine == "openai" else None
    folder = tmp_path_factory.mktemp(f"pipe-{engine}")
    rows = [{"id": f"q{i:03d}", "question": f"{i} + {i % 7} =", "answer": str(i + i % 7)} for i in range(NUM_PROBLEMS)]
    problems = write_jsonl(folder / "problems.jsonl", rows)
    references = make_references(folder, {row["id"]: ["correct"] for row in rows})  # the teacher's, for trl
    rollout = ["rollout", problems, "--model", tiny_model, *engine_flags(engine, tiny_model, url), *ROLLOUT_FLAGS]
    export = ["export", problems]
    export_flags = ["--format", "trl", "--references", references]

    cli = Cli()
    for argv in (
        [*rollout, "-o", folder / "rollouts"],
        ["grade", folder / "rollouts", "-o", folder / "graded", *GRADE_FLAGS],
        ["weight", folder / "graded", "-o", folder / "weights.parquet", *WEIGHT_FLAGS],
        [*export, folder / "weights.parquet", "-o", folder / "export_files", *export_flags],
    ):
        result = cli(*argv)
        assert result.exit_code == 0, (argv, result.output[-3000:])

    def paced(*argv) -> str:
        return shlex.join([*PACED, *map(str, argv)])

    tee = lambda name: f"tee {shlex.quote(str(folder / name))}"  # noqa: E731
    pipeline = " | ".join([
        paced(*rollout, "-o", "-"), tee("rollouts.arrow"),
        paced("grade", "-", "-o", "-", *GRADE_FLAGS), tee("graded.arrow"),
        paced("weight", "-", "-o", "-", *WEIGHT_FLAGS), tee("weights.arrow"),
        paced(*export, "-", "-o", folder / "export_pipe", *export_flags),
    ])
    done = subprocess.run(["bash", "-c", f"set -o pipefail; {pipeline}"], capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-4000:]
    return Runs(folder=folder, problems=problems, pipe_stderr=done.stderr)


def stream(path: Path) -> tuple[pa.Table, int]:
    """The table an Arrow IPC stream file holds, and its number of record batches."""
    with pa.ipc.open_stream(path.read_bytes()) as reader:
        batches = list(reader)
        return pa.Table.from_batches(batches, schema=reader.schema), len(batches)


def test_rollout_stream_is_whole_and_equals_the_rollout_folder(runs):
    piped, batches = stream(runs.folder / "rollouts.arrow")
    files = read_table(str(runs.folder / "rollouts"), ROLLOUTS)
    assert batches == NUM_PROBLEMS // PER_PART
    assert piped.num_rows == files.num_rows == NUM_PROBLEMS * SAMPLES
    assert piped.to_pylist() == files.to_pylist()
    assert_same_provenance(piped.schema, files.schema, "rollouts")


def test_grade_stream_equals_the_graded_folder(runs):
    piped, batches = stream(runs.folder / "graded.arrow")
    files = read_table(str(runs.folder / "graded"), GRADES)
    assert batches >= -(-NUM_PROBLEMS * SAMPLES // ROWS_PER_PART)  # a slice may span two rollout batches
    assert piped.to_pylist() == files.to_pylist()
    assert_same_provenance(piped.schema, files.schema, "grades")


def test_weights_from_a_pipe_equal_the_weights_file_and_keep_the_prompt_record(runs):
    piped, _ = stream(runs.folder / "weights.arrow")
    files = read_table(str(runs.folder / "weights.parquet"), WEIGHTS)
    assert piped.num_rows == NUM_PROBLEMS
    assert piped.to_pylist() == files.to_pylist()
    assert_same_provenance(piped.schema, files.schema, "weights")


def test_a_trl_export_from_piped_weights_renders_the_students_prompt(runs):
    piped = read_table_rows(runs.folder / "export_pipe")
    files = read_table_rows(runs.folder / "export_files")
    assert piped == files and len(piped) == NUM_PROBLEMS
    record = read_manifest(runs.folder / "export_pipe")["prompt_format"]
    assert record is not None and record == read_manifest(runs.folder / "export_files")["prompt_format"]
    assert NO_RECORD_NOTE not in runs.pipe_stderr
    questions = {f"q{i:03d}": f"{i} + {i % 7} =" for i in range(NUM_PROBLEMS)}
    for row in piped:
        kind, prompt = rendered_prompt(record, questions[row["problem_id"]], None)
        assert row["prompt"] == prompt, row
        shown = prompt if kind == "text" else prompt[-1]["content"]
        assert "\\boxed{}" in shown and questions[row["problem_id"]] in shown  # the template, not the bare problem


def read_table_rows(folder: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(folder / "train").to_pylist()


def assert_same_provenance(piped: pa.Schema, files: pa.Schema, stage: str) -> None:
    """A stream's schema metadata says what the files' does: stage, settings and the prompt record."""
    a, b = read_metadata(piped), read_metadata(files)
    assert a["stage"] == b["stage"] == stage
    assert a["provenance"]["settings"] == b["provenance"]["settings"]
    record = schema_record(piped)
    assert record is not None and record == schema_record(files)
    assert record["template"] and record["chat"] in ("on", "off")
