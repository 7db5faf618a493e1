"""#24: `paced export --format llamafactory`: LLaMA-Factory's v1 data format with a float loss_weight per turn.

LLaMA-Factory (0.9.5, the release with `llamafactory.v1`) does not install beside this paced: it
pins transformers <= 5.6.0 and datasets <= 4.0.0 (`pip install --dry-run llamafactory` would
replace both). So these tests check the export against the fields its v1 loader reads, loading
the data the way its local loader does (`plugins/data_plugins/loader.py`: the builder named by
the extension of the folder's first file, `datasets.load_dataset(builder, data_dir=..., split=...)`),
and reading the per-turn weight the way its renderer does (`core/utils/rendering.py`:
`message.get("loss_weight", 1.0 if assistant else 0.0)`, content items of type "text").
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from paced_curate.export import read_export
from tests.conftest import assert_user_error
from tests.test_export import make_inputs, make_references
from tests.test_export_weighting import _weights_with_record

ROLES = {"system", "user", "assistant", "tool"}


def load_like_llamafactory(entry: dict):
    """What LLaMA-Factory v1's `DataLoaderPlugin("local")` returns for one dataset_info entry."""
    import datasets

    path, split = entry["path"], entry.get("split", "train")
    if os.path.isdir(path):
        builder = os.path.splitext(os.listdir(path)[0])[-1][1:]
        return datasets.load_dataset(builder, data_dir=path, split=split)
    return datasets.load_dataset(os.path.splitext(path)[-1][1:], data_files=path, split=split)


def turn_weights(sample: dict) -> list[float]:
    """Each turn's loss weight as LLaMA-Factory's renderer takes it; every content item must be text."""
    weights = []
    for message in sample["messages"]:
        assert message["role"] in ROLES, message
        assert all(item["type"] == "text" and isinstance(item["value"], str) for item in message["content"]), message
        weights.append(message.get("loss_weight", 1.0 if message["role"] == "assistant" else 0.0))
    return weights


def _export(cli, tmp_path: Path, *flags, output: str = "data"):
    problems, weights = make_inputs(tmp_path, n=10)
    refs = make_references(tmp_path, {f"q{i:02d}": ["correct", "correct"] for i in range(10)})
    common = [problems, weights, "--references", refs]
    native = cli("export", *common, "-o", tmp_path / "native", *flags)
    result = cli("export", *common, "-o", tmp_path / output, "--format", "llamafactory", *flags)
    assert native.exit_code == 0 and result.exit_code == 0, result.output
    return result


def test_rows_carry_the_prompt_turns_at_weight_0_and_the_reference_at_the_row_weight(tmp_path, cli):
    _export(cli, tmp_path, "--val-fraction", "0.2", "--refs-per-problem", "2")
    info = yaml.safe_load((tmp_path / "data.paced" / "dataset_info.yaml").read_text())
    assert info == {"paced_train": {"path": str((tmp_path / "data" / "train").resolve()), "source": "local", "split": "train"}}
    val_info = yaml.safe_load((tmp_path / "data.paced" / "dataset_info_val.yaml").read_text())
    assert val_info["paced_val"]["path"] == str((tmp_path / "data" / "val").resolve())
    for split in ("train", "val"):
        entry = (info if split == "train" else val_info)[f"paced_{split}"]
        rows = list(load_like_llamafactory(entry))
        native = read_export(tmp_path / "native", split=split).to_pylist()
        assert len(rows) == len(native) > 0
        # The same rows in the same order: the native export's weight on the assistant turn, 0 on the prompt.
        for row, expected in zip(rows, native):
            assert row["problem_id"] == expected["problem_id"]
            weights = turn_weights(row)
            assert weights[:-1] == [0.0] * (len(weights) - 1) and weights[-1] == pytest.approx(expected["weight"])
            assert row["messages"][-1]["role"] == "assistant"
            assert row["messages"][-1]["content"][0]["value"] == expected["reference"]
            assert row["messages"][-2] == {"role": "user", "content": [{"type": "text", "value": expected["prompt"]}], "loss_weight": 0.0}
    manifest = json.loads((tmp_path / "data.paced" / "manifest.json").read_text())
    assert manifest["llamafactory"] == ["dataset_info.yaml", "dataset_info_val.yaml"]


def test_one_file_output_names_the_file(tmp_path, cli):
    _export(cli, tmp_path, output="data.parquet")
    info = yaml.safe_load((tmp_path / "data.parquet.paced" / "dataset_info.yaml").read_text())
    assert info["paced_train"]["path"] == str((tmp_path / "data.parquet").resolve())
    assert not (tmp_path / "data.parquet.paced" / "dataset_info_val.yaml").exists()
    rows = list(load_like_llamafactory(info["paced_train"]))
    assert sorted(turn_weights(r)[-1] for r in rows) == pytest.approx(sorted(r["weight"] for r in read_export(tmp_path / "native").to_pylist()))


def test_weighted_copies_put_loss_weight_1_everywhere_the_reference_is(tmp_path, cli):
    _export(cli, tmp_path, "--weights-as", "copies", "--copies", "40")
    info = yaml.safe_load((tmp_path / "data.paced" / "dataset_info.yaml").read_text())
    rows = list(load_like_llamafactory(info["paced_train"]))
    assert len(rows) == 40
    assert {turn_weights(r)[-1] for r in rows} == {1.0}
    counts = {}
    for row in rows:
        counts[row["problem_id"]] = counts.get(row["problem_id"], 0) + 1
    assert counts["q09"] > counts["q01"]  # weights (i + 1) / 7: q09 gets about 5 times q01's copies
    card = (tmp_path / "data.paced" / "README.md").read_text()
    assert "Weighted copies" in card and "`dataset_info.yaml`" in card


def test_the_card_says_how_llamafactory_normalises_and_how_it_was_checked(tmp_path, cli):
    _export(cli, tmp_path)
    card = (tmp_path / "data.paced" / "README.md").read_text()
    assert "`sum(w_t * nll_t) / sum(w_t)` over the tokens of a micro-batch" in card
    assert "with `micro_batch_size: 1` the weight cancels out entirely" in card
    assert "`--weights-as copies`" in card and "`dataset_info.yaml`" in card
    assert "LLaMA-Factory itself is not installed beside this paced" in card
    assert "`messages` (list of {role, content: [{type, value}], loss_weight})" in card


def test_needs_references_and_inspect_reads_the_loss_weights(tmp_path, cli):
    problems, weights = make_inputs(tmp_path, n=4)
    assert_user_error(cli("export", problems, weights, "-o", tmp_path / "d", "--format", "llamafactory"),
                      "--format llamafactory needs --references (teacher rollouts graded with 'paced grade') to fill the completion")
    _export(cli, tmp_path)
    report = json.loads(cli("inspect", tmp_path / "data", "--json").stdout)
    native = json.loads(cli("inspect", tmp_path / "native", "--json").stdout)
    assert report["format"] == "llamafactory" and report["weight_histogram"] == native["weight_histogram"]


def test_a_plain_text_rollout_is_noted_as_differing_from_llamafactorys_chat_rendering(tmp_path, cli):
    problems, _ = make_inputs(tmp_path, n=3)
    weights = _weights_with_record(tmp_path, 3, {"template": "{prompt} =", "system_prompt": None, "chat_template": "off", "chat": "off"})
    refs = make_references(tmp_path, {f"q{i:02d}": ["correct"] for i in range(3)})
    result = cli("export", problems, weights, "--references", refs, "-o", tmp_path / "d", "--format", "llamafactory")
    assert result.exit_code == 0, result.output
    assert "LLaMA-Factory renders every row with its chat template" in result.stderr
    rows = pq.read_table(tmp_path / "d" / "train").to_pylist()
    assert rows[0]["messages"][0]["content"][0]["value"].endswith(" =")
