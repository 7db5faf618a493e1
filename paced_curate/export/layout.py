"""Where an export's files go: Parquet only in the data folder, extras beside it.

    data/train/part-00000.parquet, data/val/...     (-o data/; val/ only with --val-fraction)
    data.parquet                                     (-o data.parquet: one file, no val split)
    data.paced/manifest.json, data.paced/README.md   (manifest and dataset card)

The data folder holds nothing but Parquet, so polars, pandas, pyarrow.dataset, DuckDB and
`datasets` open it as it is. This follows the project's output-folder convention; the helpers
here mirror `io.extras_dir` / `io.is_file_output` (issue #12) and can be replaced by them.
An export written by an older paced (manifest inside the folder) is still read.
"""

from __future__ import annotations

import json
from pathlib import Path

from paced_curate.errors import InputError
from paced_curate.io import MANIFEST

EXTRAS_SUFFIX = ".paced"
CARD = "README.md"


def is_file_output(output: str | Path) -> bool:
    """Whether `-o output` names one Parquet file (`NAME.parquet`) rather than a folder."""
    return str(output).lower().endswith(".parquet")


def extras_dir(output: str | Path) -> Path:
    """`data/` -> `data.paced/`, `data.parquet` -> `data.parquet.paced/`: the manifest and card's folder."""
    path = Path(output)
    return path.with_name(path.name + EXTRAS_SUFFIX)


def export_manifest(output: str | Path) -> dict | None:
    """The manifest of an export (in `<OUT>.paced/`, or inside an older export folder), or None.

    Raises:
        InputError: the manifest is not valid JSON.
    """
    path = Path(output)
    for candidate in (extras_dir(path) / MANIFEST, path / MANIFEST):
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise InputError(f"{candidate}: not valid JSON: {error}") from None
    return None


def export_root(path: str | Path) -> Path:
    """The export an argument names: the export itself, or the export above a split folder or shard."""
    path = Path(path)
    if path.name.endswith(EXTRAS_SUFFIX):
        return path.with_name(path.name[: -len(EXTRAS_SUFFIX)])
    return path


def split_files(output: str | Path, manifest: dict, split: str) -> list[Path]:
    """The Parquet files of one split, as the manifest lists them (paths relative to the export)."""
    root = Path(output)
    files = manifest["splits"][split]["files"]
    if is_file_output(root) and root.is_file():
        return [root]
    return [root / entry["file"] for entry in files]
