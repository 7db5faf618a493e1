"""`paced export`: the join, references, shards, determinism, formats in `datasets`, manifest, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from paced_curate.errors import InputError, ResumeMismatch
from paced_curate.export import ExportConfig, read_export, run_export
from paced_curate.io import file_sha256, write_table
from paced_curate.schema import GRADES, WEIGHTS, build_table, read_metadata
from tests.conftest import assert_user_error, write_jsonl
from tests.test_schema import GRADE_ROW, WEIGHT_ROW

WEIGHTING = {"kernel": "beta", "alpha": 1.0, "beta": 1.0, "estimator": "empirical", "normalize": "mean"}


def problem_rows(n: int, chat: bool = False) -> list[dict]:
    rows = []
    for i in range(n):
        row = {"id": f"q{i:02d}", "answer": str(2 * i), "difficulty": "easy" if i < n // 2 else "hard"}
        question = f"What is {i} + {i}?"
        row["question"] = [{"role": "system", "content": "Box the answer."}, {"role": "user", "content": question}] if chat else question
        rows.append(row)
    return rows


def weight_rows(weights: dict[str, float]) -> list[dict]:
    return [
        WEIGHT_ROW | {"problem_id": pid, "n_correct": index % 9, "pass_rate": (index % 9) / 8, "weight_raw": w, "weight": w}
        for index, (pid, w) in enumerate(weights.items())
    ]


def make_inputs(tmp_path: Path, n: int = 10, chat: bool = False, weights: dict[str, float] | None = None) -> tuple[Path, Path]:
    """A problem set of n problems and a weights file (default: q00 weight 0, the others (i + 1) / 7)."""
    problems = write_jsonl(tmp_path / "problems.jsonl", problem_rows(n, chat))
    if weights is None:
        weights = {f"q{i:02d}": 0.0 if i == 0 else (i + 1) / 7 for i in range(n)}
    path = tmp_path / "weights.parquet"
    provenance = {"settings": WEIGHTING, "normalizing_constant": 0.2, "inputs": {"graded": {"path": "g/"}}, "versions": {}, "paced_version": "0"}
    write_table(build_table(weight_rows(weights), WEIGHTS), str(path), WEIGHTS, provenance=provenance)
    return problems, path


def make_references(tmp_path: Path, verdicts: dict[str, list[str]]) -> Path:
    """Graded teacher samples: verdicts[pid][k] is the verdict of sample k, whose text is 'pid#k'."""
    rows = [
        GRADE_ROW | {"problem_id": pid, "sample_index": k, "completion": f"{pid}#{k}", "verdict": verdict}
        for pid, per_sample in verdicts.items()
        for k, verdict in reversed(list(enumerate(per_sample)))  # out of order on purpose
    ]
    path = tmp_path / "teacher_graded.parquet"
    write_table(build_table(rows, GRADES), str(path), GRADES)
    return path


def export(tmp_path: Path, problems: Path, weights: Path, name: str = "out", **options):
    return run_export(ExportConfig(problems=str(problems), weights=str(weights), output=str(tmp_path / name), **options))


def manifest_of(directory: Path) -> dict:
    """An export's manifest: in the sibling folder `<OUT>.paced/`, never in the data folder."""
    assert not (directory / "manifest.json").exists()
    return json.loads((directory.with_name(directory.name + ".paced") / "manifest.json").read_text())


def test_join_takes_problem_columns_and_weights_and_drops_weight_zero(tmp_path):
    problems, weights = make_inputs(tmp_path)
    result = export(tmp_path, problems, weights)
    table = read_export(tmp_path / "out")
    assert table.column_names == ["problem_id", "prompt", "answer", "weight", "pass_rate", "n_samples", "n_correct", "difficulty"]
    rows = {row["problem_id"]: row for row in table.to_pylist()}
    assert sorted(rows) == [f"q{i:02d}" for i in range(1, 10)]
    # Weights (i + 1) / 7 for q01..q09 sum to 54 / 7: normalised to mean 1 over the 9 rows, q03's 4/7 becomes 4 * 9 / 54.
    assert rows["q03"] == {
        "problem_id": "q03", "prompt": "What is 3 + 3?", "answer": "6", "weight": pytest.approx(4 * 9 / 54), "pass_rate": 3 / 8,
        "n_samples": 8, "n_correct": 3, "difficulty": "easy",
    }
    assert sum(row["weight"] for row in rows.values()) == pytest.approx(9)
    assert result.num_rows == result.num_problems == 9
    assert result.dropped == {"no_weight": 0, "zero_weight": 1}
    kept = export(tmp_path, problems, weights, name="kept", drop_zero=False)
    assert kept.num_rows == 10 and kept.dropped["zero_weight"] == 0
    assert read_export(tmp_path / "kept").filter(pa.compute.equal(pa.compute.field("problem_id"), "q00")).column("weight").to_pylist() == [0.0]


def test_references_pick_the_lowest_correct_samples_and_drop_problems_without_one(tmp_path):
    problems, weights = make_inputs(tmp_path, n=4, weights={"q00": 1.0, "q01": 1.0, "q02": 1.0, "q03": 2.0})
    refs = make_references(
        tmp_path,
        {
            "q00": ["incorrect", "correct", "correct", "correct"],
            "q01": ["no_answer", "truncated", "incorrect"],  # no correct reference
            "q02": ["correct", "incorrect", "incorrect"],  # one only
            "q03": ["correct", "correct", "correct"],
        },
    )
    one = export(tmp_path, problems, weights, name="r1", references=str(refs))
    table = read_export(tmp_path / "r1").sort_by("problem_id")
    assert list(zip(table.column("problem_id").to_pylist(), table.column("reference").to_pylist())) == [
        ("q00", "q00#1"), ("q02", "q02#0"), ("q03", "q03#0")
    ]
    assert one.dropped["no_reference"] == 1 and one.short_references == 0

    two = export(tmp_path, problems, weights, name="r2", references=str(refs), refs_per_problem=2, normalize="none")
    table = read_export(tmp_path / "r2").sort_by([("problem_id", "ascending"), ("reference", "ascending")])
    # A problem's rows share its weight: q00 (weight 1, two references) 0.5 each, q02 (weight 1, one) 1.0, q03 (2, two) 1.0 each.
    assert list(zip(table.column("problem_id").to_pylist(), table.column("reference").to_pylist(), table.column("weight").to_pylist())) == [
        ("q00", "q00#1", 0.5), ("q00", "q00#2", 0.5), ("q02", "q02#0", 1.0), ("q03", "q03#0", 1.0), ("q03", "q03#1", 1.0)
    ]
    assert (two.num_rows, two.num_problems, two.short_references) == (5, 3, 1)


def test_shards_hold_rows_per_shard_rows_with_zstd_row_groups(tmp_path):
    problems, weights = make_inputs(tmp_path, n=11)
    export(tmp_path, problems, weights, rows_per_shard=3)
    out = tmp_path / "out" / "train"
    files = sorted(p.name for p in out.glob("*.parquet"))
    assert files == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet", "part-00003.parquet"]
    assert [pq.ParquetFile(out / f).metadata.num_rows for f in files] == [3, 3, 3, 1]
    first = pq.ParquetFile(out / files[0]).metadata
    assert first.num_row_groups == 1 and first.row_group(0).column(0).compression == "ZSTD"
    assert [entry["rows"] for entry in manifest_of(out.parent)["splits"]["train"]["files"]] == [3, 3, 3, 1]
    assert sorted(p.name for p in out.parent.iterdir()) == ["train"]  # --val-fraction 0 writes the same train/ layout
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no staging left behind


def test_same_inputs_and_seed_give_byte_identical_shards_anywhere(tmp_path):
    problems, weights = make_inputs(tmp_path, n=30)
    refs = make_references(tmp_path, {f"q{i:02d}": ["correct", "incorrect", "correct"] for i in range(30)})
    options = dict(references=str(refs), refs_per_problem=2, rows_per_shard=7, val_fraction=0.2, seed=3)
    export(tmp_path, problems, weights, name="a", **options)
    export(tmp_path / "elsewhere", problems, weights, name="b", **options)
    first, second = tmp_path / "a", tmp_path / "elsewhere" / "b"
    files = sorted(str(p.relative_to(first)) for p in first.rglob("*.parquet"))
    assert files == sorted(str(p.relative_to(second)) for p in second.rglob("*.parquet")) and len(files) == 9
    for name in files:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    export(tmp_path, problems, weights, name="c", **(options | {"seed": 4}))
    assert read_export(tmp_path / "c").column("problem_id").to_pylist() != read_export(first).column("problem_id").to_pylist()


def test_val_split_takes_whole_problems(tmp_path):
    problems, weights = make_inputs(tmp_path, n=21)
    refs = make_references(tmp_path, {f"q{i:02d}": ["correct", "correct"] for i in range(21)})
    result = export(tmp_path, problems, weights, references=str(refs), refs_per_problem=2, val_fraction=0.25)
    train, val = read_export(tmp_path / "out", "train"), read_export(tmp_path / "out", "val")
    train_ids, val_ids = train.column("problem_id").to_pylist(), val.column("problem_id").to_pylist()
    assert not set(train_ids) & set(val_ids)
    assert len(set(val_ids)) == 5 and len(set(train_ids)) == 15  # 25% of the 20 problems left after q00 (weight 0)
    assert all(train_ids.count(pid) == 2 for pid in train_ids) and all(val_ids.count(pid) == 2 for pid in val_ids)
    assert result.splits["val"]["rows"] == 10 and result.splits["train"]["problems"] == 15
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["train", "val"]
    assert sorted(p.name for p in (tmp_path / "out.paced").iterdir()) == ["README.md", "manifest.json"]
    with pytest.raises(InputError, match="has no 'test' split \\(it has train, val\\)"):
        read_export(tmp_path / "out", "test")


def load(files: list[Path], cache: Path):
    import datasets

    datasets.disable_progress_bars()
    return datasets.load_dataset("parquet", data_files=[str(f) for f in files], split="train", cache_dir=str(cache))


def shard_paths(directory: Path) -> list[Path]:
    return [directory / entry["file"] for entry in manifest_of(directory)["splits"]["train"]["files"]]


def expected_weights(weights: Path) -> dict[str, float]:
    """The nonzero weights of a weights file, scaled to mean 1 over them (one row per problem, --normalize rows)."""
    table = pq.read_table(weights)
    kept = {pid: w for pid, w in zip(table.column("problem_id").to_pylist(), table.column("weight").to_pylist()) if w != 0}
    mean = sum(kept.values()) / len(kept)
    return {pid: pytest.approx(w / mean) for pid, w in kept.items()}


def test_native_format_loads_in_datasets_with_exact_weights(tmp_path):
    from datasets import Value

    problems, weights = make_inputs(tmp_path, chat=True)
    export(tmp_path, problems, weights, rows_per_shard=4)
    ds = load(shard_paths(tmp_path / "out"), tmp_path / "cache")
    assert ds.column_names == ["problem_id", "prompt", "answer", "weight", "pass_rate", "n_samples", "n_correct", "messages", "difficulty"]
    assert ds.features["weight"] == Value("float64") and ds.features["n_correct"] == Value("int32")
    assert ds.features["messages"].feature == {"role": Value("string"), "content": Value("string")}
    assert {row["problem_id"]: row["weight"] for row in ds} == expected_weights(weights)
    assert ds[0]["messages"][0] == {"role": "system", "content": "Box the answer."}


@pytest.mark.parametrize("chat", [False, True], ids=["text", "chat"])
def test_trl_format_loads_in_datasets_with_prompt_completion_and_weight(tmp_path, chat):
    from datasets import Value

    problems, weights = make_inputs(tmp_path, chat=chat)
    refs = make_references(tmp_path, {f"q{i:02d}": ["correct"] for i in range(10)})
    export(tmp_path, problems, weights, references=str(refs), format="trl")
    ds = load(shard_paths(tmp_path / "out"), tmp_path / "cache")
    assert ds.column_names == ["prompt", "completion", "weight", "problem_id"]
    assert ds.features["weight"] == Value("float64")
    row = next(r for r in ds if r["problem_id"] == "q04")
    if chat:
        assert row["prompt"] == [{"role": "system", "content": "Box the answer."}, {"role": "user", "content": "What is 4 + 4?"}]
        assert row["completion"] == [{"role": "assistant", "content": "q04#0"}]
    else:
        assert ds.features["prompt"] == Value("string")
        assert (row["prompt"], row["completion"]) == ("What is 4 + 4?", "q04#0")
    assert {r["problem_id"]: r["weight"] for r in ds} == expected_weights(weights)


def test_verl_format_loads_in_datasets_with_extra_info_weight(tmp_path):
    from datasets import Value

    problems, weights = make_inputs(tmp_path)
    export(tmp_path, problems, weights, format="verl", seed=1)
    ds = load(shard_paths(tmp_path / "out"), tmp_path / "cache")
    assert ds.column_names == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    assert ds.features["extra_info"] == {"index": Value("int64"), "weight": Value("float64"), "pass_rate": Value("float64"), "problem_id": Value("string")}
    row = next(r for r in ds if r["extra_info"]["problem_id"] == "q05")
    assert row["data_source"] == "lighteval/MATH" and row["ability"] == "math"  # verl's default reward knows this source
    assert row["prompt"] == [{"role": "user", "content": "What is 5 + 5?"}]  # no prompt record: the problem as it is
    assert row["reward_model"] == {"style": "rule", "ground_truth": "10"}
    assert row["extra_info"]["pass_rate"] == 5 / 8
    assert [r["extra_info"]["index"] for r in ds] == list(range(9))  # the row's position in its split
    assert {r["extra_info"]["problem_id"]: r["extra_info"]["weight"] for r in ds} == expected_weights(weights)
    with pytest.raises(InputError, match="is a 'verl' export; re-export with --format native"):
        read_export(tmp_path / "out")


def test_manifest_and_dataset_card_record_counts_statistics_and_provenance(tmp_path, cli):
    problems, weights = make_inputs(tmp_path, n=4, weights={"q00": 0.0, "q01": 1.0, "q02": 1.0, "q03": 2.0})
    result = cli("export", problems, weights, "-o", tmp_path / "out", "--seed", "5", "--rows-per-shard", "2")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    manifest = manifest_of(out)
    assert (manifest["stage"], manifest["format"], manifest["complete"], manifest["rows"], manifest["problems"]) == ("export", "native", True, 3, 3)
    assert manifest["dropped"] == {"no_weight": 0, "zero_weight": 1}
    assert manifest["rows_per_shard"] == 2 and manifest["row_group_rows"] == 2
    stats = manifest["weight_statistics"]  # 1, 1, 2 normalised to mean 1 over the 3 train rows: x 3/4
    assert (stats["problems"], stats["mean"], stats["min"], stats["max"]) == (3, 1.0, 0.75, 1.5)
    assert manifest["normalize"] == "rows" and manifest["normalizing_factor"] == 0.75
    assert stats["effective_sample_size"] == pytest.approx(16 / 6)
    assert manifest["weighting"] == WEIGHTING | {"normalizing_constant": 0.2}  # how, not where from
    assert manifest["inputs"]["problems"] == {"path": str(problems.resolve()), "sha256": file_sha256(problems)}
    assert manifest["inputs"]["weights"]["sha256"] == file_sha256(weights)
    assert manifest["settings"]["seed"] == 5 and manifest["versions"]["pyarrow"] == pa.__version__
    assert manifest["command"][0] == "paced"  # the rest is this process's argv (pytest's, in-process)
    for entry in manifest["splits"]["train"]["files"]:
        assert file_sha256(out / entry["file"]) == entry["sha256"]
    meta = read_metadata(pq.read_schema(out / "train" / "part-00000.parquet"))
    assert meta["stage"] == "export" and meta["provenance"]["format"] == "native"
    assert meta["provenance"]["weighting"] == manifest["weighting"] and meta["provenance"]["settings_hash"] == manifest["settings_hash"]
    assert str(tmp_path) not in json.dumps(meta)  # no paths in the shards, so they match wherever they are written
    card = (tmp_path / "out.paced" / "README.md").read_text()
    assert "| train | 3 | 3 | `train/part-00000.parquet`, `train/part-00001.parquet` |" in card
    assert "their mean there is 1 (every weight from `paced weight` was multiplied by 0.75" in card
    assert "`sum_i w_i * loss_i / batch_size`" in card and "kernel=beta" in card
    assert "exported 3 rows (3 problems, native)" in result.stderr and "dropped 1 problem with weight 0" in result.stderr


def test_inspect_shows_the_manifest_and_a_weight_histogram(tmp_path, cli):
    problems, weights = make_inputs(tmp_path, n=4, weights={"q00": 0.5, "q01": 1.0, "q02": 1.0, "q03": 2.0})
    assert cli("export", problems, weights, "-o", tmp_path / "out", "--val-fraction", "0.5", "--normalize", "none").exit_code == 0
    result = cli("inspect", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["stage"] == "export" and report["format"] == "native" and report["rows"] == 4
    histogram = report["weight_histogram"]  # 10 bins over [0, 2]: 0.5, 1.0 and 2.0 fall in bins 2, 5 and 9
    assert histogram["counts"] == [0, 0, 1, 0, 0, 2, 0, 0, 0, 1] and len(histogram["labels"]) == 10
    assert report["manifest"]["splits"]["val"]["problems"] == 2
    shown = cli("inspect", tmp_path / "out")
    assert shown.exit_code == 0, shown.output
    assert "weight per row" in shown.stderr and "weighting: kernel" in shown.stderr


def test_an_earlier_export_is_replaced_and_a_failed_export_leaves_it_intact(tmp_path, cli):
    problems, weights = make_inputs(tmp_path)
    export(tmp_path, problems, weights, rows_per_shard=2)
    export(tmp_path, problems, weights, rows_per_shard=2)  # the same command again: rewritten
    with pytest.raises(ResumeMismatch, match=r"was made with rows_per_shard=2 \(now 5\); pass --overwrite"):
        export(tmp_path, problems, weights, rows_per_shard=5)  # other settings only with --overwrite (#26)
    export(tmp_path, problems, weights, rows_per_shard=5, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "out" / "train").glob("*.parquet")) == ["part-00000.parquet", "part-00001.parquet"]
    def contents():
        return {str(p): p.read_bytes() for folder in ("out", "out.paced") for p in (tmp_path / folder).rglob("*") if p.is_file()}
    before = contents()
    bad = write_jsonl(tmp_path / "other.jsonl", problem_rows(3))
    assert cli("export", bad, weights, "-o", tmp_path / "out", "--overwrite").exit_code == 2
    assert contents() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_weights_for_unknown_problems_are_an_error_naming_a_few(tmp_path, cli):
    problems, weights = make_inputs(tmp_path, weights={f"q{i:02d}": 1.0 for i in range(15)})
    assert_user_error(
        cli("export", problems, weights, "-o", tmp_path / "out"),
        f"{weights}: 5 problem ids are not in the problem set {problems}: 'q10', 'q11', 'q12' and 2 more; "
        "export with the problem set these weights were computed for",
    )


def test_problems_without_weights_are_dropped_and_reported_or_refused(tmp_path, cli):
    problems, weights = make_inputs(tmp_path, weights={f"q{i:02d}": 1.0 for i in range(6)})
    result = cli("export", problems, weights, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "dropped 4 problems without a weight (--missing drop)" in result.stderr
    assert manifest_of(tmp_path / "out")["dropped"]["no_weight"] == 4
    assert_user_error(
        cli("export", problems, weights, "-o", tmp_path / "out2", "--missing", "error"),
        f"{problems}: 4 problems have no weight in {weights}: 'q06', 'q07', 'q08' and 1 more; "
        "weigh them with 'paced weight' or pass --missing drop",
    )


def test_a_folder_that_is_not_an_export_is_refused_even_with_overwrite(tmp_path, cli):
    problems, weights = make_inputs(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    for flags in ([], ["--overwrite"]):  # --overwrite deletes only what paced wrote (#26)
        assert_user_error(
            cli("export", problems, weights, "-o", tmp_path / "out", *flags),
            f"{tmp_path / 'out'}: holds 'notes.txt', which paced did not write; choose another -o (--overwrite deletes only what paced wrote)",
        )
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["notes.txt"] and (tmp_path / "out" / "notes.txt").read_text() == "mine"
    assert_user_error(
        cli("export", problems, weights, "-o", tmp_path, "--overwrite"),
        f"{tmp_path}: contains the problems input {problems}; choose another -o (an output never replaces its inputs)",
    )


BAD_FLAGS = [
    (["--format", "trl"], "--format trl needs --references (teacher rollouts graded with 'paced grade') to fill the completion"),
    (["--format", "csv"], "--format must be one of native, trl, verl, llamafactory (got 'csv')"),
    (["--missing", "keep", "--rows-per-shard", "0"], "--missing must be drop or error (got 'keep'); --rows-per-shard must be at least 1 (got 0)"),
    (["--val-fraction", "1"], "--val-fraction must be in [0, 1) (got 1.0)"),
    (["--weights-as", "rows"], "--weights-as must be column or copies (got 'rows')"),
    (["--copies", "5"], "--copies needs --weights-as copies"),
    (["--weights-as", "copies", "--copies", "0"], "--copies must be at least 1 (got 0)"),
    (["--normalize", "mean"], "--normalize must be rows or none (got 'mean')"),
    (["--format", "verl", "--data-source", ""], "--data-source must not be empty"),
]


@pytest.mark.parametrize(
    "flags,message", BAD_FLAGS,
    ids=["trl-without-references", "format", "two-at-once", "val-fraction", "weights-as", "copies-alone", "copies-zero", "normalize", "data-source"],
)
def test_bad_flags_are_one_line_errors(tmp_path, cli, flags, message):
    problems, weights = make_inputs(tmp_path)
    assert_user_error(cli("export", problems, weights, "-o", tmp_path / "out", *flags), f"error: {message}")


def test_nothing_left_to_export_is_an_error(tmp_path, cli):
    problems, weights = make_inputs(tmp_path, n=3, weights={"q00": 1.0, "q01": 1.0, "q02": 1.0})
    refs = make_references(tmp_path, {"q00": ["incorrect"], "q01": ["no_answer"]})
    assert_user_error(
        cli("export", problems, weights, "-o", tmp_path / "out", "--references", refs),
        f"{weights}: nothing left to export (3 problems without a correct teacher reference); check the inputs belong together",
    )
