"""How exports carry the weights: per-row shares (R references), normalisation over the train
rows, weighted copies (rounding, determinism, spreading, same objective), and the prompt as rolled out."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from paced_curate.export import ExportConfig, read_export, run_export
from paced_curate.export.weighting import adjacent_pairs, copy_counts, row_weights, spread_order
from paced_curate.io import write_table
from paced_curate.schema import WEIGHTS, build_table
from tests.conftest import write_jsonl
from tests.test_export import make_inputs, make_references, problem_rows, weight_rows


def _export(tmp_path: Path, problems: Path, weights: Path, name: str = "out", **options):
    result = run_export(ExportConfig(problems=str(problems), weights=str(weights), output=str(tmp_path / name), **options))
    return result, tmp_path / name


def _rows(out: Path, split: str = "train") -> list[dict]:
    return pq.read_table(out / split).to_pylist()


# --- rounding to copies ------------------------------------------------------------------

COUNT_CASES = [
    # weights, N, reason
    ([1.0, 1.0, 2.0], 8, "integer shares are kept exactly"),
    ([0.3, 1.7, 0.0, 2.2, 0.9], 10, "fractional shares, one weight 0"),
    ([1e-6, 1.0, 1.0], 3, "a tiny weight's share rounds to 0 or 1"),
    ([5.0], 7, "a single problem takes every row"),
    (list(np.linspace(0.01, 3.0, 50)), 37, "fewer rows than problems"),
    (list(np.linspace(0.01, 3.0, 50)), 1000, "many rows per problem"),
]


@pytest.mark.parametrize(("weights", "total", "reason"), COUNT_CASES, ids=[c[2] for c in COUNT_CASES])
def test_copy_counts_stay_within_one_of_the_share_and_total_n(weights, total, reason):
    weights = np.array(weights)
    shares = weights * total / weights.sum()
    for seed in range(20):
        counts = copy_counts(weights, total, seed)
        assert counts.sum() == total, reason
        assert np.all(counts >= np.floor(shares - 1e-9)) and np.all(counts <= np.ceil(shares + 1e-9)), (reason, counts, shares)
        assert np.all(counts[weights == 0] == 0)
        assert np.array_equal(counts, copy_counts(weights, total, seed))  # deterministic by seed


def test_copy_counts_are_unbiased_over_seeds():
    weights = np.array([0.3, 1.7, 0.05, 2.2, 0.9])
    shares = weights * 6 / weights.sum()
    mean = np.mean([copy_counts(weights, 6, seed) for seed in range(4000)], axis=0)
    # E[c_i] = s_i exactly; 4000 draws of a count with variance <= 1/4 leave a standard error <= 0.008.
    assert np.allclose(mean, shares, atol=0.04), (mean, shares)


@pytest.mark.parametrize("counts", [[3, 3, 3], [1, 5, 4, 2], [4, 3], [1] * 9, [2, 1, 1, 6, 3, 3]])
def test_spread_order_never_puts_copies_of_a_problem_next_to_each_other(counts):
    labels = np.repeat(np.arange(len(counts)), counts)
    for seed in range(30):
        order = spread_order(labels, seed)
        assert sorted(order.tolist()) == list(range(labels.size))
        assert adjacent_pairs(labels[order]) == 0, (counts, seed, labels[order])
    if counts != [4, 3]:  # 4 + 3 has one arrangement only (0101010); the others change with the seed
        assert not np.array_equal(spread_order(labels, 0), spread_order(labels, 1))


def test_spread_order_counts_what_cannot_be_separated():
    labels = np.repeat([0, 1], [5, 1])  # 5 copies among 6 rows: at least 3 neighbouring pairs
    assert adjacent_pairs(labels[spread_order(labels, 0)]) == 3


# --- per-row shares and normalisation ------------------------------------------------------

def test_row_weights_split_each_problem_weight_over_its_rows():
    ids = ["a", "a", "b", "c", "c", "c"]
    shares = row_weights(ids, np.array([1.0, 1.0, 2.0, 3.0, 3.0, 3.0]))
    assert shares.tolist() == [0.5, 0.5, 2.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("refs_per_problem", [1, 2, 3])
@pytest.mark.parametrize("normalize", ["none", "rows"])
def test_a_problems_rows_sum_to_its_weight_whatever_r(tmp_path, refs_per_problem, normalize):
    weights = {"q00": 1.0, "q01": 2.0, "q02": 0.5, "q03": 4.0}
    problems, weights_file = make_inputs(tmp_path, n=4, weights=weights)
    # q00 has 3 correct samples, q01 2, q02 1, q03 3: with R = 3 the problems have 3, 2, 1, 3 rows.
    refs = make_references(tmp_path, {"q00": ["correct"] * 3, "q01": ["correct", "incorrect", "correct"], "q02": ["correct"], "q03": ["correct"] * 3})
    result, out = _export(tmp_path, problems, weights_file, references=str(refs), refs_per_problem=refs_per_problem, normalize=normalize)
    table = read_export(out)
    sums: dict[str, float] = {}
    for pid, w in zip(table.column("problem_id").to_pylist(), table.column("weight").to_pylist()):
        sums[pid] = sums.get(pid, 0.0) + w
    factor = result.normalizing_factor
    assert sums == {pid: pytest.approx(w * factor) for pid, w in weights.items()}
    if normalize == "rows":
        assert np.mean(table.column("weight").to_numpy()) == pytest.approx(1.0)  # the mean over the trained rows
    else:
        assert factor == 1.0


def test_normalisation_is_over_the_train_rows_and_val_rows_get_the_same_factor(tmp_path):
    weights = {f"q{i:02d}": float(i % 4) for i in range(20)}  # five weight-0 problems are dropped
    problems, weights_file = make_inputs(tmp_path, n=20, weights=weights)
    result, out = _export(tmp_path, problems, weights_file, val_fraction=0.3, seed=2)
    train, val = read_export(out, "train"), read_export(out, "val")
    assert np.mean(train.column("weight").to_numpy()) == pytest.approx(1.0)
    for table in (train, val):
        for pid, w in zip(table.column("problem_id").to_pylist(), table.column("weight").to_pylist()):
            assert w == pytest.approx(weights[pid] * result.normalizing_factor)
    assert not math.isclose(np.mean(val.column("weight").to_numpy()), 1.0)  # the val split's own mean is not forced


# --- weighted copies in an export -----------------------------------------------------------

def _copies_inputs(tmp_path: Path, n: int = 12):
    weights = {f"q{i:02d}": [0.0, 0.25, 1.0, 2.5, 0.6, 1.3][i % 6] for i in range(n)}
    return (*make_inputs(tmp_path, n=n, weights=weights), weights)


@pytest.mark.parametrize("copies", [None, 7, 40])
def test_copies_export_counts_each_problem_within_one_of_its_share(tmp_path, copies):
    problems, weights_file, weights = _copies_inputs(tmp_path)
    result, out = _export(tmp_path, problems, weights_file, weights_as="copies", copies=copies, seed=5)
    rows = _rows(out)
    kept = {pid: w for pid, w in weights.items() if w > 0}
    total = copies if copies is not None else len(kept)  # default N: the number of exported problems
    assert len(rows) == total == result.splits["train"]["rows"]
    assert {row["weight"] for row in rows} == {1.0}  # every row counts once
    counts = {pid: sum(row["problem_id"] == pid for row in rows) for pid in kept}
    for pid, w in kept.items():
        share = w * total / sum(kept.values())
        assert math.floor(share) <= counts[pid] <= math.ceil(share), (pid, counts[pid], share)
    labels = [row["problem_id"] for row in rows]
    assert all(a != b for a, b in zip(labels, labels[1:]))  # copies never next to each other
    card = (tmp_path / "out.paced" / "README.md").read_text()
    assert "## Weighted copies" in card and "`E[c_i] = s_i`" in card and "gradient variance" in card


def test_copies_export_is_deterministic_by_seed(tmp_path):
    problems, weights_file, _ = _copies_inputs(tmp_path)
    _export(tmp_path, problems, weights_file, name="a", weights_as="copies", copies=30, seed=1)
    _export(tmp_path, problems, weights_file, name="b", weights_as="copies", copies=30, seed=1)
    _export(tmp_path, problems, weights_file, name="c", weights_as="copies", copies=30, seed=2)
    read = lambda name: (tmp_path / name / "train" / "part-00000.parquet").read_bytes()  # noqa: E731
    assert read("a") == read("b")
    assert [r["problem_id"] for r in _rows(tmp_path / "a")] != [r["problem_id"] for r in _rows(tmp_path / "c")]


def test_the_weighted_average_over_the_column_export_equals_the_average_over_copies(tmp_path):
    """The objective a uniform sampler sees on copies is the weighted objective, up to the rounding."""
    problems, weights_file, weights = _copies_inputs(tmp_path, n=30)
    refs = make_references(tmp_path, {pid: ["correct", "correct"] for pid in weights})
    loss = {pid: 1.0 + (int(pid[1:]) * 7919 % 13) / 5 for pid in weights}  # a fixed per-problem loss
    _, column = _export(tmp_path, problems, weights_file, name="column", references=str(refs), refs_per_problem=2)
    n = 3000
    _, copies = _export(tmp_path, problems, weights_file, name="copies", references=str(refs), refs_per_problem=2, weights_as="copies", copies=n)
    col = _rows(column)
    weighted = sum(r["weight"] * loss[r["problem_id"]] for r in col) / len(col)  # sum_i w_i L_i / batch, mean w = 1
    plain = np.mean([loss[r["problem_id"]] for r in _rows(copies)])
    kept = {pid: w for pid, w in weights.items() if w > 0}
    # Each count is off its share by < 1 row: the averages differ by at most (problems * max loss) / N.
    bound = len(kept) * max(loss.values()) / n
    assert abs(weighted - plain) <= bound, (weighted, plain, bound)
    exact = sum(w * loss[pid] for pid, w in kept.items()) / sum(kept.values())
    assert weighted == pytest.approx(exact)
    references = {r["reference"] for r in _rows(copies)}
    assert any(ref.endswith("#1") for ref in references)  # copies cycle through a problem's references


def test_copies_in_trl_format_have_no_weight_column(tmp_path):
    problems, weights_file, weights = _copies_inputs(tmp_path)
    refs = make_references(tmp_path, {pid: ["correct"] for pid in weights})
    _export(tmp_path, problems, weights_file, references=str(refs), format="trl", weights_as="copies")
    assert pq.read_schema(tmp_path / "out" / "train" / "part-00000.parquet").names == ["prompt", "completion", "problem_id"]


# --- the prompt as rolled out ---------------------------------------------------------------

RECORDS = [
    # record, chat problems?, expected trl/verl prompt of q04, reason
    (
        {"template": "Q: {prompt}\nBox it.", "system_prompt": "Be brief.", "chat_template": "auto", "chat": "on"},
        False,
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q: What is 4 + 4?\nBox it."}],
        "chat template applied: system prompt and filled template as turns",
    ),
    (
        {"template": "Q: {prompt}\nBox it.", "system_prompt": "Be brief.", "chat_template": "off", "chat": "off"},
        False,
        "Be brief.\n\nQ: What is 4 + 4?\nBox it.",
        "no chat template: the plain text the model saw",
    ),
    (
        {"template": "{prompt}", "system_prompt": None, "chat_template": "auto", "chat": "on"},
        True,
        [{"role": "system", "content": "Box the answer."}, {"role": "user", "content": "What is 4 + 4?"}],
        "a chat problem keeps its own turns",
    ),
    (
        {"template": "{prompt} (box it)", "system_prompt": None, "chat_template": "auto", "chat": "messages"},
        False,
        "What is 4 + 4? (box it)",
        "served without a local tokenizer: a problem without messages went as text",
    ),
]


def _weights_with_record(tmp_path: Path, n: int, record: dict) -> Path:
    path = tmp_path / "weights_record.parquet"
    provenance = {"settings": {"kernel": "beta"}, "prompt_format": record}
    write_table(build_table(weight_rows({f"q{i:02d}": 1.0 for i in range(n)}), WEIGHTS), str(path), WEIGHTS, provenance=provenance)
    return path


@pytest.mark.parametrize(("record", "chat", "expected", "reason"), RECORDS, ids=[r[3] for r in RECORDS])
def test_trl_and_verl_carry_the_prompt_exactly_as_rolled_out(tmp_path, record, chat, expected, reason):
    problems = write_jsonl(tmp_path / "problems.jsonl", problem_rows(6, chat=chat))
    weights = _weights_with_record(tmp_path, 6, record)
    refs = make_references(tmp_path, {f"q{i:02d}": ["correct"] for i in range(6)})
    _export(tmp_path, problems, weights, name="trl", references=str(refs), format="trl")
    _export(tmp_path, problems, weights, name="verl", format="verl", data_source="openai/gsm8k")
    trl_row = next(r for r in _rows(tmp_path / "trl") if r["problem_id"] == "q04")
    verl_row = next(r for r in _rows(tmp_path / "verl") if r["extra_info"]["problem_id"] == "q04")
    assert trl_row["prompt"] == expected, reason
    assert verl_row["prompt"] == (expected if isinstance(expected, list) else [{"role": "user", "content": expected}]), reason
    assert verl_row["data_source"] == "openai/gsm8k" and verl_row["reward_model"]["ground_truth"] == "8"
    if isinstance(expected, list):
        assert trl_row["completion"] == [{"role": "assistant", "content": "q04#0"}]  # TRL's conversational format
    manifest = json.loads((tmp_path / "trl.paced" / "manifest.json").read_text())
    assert manifest["prompt_format"] == record
    card = (tmp_path / "trl.paced" / "README.md").read_text()
    assert f"as the record `paced rollout` wrote when it prompted the student (carried by grade and weight): template {record['template']!r}" in card


# --- one file, and every reader ---------------------------------------------------------------

def test_o_name_parquet_writes_one_file_and_refuses_a_val_split(tmp_path, cli):
    problems, weights = make_inputs(tmp_path)
    result = cli("export", problems, weights, "-o", tmp_path / "data.parquet", "--rows-per-shard", "2")
    assert result.exit_code == 0, result.output
    assert pq.read_table(tmp_path / "data.parquet").num_rows == 9
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("data")) == ["data.parquet", "data.parquet.paced"]
    assert read_export(tmp_path / "data.parquet").num_rows == 9
    refused = cli("export", problems, weights, "-o", tmp_path / "d2.parquet", "--val-fraction", "0.2")
    assert refused.exit_code == 2 and "writes one file, so it cannot hold a val split" in refused.stderr


def test_the_export_folder_opens_as_it_is_in_every_reader(tmp_path):
    import datasets
    import duckdb
    import pandas as pd
    import polars as pl
    import pyarrow.dataset as ds

    problems, weights = make_inputs(tmp_path, n=30)
    _export(tmp_path, problems, weights, rows_per_shard=7, val_fraction=0.2)
    train = tmp_path / "out" / "train"
    want = sorted(read_export(tmp_path / "out").column("problem_id").to_pylist())
    assert sorted(pl.read_parquet(train).get_column("problem_id").to_list()) == want
    assert sorted(pd.read_parquet(train)["problem_id"]) == want
    assert sorted(ds.dataset(train, format="parquet").to_table().column("problem_id").to_pylist()) == want
    assert sorted(r[0] for r in duckdb.sql(f"select problem_id from read_parquet('{train}/*.parquet')").fetchall()) == want
    datasets.disable_progress_bars()
    loaded = datasets.load_dataset("parquet", data_dir=str(tmp_path / "out"), cache_dir=str(tmp_path / "cache"))
    assert set(loaded) == {"train", "validation"} and sorted(loaded["train"]["problem_id"]) == want
    whole = pl.read_parquet(tmp_path / "out" / "**" / "*.parquet")
    assert whole.height == 29  # train and val together (q00 has weight 0)
