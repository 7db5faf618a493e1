"""A folder given where a table is expected that holds something else is named for what it is:
an output's extras folder, a model folder, a distill run (one line, exit 2, every command that
reads a table), while folders that are tables still read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from paced_curate.errors import InputError
from paced_curate.export.runner import read_export
from paced_curate.io import extras_owner, read_table
from paced_curate.partdir import PartDirectory
from paced_curate.problems import read_problems
from paced_curate.samples import read_generations
from paced_curate.schema import GRADES, ROLLOUTS, WEIGHTS, build_table
from paced_curate.tables import read_columns, read_stage_table
from tests.conftest import assert_user_error
from tests.test_schema import GRADE_ROW, ROLLOUT_ROW, WEIGHT_ROW


def _output(path: Path, spec, row: dict, finish: bool = True) -> Path:
    out = PartDirectory.open(path, spec=spec, settings={}, inputs={})
    out.write_part(build_table([row | {"problem_id": p, "sample_index": i} for p in ("a", "b") for i in range(2)], spec))
    if finish:
        out.finish()
    return path


def _sharded(root: Path) -> Path:
    # What `paced rollout --gpus 0,1` leaves: OUT/shard-*/ with parts, OUT.paced/shard-*/ with manifests.
    for index in range(2):
        _output(root / "sh" / f"shard-{index:05d}-of-00002", GRADES, GRADE_ROW)
    return root / "sh"


def _model(path: Path, *files: str) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]}))
    for name in files:
        (path / name).write_text("{}" if name.endswith(".json") else "weights")
    return path


def _distill_run(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "run.json").write_text(json.dumps({"settings": {"loss": "fkl"}, "total_steps": 5}))
    (path / "metrics.jsonl").write_text("")
    _model(path / "final", "model.safetensors", "tokenizer.json")
    return path


# (case, make(root) -> the folder given, the expected message with {root})
EXTRAS = [
    ("a finished grades folder's extras", lambda r: _output(r / "graded", GRADES, GRADE_ROW).with_name("graded.paced"), "graded.paced: is the extras folder of {root}/graded (paced's manifest and notes); pass {root}/graded"),
    ("a finished rollouts folder's extras", lambda r: _output(r / "rollouts", ROLLOUTS, ROLLOUT_ROW).with_name("rollouts.paced"), "rollouts.paced: is the extras folder of {root}/rollouts (paced's manifest and notes); pass {root}/rollouts"),
    ("an unfinished rollouts folder's extras", lambda r: _output(r / "rollouts", ROLLOUTS, ROLLOUT_ROW, finish=False).with_name("rollouts.paced"), "rollouts.paced: is the extras folder of {root}/rollouts (paced's manifest and notes); pass {root}/rollouts"),
    ("an unfinished NAME.parquet output's extras (its parts/)", lambda r: _output(r / "g.parquet", GRADES, GRADE_ROW, finish=False).with_name("g.parquet.paced"), "g.parquet.paced: is the extras folder of {root}/g.parquet (paced's manifest and notes); pass {root}/g.parquet (not written yet: rerun the command that writes it to complete it)"),
    ("a sharded output's extras", lambda r: _sharded(r).with_name("sh.paced"), "sh.paced: is the extras folder of {root}/sh (paced's manifest and notes); pass {root}/sh"),
    ("one shard's extras", lambda r: _sharded(r).with_name("sh.paced") / "shard-00001-of-00002", "sh.paced/shard-00001-of-00002: is the extras folder of {root}/sh/shard-00001-of-00002 (paced's manifest and notes); pass {root}/sh/shard-00001-of-00002"),
]
OTHERS = [
    ("a model folder", lambda r: _model(r / "model", "model.safetensors", "tokenizer.json", "generation_config.json"), "model: is a model folder (config.json), not a table"),
    ("a distill run's final student", lambda r: _distill_run(r / "run") / "final", "run/final: is a model folder (config.json), not a table"),
    ("a model folder with sharded weights, no tokenizer", lambda r: _model(r / "bare", "model-00001-of-00002.safetensors", "model.safetensors.index.json"), "bare: is a model folder (config.json), not a table"),
    ("a distill run folder", lambda r: _distill_run(r / "run"), "run: is a paced distill run, not a table; paced inspect {root}/run summarises it"),
    ("an estimate run folder (its message unchanged)", lambda r: _estimate_run(r / "est"), "est: is a paced estimate run, which holds several tables; pass {root}/est/rollouts, {root}/est/graded or {root}/est/weights.parquet"),
]
CASES = EXTRAS + OTHERS


def _estimate_run(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "estimate.json").write_text("{}")
    return path


READERS = {
    "read_columns": lambda p: read_columns(p),
    "read_problems": lambda p: read_problems(p),
    "read_generations": lambda p: read_generations(p),
    "read_stage_table(grades)": lambda p: read_stage_table(p, GRADES),
    "read_table(weights)": lambda p: read_table(p, WEIGHTS),
    "read_export": lambda p: read_export(p),
}


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("case, make, expected", CASES, ids=[c[0] for c in CASES])
def test_every_reader_names_a_folder_that_is_not_a_table(tmp_path, case, make, expected, reader):
    folder = make(tmp_path)
    with pytest.raises(InputError) as raised:
        READERS[reader](str(folder))
    assert str(raised.value) == f"{tmp_path}/" + expected.format(root=tmp_path), case


# (command, where the folder goes) for every command that reads a table without a model
COMMANDS = [
    ("inspect", ["inspect", "X"]),
    ("grade", ["grade", "X", "-o", "OUT"]),
    ("grade --problems", ["grade", "GEN", "--problems", "X", "-o", "OUT"]),
    ("weight", ["weight", "X", "-o", "OUT"]),
    ("export (problems)", ["export", "X", "WEIGHTS", "-o", "OUT"]),
    ("export (weights)", ["export", "PROBLEMS", "X", "-o", "OUT"]),
    ("export --references", ["export", "PROBLEMS", "WEIGHTS", "--references", "X", "-o", "OUT"]),
]


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "in").mkdir()
    problems = tmp_path / "in" / "p.jsonl"
    problems.write_text("".join(json.dumps({"id": p, "prompt": "1+1=", "answer": "2"}) + "\n" for p in "ab"))
    weights = tmp_path / "in" / "w.jsonl"
    weights.write_text("".join(json.dumps(WEIGHT_ROW | {"problem_id": p}) + "\n" for p in "ab"))
    generations = tmp_path / "in" / "gen.jsonl"
    generations.write_text(json.dumps({"problem_id": "a", "completion": "\\boxed{2}"}) + "\n")
    return {"PROBLEMS": problems, "WEIGHTS": weights, "GEN": generations, "OUT": tmp_path / "in" / "out"}


@pytest.mark.parametrize("command, args", COMMANDS, ids=[c[0] for c in COMMANDS])
@pytest.mark.parametrize("case, make, expected", CASES, ids=[c[0] for c in CASES])
def test_every_command_names_a_folder_that_is_not_a_table(cli, tmp_path, inputs, case, make, expected, command, args):
    folder = make(tmp_path)
    if command == "inspect" and case == "a distill run folder":
        pytest.skip("paced inspect summarises a distill run (tested below)")
    result = cli(*[folder if a == "X" else inputs.get(a, a) for a in args])
    assert_user_error(result, f"{tmp_path}/" + expected.format(root=tmp_path))
    assert not inputs["OUT"].exists()


def test_paced_inspect_still_summarises_a_distill_run(cli, tmp_path):
    run = _distill_run(tmp_path / "run")
    result = cli("inspect", run, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["stage"], report["settings"], report["total_steps"]) == ("distill", {"loss": "fkl"}, 5)


# Folders that merely look like the cases above are still tables.
def _renamed_output(root: Path) -> Path:
    # `-o graded.paced` is a folder of parts; its own extras are graded.paced.paced.
    return _output(root / "graded.paced", GRADES, GRADE_ROW)


def _older_output(root: Path) -> Path:
    # Written before the extras folder existed: manifest beside the parts.
    out = _output(root / "old.paced", GRADES, GRADE_ROW)
    (root / "old.paced.paced" / "manifest.json").rename(out / "manifest.json")
    shutil.rmtree(root / "old.paced.paced")
    return out


def _dataset_with_config(root: Path) -> Path:
    folder = root / "ds"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "train.jsonl").write_text("".join(json.dumps(GRADE_ROW | {"problem_id": p}) + "\n" for p in "ab"))
    return folder


TABLES = [
    ("an output named NAME.paced", _renamed_output, 4),
    ("an older output named NAME.paced with its manifest inside", _older_output, 4),
    ("a data folder that also holds a config.json", _dataset_with_config, 2),
]


@pytest.mark.parametrize("case, make, rows", TABLES, ids=[c[0] for c in TABLES])
def test_folders_that_are_tables_still_read(tmp_path, case, make, rows):
    folder = make(tmp_path)
    assert extras_owner(folder) is None, case
    assert read_stage_table(str(folder), GRADES).num_rows == rows, case
