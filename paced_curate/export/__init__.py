"""`paced export`: problems + weights + teacher references -> weighted Parquet shards.

Modules: config (ExportConfig, ExportResult), join (problems, weights, references), weighting
(per-row shares, normalisation, weighted copies), formats (native, trl, verl rows and shards),
layout (data/ holds Parquet only, data.paced/ the manifest and card), card (dataset card,
`paced inspect` of an export) and runner (run_export, read_export).
"""

from paced_curate.export.card import inspect_export, render_export_inspection, render_export_result
from paced_curate.export.config import ExportConfig, ExportResult
from paced_curate.export.runner import read_export, run_export

__all__ = [
    "ExportConfig",
    "ExportResult",
    "inspect_export",
    "read_export",
    "render_export_inspection",
    "render_export_result",
    "run_export",
]
