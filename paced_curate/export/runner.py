"""`paced export`: join problems, PACED weights and teacher references into weighted training shards.

The output folder holds `part-00000.parquet`, ... (or `train/` and `val/` with those), a
`manifest.json` (counts, weight statistics, weighting, input hashes, versions, command) and a
README.md dataset card. It is written in a temporary sibling folder and renamed into place, so
a crash never leaves half an export.

    paced export problems.jsonl weights.parquet -o data/ --references teacher_graded/ --val-fraction 0.05

    result = run_export(ExportConfig(problems="problems.jsonl", weights="weights.parquet", output="data/"))
    table = read_export("data/", split="train")         # what `paced distill` reads
"""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
from pathlib import Path

import pyarrow as pa

from paced_curate import __version__
from paced_curate.errors import InputError
# `paced inspect` and the CLI find the export's report functions here, beside run_export.
from paced_curate.export.card import (  # noqa: F401
    REASONS,
    dataset_card,
    inspect_export,
    problems_count,
    render_export_inspection,
    render_export_result,
    weight_summary,
)
from paced_curate.export.config import ExportConfig, ExportResult
from paced_curate.export.formats import ROW_GROUP_ROWS, format_table, split_and_shuffle, write_shards
from paced_curate.export.join import JoinOptions, Sources, join_rows
from paced_curate.io import (
    MANIFEST,
    STDIO,
    TEMP_MARK,
    atomic_path,
    input_digest,
    read_manifest,
    read_parquet,
    read_table,
    write_json,
)
from paced_curate.partdir import command_line, package_versions, settings_hash
from paced_curate.problems import FieldMap, read_problems
from paced_curate.report import say
from paced_curate.schema import EXPORT, GRADES, SCHEMA_VERSION, WEIGHTS, conform, read_metadata, stage_metadata

NOT_WEIGHTING = ("inputs", "versions", "command", "created", "updated", "paced_version")
"""Keys of the weights file's provenance that say where it came from, not how it weighs."""


def run_export(config: ExportConfig) -> ExportResult:
    """Join, shuffle, shard and write an export folder (see the module docstring).

    Raises:
        InputError: an input is missing or malformed, weights name unknown problems, problems
            lack weights under --missing error, nothing is left to export, or the output exists
            and is not a paced export (without --overwrite).
        SchemaError: the weights or references are not valid stage tables.
    """
    output = Path(config.output).resolve()
    existing = _check_output(output, config)
    if config.format == "verl" and config.references is not None:
        say("NOTE: --references has no effect with --format verl (verl rows carry no completion); not reading it")
    elif config.references is None and config.refs_per_problem != 1:
        say("NOTE: --refs-per-problem has no effect without --references")
    fields = FieldMap(
        id_field=config.id_field, prompt_field=config.prompt_field, answer_field=config.answer_field, split=config.split
    )
    problems = read_problems(config.problems, fields)
    weights = read_table(config.weights, WEIGHTS)
    use_references = config.references is not None and config.format != "verl"
    references = read_table(config.references, GRADES) if use_references else None
    sources = Sources(problems=config.problems, weights=config.weights)
    options = JoinOptions(refs_per_problem=config.refs_per_problem, drop_zero=config.drop_zero, missing=config.missing)
    rows, joined = join_rows(problems, weights, references, options, sources)
    if rows.num_rows == 0:
        reasons = ", ".join(f"{problems_count(count)} {REASONS[reason]}" for reason, count in joined.dropped.items() if count)
        raise InputError(
            f"{config.weights}: nothing left to export ({reasons or 'no problems'}); check the inputs belong together"
        )

    weighting = _weighting(read_metadata(weights.schema).get("provenance") or {})
    settings = config.settings()
    provenance = {"format": config.format, "weighting": weighting, "settings_hash": settings_hash(settings)}
    metadata = stage_metadata("export", provenance)
    source_name = "stdin" if config.problems == STDIO else Path(config.problems).stem
    table = format_table(rows, config.format, data_source=source_name)
    problem_ids = rows.column("problem_id").to_pylist()
    order = split_and_shuffle(problem_ids, config.seed, config.val_fraction)

    staging = output.parent / f".{output.name}{TEMP_MARK}{secrets.token_hex(4)}"
    try:
        splits = {}
        for name, indices in order.items():
            folder = staging / name if len(order) > 1 else staging
            files = write_shards(table.take(pa.array(indices, pa.int64())), folder, config.rows_per_shard, metadata)
            prefix = f"{name}/" if len(order) > 1 else ""
            splits[name] = {
                "rows": int(len(indices)),
                "problems": len({problem_ids[i] for i in indices}),
                "files": [entry | {"file": prefix + entry["file"]} for entry in files],
            }
        # A problem's rows all carry its weight, so any one of them will do.
        per_problem = rows.group_by("problem_id").aggregate([("weight", "min")]).column("weight_min")
        result = ExportResult(
            output=config.output,
            format=config.format,
            num_rows=rows.num_rows,
            num_problems=joined.num_problems,
            splits=splits,
            dropped=joined.dropped,
            short_references=joined.short_references,
            weight_statistics=weight_summary(per_problem.to_numpy()),
        )
        manifest = _manifest(config, result, weighting, settings, table.column_names)
        write_json(manifest, staging / MANIFEST)
        with atomic_path(staging / "README.md") as tmp:
            tmp.write_text(dataset_card(manifest))
        _publish(staging, output, existing)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return result


def _check_output(output: Path, config: ExportConfig) -> str:
    """What is at the output path now: "none", "export" (replaced) or "other" (needs --overwrite)."""
    shown = config.output
    if output.exists() and not output.is_dir():
        raise InputError(f"{shown}: exists and is a file; the export is written to a folder")
    inputs = [Path(p) for p in (config.problems, config.weights, config.references) if p not in (None, STDIO)]
    for inside in [Path.cwd(), *inputs]:
        # The export replaces the whole folder: never one that holds the work or its inputs.
        if inside.resolve() == output or output in inside.resolve().parents:
            raise InputError(
                f"{shown}: contains {inside}, which replacing it would delete; write the export to a folder of its own"
            )
    if not output.exists() or not any(output.iterdir()):
        return "none"
    manifest = read_manifest(output)
    if manifest is not None and manifest.get("stage") == "export":
        return "export"
    if not config.overwrite:
        first = sorted(p.name for p in output.iterdir())[0]
        what = f"a paced '{manifest.get('stage')}' output" if manifest else f"it holds {first!r}"
        raise InputError(
            f"{shown}: exists and is not a paced export ({what}); choose another -o or pass --overwrite to replace it"
        )
    return "other"


def _publish(staging: Path, output: Path, existing: str) -> None:
    """Move the finished export into place, replacing what was there."""
    if existing != "none":
        say(f"replacing the {'earlier export' if existing == 'export' else 'contents'} in {output}")
        retired = output.parent / f".{output.name}{TEMP_MARK}old-{secrets.token_hex(4)}"
        output.rename(retired)
        staging.rename(output)
        shutil.rmtree(retired)
    else:
        if output.exists():
            output.rmdir()
        staging.rename(output)


def _weighting(provenance: dict) -> dict:
    """How the weights were made (kernel, estimator, normalisation, ...), from their provenance.

    Takes the provenance's `settings` (as `paced weight` records them) and its other entries,
    leaving out where it came from (inputs, versions, command), so it is the same for the same
    weights file wherever that is.
    """
    settings = provenance.get("settings")
    weighting = dict(settings) if isinstance(settings, dict) else {}
    weighting.update({key: value for key, value in provenance.items() if key not in NOT_WEIGHTING and key != "settings"})
    return weighting


def _manifest(config: ExportConfig, result: ExportResult, weighting: dict, settings: dict, columns: list[str]) -> dict:
    inputs = {}
    for name in ("problems", "weights", "references"):
        path = getattr(config, name)
        if path is not None:
            inputs[name] = {"path": path if path == STDIO else str(Path(path).resolve()), "sha256": input_digest(path)}
    return {
        "paced_version": __version__,
        "stage": "export",
        "schema_version": SCHEMA_VERSION,
        "format": config.format,
        "complete": True,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "rows": result.num_rows,
        "problems": result.num_problems,
        "splits": result.splits,
        "rows_per_shard": config.rows_per_shard,
        "row_group_rows": min(config.rows_per_shard, ROW_GROUP_ROWS),
        "columns": columns,
        "dropped": result.dropped,
        "short_references": result.short_references,
        "weight_statistics": result.weight_statistics,
        "weighting": weighting,
        "settings": settings,
        "settings_hash": settings_hash(settings),
        "inputs": inputs,
        "versions": package_versions(),
        "command": command_line(),
    }


def _export_manifest(directory: Path) -> dict:
    manifest = read_manifest(directory)
    if manifest is None or manifest.get("stage") != "export":
        raise InputError(f"{directory}: is not a paced export (no export manifest.json); make one with 'paced export'")
    return manifest


def read_export(directory: str | Path, split: str = "train") -> pa.Table:
    """Read one split of a native export, validated against `schema.EXPORT`.

    Args:
        directory: an export folder written by `paced export --format native`.
        split: "train", or "val" when the export has a val split.

    Raises:
        InputError: the folder is not a native paced export or has no such split.
        SchemaError: a shard does not match `schema.EXPORT`.
    """
    directory = Path(directory)
    manifest = _export_manifest(directory)
    if manifest.get("format") != "native":
        raise InputError(f"{directory}: is a '{manifest.get('format')}' export; re-export with --format native to read it here")
    splits = manifest.get("splits", {})
    if split not in splits:
        raise InputError(f"{directory}: has no '{split}' split (it has {', '.join(splits)})")
    files = [directory / entry["file"] for entry in splits[split]["files"]]
    tables = [conform(read_parquet(path), EXPORT, str(path)) for path in files]
    return pa.concat_tables(tables)
