"""Where an export's files go: Parquet only in the data folder, extras beside it.

    data/train/part-00000.parquet, data/val/...     (-o data/; val/ only with --val-fraction)
    data.parquet                                     (-o data.parquet: one file, no val split)
    data.paced/manifest.json, data.paced/README.md   (manifest and dataset card)

The data folder holds nothing but Parquet, so polars, pandas, pyarrow.dataset, DuckDB and
`datasets` open it as it is. This follows the project's output-folder convention; it uses
`io.extras_dir` / `io.is_file_output` (issue #12).
An export written by an older paced (manifest inside the folder) is still read.
"""

from __future__ import annotations

from pathlib import Path

# The project's output-folder helpers (#12); export uses them as they are.
from paced_curate.io import EXTRAS_SUFFIX, extras_dir, is_file_output, read_manifest  # noqa: F401

CARD = "README.md"


def export_manifest(output: str | Path) -> dict | None:
    """The manifest of an export (in `<OUT>.paced/`, or inside an older export folder), or None.

    Raises:
        InputError: the manifest is not valid JSON.
    """
    return read_manifest(Path(output))


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
