"""The one reader's own cases (#24, #26): byte-order marks, pandas index columns, typed CSV, and
a file whose contents do not match its name, named the same way by every command."""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from paced_curate.errors import InputError, SchemaError
from paced_curate.problems import read_problems
from paced_curate.schema import GRADES, WEIGHTS, build_table
from paced_curate.tables import read_columns, read_stage_table
from tests.conftest import assert_user_error, write_jsonl
from tests.test_schema import GRADE_ROW, WEIGHT_ROW

ROWS = [{"id": f"q{i}", "prompt": f"{i}+{i}=", "answer": str(2 * i), "level": "easy"} for i in range(4)]


# --- a UTF-8 byte-order mark (Excel's "CSV UTF-8", PowerShell's Out-File) is accepted -----------------

BOM_FILES = [
    ("p.jsonl", "".join(json.dumps(r) + "\n" for r in ROWS), "JSON lines"),
    ("p.json", json.dumps(ROWS), "JSON"),
    ("p.csv", "id,prompt,answer,level\r\n" + "".join(f"{r['id']},{r['prompt']},{r['answer']},{r['level']}\r\n" for r in ROWS), "CSV from Excel"),
]


@pytest.mark.parametrize("name, text, reason", BOM_FILES, ids=[c[0] for c in BOM_FILES])
def test_a_utf8_byte_order_mark_is_accepted(tmp_path, cli, name, text, reason):
    plain, marked = tmp_path / name, tmp_path / f"bom_{name}"
    plain.write_text(text)
    marked.write_bytes(codecs.BOM_UTF8 + text.encode())
    assert read_problems(str(marked)).to_pylist() == read_problems(str(plain)).to_pylist(), reason
    assert read_problems(str(marked)).column("problem_id").to_pylist() == ["q0", "q1", "q2", "q3"]  # not '\ufeffid'
    result = cli("inspect", marked, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["rows"] == 4, result.output


def test_utf16_text_is_named(tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes(codecs.BOM_UTF16_LE + "id,prompt,answer\n".encode("utf-16-le"))
    with pytest.raises(InputError, match=r"p.csv: is UTF-16 text; save it as UTF-8$"):
        read_problems(str(path))


# --- pandas index columns are dropped, with a note, and reach no output --------------------------------


def _frame() -> pd.DataFrame:
    # Rows picked out of order: pandas keeps the old labels, a non-range index it writes as a column.
    return pd.DataFrame(ROWS).iloc[[2, 0, 3]]


INDEX_WRITERS = [
    # (how the file was made, writer, the column pandas wrote)
    ("to_parquet after reordering", lambda df, d: df.to_parquet(d / "p.parquet") or d / "p.parquet", "'__index_level_0__'"),
    ("to_parquet with a two-level index", lambda df, d: df.set_index([pd.Index([5, 3, 9]), pd.Index([1, 1, 2])]).to_parquet(d / "m.parquet") or d / "m.parquet", "'__index_level_0__', '__index_level_1__'"),
    ("to_csv with its default index=True", lambda df, d: df.to_csv(d / "p.csv") or d / "p.csv", "''"),
    ("to_csv of a CSV read back", lambda df, d: (df.to_csv(d / "a.csv"), pd.read_csv(d / "a.csv").to_csv(d / "b.csv"))[1] or d / "b.csv", "'', 'Unnamed: 0'"),
    ("datasets.Dataset.from_pandas, save_to_disk", lambda df, d: _hf(df, d / "hf"), "'__index_level_0__'"),
]


def _hf(df: pd.DataFrame, path: Path) -> Path:
    import datasets

    datasets.Dataset.from_pandas(df).save_to_disk(str(path))
    return path


@pytest.mark.parametrize("how, writer, dropped", INDEX_WRITERS, ids=[c[0] for c in INDEX_WRITERS])
def test_pandas_index_columns_are_dropped_with_a_note(tmp_path, capsys, how, writer, dropped):
    path = writer(_frame(), tmp_path)
    table = read_problems(str(path))
    assert not [c for c in table.column_names if c.startswith("__index_level") or c.startswith("Unnamed") or c == ""], (how, table.column_names)
    assert table.column("answer").to_pylist() == ["4", "0", "6"], how
    note = capsys.readouterr().err
    assert f"NOTE: {path}: dropped column" in note and f"{dropped} (a pandas index, not data)" in note, note


def test_a_named_index_is_data_and_kept(tmp_path):
    path = tmp_path / "p.parquet"
    pd.DataFrame(ROWS).set_index("id").to_parquet(path)  # the index has a name: pandas writes a real `id` column
    assert read_problems(str(path)).column("problem_id").to_pylist() == ["q0", "q1", "q2", "q3"]


def test_issue_26_index_column_reaches_no_output(tmp_path, cli):
    """grade and export pass a table's other columns through: a pandas index must not be one of them."""
    from tests.test_export import make_inputs, make_references

    problems, weights = make_inputs(tmp_path, n=4)
    frame = pd.read_json(problems, lines=True).iloc[[3, 1, 2, 0]]
    frame.to_parquet(tmp_path / "pandas.parquet")
    assert "__index_level_0__" in pq.read_schema(tmp_path / "pandas.parquet").names
    refs = make_references(tmp_path, {f"q{i:02d}": ["correct"] for i in range(4)})
    result = cli("export", tmp_path / "pandas.parquet", weights, "--references", refs, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "__index_level_0__" not in pq.read_table(tmp_path / "out" / "train").column_names
    generations = pd.DataFrame([{"id": f"q{i}", "completion": "\\boxed{1}", "answer": "1"} for i in range(3)]).iloc[[2, 0, 1]]
    generations.to_csv(tmp_path / "gen.csv")
    result = cli("grade", tmp_path / "gen.csv", "-o", tmp_path / "g.parquet", "--workers", "1")
    assert result.exit_code == 0, result.output
    assert [c for c in pq.read_table(tmp_path / "g.parquet").column_names if c in ("", "Unnamed: 0")] == []


# --- CSV cells are parsed as the stage's schema declares -------------------------------------------


def test_csv_stage_tables_are_typed_by_the_schema(tmp_path):
    weights = build_table([WEIGHT_ROW | {"problem_id": "a", "pass_rate": None}, WEIGHT_ROW | {"problem_id": "b"}], WEIGHTS)
    pd.DataFrame(weights.to_pylist()).to_csv(tmp_path / "w.csv", index=False)
    table = read_stage_table(str(tmp_path / "w.csv"), WEIGHTS)
    assert table.to_pylist() == weights.to_pylist()  # '' -> null pass rate, '8' -> 8, '0.5' -> 0.5
    grades = build_table([GRADE_ROW | {"error": None, "scored": False}], GRADES)
    pd.DataFrame(grades.to_pylist()).to_csv(tmp_path / "g.csv", index=False)
    assert read_stage_table(str(tmp_path / "g.csv"), GRADES).to_pylist() == grades.to_pylist()  # 'False' -> False, '' -> null


BAD_CELLS = [
    ("n_samples is text", {"n_samples": "eight"}, "line 2: column 'n_samples' is 'eight', expected a whole number"),
    ("n_samples is a fraction", {"n_samples": "8.5"}, "line 2: column 'n_samples' is '8.5', expected a whole number"),
    ("weight is text", {"weight": "high"}, "line 2: column 'weight' is 'high', expected a number"),
    ("required weight is empty", {"weight": ""}, "line 2: column 'weight' is null"),
]


@pytest.mark.parametrize("name, change, expected", BAD_CELLS, ids=[c[0] for c in BAD_CELLS])
def test_bad_csv_cells_name_line_and_column(tmp_path, name, change, expected):
    row = {k: "" if v is None else v for k, v in (WEIGHT_ROW | change).items()}
    pd.DataFrame([row]).to_csv(tmp_path / "w.csv", index=False)
    with pytest.raises((InputError, SchemaError)) as caught:
        read_stage_table(str(tmp_path / "w.csv"), WEIGHTS)
    assert str(caught.value) == f"{tmp_path / 'w.csv'} {expected}", name


# --- a file whose contents do not match its name: what it holds, what to name it, never a contradiction ---

def _parquet_bytes(tmp_path) -> bytes:
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "real.parquet")
    return (tmp_path / "real.parquet").read_bytes()


MISNAMED = [
    # (file name, what it holds, expected message after the path)
    ("teacher.jsonl", "parquet", ": is not a JSON lines file: it holds Parquet; name it .parquet"),
    ("data.csv", "parquet", ": is not a CSV file: it holds Parquet; name it .parquet"),
    ("data.json", "parquet", ": is not a JSON file: it holds Parquet; name it .parquet"),
    ("data.parquet", "jsonl", ": is not a Parquet file: it holds JSON lines; name it .jsonl"),
    ("data.parquet", "csv", ": is not a Parquet file: it holds text (CSV?); name it .csv"),
    ("data.arrow", "jsonl", ": is not an Arrow IPC file: it holds JSON lines; name it .jsonl"),
    ("data.json", "jsonl", ": is not a JSON file: it holds JSON lines; name it .jsonl"),
    ("data.parquet", "arrow", ": is not a Parquet file: it holds Arrow IPC; name it .arrow"),
    ("data.txt", "jsonl", ": unknown file type '.txt': it holds JSON lines; name it .jsonl"),
    ("data", "parquet", ": unknown file type '(no extension)': it holds Parquet; name it .parquet"),
    ("data.jsonl", "json array", " line 1: expected a JSON object, got list (a JSON list of objects: name the file .json)"),
]


def _content(kind: str, tmp_path) -> bytes:
    if kind == "parquet":
        return _parquet_bytes(tmp_path)
    if kind == "jsonl":
        return "".join(json.dumps(r) + "\n" for r in ROWS).encode()
    if kind == "json array":
        return json.dumps(ROWS).encode()
    if kind == "arrow":
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, pa.Table.from_pylist(ROWS).schema) as writer:
            writer.write_table(pa.Table.from_pylist(ROWS))
        return sink.getvalue().to_pybytes()
    return b"id,prompt,answer\nq0,1+1,2\n"


@pytest.mark.parametrize("name, kind, expected", MISNAMED, ids=[f"{c[0]} holding {c[1]}" for c in MISNAMED])
def test_a_misnamed_file_says_what_it_holds_and_never_contradicts_its_name(tmp_path, name, kind, expected):
    path = tmp_path / name
    path.write_bytes(_content(kind, tmp_path))
    with pytest.raises(InputError) as caught:
        read_columns(str(path))
    assert str(caught.value) == f"{path}{expected}"
    suffix = Path(name).suffix
    if suffix:
        assert not re.search(rf"name (it|the file) {re.escape(suffix)}\b", str(caught.value)), "the advice names the file's own extension"


def test_issue_24_export_references_named_jsonl_is_read(tmp_path, cli):
    """`paced export problems.jsonl weights.parquet --references teacher.jsonl` failed with 'is not a Parquet file:
    it holds JSON lines; name it .jsonl' although the file was named .jsonl."""
    from tests.test_export import make_inputs

    problems, weights = make_inputs(tmp_path, n=3)
    rows = [GRADE_ROW | {"problem_id": f"q{i:02d}", "completion": f"ref {i}"} for i in range(3)]
    write_jsonl(tmp_path / "teacher.jsonl", rows)
    result = cli("export", problems, weights, "-o", tmp_path / "data", "--references", tmp_path / "teacher.jsonl", "--keep-zero")
    assert result.exit_code == 0, result.output
    assert sorted(pq.read_table(tmp_path / "data" / "train").column("reference").to_pylist()) == ["ref 0", "ref 1", "ref 2"]


def test_every_command_names_a_misnamed_file_the_same_way(tmp_path, cli, tiny_model):
    from tests.test_export import make_inputs

    problems, weights = make_inputs(tmp_path, n=3)
    bad = tmp_path / "table.jsonl"
    bad.write_bytes(_parquet_bytes(tmp_path))
    expected = f"{bad}: is not a JSON lines file: it holds Parquet; name it .parquet"
    commands = [
        ["rollout", bad, "--model", tiny_model, "--engine", "hf", "-o", tmp_path / "r"],
        ["estimate", bad, "--model", tiny_model, "--engine", "hf", "-o", tmp_path / "e"],
        ["grade", bad, "-o", tmp_path / "g", "--workers", "1"],
        ["grade", problems, "--problems", bad, "-o", tmp_path / "g2", "--workers", "1", "--id-field", "id", "--completion-field", "question"],
        ["weight", bad, "-o", tmp_path / "w.parquet"],
        ["export", bad, weights, "-o", tmp_path / "d1"],
        ["export", problems, bad, "-o", tmp_path / "d2"],
        ["export", problems, weights, "--references", bad, "-o", tmp_path / "d3"],
        ["distill", bad, "--student", tiny_model, "--teacher", tiny_model, "-o", tmp_path / "run"],
        ["inspect", bad],
    ]
    for command in commands:
        assert_user_error(cli(*command), expected)
