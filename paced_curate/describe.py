"""`paced inspect`: summarise any stage's output (rows, schema, provenance, the stage's tables).

    report = run_inspect(InspectConfig(path="graded/"))
    render_inspect(report)          # rich, on stderr
    print(json.dumps(report))       # what `paced inspect --json` prints
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from rich.markup import escape

from paced_curate.errors import InputError
from paced_curate.io import (
    STDIO,
    list_parts,
    read_manifest,
    read_parquet_schema,
    read_table,
    refuse_folder_that_is_not_a_table,
    shard_dirs,
)
from paced_curate.report import key_value_table, rows_table, say, show
from paced_curate.schema import SPECS, read_metadata, row_name


@dataclass(frozen=True, kw_only=True)
class InspectConfig:
    """What to inspect and how."""

    path: str
    """A stage output: file, directory, or "-" for an Arrow stream on stdin."""
    group_by: str | None = None
    """For graded output: also report the evaluation numbers per value of this column."""


def _first_parquet(path: Path) -> Path | None:
    if path.is_file():
        return path
    for directory in shard_dirs(path) or [path]:
        manifest = read_manifest(directory)
        if manifest and manifest.get("parts"):
            return directory / manifest["parts"][0]["file"]
        parts = list_parts(directory) or sorted(directory.glob("*.parquet"))
        if parts:
            return parts[0]
        for sub in ("train", "val"):
            nested = directory / sub
            if nested.is_dir() and list_parts(nested):
                return list_parts(nested)[0]
    return None


def _detect(path: str) -> tuple[str | None, pa.Schema | None, dict | None]:
    """The stage, schema and manifest of a paced output on disk; stage None for anything else (read by its columns)."""
    if path == STDIO:
        return None, None, None
    target = Path(path)
    if not target.exists():
        raise InputError(f"{path}: no such file or directory")
    if target.is_dir():
        refuse_folder_that_is_not_a_table(target)
    manifest = read_manifest(target) if target.is_dir() else None
    first = _first_parquet(target)
    if first is None or first.suffix.lower() != ".parquet":
        return None, None, None
    schema = read_parquet_schema(first)
    stage = (manifest or {}).get("stage") or read_metadata(schema).get("stage")
    return stage, schema, manifest


def _read_by_columns(path: str) -> tuple[str, pa.Table, Callable[[int], str]]:
    """A table read by the one reader: its recorded stage (a pipe), else the stage its columns fit (#24),
    and how to name a row's position in it ("line 4" of a JSONL file)."""
    from paced_curate.problems import problems_from_columns
    from paced_curate.schema import conform
    from paced_curate.tables import guess_stage, read_columns, shown

    raw = read_columns(path)
    recorded = read_metadata(pa.schema([], metadata=raw.metadata)).get("stage") if raw.metadata else None
    stage = recorded or guess_stage(list(raw.data))
    if stage == "problems":
        return stage, problems_from_columns(raw, None, shown(path)), raw.where
    return stage, conform(raw.to_table(SPECS[stage], shown(path)), SPECS[stage], shown(path), raw.where), raw.where


def run_inspect(config: InspectConfig) -> dict:
    """Summarise a stage output as a JSON-ready dict (see the module docstring).

    Raises:
        InputError, SchemaError: the path is missing or not a valid stage output.
    """
    from paced_curate.distill.run_report import inspect_run, is_run_dir

    if config.path != STDIO and is_run_dir(config.path):  # (#25) a `paced distill` run directory
        return inspect_run(config.path)
    stage, schema, manifest = _detect(config.path)
    table, where = None, row_name
    if stage is None:
        stage, table, where = _read_by_columns(config.path)
    report: dict = {"path": config.path, "stage": stage}
    if stage == "export":
        from paced_curate.export import inspect_export

        report.update(inspect_export(config.path, manifest, table))
        return report
    if table is None:
        table = read_table(config.path, SPECS[stage])
    if stage in ("rollouts", "grades"):
        from paced_curate.samples import check_unique_samples

        check_unique_samples(table, "stdin" if config.path == STDIO else config.path, where)
    meta = read_metadata(table.schema)
    report["rows"] = table.num_rows
    report["schema"] = [[f.name, str(f.type)] for f in table.schema]
    report["schema_version"] = meta.get("schema_version")
    report["provenance"] = meta.get("provenance")
    if manifest is not None:
        report["manifest"] = {k: v for k, v in manifest.items() if k not in ("parts",)}
        report["manifest"]["num_parts"] = len(manifest.get("parts", []))
    report.update(stage_sections(stage, table, config))
    return report


def stage_sections(stage: str, table: pa.Table, config: InspectConfig) -> dict:
    """The stage's own numbers (evaluation for grades, statistics for weights, ...)."""
    if stage == "rollouts":
        from paced_curate.rollout.summary import rollout_summary

        return {"summary": rollout_summary(table)}
    if stage == "grades":
        from paced_curate.grade.metrics import evaluation_report

        sections = {"evaluation": evaluation_report(table, config.group_by)}
        first = adaptive_first_samples(table)
        if first is not None:
            # An adaptive run drew more samples only where the weight was uncertain, so the problems
            # with the most samples are a biased subset; every problem's first --min-samples are not.
            import pyarrow.compute as pc

            head = table.filter(pc.less(table.column("sample_index"), first))
            sections["first_samples"] = {"min_samples": first, "evaluation": evaluation_report(head, config.group_by)}
        return sections
    if stage == "weights":
        from paced_curate.weight import weight_statistics

        return {"statistics": weight_statistics(table)}
    return {}


def adaptive_first_samples(table: pa.Table) -> int | None:
    """--min-samples of the `paced estimate --adaptive` run that wrote this graded table, else None."""
    settings = (read_metadata(table.schema).get("provenance") or {}).get("settings") or {}
    return int(settings["min_samples"]) if settings.get("adaptive") and settings.get("min_samples") else None


def render_inspect(report: dict) -> None:
    """Print an inspect report with rich on stderr."""
    if report.get("stage") == "distill":  # (#25)
        from paced_curate.distill.run_report import render_run_inspection

        render_run_inspection(report)
        return
    rows = [("stage", report.get("stage")), ("rows", report.get("rows"))]
    if report.get("schema_version"):
        rows.append(("schema version", report["schema_version"]))
    manifest = report.get("manifest") or {}
    for key in ("complete", "created", "paced_version"):
        if key in manifest:
            rows.append((key, manifest[key]))
    show(key_value_table(f"{report['path']}", rows))
    if report.get("schema"):
        show(rows_table("schema", ["column", "type"], report["schema"]))
    provenance = report.get("provenance") or {}
    settings = provenance.get("settings") or manifest.get("settings")
    if settings:
        # Settings hold user text ("[/THINK]" among the reasoning tags) that rich would read as markup.
        show(key_value_table("settings", [(k, v if isinstance(v, (int, float)) else escape(str(v))) for k, v in settings.items()]))
    stage = report.get("stage")
    if stage == "rollouts":
        from paced_curate.rollout.summary import render_rollout_summary

        render_rollout_summary(report["summary"])
    elif stage == "grades":
        from paced_curate.grade.metrics import render_evaluation

        render_evaluation(report["evaluation"])
        if "first_samples" in report:
            first = report["first_samples"]
            say(
                f"an adaptive run: problems got more samples only where their weight was uncertain, so the pass@k above covers only "
                f"the problems with the most samples (its 'pass@k set'); below, every problem on its first {first['min_samples']} samples"
            )
            render_evaluation(first["evaluation"])
    elif stage == "weights":
        from paced_curate.weight import render_weight_statistics

        render_weight_statistics(report["statistics"])
    elif stage == "export":
        from paced_curate.export import render_export_inspection

        render_export_inspection(report)
    if not report.get("rows") and stage != "export":
        say("the table is empty")
