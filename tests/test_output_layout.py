"""Issue #12, section 2: every stage's output opens as it is in polars, pandas, pyarrow.dataset,
DuckDB and `datasets`; `-o NAME.parquet` writes one file and `-o DIR` a folder of Parquet files
only (the manifest and temporary files live in `DIR.paced/`); resume stays exact."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from paced_curate.describe import InspectConfig, run_inspect
from paced_curate.errors import ResumeMismatch
from paced_curate.grade import GradeConfig, run_grade
from paced_curate.io import read_table
from paced_curate.partdir import PartDirectory
from paced_curate.rollout import RolloutConfig, run_rollout
from paced_curate.schema import GRADES, ROLLOUTS, WEIGHTS, build_table
from paced_curate.weight import WeightConfig, run_weight
from tests.conftest import write_jsonl
from tests.test_schema import ROLLOUT_ROW


def _polars(path: Path) -> int:
    import polars as pl

    return pl.read_parquet(path).height


def _pandas(path: Path) -> int:
    import pandas as pd

    return len(pd.read_parquet(path))


def _pyarrow_dataset(path: Path) -> int:
    import pyarrow.dataset as ds

    return ds.dataset(path).count_rows()


def _duckdb(path: Path) -> int:
    import duckdb

    pattern = f"{path}/**/*.parquet" if path.is_dir() else str(path)
    return duckdb.sql(f"SELECT count(*) FROM read_parquet('{pattern}')").fetchall()[0][0]


def _datasets(path: Path) -> int:
    import datasets

    cache = path.parent / ".hf-cache"
    if path.is_dir():
        loaded = datasets.load_dataset("parquet", data_dir=str(path), cache_dir=str(cache))
    else:
        loaded = datasets.load_dataset("parquet", data_files=str(path), cache_dir=str(cache))
    return loaded["train"].num_rows


READERS = {"polars": _polars, "pandas": _pandas, "pyarrow.dataset": _pyarrow_dataset, "duckdb": _duckdb, "datasets": _datasets}


@pytest.fixture(scope="module")
def outputs(tiny_model, tmp_path_factory) -> dict[str, tuple[Path, int]]:
    """Every stage's output as a folder and as one file: name -> (path, rows)."""
    root = tmp_path_factory.mktemp("layout")
    problems = write_jsonl(root / "problems.jsonl", [{"id": f"q{i}", "question": f"{i} + 1 =", "answer": str(i + 1)} for i in range(5)])
    base = dict(problems=str(problems), model=str(tiny_model), engine="hf", samples=2, max_tokens=4, problems_per_part=2)
    out = {}
    for name in ("rollouts", "rollouts.parquet"):
        run_rollout(RolloutConfig(output=str(root / name), **base))
        out[name] = (root / name, 10)
    for index in range(2):
        run_rollout(RolloutConfig(output=str(root / "sharded"), shard=f"{index}/2", **base))
    out["sharded rollouts"] = (root / "sharded", 10)
    for name in ("graded", "graded.parquet"):
        run_grade(GradeConfig(rollouts=str(root / "rollouts"), output=str(root / name), workers=1, rows_per_part=4))
        out[name] = (root / name, 10)
    for name in ("weights.parquet", "weights"):
        # The random tiny model gets nothing right: the uniform kernel still weights every problem.
        run_weight(WeightConfig(graded=str(root / "graded"), output=str(root / name), kernel="uniform"))
        out[name] = (root / name, 5)
    return out


CASES = ["rollouts", "rollouts.parquet", "sharded rollouts", "graded", "graded.parquet", "weights.parquet", "weights"]


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("name", CASES)
def test_every_reader_opens_every_output_as_it_is(outputs, name, reader):
    path, rows = outputs[name]
    assert READERS[reader](path) == rows


@pytest.mark.parametrize("name", CASES)
def test_folders_hold_parquet_only_and_extras_live_beside_them(outputs, name):
    path, _ = outputs[name]
    extras = path.with_name(path.name + ".paced")
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file()]
        assert files and all(p.suffix == ".parquet" and not p.name.startswith(".") for p in files), files
        assert (extras / "manifest.json").exists() or (extras / "shard-00000-of-00002" / "manifest.json").exists()
        assert not [p for p in extras.rglob("*") if ".tmp-" in p.name], "no temporary files left behind"
    else:
        assert path.is_file() and not extras.exists(), "a one-file output leaves nothing beside it"


@pytest.mark.parametrize("name, stage", [("rollouts", "rollouts"), ("rollouts.parquet", "rollouts"), ("graded", "grades"), ("graded.parquet", "grades"), ("weights", "weights")])
def test_inspect_reads_the_new_layout(outputs, name, stage):
    path, rows = outputs[name]
    report = run_inspect(InspectConfig(path=str(path)))
    assert (report["stage"], report["rows"]) == (stage, rows)
    assert report["provenance"]["settings"], "the provenance travels in the Parquet metadata"


def test_file_and_folder_outputs_hold_the_same_rows(outputs):
    for stage, spec in (("rollouts", ROLLOUTS), ("graded", GRADES), ("weights", WEIGHTS)):
        folder = read_table(str(outputs[stage][0]), spec).to_pylist()
        assert read_table(str(outputs[f"{stage}.parquet"][0]), spec).to_pylist() == folder, stage


def _rows(ids):
    return build_table([ROLLOUT_ROW | {"problem_id": pid, "sample_index": i} for pid in ids for i in range(2)], ROLLOUTS)


def test_one_file_output_resumes_from_its_parts_and_equals_an_uninterrupted_run(tmp_path):
    settings, inputs = {"seed": 0}, {"problems": {"path": "p.jsonl", "sha256": "abc"}}
    target = tmp_path / "rollouts.parquet"
    first = PartDirectory.open(target, spec=ROLLOUTS, settings=settings, inputs=inputs)
    first.write_part(_rows(["a", "b"]))
    # The process dies here: no file yet, the finished part waits in the extras folder.
    assert not target.exists() and (tmp_path / "rollouts.parquet.paced" / "parts" / "part-00000.parquet").exists()
    with pytest.raises(ResumeMismatch, match=r"was made with seed=0 \(now 1\)"):
        PartDirectory.open(target, spec=ROLLOUTS, settings={"seed": 1}, inputs=inputs)
    again = PartDirectory.open(target, spec=ROLLOUTS, settings=settings, inputs=inputs)
    assert again.read_done(["problem_id"]).column("problem_id").to_pylist() == ["a", "a", "b", "b"]
    again.write_part(_rows(["c"]))
    again.finish({"samples": 6})
    straight = PartDirectory.open(tmp_path / "straight.parquet", spec=ROLLOUTS, settings=settings, inputs=inputs)
    straight.write_part(_rows(["a", "b", "c"]))
    straight.finish({"samples": 6})
    assert read_table(str(target), ROLLOUTS).to_pylist() == read_table(str(tmp_path / "straight.parquet"), ROLLOUTS).to_pylist()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rollouts.parquet", "straight.parquet"]
    # A finished file reopens as done (nothing to redo) and refuses other settings.
    done = PartDirectory.open(target, spec=ROLLOUTS, settings=settings, inputs=inputs)
    assert done.num_parts == 1 and done.read_done(["problem_id"]).num_rows == 6
    with pytest.raises(ResumeMismatch, match="was made with seed=0"):
        PartDirectory.open(target, spec=ROLLOUTS, settings={"seed": 1}, inputs=inputs)


def test_resume_state_is_read_from_the_parts_when_the_manifest_is_gone(tmp_path):
    import shutil

    settings, inputs = {"seed": 0}, {"problems": {"path": "p.jsonl", "sha256": "abc"}}
    out = PartDirectory.open(tmp_path / "r", spec=ROLLOUTS, settings=settings, inputs=inputs)
    out.write_part(_rows(["a"]))
    shutil.rmtree(tmp_path / "r.paced")
    with pytest.raises(ResumeMismatch, match=r"input problems changed"):
        PartDirectory.open(tmp_path / "r", spec=ROLLOUTS, settings=settings, inputs={"problems": {"path": "p.jsonl", "sha256": "xyz"}})
    again = PartDirectory.open(tmp_path / "r", spec=ROLLOUTS, settings=settings, inputs=inputs)
    assert again.read_done(["problem_id"]).num_rows == 2


def test_an_older_output_with_its_manifest_inside_is_read_and_moved_out(tmp_path):
    import json

    settings, inputs = {"seed": 0}, {}
    out = PartDirectory.open(tmp_path / "r", spec=ROLLOUTS, settings=settings, inputs=inputs)
    out.write_part(_rows(["a"]))
    out.finish()
    (tmp_path / "r.paced" / "manifest.json").rename(tmp_path / "r" / "manifest.json")
    assert read_table(str(tmp_path / "r"), ROLLOUTS).num_rows == 2
    PartDirectory.open(tmp_path / "r", spec=ROLLOUTS, settings=settings, inputs=inputs)
    assert [p.name for p in (tmp_path / "r").iterdir()] == ["part-00000.parquet"]
    assert json.loads((tmp_path / "r.paced" / "manifest.json").read_text())["rows"] == 2


def test_rerunning_grade_into_a_finished_file_grades_nothing(outputs, tmp_path):
    rollouts, _ = outputs["rollouts"]
    config = GradeConfig(rollouts=str(rollouts), output=str(tmp_path / "g.parquet"), workers=1)
    first = run_grade(config)
    again = run_grade(config)
    assert (first.graded, again.graded, again.resumed) == (10, 0, 10)
    assert isinstance(read_table(str(tmp_path / "g.parquet"), GRADES), pa.Table)


@pytest.mark.parametrize("content", [b'{"a": 1}\n', b"PAR1 cut off"], ids=["jsonl", "truncated"])
def test_a_file_output_that_paced_did_not_write_is_refused_not_replaced(tmp_path, content):
    from paced_curate.errors import InputError

    target = tmp_path / "graded.parquet"
    target.write_bytes(content)
    with pytest.raises(InputError, match="graded.parquet: exists and is not a paced output; choose another -o or pass --overwrite"):
        PartDirectory.open(target, spec=ROLLOUTS, settings={}, inputs={})
    assert target.read_bytes() == content
    PartDirectory.open(target, spec=ROLLOUTS, settings={}, inputs={}, overwrite=True).finish()
    assert read_table(str(target), ROLLOUTS).num_rows == 0
