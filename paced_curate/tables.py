"""One reader for every table a command takes, from the same formats, with the same errors.

Problem sets (rollout, estimate, export, grade --problems, distill --eval), generations (grade),
graded samples (weight, export --references), weights (export) and export rows (distill,
inspect) are all read here:

    .jsonl / .ndjson    one JSON object per line
    .json               a list of objects, or an object holding exactly one list
    .csv                a header row, then one row per record (every value is text)
    .parquet            one Parquet file
    .arrow / .feather   one Arrow IPC file or stream
    FOLDER/             Parquet files only (a paced output: its manifest and shard folders are
                        honoured; or any other folder of them), or a local Hugging Face dataset
                        (`datasets.save_to_disk`, or data files that `load_dataset` reads)
    -                   an Arrow IPC stream on stdin (what `paced ... -o -` writes)

Text files may start with a UTF-8 byte-order mark (Excel and PowerShell write one). Columns that
only hold a pandas index (`__index_level_0__`, `Unnamed: 0`, a CSV column with an empty header)
are dropped with a note: they number the rows of an earlier DataFrame and are not data. A file
whose contents do not match its name is refused, naming what it holds and what to call it.

    raw = read_columns("math.csv")                         # the columns as they are
    table = read_stage_table("weights.jsonl", WEIGHTS)     # a stage table, typed and validated
"""

from __future__ import annotations

import codecs
import csv
import io as stdio
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from paced_curate.errors import InputError
from paced_curate.io import (
    MANIFEST,
    STDIO,
    read_ipc_stdin,
    read_manifest,
    read_parquet,
    read_table,
    refuse_folder_that_is_not_a_table,
    sniff_format,
)
from paced_curate.schema import SPECS, TableSpec, conform, read_metadata, row_name

SUFFIX_KINDS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".arrow": "arrow",
    ".feather": "arrow",
}
KIND_NAMES = {"jsonl": "JSON lines", "json": "JSON", "csv": "CSV", "parquet": "Parquet", "arrow": "Arrow IPC"}
KIND_SUFFIX = {"jsonl": ".jsonl", "json": ".json", "csv": ".csv", "parquet": ".parquet", "arrow": ".arrow"}
BINARY_KINDS = ("parquet", "arrow")
SUPPORTED = ".jsonl, .json, .csv, .parquet, .arrow, a Parquet or Hugging Face dataset folder, or - (Arrow on stdin)"
INDEX_COLUMN = re.compile(r"^(__index_level_\d+__|Unnamed: \d+|)$")
"""Names pandas gives its index when it writes one: Parquet/Arrow, a re-read CSV, a CSV header cell left empty."""


@dataclass
class Columns:
    """Input columns: Python values for text files (so 12 stays "12", not "12.0"), Arrow for tables."""

    data: dict[str, list | pa.ChunkedArray]
    num_rows: int
    lines: list[int] | None = None
    """Each row's line number, for text files."""
    text_only: bool = False
    """Every value is text (CSV): typed columns are parsed from it by `to_table`."""
    metadata: dict[bytes, bytes] | None = None
    """The schema metadata of an Arrow or Parquet input (a paced stage and provenance), else None."""

    @classmethod
    def from_table(cls, table: pa.Table) -> Columns:
        return cls({name: table.column(name) for name in table.column_names}, table.num_rows, metadata=table.schema.metadata)

    @classmethod
    def from_rows(cls, rows: list[dict], lines: list[int] | None = None, text_only: bool = False) -> Columns:
        names: dict[str, None] = {}
        for row in rows:
            names.update(dict.fromkeys(row))
        return cls({name: [row.get(name) for row in rows] for name in names}, len(rows), lines, text_only)

    def where(self, index: int) -> str:
        """Row `index` as messages name it: its file line in JSONL and CSV ("line 4"), else "row 3" (0-based)."""
        return f"line {self.lines[index]}" if self.lines is not None else row_name(index)

    def values(self, name: str) -> list:
        column = self.data[name]
        return column if isinstance(column, list) else column.to_pylist()

    def arrow(self, name: str, path: str) -> pa.Array | pa.ChunkedArray:
        """A column as Arrow; a column of mixed types is named instead of silently nulled."""
        column = self.data[name]
        if not isinstance(column, list):
            return column
        try:
            return pa.array(column)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            kinds: dict[str, int] = {}
            for index, value in enumerate(column):
                kinds.setdefault(type(value).__name__, index)
            first = [f"{kind} at {self.where(index)}" for kind, index in kinds.items()]
            raise InputError(f"{path}: column '{name}' mixes value types ({', '.join(first[:3])})") from None

    def to_table(self, spec: TableSpec, path: str) -> pa.Table:
        """The columns as an Arrow table; from CSV, the spec's declared columns are parsed from their text.

        Raises:
            InputError: a column mixes value types, or a CSV value is not of its column's type
                (file, line, column).
        """
        declared = {f.name: f for f in spec.fields + spec.optional}
        arrays = {}
        for name in self.data:
            if self.text_only and name in declared:
                arrays[name] = _parse_text(self.values(name), declared[name], path, name, self.where)
            else:
                arrays[name] = self.arrow(name, path)
        return pa.table(arrays, metadata=self.metadata)


# --- where a table comes from ---------------------------------------------------------------------


def shown(path: str) -> str:
    """How an input is named in messages: the path, or "stdin" for `-`."""
    return "stdin" if path == STDIO else path


def read_columns(path: str, split: str | None = None) -> Columns:
    """Read any supported input into columns, without interpreting them (see the module docstring).

    Args:
        path: a file, a folder, or "-" for an Arrow IPC stream on stdin.
        split: the split of a Hugging Face dataset folder that has several.

    Returns:
        The columns, pandas index columns dropped (with a note on stderr).

    Raises:
        InputError: the input is missing, empty, malformed, of an unknown type, or named for
            another format than it holds (the message names file, line and column).
    """
    if path == STDIO:
        return drop_index_columns(Columns.from_table(read_ipc_stdin()), "stdin")
    target = Path(path)
    if not target.exists():
        raise InputError(f"{path}: no such file or directory")
    if target.is_dir():
        refuse_folder_that_is_not_a_table(target)
        files = parquet_folder_files(target)
        if files is not None:
            return drop_index_columns(Columns.from_table(_concat_files(files, target)), path)
        return drop_index_columns(Columns.from_table(_load_hf_dataset(target, split)), path)
    kind = file_kind(target)
    loaders = {"jsonl": _load_jsonl, "json": _load_json, "csv": _load_csv}
    if kind in loaders:
        return drop_index_columns(loaders[kind](target), path)
    if kind == "parquet":
        return drop_index_columns(Columns.from_table(read_parquet(target)), path)
    return drop_index_columns(Columns.from_table(_load_arrow_file(target)), path)


def file_kind(path: Path) -> str:
    """The format a file's name promises (jsonl, json, csv, parquet, arrow), once its contents agree.

    Text in a binary-named file, binary data in a text-named file, and unknown names are refused
    with the format the file holds and the name to give it.

    Raises:
        InputError: one line naming the file, what it holds and what to name it.
    """
    suffix = path.suffix.lower()
    expected = SUFFIX_KINDS.get(suffix)
    with open(path, "rb") as handle:
        if handle.read(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            raise InputError(f"{path}: is UTF-16 text; save it as UTF-8")
    actual = sniff_format(path)
    if actual == "empty":
        raise InputError(f"{path}: is empty")
    if expected is None:
        if actual in KIND_NAMES and actual != "csv":  # sure of the format: name it
            raise InputError(f"{path}: unknown file type {suffix or '(no extension)'!r}: {_holds(actual)}")
        raise InputError(f"{path}: unknown file type {suffix or '(no extension)'!r}; paced reads {SUPPORTED}")
    text_expected = expected not in BINARY_KINDS
    text_actual = actual not in (*BINARY_KINDS, "binary")
    if (expected in BINARY_KINDS and actual != expected) or (text_expected and not text_actual):
        article = "an" if expected == "arrow" else "a"
        raise InputError(f"{path}: is not {article} {KIND_NAMES[expected]} file: {_holds(actual)}")
    return expected


def _holds(kind: str) -> str:
    if kind == "binary":
        return "it holds binary data of no format paced reads"
    if kind == "csv":
        return "it holds text (CSV?); name it .csv"
    return f"it holds {KIND_NAMES[kind]}; name it {KIND_SUFFIX[kind]}"


def paced_stage(path: str) -> str | None:
    """The paced stage recorded in a Parquet input's metadata or manifest, or None (reads no rows)."""
    import pyarrow.parquet as pq

    target = Path(path)
    if target.is_dir():
        manifest = read_manifest(target)
        if manifest is not None and manifest.get("stage"):
            return manifest["stage"]
        files = parquet_folder_files(target, check_complete=False)
        first = files[0] if files else None
    else:
        first = target if target.suffix.lower() == ".parquet" else None
    if first is None:
        return None
    try:
        return read_metadata(pq.read_schema(first)).get("stage")
    except (OSError, pa.ArrowException):
        return None  # the reader names the real problem


def guess_stage(names: list[str]) -> str:
    """The stage table whose required columns a table has (grades before rollouts, export before problems)."""
    for stage in ("grades", "rollouts", "weights", "export"):
        if all(name in names for name in SPECS[stage].field_names()):
            return stage
    return "problems"


def read_stage_table(path: str, spec: TableSpec, split: str | None = None) -> pa.Table:
    """Read a stage table (rollouts, grades, weights, export rows) from any supported input.

    A paced output on disk (Parquet with paced metadata, a part folder, shard folders) is read
    as `io.read_table` reads it: manifests, unfinished outputs and overlapping shards are
    checked. Anything else (JSONL, CSV, a foreign Parquet file, a Hugging Face dataset, a pipe)
    is read by its columns; CSV values are parsed as the schema declares.

    Args:
        path: a file, a folder or "-".
        spec: the stage's `TableSpec`; the table is validated and cast with `schema.conform`.
        split: the split of a Hugging Face dataset folder.

    Raises:
        InputError: the input cannot be read (see `read_columns`) or is an unfinished output.
        SchemaError: it does not match `spec` (missing or mistyped columns, null values, another stage).
    """
    if path != STDIO and Path(path).exists() and paced_stage(path) is not None:
        return read_table(path, spec)
    raw = read_columns(path, split)
    return conform(raw.to_table(spec, shown(path)), spec, shown(path), raw.where)


# --- formats ----------------------------------------------------------------------------------


def parquet_folder_files(directory: Path, check_complete: bool = True) -> list[Path] | None:
    """The Parquet files of a folder that holds only Parquet files (a paced output), else None.

    Raises:
        InputError: the folder is an unfinished paced output (with `check_complete`).
    """
    files = sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith("."))
    # An output written before the extras folder existed keeps its manifest inside.
    files = [p for p in files if p != directory / MANIFEST]
    if not files or any(p.suffix.lower() != ".parquet" for p in files):
        return None
    manifest = read_manifest(directory)
    if check_complete and manifest is not None and not manifest.get("complete", True):
        raise InputError(f"{directory}: is unfinished; rerun the command that wrote it to complete it")
    return files


def _concat_files(files: list[Path], directory: Path) -> pa.Table:
    try:
        return pa.concat_tables([read_parquet(f) for f in files], promote_options="permissive")
    except pa.ArrowInvalid as error:
        raise InputError(f"{directory}: its Parquet files have incompatible columns: {error}") from None


def _load_arrow_file(path: Path) -> pa.Table:
    try:
        with pa.memory_map(str(path)) as source:
            if source.read(6) == b"ARROW1":
                source.seek(0)
                return pa.ipc.open_file(source).read_all()
            source.seek(0)
            return pa.ipc.open_stream(source).read_all()
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(f"{path}: not a readable Arrow IPC file (cut off mid-write?): {error}") from None


def _read_text(path: Path) -> str:
    data = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    if not data.strip():
        raise InputError(f"{path}: is empty")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise InputError(
            f"{path} line {line}, column {column}: not valid UTF-8 (byte 0x{data[error.start]:02x})"
        ) from None


def _load_jsonl(path: Path) -> Columns:
    rows, lines = [], []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"{path} line {number}, column {error.colno}: malformed JSON: {error.msg}") from None
        if not isinstance(row, dict):
            hint = " (a JSON list of objects: name the file .json)" if number == 1 and isinstance(row, list) else ""
            raise InputError(f"{path} line {number}: expected a JSON object, got {type(row).__name__}{hint}")
        rows.append(row)
        lines.append(number)
    return Columns.from_rows(rows, lines)


def _load_json(path: Path) -> Columns:
    text = _read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        if error.msg == "Extra data" and sniff_format(path) == "jsonl":
            raise InputError(f"{path}: is not a JSON file: it holds JSON lines; name it .jsonl") from None
        raise InputError(f"{path} line {error.lineno}, column {error.colno}: malformed JSON: {error.msg}") from None
    if isinstance(data, dict):
        lists = [value for value in data.values() if isinstance(value, list)]
        if len(lists) != 1:
            raise InputError(f"{path}: expected a list of records (or an object holding exactly one list)")
        data = lists[0]
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a list of records, got {type(data).__name__}")
    for index, row in enumerate(data):
        if not isinstance(row, dict):
            raise InputError(f"{path} {row_name(index)}: expected a JSON object, got {type(row).__name__}")
    return Columns.from_rows(data)


def _load_csv(path: Path) -> Columns:
    reader = csv.DictReader(stdio.StringIO(_read_text(path), newline=""))
    if not reader.fieldnames:
        raise InputError(f"{path}: has no header row")
    rows, lines = [], []
    try:
        for row in reader:
            if None in row:
                raise InputError(f"{path} line {reader.line_num}: has more fields than the header")
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as error:
        raise InputError(f"{path} line {reader.line_num}: malformed CSV: {error}") from None
    columns = Columns.from_rows(rows, lines, text_only=True)
    if not rows:  # a header alone still names the columns
        columns.data = {name: [] for name in reader.fieldnames}
    return columns


def _load_hf_dataset(path: Path, split: str | None) -> pa.Table:
    import datasets

    try:
        if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            loaded = datasets.load_from_disk(str(path))
        else:
            loaded = datasets.load_dataset(str(path))
    except Exception as error:  # datasets raises many types for unreadable folders
        raise InputError(f"{path}: not a readable Hugging Face dataset folder: {error}") from None
    if isinstance(loaded, datasets.DatasetDict):
        names = list(loaded)
        if split is None and len(names) == 1:
            split = names[0]
        if split not in loaded:
            raise InputError(f"{path}: choose a split with --split ({', '.join(names)})")
        loaded = loaded[split]
    return loaded.with_format("arrow")[:]


# --- cleaning and typing ------------------------------------------------------------------------


def drop_index_columns(columns: Columns, path: str) -> Columns:
    """Drop the columns that hold a pandas index, saying so on stderr.

    `DataFrame.to_parquet` after a filter writes `__index_level_0__`, `to_csv` writes the index
    under an empty header, and a CSV read back by pandas names it `Unnamed: 0`. Passed through,
    such a column would reach every output; it numbers rows of an earlier DataFrame, not problems.
    """
    dropped = [name for name in columns.data if INDEX_COLUMN.match(name)]
    if not dropped:
        return columns
    from paced_curate.report import say

    names = ", ".join(repr(name) for name in dropped)
    say(f"NOTE: {path}: dropped column{'s' * (len(dropped) > 1)} {names} (a pandas index, not data)")
    columns.data = {name: values for name, values in columns.data.items() if name not in dropped}
    if columns.metadata and b"pandas" in columns.metadata:
        # pandas' own metadata names the index column; without the column it would mislead a reader.
        columns.metadata = {key: value for key, value in columns.metadata.items() if key != b"pandas"}
    return columns


def _parse_text(values: list[str], field: pa.Field, path: str, name: str, where) -> pa.Array:
    """A CSV column parsed as its declared type; an empty cell is null where the column may be null."""
    type_ = field.type
    if pa.types.is_string(type_):
        return pa.array([None if value == "" and field.nullable else value for value in values], type_)
    parsed = []
    for index, value in enumerate(values):
        if value == "":
            parsed.append(None)
            continue
        try:
            parsed.append(_parse_value(value, type_))
        except ValueError as error:
            raise InputError(f"{path} {where(index)}: column '{name}' is {value!r}, {error}") from None
    return pa.array(parsed, type_)


def _parse_value(value: str, type_: pa.DataType):
    if pa.types.is_boolean(type_):
        lowered = value.strip().lower()
        if lowered not in ("true", "false", "1", "0"):
            raise ValueError("expected true/false or 1/0")
        return lowered in ("true", "1")
    if pa.types.is_integer(type_):
        try:
            number = float(value)
        except ValueError:
            raise ValueError("expected a whole number") from None
        if not number.is_integer():
            raise ValueError("expected a whole number")
        return int(number)
    if pa.types.is_floating(type_):
        try:
            return float(value)
        except ValueError:
            raise ValueError("expected a number") from None
    raise ValueError("which a CSV cell cannot hold (a list); use JSONL, JSON or Parquet")
