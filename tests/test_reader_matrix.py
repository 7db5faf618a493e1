"""#24: every table a command takes goes through one reader: every command x table option x format.

Each table is written in every format the reader takes (as another tool would write it: no paced
metadata) and given to the command in place of the paced Parquet output; the cell asserts the
command's result equals the result on the Parquet output itself, or, where a format cannot hold
the table, the one-line error. weight, export, grade and inspect run as commands (in-process CLI,
no model); rollout, estimate and distill are checked at their reading step for every format
(the function the command calls) and end to end once each with the tiny model.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from paced_curate.errors import InputError
from paced_curate.export import ExportConfig, read_export, run_export
from paced_curate.grade import GradeConfig, run_grade
from paced_curate.io import read_table, write_table
from paced_curate.problems import read_problems
from paced_curate.schema import GRADES, ROLLOUTS, build_table
from paced_curate.weight import WeightConfig, run_weight
from tests.conftest import assert_user_error

FORMATS = ("jsonl", "json", "csv", "parquet", "parquet_folder", "hf_dataset", "arrow_file", "stdin")
"""Every format of the one reader; `parquet` is a file another tool wrote (no paced metadata)."""


def to_format(table: pa.Table, fmt: str, stem: Path) -> tuple[str, bytes | None]:
    """Write `table` (without its paced metadata) as `fmt`; returns (the argument to pass, stdin bytes or None)."""
    table = table.replace_schema_metadata(None)
    rows = table.to_pylist()
    if fmt == "jsonl":
        path = stem.with_suffix(".jsonl")
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    elif fmt == "json":
        path = stem.with_suffix(".json")
        path.write_text(json.dumps(rows, indent=1))
    elif fmt == "csv":
        path = stem.with_suffix(".csv")
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=table.column_names)
            writer.writeheader()
            writer.writerows({k: "" if v is None else json.dumps(v) if isinstance(v, list) else v for k, v in row.items()} for row in rows)
    elif fmt == "parquet":
        path = stem.with_suffix(".parquet")
        pq.write_table(table, path)
    elif fmt == "parquet_folder":
        path = stem.with_name(stem.name + "_parquet")
        path.mkdir()
        half = table.num_rows // 2
        pq.write_table(table.slice(0, half), path / "a.parquet")
        pq.write_table(table.slice(half), path / "b.parquet")
    elif fmt == "hf_dataset":
        import datasets

        path = stem.with_name(stem.name + "_hf")
        datasets.Dataset(table).save_to_disk(str(path))
    elif fmt == "arrow_file":
        path = stem.with_suffix(".arrow")
        feather.write_feather(table, path)
    else:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return "-", sink.getvalue().to_pybytes()
    return str(path), None


# --- the tables, made once with paced itself ------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """Problems, rollouts, grades, weights, teacher references and a native export, as paced writes them."""
    root = tmp_path_factory.mktemp("world")
    problems = [
        {"id": f"q{i}", "question": f"What is {i} + {i}?", "answer": str(2 * i), "difficulty": "easy" if i < 3 else "hard"}
        for i in range(6)
    ]
    pq.write_table(pa.Table.from_pylist(problems), root / "problems.parquet")
    rollout_rows = [
        {"problem_id": f"q{i}", "sample_index": k, "prompt": f"What is {i} + {i}?", "answer": str(2 * i),
         "completion": f"so \\boxed{{{2 * i if k <= i % 3 else 99}}}", "finish_reason": "length" if (i, k) == (5, 2) else "stop",
         "completion_tokens": 5 + k, "prompt_tokens": 9, "error": None, "difficulty": "easy" if i < 3 else "hard"}
        for i in range(6) for k in range(3)
    ]
    write_table(_with_passthrough(rollout_rows, ROLLOUTS), str(root / "rollouts.parquet"), ROLLOUTS)
    run_grade(GradeConfig(rollouts=str(root / "rollouts.parquet"), output=str(root / "graded.parquet"), grader="exact", workers=1))
    run_weight(WeightConfig(graded=str(root / "graded.parquet"), output=str(root / "weights.parquet"), kernel="uniform"))
    teacher = [
        {"problem_id": f"q{i}", "sample_index": k, "prompt": f"What is {i} + {i}?", "answer": str(2 * i),
         "completion": f"teacher {i}.{k} \\boxed{{{2 * i}}}", "finish_reason": "stop", "completion_tokens": 4, "prompt_tokens": 9,
         "error": None, "extracted_answer": str(2 * i), "verdict": "correct" if k != 0 or i == 2 else "incorrect",
         "grader": "exact", "scored": True}
        for i in range(6) for k in range(2)
    ]
    write_table(build_table(teacher, GRADES), str(root / "teacher.parquet"), GRADES)
    run_export(ExportConfig(problems=str(root / "problems.parquet"), weights=str(root / "weights.parquet"),
                            references=str(root / "teacher.parquet"), output=str(root / "data")))
    generations = [{k: row[k] for k in ("problem_id", "sample_index", "completion", "finish_reason")} for row in rollout_rows]
    (root / "generations.jsonl").write_text("".join(json.dumps(row) + "\n" for row in generations))
    return {"root": root, "problems": pa.Table.from_pylist(problems), "rollouts": read_table(str(root / "rollouts.parquet"), ROLLOUTS),
            "graded": read_table(str(root / "graded.parquet"), GRADES), "weights": pq.read_table(root / "weights.parquet"),
            "teacher": pq.read_table(root / "teacher.parquet"), "export_rows": read_export(root / "data")}


def _with_passthrough(rows: list[dict], spec) -> pa.Table:
    declared = build_table([{k: v for k, v in row.items() if k != "difficulty"} for row in rows], spec)
    return declared.append_column("difficulty", pa.array([row["difficulty"] for row in rows], pa.string()))


def _cell(world, tmp_path, table_name: str, fmt: str) -> tuple[str, bytes | None]:
    return to_format(world[table_name], fmt, tmp_path / table_name)


# --- weight GRADED --------------------------------------------------------------------------------

WEIGHT_COLUMNS = ["problem_id", "n_samples", "n_correct", "n_excluded", "n_scored", "pass_rate", "weight"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_weight_graded(world, tmp_path, cli, fmt):
    arg, stdin = _cell(world, tmp_path, "graded", fmt)
    result = cli("weight", arg, "-o", tmp_path / "w.parquet", "--kernel", "uniform", input=stdin)
    assert result.exit_code == 0, result.output
    assert pq.read_table(tmp_path / "w.parquet").select(WEIGHT_COLUMNS).to_pylist() == world["weights"].select(WEIGHT_COLUMNS).to_pylist()


# --- export PROBLEMS, WEIGHTS, --references -------------------------------------------------------


def _export_rows(folder: Path) -> list[dict]:
    return pq.read_table(folder / "train").replace_schema_metadata(None).to_pylist()


@pytest.mark.parametrize("option", ["PROBLEMS", "WEIGHTS", "--references"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_export_tables(world, tmp_path, cli, option, fmt):
    root = world["root"]
    inputs = {"PROBLEMS": str(root / "problems.parquet"), "WEIGHTS": str(root / "weights.parquet"), "--references": str(root / "teacher.parquet")}
    name = {"PROBLEMS": "problems", "WEIGHTS": "weights", "--references": "teacher"}[option]
    inputs[option], stdin = _cell(world, tmp_path, name, fmt)
    result = cli("export", inputs["PROBLEMS"], inputs["WEIGHTS"], "--references", inputs["--references"], "-o", tmp_path / "out", input=stdin)
    assert result.exit_code == 0, result.output
    assert _export_rows(tmp_path / "out") == _export_rows(root / "data"), (option, fmt)


# --- grade ROLLOUTS, --problems -------------------------------------------------------------------

GRADED_COLUMNS = ["problem_id", "sample_index", "completion", "answer", "finish_reason", "extracted_answer", "verdict", "scored", "difficulty"]


@pytest.mark.parametrize("option", ["ROLLOUTS", "--problems"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_grade_tables(world, tmp_path, cli, option, fmt):
    root = world["root"]
    if option == "ROLLOUTS":
        arg, stdin = _cell(world, tmp_path, "rollouts", fmt)
        args = [arg]
    else:
        arg, stdin = _cell(world, tmp_path, "problems", fmt)
        args = [root / "generations.jsonl", "--problems", arg]
    result = cli("grade", *args, "-o", tmp_path / "g.parquet", "--grader", "exact", "--workers", "1", input=stdin)
    assert result.exit_code == 0, result.output
    graded = pq.read_table(tmp_path / "g.parquet")
    expected = world["graded"].select(GRADED_COLUMNS)
    assert graded.select(expected.column_names).to_pylist() == expected.to_pylist(), (option, fmt)


# --- inspect PATH, for each stage table -----------------------------------------------------------

SECTIONS = {"problems": None, "rollouts": "summary", "graded": "evaluation", "weights": "statistics", "export_rows": "weight_histogram"}
STAGES = {"problems": "problems", "rollouts": "rollouts", "graded": "grades", "weights": "weights", "export_rows": "export"}
REFERENCES = {"problems": "problems.parquet", "rollouts": "rollouts.parquet", "graded": "graded.parquet", "weights": "weights.parquet", "export_rows": "data"}


@pytest.mark.parametrize("table_name", list(SECTIONS))
@pytest.mark.parametrize("fmt", FORMATS)
def test_inspect_every_stage_table(world, tmp_path, cli, table_name, fmt):
    arg, stdin = _cell(world, tmp_path, table_name, fmt)
    reference = cli("inspect", world["root"] / REFERENCES[table_name], "--json")
    result = cli("inspect", arg, "--json", input=stdin)
    assert reference.exit_code == 0 and result.exit_code == 0, result.output
    ours, theirs = json.loads(result.stdout), json.loads(reference.stdout)
    assert ours["stage"] == theirs["stage"] == STAGES[table_name]
    assert ours["rows"] == theirs["rows"]
    section = SECTIONS[table_name]
    if section is not None:
        assert ours[section] == theirs[section], (table_name, fmt)


# --- rollout, estimate, distill --eval, grade --problems, export: problems through read_problems ----


@pytest.mark.parametrize("fmt", FORMATS)
def test_problem_sets_read_the_same_for_rollout_estimate_and_distill_eval(world, tmp_path, fmt, monkeypatch):
    """rollout, estimate and distill --eval call `read_problems(path, fields)` on their problem set."""
    arg, stdin = _cell(world, tmp_path, "problems", fmt)
    if stdin is not None:
        import io
        import sys

        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    assert read_problems(arg).to_pylist() == read_problems(str(world["root"] / "problems.parquet")).to_pylist()


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "stdin"])
def test_distill_shards_read_the_same(world, tmp_path, fmt):
    """distill reads SHARDS with `read_train_split` (the export's train split, or export rows in any format)."""
    from paced_curate.distill.data import read_train_split

    arg, _ = _cell(world, tmp_path, "export_rows", fmt)
    expected = read_train_split(str(world["root"] / "data"), need_reference=True)
    assert read_train_split(arg, need_reference=True).to_pylist() == expected.replace_schema_metadata(None).to_pylist()


# --- where a format cannot hold the table: the one-line error ---------------------------------------


def test_distill_shards_from_stdin_is_one_line(world, tmp_path, cli, tiny_model):
    _, stdin = _cell(world, tmp_path, "export_rows", "stdin")
    result = cli("distill", "-", "--student", tiny_model, "--teacher", tiny_model, "-o", tmp_path / "run", "--max-steps", "1", input=stdin)
    assert_user_error(result, "SHARDS cannot be '-': every training process reads it, and --resume reads it again; save the rows to a file")


CHAT_PROBLEMS = [{"id": "c1", "messages": [{"role": "system", "content": "Box it."}, {"role": "user", "content": "2+2?"}], "answer": "4"}]


@pytest.mark.parametrize("command", ["rollout", "estimate", "export", "grade --problems", "distill --eval"])
def test_chat_problems_in_csv_are_one_line_for_every_command(world, tmp_path, cli, tiny_model, command):
    """A CSV cell cannot hold chat turns: the same error wherever a problem set is read, never a text prompt of the repr."""
    path, _ = to_format(pa.Table.from_pylist(CHAT_PROBLEMS), "csv", tmp_path / "chat")
    other = tmp_path / "x.jsonl"
    other.write_text(json.dumps({"problem_id": "c1", "completion": "4"}) + "\n")
    args = {
        "rollout": ["rollout", path, "--model", tiny_model, "--engine", "hf", "-o", tmp_path / "r"],
        "estimate": ["estimate", path, "--model", tiny_model, "--engine", "hf", "-o", tmp_path / "e"],
        "export": ["export", path, world["root"] / "weights.parquet", "-o", tmp_path / "d"],  # real weights: the problems are what fails
        "grade --problems": ["grade", other, "--problems", path, "-o", tmp_path / "g", "--workers", "1"],
        "distill --eval": None,
    }[command]
    expected = f"{path} line 2: column 'messages' holds chat turns written as text, which a CSV file cannot hold; use JSONL, JSON or Parquet"
    if args is None:
        with pytest.raises(InputError) as caught:
            read_problems(path)  # distill reads --eval with read_problems before training
        assert str(caught.value) == expected
        return
    assert_user_error(cli(*args), expected)


# --- one end-to-end run per command that needs a model ---------------------------------------------


def _rows_without_metadata(path: Path, spec) -> list[dict]:
    return read_table(str(path), spec).replace_schema_metadata(None).to_pylist()


def test_rollout_end_to_end_from_csv_equals_parquet(world, tmp_path, cli, tiny_model):
    common = ["--model", tiny_model, "--engine", "hf", "-k", "2", "--max-tokens", "4", "--dtype", "float32", "--seed", "3"]
    csv_path, _ = _cell(world, tmp_path, "problems", "csv")
    for name, source in (("parquet", world["root"] / "problems.parquet"), ("csv", csv_path)):
        result = cli("rollout", source, "-o", tmp_path / f"r_{name}", *common)
        assert result.exit_code == 0, result.output
    assert _rows_without_metadata(tmp_path / "r_csv", ROLLOUTS) == _rows_without_metadata(tmp_path / "r_parquet", ROLLOUTS)


def test_estimate_end_to_end_from_hf_dataset_equals_parquet(world, tmp_path, cli, tiny_model):
    common = ["--model", tiny_model, "--engine", "hf", "-k", "2", "--max-tokens", "4", "--dtype", "float32", "--grader", "exact", "--kernel", "uniform"]
    folder, _ = _cell(world, tmp_path, "problems", "hf_dataset")
    for name, source in (("parquet", world["root"] / "problems.parquet"), ("hf", folder)):
        result = cli("estimate", source, "-o", tmp_path / f"e_{name}", *common)
        assert result.exit_code == 0, result.output
    ours, theirs = (pq.read_table(tmp_path / f"e_{name}" / "weights.parquet").select(WEIGHT_COLUMNS).to_pylist() for name in ("hf", "parquet"))
    assert ours == theirs


def test_distill_end_to_end_from_jsonl_rows_and_csv_eval_equals_the_export(world, tmp_path, cli, tiny_model):
    rows, _ = _cell(world, tmp_path, "export_rows", "jsonl")
    eval_csv, _ = _cell(world, tmp_path, "problems", "csv")
    common = ["--student", tiny_model, "--teacher", tiny_model, "--max-steps", "2", "--batch-size", "2", "--loss", "fkl",
              "--eval-every", "2", "--eval-samples", "1", "--eval-max-tokens", "4", "--eval-workers", "1", "--max-length", "256"]
    runs = {"export": (world["root"] / "data", world["root"] / "problems.parquet"), "jsonl": (rows, eval_csv)}
    for name, (shards, problems) in runs.items():
        result = cli("distill", shards, "-o", tmp_path / f"run_{name}", "--eval", problems, *common)
        assert result.exit_code == 0, result.output
    metrics = {name: [json.loads(line) for line in (tmp_path / f"run_{name}" / "metrics.jsonl").read_text().splitlines()] for name in runs}
    assert {m["kind"] for m in metrics["export"]} == {"train", "eval"}, metrics
    keep = ("step", "kind", "loss", "kl", "pass_at_1", "problems")
    assert [{k: m[k] for k in keep if k in m} for m in metrics["jsonl"]] == [{k: m[k] for k in keep if k in m} for m in metrics["export"]]


TABLE_OPTIONS = {
    # command -> its table options, each covered above for every format
    "rollout": ["PROBLEMS"], "estimate": ["PROBLEMS"], "grade": ["ROLLOUTS", "--problems"], "weight": ["GRADED"],
    "export": ["PROBLEMS", "WEIGHTS", "--references"], "distill": ["SHARDS", "--eval"], "inspect": ["PATH"],
}


def test_the_matrix_names_every_command_that_takes_a_table():
    from tests.test_cli import command_names

    assert set(TABLE_OPTIONS) == set(command_names()) - {"demo"}  # demo builds its own tables
