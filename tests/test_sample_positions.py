"""A message about a sample names its place in the user's file as the reader names it.

`paced grade` refuses an unreadable gold, a repeated (problem_id, sample_index) and two gold
answers for one problem; `paced weight` refuses a repeated graded sample. Each message names
where the offending record is: `FILE line N` (the physical 1-based line) in JSONL and CSV, and
`FILE row N` (0-based, as pyarrow and `schema.conform` number rows) in Parquet and JSON. These
used to be rows of the table after reading: 0-based for a JSONL file, and after a list of
completions became one row per sample, rows the file does not have.

Each format writes the same records with something that moves lines or rows apart: a BOM and
blank lines, lists of completions, a multi-line CSV cell before the record named.
"""

from __future__ import annotations

import codecs
import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import assert_user_error


def jsonl_bom_blank(path: Path, records: list[dict]) -> list[str]:
    """A BOM, a blank line before each record after the first and a line of spaces after it."""
    text, positions, line = "", [], 1
    for index, record in enumerate(records):
        if index:
            text += "\n"
            line += 1
        text += json.dumps(record) + "\n   \n"
        positions.append(f"line {line}")
        line += 2
    path.write_bytes(codecs.BOM_UTF8 + text.encode())
    return positions


def jsonl(path: Path, records: list[dict]) -> list[str]:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return [f"line {i + 1}" for i in range(len(records))]


def csv_multiline(path: Path, records: list[dict]) -> list[str]:
    """A header, and the first record's prompt spread over three lines (a quoted cell).

    The tests name later records only: the reader names a multi-line record by its last line
    (`csv.reader.line_num`), which is not the point here.
    """
    records = [records[0] | {"prompt": "first\nsecond\nthird"}, *records[1:]]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return ["line 4", *(f"line {i + 4}" for i in range(1, len(records)))]


def parquet(path: Path, records: list[dict]) -> list[str]:
    pq.write_table(pa.Table.from_pylist(records), path)
    return [f"row {i}" for i in range(len(records))]


def json_list(path: Path, records: list[dict]) -> list[str]:
    path.write_text(json.dumps(records, indent=2))
    return [f"row {i}" for i in range(len(records))]


def with_lists(write):
    """The same format with each record's completion as a list of three (three samples a record)."""

    def write_lists(path: Path, records: list[dict]) -> list[str]:
        expanded = [{k: v for k, v in r.items() if k != "completion"} | {"generations": [r["completion"]] * 3} for r in records]
        return write(path, expanded)

    return write_lists


# (name, file name, writer, may it carry a sample_index column?)
FORMATS = [
    ("jsonl with a BOM and blank lines", "gen.jsonl", jsonl_bom_blank, True),
    ("jsonl with lists of completions", "gen.jsonl", with_lists(jsonl), False),
    ("jsonl, BOM, blank lines and lists", "gen.ndjson", with_lists(jsonl_bom_blank), False),
    ("csv with a header and a multi-line cell", "gen.csv", csv_multiline, True),
    ("parquet", "gen.parquet", parquet, True),
    ("parquet with lists of completions", "gen.parquet", with_lists(parquet), False),
    ("json list", "gen.json", json_list, True),
]
FORMAT_IDS = [f[0] for f in FORMATS]


def record(problem: str, answer: str, **extra) -> dict:
    return {"id": problem, "prompt": "q", "completion": "\\boxed{5}", "answer": answer, **extra}


@pytest.mark.parametrize("name, filename, write, indexed", FORMATS, ids=FORMAT_IDS)
def test_an_unreadable_gold_names_its_line_or_row(cli, tmp_path, name, filename, write, indexed):
    path = tmp_path / filename
    where = write(path, [record("p0", "5"), record("p1", "6"), record("p2", "$$"), record("p3", "$$")])
    result = cli("grade", path, "-o", tmp_path / "graded", "--workers", "1")
    assert_user_error(result, f"{path} {where[2]}: problem 'p2': gold answer '$$' cannot be read by the math grader;")


@pytest.mark.parametrize("name, filename, write, indexed", FORMATS, ids=FORMAT_IDS)
def test_two_golds_for_one_problem_name_both_lines_or_rows(cli, tmp_path, name, filename, write, indexed):
    path = tmp_path / filename
    where = write(path, [record("b", "7"), record("a", "1"), record("b", "7"), record("a", "2")])
    result = cli("grade", path, "-o", tmp_path / "graded", "--workers", "1")
    assert_user_error(result, f"{path}: problem_id 'a' has different gold answers: '1' ({where[1]}) and '2' ({where[3]});")


INDEXED = [f for f in FORMATS if f[3]]  # a sample_index column beside lists of completions is refused


@pytest.mark.parametrize("name, filename, write, indexed", INDEXED, ids=[f[0] for f in INDEXED])
def test_a_repeated_sample_names_its_lines_or_rows(cli, tmp_path, name, filename, write, indexed):
    path = tmp_path / filename
    records = [record("p", "5", sample_index=0), record("p", "5", sample_index=1), record("q", "5", sample_index=0), record("p", "5", sample_index=1)]
    where = write(path, records)
    result = cli("grade", path, "-o", tmp_path / "graded", "--workers", "1")
    assert_user_error(result, f"{path}: sample (problem_id='p', sample_index=1) appears 2 times ({where[1]}, {where[3]}); each")


@pytest.mark.parametrize("name, filename, write, indexed", INDEXED, ids=[f[0] for f in INDEXED])
def test_a_repeated_graded_sample_names_its_lines_or_rows(cli, tmp_path, name, filename, write, indexed):
    path = tmp_path / filename
    records = [{"id": i, "sample_index": 0, "correct": c} for i, c in (("r", 1), ("p", 1), ("q", 0), ("p", 0))]
    where = write(path, [r | {"prompt": "q"} for r in records])
    result = cli("weight", path, "-o", tmp_path / "w.parquet")
    assert_user_error(result, f"{path}: sample (problem_id='p', sample_index=0) appears 2 times ({where[1]}, {where[3]}); each")
