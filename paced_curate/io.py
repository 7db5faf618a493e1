"""Reading and writing stage tables: atomic files, numbered parts, the extras folder, Arrow pipes.

The output-folder convention (every stage follows it):

- An output folder (`rollouts/`, `graded/`, an export's `data/`) holds ONLY `*.parquet` files
  (numbered `part-00000.parquet`, ..., or `shard-*` / `train/` / `val/` folders of them), so
  polars, pandas, pyarrow.dataset, DuckDB and `datasets` open it as it is.
- Resume state and provenance live in each part's Parquet key-value metadata
  (`paced.schema_version`, `paced.stage`, `paced.provenance` with settings, settings hash and
  input hashes); see `schema.stage_metadata`.
- Human-facing extras (`manifest.json`, an export's dataset card) and temporary files live in
  the sibling folder `<OUT>.paced/` (`extras_dir`): `graded/` -> `graded.paced/`. A shard
  folder `OUT/shard-00000-of-00004/` keeps its extras in `OUT.paced/shard-00000-of-00004/`.
- `-o NAME.parquet` writes one Parquet file (`is_file_output`), `-o DIR` a folder.

Every file is written to a temporary name (`.<name>.tmp-<random>`, in the extras folder when
one is given, else beside the target), flushed, fsynced and renamed into place, so a reader
never sees half a file. `-` as an input reads an Arrow IPC stream from stdin; `-o -` writes one
to stdout (`pipes.py`).

    table = read_table("graded/", GRADES)          # file, part directory, shard directories or "-"
    write_table(table, "weights.parquet", WEIGHTS, provenance={...})
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from paced_curate.errors import InputError, a_or_an
from paced_curate.pipes import ArrowStdout, claim_stdout, read_ipc_stdin, stdin_schema, write_ipc  # noqa: F401 (the readers' entry points)
from paced_curate.schema import TableSpec, conform, stage_metadata

STDIO = "-"
MANIFEST = "manifest.json"
ESTIMATE_STATE = "estimate.json"
"""The state file that marks a `paced estimate` run folder."""
EXTRAS_SUFFIX = ".paced"
PART_NAME = "part-{:05d}.parquet"
PART_RE = re.compile(r"^part-(\d{5})\.parquet$")
SHARD_NAME = "shard-{:05d}-of-{:05d}"
SHARD_RE = re.compile(r"^shard-(\d{5})-of-(\d{5})$")
TEMP_MARK = ".tmp-"
COMPRESSION = "zstd"


def is_temp(name: str) -> bool:
    """Whether a file name is an unfinished atomic write."""
    return name.startswith(".") and TEMP_MARK in name


def is_file_output(output: str | Path) -> bool:
    """Whether `-o output` names one Parquet file (`NAME.parquet`) rather than a folder."""
    return str(output).lower().endswith(".parquet")


def extras_dir(output: str | Path) -> Path:
    """The sibling folder that holds an output's extras and temporary files: `<OUT>.paced/`.

    Args:
        output: an output folder or file, e.g. `graded/` or `graded.parquet`.

    Returns:
        `graded/` -> `graded.paced/`, `data.parquet` -> `data.parquet.paced/`; a shard folder
        `OUT/shard-00000-of-00004` -> `OUT.paced/shard-00000-of-00004`, so the output folder
        itself holds Parquet files only.

    Example:
        >>> extras_dir("runs/graded/")
        PosixPath('runs/graded.paced')
    """
    path = Path(output)
    if SHARD_RE.match(path.name):
        return extras_dir(path.parent) / path.name
    return path.with_name(path.name + EXTRAS_SUFFIX)


def write_manifest(output: str | Path, manifest: dict) -> Path:
    """Write an output's `manifest.json` (a human-facing summary) into its extras folder, atomically.

    Returns:
        The manifest's path, `<OUT>.paced/manifest.json`.
    """
    folder = extras_dir(output)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(manifest, folder / MANIFEST)
    return folder / MANIFEST


@contextlib.contextmanager
def atomic_path(path: str | Path, staging: str | Path | None = None) -> Iterator[Path]:
    """Yield a temporary path; on success fsync it and rename it to `path`.

    Args:
        path: the final file.
        staging: folder for the temporary file (the output's extras folder, so readers of the
            output folder never see it; it must be on the same file system); default: beside
            `path`.

    On any exception the temporary file is removed and `path` is left untouched.
    """
    path = Path(path)
    folder = Path(staging) if staging is not None else path.parent
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{path.name}{TEMP_MARK}{secrets.token_hex(4)}"
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync_dir(directory: Path) -> None:
    # The rename is only durable once the directory entry is on disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(obj, path: str | Path) -> None:
    """Write `obj` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def write_parquet(
    table: pa.Table, path: str | Path, row_group_size: int | None = None, staging: str | Path | None = None
) -> str:
    """Write `table` as zstd Parquet, atomically (temp file in `staging`, see `atomic_path`).

    Returns:
        The file's sha256.
    """
    with atomic_path(path, staging) as tmp:
        pq.write_table(table, tmp, compression=COMPRESSION, row_group_size=row_group_size)
        digest = file_sha256(tmp)
    return digest


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def input_digest(path: str) -> str | None:
    """A content hash of an input file or directory (sorted files), or None for stdin.

    Raises:
        InputError: the path does not exist (the readers' message).
    """
    if path == STDIO:
        return None
    target = Path(path)
    if not target.exists():
        raise InputError(f"{path}: no such file or directory")
    if target.is_file():
        return file_sha256(target)
    digest = hashlib.sha256()
    for file in sorted(p for p in target.rglob("*") if p.is_file() and not is_temp(p.name)):
        digest.update(str(file.relative_to(target)).encode())
        digest.update(file_sha256(file).encode())
    return digest.hexdigest()


# --- reading stage tables -------------------------------------------------------------------


def sniff_format(path: str | Path) -> str:
    """What a file holds, from its first bytes: parquet, arrow, jsonl, json, csv, empty or binary.

    Used to name the real problem when a file's contents do not match its name.
    """
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"ARROW1") or head[:4] == b"\xff\xff\xff\xff":
        return "arrow"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text:
        return "empty"
    if b"\x00" in head:
        return "binary"
    if text.startswith(b"{"):
        first = text.split(b"\n", 1)[0].strip()
        return "jsonl" if first.endswith(b"}") or b"\n{" in text else "json"
    if text.startswith(b"["):
        return "json"
    return "csv"


def read_parquet(path: str | Path, columns: list[str] | None = None) -> pa.Table:
    """Read one Parquet file, turning pyarrow's errors into one-line `InputError`s.

    Raises:
        InputError: the file is missing, holds another format (named: "holds JSON lines"), or
            is a Parquet file cut off mid-write.
    """
    path = _existing_parquet(path)
    if columns:
        # A missing column is not a damaged file: say which (pyarrow's message would blame the file).
        names = read_parquet_schema(path).names
        missing = [name for name in columns if name not in names]
        if missing:
            raise InputError(f"{path}: has no column {missing[0]!r} (columns: {', '.join(names)})")
    try:
        return pq.read_table(path, columns=columns)
    except pa.ArrowInvalid as error:
        raise InputError(f"{path}: not a readable Parquet file (cut off mid-write?): {_one_line(error)}") from None
    except (OSError, pa.ArrowException) as error:
        raise InputError(f"{path}: cannot read Parquet: {_one_line(error)}") from None


def _one_line(error: Exception) -> str:
    """pyarrow's messages span lines (a schema dump); errors are one line."""
    return " ".join(str(error).split())


def read_parquet_schema(path: str | Path) -> pa.Schema:
    """The schema (with metadata) of a Parquet file, from its footer; errors as `read_parquet`'s."""
    path = _existing_parquet(path)
    try:
        return pq.read_schema(path)
    except (OSError, pa.ArrowException) as error:
        raise InputError(f"{path}: not a readable Parquet file (cut off mid-write?): {_one_line(error)}") from None


def _existing_parquet(path: str | Path) -> Path:
    """`path` as a Path, once it exists and starts like Parquet; else a one-line `InputError`."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    kind = sniff_format(path)
    if kind != "parquet":
        raise InputError(f"{path}: is not a Parquet file: {_FORMAT_NAMES[kind]}")
    return path


_FORMAT_NAMES = {
    "arrow": "it holds an Arrow IPC stream; pipe it in with '-'",
    "jsonl": "it holds JSON lines; name it .jsonl",
    "json": "it holds JSON; name it .json",
    "csv": "it holds text (CSV?); name it .csv",
    "empty": "it is empty",
    "binary": "it has no Parquet header (PAR1)",
}


def read_manifest(directory: Path) -> dict | None:
    """The manifest of an output (in `<OUT>.paced/`, or inside an older output), or None if none.

    Raises:
        InputError: the manifest is not valid JSON.
    """
    for path in (extras_dir(directory) / MANIFEST, Path(directory) / MANIFEST):
        if path.exists():
            try:
                return json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise InputError(f"{path}: not valid JSON: {error}") from None
    return None


def list_parts(directory: Path) -> list[Path]:
    """The finished part files of a directory, in order (temp files are ignored)."""
    return sorted(p for p in directory.iterdir() if PART_RE.match(p.name))


def shard_dirs(directory: Path) -> list[Path]:
    """The `shard-IIIII-of-NNNNN` subdirectories of a directory, in order."""
    return sorted(p for p in directory.iterdir() if p.is_dir() and SHARD_RE.match(p.name))


def _read_part_dir(directory: Path, spec: TableSpec, columns: list[str] | None, require_complete: bool) -> pa.Table:
    parts = part_files(directory, spec, require_complete)
    tables = [conform(read_parquet(p, columns), spec, str(p)) for p in parts]
    return _concat(tables, parts)


def part_files(directory: Path, spec: TableSpec, require_complete: bool = True) -> list[Path]:
    """The Parquet files of an output directory, in order: the manifest's parts, else the part names.

    Raises:
        InputError: the directory holds another stage's output, is unfinished, has no files, or
            is not a table (`refuse_folder_that_is_not_a_table`).
    """
    refuse_folder_that_is_not_a_table(directory)
    manifest = read_manifest(directory)
    if manifest is not None:
        if manifest.get("stage") not in (None, spec.stage):
            raise InputError(
                f"{directory}: holds {a_or_an(repr(manifest.get('stage')))} output, expected '{spec.stage}'"
                + (f" (make one with '{spec.produced_by}')" if spec.produced_by else "")
            )
        if require_complete and not manifest.get("complete", False):
            raise InputError(f"{directory}: is unfinished; rerun the command that wrote it to complete it")
        parts = [directory / part["file"] for part in manifest.get("parts", [])]
    else:
        parts = list_parts(directory) or sorted(
            p for p in directory.glob("*.parquet") if not is_temp(p.name)
        )
    if not parts:
        raise InputError(f"{directory}: holds no Parquet files")
    return parts


def _concat(tables: list[pa.Table], sources: list[Path]) -> pa.Table:
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except pa.ArrowInvalid as error:
        raise InputError(f"{sources[0].parent}: parts have incompatible columns: {error}") from None


def _read_shards(directory: Path, spec: TableSpec, columns: list[str] | None) -> pa.Table:
    shards = complete_shards(directory)
    tables = [_read_part_dir(s, spec, columns, require_complete=True) for s in shards]
    check_disjoint_shards(tables, shards)
    return _concat(tables, shards)


def complete_shards(directory: Path) -> list[Path]:
    """The shard directories of one sharded run, in order, refusing mixed or missing shards.

    Raises:
        InputError: shards of different counts are mixed, or some shards are missing.
    """
    shards = shard_dirs(directory)
    counts = {int(SHARD_RE.match(s.name).group(2)) for s in shards}
    if len(counts) > 1:
        raise InputError(f"{directory}: mixes shard counts {sorted(counts)}; keep the shards of one run")
    (count,) = counts
    present = {int(SHARD_RE.match(s.name).group(1)) for s in shards}
    missing = sorted(set(range(count)) - present)
    if missing:
        raise InputError(f"{directory}: shards {', '.join(f'{i}/{count}' for i in missing)} are missing")
    return shards


def check_disjoint_shards(tables: list[pa.Table], sources: list[Path]) -> None:
    """Refuse shard outputs that share a problem id (overlapping shards)."""
    owner: dict[str, Path] = {}
    for table, source in zip(tables, sources):
        for problem_id in set(table.column("problem_id").to_pylist()):
            if problem_id in owner:
                raise InputError(
                    f"{source.parent}: shards {owner[problem_id].name} and {source.name} overlap "
                    f"(both hold problem_id {problem_id!r})"
                )
            owner[problem_id] = source


def refuse_estimate_run(folder: Path) -> None:
    """A `paced estimate` run folder holds several tables: name the one meant instead of failing
    on its mixture.

    Raises:
        InputError: `folder` holds an `estimate.json`.
    """
    if (folder / ESTIMATE_STATE).is_file():
        raise InputError(
            f"{folder}: is a paced estimate run, which holds several tables; pass {folder / 'rollouts'}, "
            f"{folder / 'graded'} or {folder / 'weights.parquet'}"
        )


DISTILL_RUN_FILE = "run.json"
"""The record that marks a `paced distill` run folder (`distill.rundir.RUN_FILE`; io may not import distill)."""
MODEL_CONFIG = "config.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def refuse_folder_that_is_not_a_table(folder: Path) -> None:
    """Name what a folder given where a table is expected holds, when it is not a table.

    Without this, an extras folder was read as a dataset by its manifest ("found none of
    prompt, ...") or its part list ("part-00000.parquet: no such file"), and a model folder
    reached `datasets`, which printed progress bars before failing.

    Raises:
        InputError: `folder` is a paced estimate run, a paced distill run, the extras folder of
            a paced output (`<OUT>.paced/`, or one of its `shard-*` folders), or a model folder
            (`is_model_folder`).
    """
    refuse_estimate_run(folder)
    if (folder / DISTILL_RUN_FILE).is_file():
        raise InputError(f"{folder}: is a paced distill run, not a table; paced inspect {folder} summarises it")
    owner = extras_owner(folder)
    if owner is not None:
        unwritten = "" if owner.exists() else " (not written yet: rerun the command that writes it to complete it)"
        raise InputError(f"{folder}: is the extras folder of {owner} (paced's manifest and notes); pass {owner}{unwritten}")
    if is_model_folder(folder):
        raise InputError(f"{folder}: is a model folder ({MODEL_CONFIG}), not a table")


def is_model_folder(folder: Path) -> bool:
    """Whether a folder holds a model: a config.json naming a `model_type` or `architectures`
    (what transformers writes), or one beside weight files."""
    config = folder / MODEL_CONFIG
    if not config.is_file():
        return False
    if any(p.suffix in WEIGHT_SUFFIXES for p in folder.iterdir()):
        return True
    try:
        fields = json.loads(config.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(fields, dict) and ("model_type" in fields or "architectures" in fields)


def extras_owner(folder: Path) -> Path | None:
    """The output whose extras folder `folder` is (the inverse of `extras_dir`), else None.

    An extras folder is named `<OUT>.paced` (or is a `shard-*` folder inside one) and holds
    paced's manifest, its unfinished parts (`parts/`) or shard folders, but no part files of
    its own: an older output kept its manifest beside its parts, and is a table.
    """
    folder = Path(folder)
    if SHARD_RE.match(folder.name) and folder.parent.name.endswith(EXTRAS_SUFFIX):
        owner = folder.parent.with_name(folder.parent.name.removesuffix(EXTRAS_SUFFIX)) / folder.name
    elif folder.name.endswith(EXTRAS_SUFFIX) and folder.name != EXTRAS_SUFFIX:
        owner = folder.with_name(folder.name.removesuffix(EXTRAS_SUFFIX))
    else:
        return None
    holds_extras = (folder / MANIFEST).is_file() or (folder / "parts").is_dir() or bool(shard_dirs(folder))
    return owner if holds_extras and not list_parts(folder) else None


def read_table(path: str, spec: TableSpec, columns: list[str] | None = None) -> pa.Table:
    """Read and validate a stage table from a file, a directory or stdin (`-`).

    Args:
        path: a `.parquet` file, an output directory (parts + manifest), a directory of
            `shard-*` directories, or "-" for an Arrow IPC stream on stdin.
        spec: the stage's `TableSpec`, checked with `conform`.
        columns: read only these columns (files and directories only).

    Raises:
        InputError: the path is missing, unreadable, unfinished, or its shards overlap.
        SchemaError: the table does not match `spec`.
    """
    if path == STDIO:
        return conform(read_ipc_stdin(), spec, "stdin")
    target = Path(path)
    if not target.exists():
        raise InputError(f"{path}: no such file or directory")
    if target.is_dir():
        refuse_folder_that_is_not_a_table(target)
        if shard_dirs(target) and read_manifest(target) is None:
            return _read_shards(target, spec, columns)
        return _read_part_dir(target, spec, columns, require_complete=True)
    return conform(read_parquet(target, columns), spec, str(target))


def write_table(
    table: pa.Table, output: str, spec: TableSpec, provenance: dict | None = None
) -> str | None:
    """Write a whole stage table to a `.parquet` file, a folder, or stdout (`-`), atomically.

    A folder gets one `part-00000.parquet` (an earlier table there is replaced) and a
    `manifest.json` in its extras folder `<OUT>.paced/`; a folder that holds other files is
    refused, so nothing of the user's is deleted.

    Returns:
        The file's sha256, or None for stdout.

    Raises:
        InputError: the output folder holds files paced did not write.
    """
    table = table.replace_schema_metadata(stage_metadata(spec.stage, provenance))
    if output == STDIO:
        write_ipc(table)
        return None
    path = Path(output)
    if is_file_output(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_parquet(table, path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{output}: exists and is a file; name a .parquet file to write one file, or a new folder")
    path.mkdir(parents=True, exist_ok=True)
    foreign = sorted(p.name for p in path.iterdir() if not (PART_RE.match(p.name) or is_temp(p.name)))
    if foreign:
        raise InputError(f"{output}: holds {foreign[0]!r}, which paced did not write; choose another -o")
    staging = extras_dir(path)
    digest = write_parquet(table, path / PART_NAME.format(0), staging=staging)
    for stale in list_parts(path)[1:]:
        stale.unlink()
    manifest = {
        "stage": spec.stage,
        "complete": True,
        "parts": [{"file": PART_NAME.format(0), "rows": table.num_rows, "sha256": digest}],
        "rows": table.num_rows,
    } | (provenance or {})
    write_manifest(path, manifest)
    return digest
