"""Problem readers: every format gives the same table; every bad input gives a one-line error."""

from __future__ import annotations

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from paced_curate.errors import InputError
from paced_curate.problems import FieldMap, read_problems
from tests.conftest import assert_user_error, write_jsonl

ROWS = [
    {"id": "a", "problem": "1 + 1 = ?", "answer": "2", "source": "toy"},
    {"id": "b", "problem": "2 + 5 = ?", "answer": "7", "source": "toy"},
    {"id": "c", "problem": "Simplify 2/4.", "answer": "\\frac{1}{2}", "source": "math"},
]


def _expected_columns(table: pa.Table) -> dict:
    return {name: table.column(name).to_pylist() for name in ("problem_id", "prompt", "answer", "source")}


@pytest.fixture
def every_format(tmp_path):
    """The same three problems as JSONL, JSON, CSV, Parquet and a saved HF dataset."""
    import datasets

    paths = {"jsonl": write_jsonl(tmp_path / "p.jsonl", ROWS)}
    paths["json"] = tmp_path / "p.json"
    paths["json"].write_text(json.dumps(ROWS))
    paths["csv"] = tmp_path / "p.csv"
    with open(paths["csv"], "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(ROWS[0]))
        writer.writeheader()
        writer.writerows(ROWS)
    paths["parquet"] = tmp_path / "p.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), paths["parquet"])
    paths["hf"] = tmp_path / "hf"
    datasets.Dataset.from_list(ROWS).save_to_disk(str(paths["hf"]))
    paths["hf_dict"] = tmp_path / "hf_dict"
    datasets.DatasetDict({"test": datasets.Dataset.from_list(ROWS)}).save_to_disk(str(paths["hf_dict"]))
    paths["data_folder"] = tmp_path / "folder"
    paths["data_folder"].mkdir()
    write_jsonl(paths["data_folder"] / "train.jsonl", ROWS)
    return paths


def test_every_format_reads_to_the_same_table(every_format):
    tables = {name: read_problems(str(path)) for name, path in every_format.items()}
    expected = {
        "problem_id": ["a", "b", "c"],
        "prompt": [r["problem"] for r in ROWS],
        "answer": ["2", "7", "\\frac{1}{2}"],
        "source": ["toy", "toy", "math"],
    }
    for name, table in tables.items():
        assert _expected_columns(table) == expected, name
        assert table.schema.field("problem_id").type == pa.string(), name


def test_field_flags_pick_columns_and_numbers_become_strings(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"key": 7, "q": "x?", "gold": 12}, {"key": 8, "q": "y?", "gold": 0.5}])
    table = read_problems(str(path), FieldMap(id_field="key", prompt_field="q", answer_field="gold"))
    assert table.column("problem_id").to_pylist() == ["7", "8"]
    assert table.column("answer").to_pylist() == ["12", "0.5"]
    assert "key" not in table.column_names and "q" not in table.column_names


def test_missing_ids_are_a_stable_content_hash(tmp_path):
    rows = [{"prompt": "1+1", "answer": "2"}, {"prompt": "1+2", "answer": "3"}]
    first = read_problems(str(write_jsonl(tmp_path / "a.jsonl", rows))).column("problem_id").to_pylist()
    again = read_problems(str(write_jsonl(tmp_path / "b.jsonl", rows[::-1]))).column("problem_id").to_pylist()
    assert first == again[::-1]
    assert len(set(first)) == 2 and all(pid.startswith("p") and len(pid) == 17 for pid in first)


def test_chat_prompts_become_messages(tmp_path):
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]
    table = read_problems(str(write_jsonl(tmp_path / "p.jsonl", [{"id": "x", "messages": chat, "answer": "4"}])))
    assert table.column("messages").to_pylist() == [chat]
    assert table.column("prompt").to_pylist() == ["2+2?"]


def test_split_is_required_only_when_ambiguous(tmp_path):
    import datasets

    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(ROWS), "test": datasets.Dataset.from_list(ROWS[:1])}
    ).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(InputError, match=r"choose a split with --split \(train, test\)"):
        read_problems(str(tmp_path / "dd"))
    assert read_problems(str(tmp_path / "dd"), FieldMap(split="test")).num_rows == 1


BAD_INPUTS = [
    # (file name, bytes, expected message part) -- each a real mistake users make.
    ("empty.jsonl", b"", "empty.jsonl: is empty"),
    ("blank.jsonl", b"\n\n  \n", "blank.jsonl: is empty"),
    ("malformed.jsonl", b'{"id": "a", "prompt": "x", "answer": "1"}\n{"id": "b", "prompt": "y" "answer": "2"}\n', "malformed.jsonl line 2, column 27: malformed JSON: Expecting ',' delimiter"),
    ("notobject.jsonl", b'["a", "b"]\n', "notobject.jsonl line 1: expected a JSON object, got list"),
    ("noanswer.jsonl", b'{"id": "a", "prompt": "x"}\n', "noanswer.jsonl: found none of answer, gold, final_answer, ground_truth, expected_answer, target; name the column with --answer-field"),
    ("nullanswer.jsonl", b'{"id": "a", "prompt": "x", "answer": "1"}\n{"id": "b", "prompt": "y", "answer": null}\n', "nullanswer.jsonl line 2: column 'answer' (the gold answer) is null"),
    ("wrongtype.jsonl", b'{"id": "a", "prompt": "x", "answer": {"value": 1}}\n', "wrongtype.jsonl line 1: column 'answer' (the gold answer) is a dict, expected text or a number"),
    ("promptnumber.jsonl", b'{"id": "a", "prompt": 5, "answer": "1"}\n', "promptnumber.jsonl line 1: the prompt is an int, expected text or chat messages"),
    ("mixed.jsonl", b'{"id": "a", "prompt": "x", "answer": "1", "level": 1}\n{"id": "b", "prompt": "y", "answer": "2", "level": "hard"}\n', "mixed.jsonl: column 'level' mixes value types (int at line 1, str at line 2)"),
    ("dupes.jsonl", b'{"id": "a", "prompt": "x", "answer": "1"}\n{"id": "a", "prompt": "y", "answer": "2"}\n', "dupes.jsonl: duplicate problem ids: 'a' at line 1, line 2"),
    ("latin1.jsonl", b'{"id": "a", "prompt": "caf\xe9", "answer": "1"}\n', "latin1.jsonl line 1, column 27: not valid UTF-8 (byte 0xe9)"),
    ("short.csv", b"id,prompt,answer\na,x,1\nb,y,2,extra\n", "short.csv line 3: has more fields than the header"),
    ("problems.txt", b"hello\n", "problems.txt: unknown file type '.txt'; paced reads .jsonl, .json, .csv, .parquet, .arrow"),
    ("list.json", b'{"a": 1}', "list.json: expected a list of records (or an object holding exactly one list)"),
]


@pytest.mark.parametrize("name,content,expected", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_problem_files_give_one_line_and_exit_2(tmp_path, cli, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        read_problems(str(path))
    assert str(caught.value).startswith(str(tmp_path)), str(caught.value)
    assert expected in str(caught.value)
    assert_user_error(cli("inspect", path), expected)


def test_missing_mapped_column_names_flag_and_columns(tmp_path, cli):
    path = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "x", "answer": "1"}])
    with pytest.raises(InputError, match=r"has no column 'question' \(--prompt-field\); columns: id, prompt, answer"):
        read_problems(str(path), FieldMap(prompt_field="question"))


def test_parquet_cut_off_mid_write_is_a_clear_error(tmp_path, cli):
    whole = tmp_path / "whole.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS * 50), whole)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert_user_error(cli("inspect", cut), "cut.parquet: not a readable Parquet file (cut off mid-write?)")
