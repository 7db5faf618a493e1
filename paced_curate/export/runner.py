"""`paced export`: join problems, PACED weights and teacher references into weighted training shards.

`-o data/` writes `data/train/part-00000.parquet`, ... (and `data/val/` with --val-fraction):
Parquet only, so every reader opens the folder as it is. `-o data.parquet` writes one file.
The `manifest.json` (counts, weight statistics, weighting, input hashes, versions, command)
and the README.md dataset card go to the sibling folder `data.paced/` (`export.layout`). Both
are written under temporary names and renamed into place, so a crash never leaves half an
export. How the weights reach the rows (per-row shares, normalisation, weighted copies) is in
`export.weighting`; the prompts are rebuilt as the student's rollout rendered them
(`rollout.prompt_record`).

    paced export problems.jsonl weights.parquet -o data/ --references teacher_graded/ --val-fraction 0.05

    result = run_export(ExportConfig(problems="problems.jsonl", weights="weights.parquet", output="data/"))
    table = read_export("data/", split="train")         # what `paced distill` reads
"""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa

from paced_curate import __version__
from paced_curate.contamination import check_eval_overlap, table_overlap
from paced_curate.errors import InputError, a_or_an
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
from paced_curate.export.config import DEFAULT_DATA_SOURCE, ExportConfig, ExportResult
from paced_curate.export.formats import ROW_GROUP_ROWS, format_table, split_and_shuffle, write_shards, write_single
from paced_curate.export.join import JoinOptions, Sources, join_rows
from paced_curate.export.layout import CARD, export_manifest, extras_dir, is_file_output, split_files
from paced_curate.export.llamafactory import write_dataset_info
from paced_curate.export.prompting import PromptChoice, choose_prompt
from paced_curate.export.weighting import adjacent_pairs, copy_counts, normalizing_factor, row_weights, spread_order
from paced_curate.io import (
    MANIFEST,
    STDIO,
    TEMP_MARK,
    atomic_path,
    input_digest,
    read_manifest,
    read_parquet,
    refuse_folder_that_is_not_a_table,
    write_json,
)
from paced_curate.partdir import claim_output, command_line, package_versions, settings_hash
from paced_curate.problems import FieldMap, read_problems
from paced_curate.report import say
from paced_curate.rollout.prompt_record import KEY as PROMPT_KEY
from paced_curate.rollout.prompt_record import rendered_prompt
from paced_curate.samples import read_references
from paced_curate.schema import EXPORT, SCHEMA_VERSION, WEIGHTS, conform, read_metadata, stage_metadata
from paced_curate.tables import read_stage_table

NOT_WEIGHTING = ("inputs", "versions", "command", "created", "updated", "paced_version")
"""Keys of the weights file's provenance that say where it came from, not how it weighs."""


def run_export(config: ExportConfig) -> ExportResult:
    """Join, weigh, shuffle, shard and write an export (see the module docstring).

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
    if config.format != "verl" and config.data_source != DEFAULT_DATA_SOURCE:
        say("NOTE: --data-source has no effect without --format verl")
    if is_file_output(config.output) and config.rows_per_shard != ExportConfig.__dataclass_fields__["rows_per_shard"].default:
        say(f"NOTE: --rows-per-shard has no effect with -o {config.output}: it writes one file")
    if config.weights_as == "copies" and config.normalize != "rows":
        say("NOTE: --normalize has no effect with --weights-as copies (every row has weight 1)")
    fields = FieldMap(
        id_field=config.id_field, prompt_field=config.prompt_field, answer_field=config.answer_field, split=config.split
    )
    problems = read_problems(config.problems, fields)
    weights = read_stage_table(config.weights, WEIGHTS)
    use_references = config.references is not None and config.format != "verl"
    references = read_references(config.references) if use_references else None
    sources = Sources(problems=config.problems, weights=config.weights)
    options = JoinOptions(refs_per_problem=config.refs_per_problem, drop_zero=config.drop_zero, missing=config.missing)
    rows, joined = join_rows(problems, weights, references, options, sources)
    if config.eval_problems is not None:  # (#21) held-out problems that are also exported problems, before writing
        say(check_eval_overlap(table_overlap(read_problems(config.eval_problems), rows), config.eval_overlap, config.eval_problems, f"the export of {config.problems}"))
    if rows.num_rows == 0:
        reasons = ", ".join(f"{problems_count(count)} {REASONS[reason]}" for reason, count in joined.dropped.items() if count)
        raise InputError(
            f"{config.weights}: nothing left to export ({reasons or 'no problems'}); check the inputs belong together"
        )

    provenance_in = read_metadata(weights.schema).get("provenance") or {}
    weighting = _weighting(provenance_in)
    prompt = choose_prompt(config, provenance_in.get(PROMPT_KEY))
    record = prompt.record
    if prompt.note is not None and (config.format != "native" or prompt.source == "flags"):
        say(prompt.note)
    if config.format == "llamafactory" and record is not None and record["chat"] == "off":
        say(
            "NOTE: the student was prompted with plain text (no chat template), but LLaMA-Factory renders every row with "
            "its chat template: the trainer's prompt will differ from the one the pass rates were measured on"
        )
    problem_ids = rows.column("problem_id").to_pylist()
    order = split_and_shuffle(problem_ids, config.seed, config.val_fraction)
    plan = _plan_rows(rows, problem_ids, order, config)
    settings = config.settings()
    provenance = {"format": config.format, "weights_as": config.weights_as, "weighting": weighting, "settings_hash": settings_hash(settings)}
    if record is not None:
        provenance[PROMPT_KEY] = record
    metadata = stage_metadata("export", provenance)

    staging = output.parent / f".{output.name}{TEMP_MARK}{secrets.token_hex(4)}"
    extras = extras_dir(output)
    extras_staging = output.parent / f".{extras.name}{TEMP_MARK}{secrets.token_hex(4)}"
    try:
        splits, columns = _write_splits(rows, plan, record, config, staging, metadata)
        result = ExportResult(
            output=config.output,
            format=config.format,
            num_rows=sum(len(indices) for indices, _ in plan.values()),
            num_problems=joined.num_problems,
            splits=splits,
            dropped=joined.dropped,
            short_references=joined.short_references,
            weight_statistics=weight_summary(_problem_weights(rows) * plan.factor),
            normalizing_factor=plan.factor,
            adjacent_copies=plan.adjacent,
        )
        manifest = _manifest(config, result, weighting, settings, columns, prompt)
        extras_staging.mkdir(parents=True)
        if config.format == "llamafactory":
            manifest["llamafactory"] = write_dataset_info(extras_staging, _split_paths(output, config, splits))
        write_json(manifest, extras_staging / MANIFEST)
        with atomic_path(extras_staging / CARD) as tmp:
            tmp.write_text(dataset_card(manifest))
        _publish(staging, output, existing)
        _publish(extras_staging, extras, "export" if extras.exists() else "none", quiet=True)
    finally:
        for temporary in (staging, extras_staging):
            if temporary.is_dir():
                shutil.rmtree(temporary)
            elif temporary.exists():
                temporary.unlink()
    return result


def _write_splits(
    rows: pa.Table, plan: "_Plan", record: dict | None, config: ExportConfig, staging: Path, metadata: dict
) -> tuple[dict, list[str]]:
    """Write each split's rows, in the plan's order and with its weights; returns the splits' entries and the columns."""
    problem_ids = rows.column("problem_id").to_pylist()
    splits, columns = {}, []
    for name, (indices, row_weight) in plan.items():
        chosen = rows.take(pa.array(indices, pa.int64()))
        chosen = chosen.set_column(chosen.column_names.index("weight"), "weight", pa.array(row_weight, pa.float64()))
        table = format_table(
            chosen, config.format, data_source=config.data_source, prompts=_prompts(chosen, record),
            with_weight=config.weights_as == "column",
        )
        if is_file_output(config.output):
            files = [entry | {"file": Path(config.output).name} for entry in write_single(table, staging, metadata)]
        else:
            files = write_shards(table, staging / name, config.rows_per_shard, metadata)
            files = [entry | {"file": f"{name}/{entry['file']}"} for entry in files]
        splits[name] = {"rows": len(indices), "problems": len({problem_ids[i] for i in indices}), "files": files}
        columns = table.column_names
    return splits, columns


class _Plan(dict):
    """Per split: (row indices in written order, each row's weight); plus the normalizing factor."""

    factor: float = 1.0
    adjacent: int = 0


def _plan_rows(rows: pa.Table, problem_ids: list[str], order: dict[str, np.ndarray], config: ExportConfig) -> _Plan:
    """Which rows each split writes, in which order, with which weight (see `export.weighting`)."""
    plan = _Plan()
    problem_weight = rows.column("weight").to_numpy()
    if config.weights_as == "column":
        shares = row_weights(problem_ids, problem_weight)
        plan.factor = normalizing_factor(shares[order["train"]], config.normalize)
        for name, indices in order.items():
            plan[name] = (indices, shares[indices] * plan.factor)
        return plan
    for name, indices in order.items():
        # One entry per problem of the split, in the shuffled order; its rows are its references.
        rows_of: dict[str, list[int]] = {}
        for index in sorted(indices):
            rows_of.setdefault(problem_ids[index], []).append(int(index))
        names = list(dict.fromkeys(problem_ids[i] for i in indices))
        weight_of = np.array([problem_weight[rows_of[pid][0]] for pid in names])
        total = config.copies if (config.copies is not None and name == "train") else len(names)
        if not weight_of.sum() > 0:
            counts = np.ones(len(names), dtype=np.int64)  # all weights 0 (--keep-zero): one copy each
        else:
            counts = copy_counts(weight_of, total, config.seed)
        picked, labels = [], []
        for label, (pid, count) in enumerate(zip(names, counts)):
            refs = rows_of[pid]
            picked += [refs[k % len(refs)] for k in range(int(count))]
            labels += [label] * int(count)
        arrangement = spread_order(np.array(labels, dtype=np.int64), config.seed)
        placed = np.array(picked, dtype=np.int64)[arrangement]
        plan.adjacent += adjacent_pairs(np.array(labels)[arrangement])
        plan[name] = (placed, np.ones(len(placed)))
    return plan


def _problem_weights(rows: pa.Table) -> np.ndarray:
    """One weight per exported problem, as `paced weight` gave it (every row of the join carries it)."""
    return rows.group_by("problem_id").aggregate([("weight", "min")]).column("weight_min").to_numpy()


def _prompts(rows: pa.Table, record: dict | None) -> list | None:
    """Each row's prompt as rolled out, from the weights' prompt record (None without one)."""
    if record is None:
        return None
    messages = rows.column("messages").to_pylist() if "messages" in rows.column_names else [None] * rows.num_rows
    return [rendered_prompt(record, text, chat) for text, chat in zip(rows.column("prompt").to_pylist(), messages)]


def _check_output(output: Path, config: ExportConfig) -> str:
    """What is at the output path now: "none", "export" or "other" (both replaced once the new export is written).

    `claim_output` applies the rule every command follows (#26): never an input, never a folder
    holding files paced did not write, another output or an export made with other settings
    only with --overwrite. The old export stays until the new one is complete (`_publish`).
    """
    hashed = {name: getattr(config, name) for name in ("problems", "weights", "references")}
    recorded = {name: {"path": path, "sha256": input_digest(path)} for name, path in hashed.items() if path is not None}
    reads = hashed | {"eval": config.eval_problems, "tokenizer": config.tokenizer}  # read, not hashed
    claim_output(
        config.output, kind="export", inputs=reads, overwrite=config.overwrite, settings=config.settings(),
        recorded_inputs=recorded, clear=False,
    )
    cwd = Path.cwd().resolve()
    if cwd == output or output in cwd.parents:
        # The export replaces the whole folder: never the one the command runs in.
        raise InputError(f"{config.output}: contains the working directory, which replacing it would delete; choose another -o")
    if not output.exists() or (output.is_dir() and not any(output.iterdir())):
        return "none"
    manifest = export_manifest(output) or (read_manifest(output) if output.is_dir() else None)
    return "export" if manifest is not None and manifest.get("stage") == "export" else "other"


def _publish(staging: Path, output: Path, existing: str, quiet: bool = False) -> None:
    """Move the finished export (a folder or one file) into place, replacing what was there."""
    if existing != "none" and output.exists():
        if not quiet:
            say(f"replacing the {'earlier export' if existing == 'export' else 'contents'} in {output}")
        retired = output.parent / f".{output.name}{TEMP_MARK}old-{secrets.token_hex(4)}"
        output.rename(retired)
        staging.rename(output)
        shutil.rmtree(retired) if retired.is_dir() else retired.unlink()
    else:
        if output.is_dir():
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


def _split_paths(output: Path, config: ExportConfig, splits: dict) -> dict[str, Path]:
    """Where each split's data lands once published: the split folder, or the one file."""
    if is_file_output(config.output):
        return {name: output for name in splits}
    return {name: output / name for name in splits}


def _manifest(
    config: ExportConfig, result: ExportResult, weighting: dict, settings: dict, columns: list[str], prompt: PromptChoice
) -> dict:
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
        "weights_as": config.weights_as,
        "normalize": config.normalize,
        "normalizing_factor": result.normalizing_factor,
        "copies": {split: entry["rows"] for split, entry in result.splits.items()} if config.weights_as == "copies" else None,
        "adjacent_copies": result.adjacent_copies,
        "data_source": config.data_source if config.format == "verl" else None,
        "prompt_format": prompt.record,
        "prompt_source": prompt.source,
        "prompt_format_recorded": prompt.recorded,
        "settings": settings,
        "settings_hash": settings_hash(settings),
        "inputs": inputs,
        "versions": package_versions(),
        "command": command_line(),
    }


def read_export(path: str | Path, split: str = "train") -> pa.Table:
    """Read one split of a native export, or a table of export rows from any input the one reader takes.

    Args:
        path: an export written by `paced export --format native` (a folder, or NAME.parquet with
            its manifest in NAME.parquet.paced/), or a table of export rows in any format
            (`tables.read_stage_table`: JSONL, CSV, a Parquet file or folder, ..., "-"), which is
            all train split.
        split: "train", or "val" when the export has a val split.

    Raises:
        InputError: the path is a trl/verl/llamafactory export, has no such split, or is an
            export folder whose manifest is gone, or is a folder that holds no table (an
            extras folder, a model or run folder).
        SchemaError: the rows do not match `schema.EXPORT`.
    """
    target = Path(path)
    if str(path) != STDIO and target.is_dir():
        refuse_folder_that_is_not_a_table(target)
    manifest = export_manifest(target) if str(path) != STDIO and target.exists() else None
    if manifest is None:
        if target.is_dir() and any((target / name).is_dir() for name in ("train", "val")):
            raise InputError(
                f"{path}: holds train/val folders but no export manifest.json in {extras_dir(target)}; "
                "re-run 'paced export' (the manifest says which files are which split)"
            )
        if split != "train":
            raise InputError(f"{path}: is a table of export rows without a manifest, so all of it is train; it has no '{split}' split")
        return read_stage_table(str(path), EXPORT)
    if manifest.get("stage") != "export":
        raise InputError(f"{path}: holds {a_or_an(repr(manifest.get('stage')))} output, not an export; make one with 'paced export --format native'")
    if manifest.get("format") != "native":
        raise InputError(f"{path}: is {a_or_an(repr(manifest.get('format')))} export; re-export with --format native to read it here")
    splits = manifest.get("splits", {})
    if split not in splits:
        raise InputError(f"{path}: has no '{split}' split (it has {', '.join(splits)})")
    tables = [conform(read_parquet(file), EXPORT, str(file)) for file in split_files(target, manifest, split)]
    return pa.concat_tables(tables)


def export_summary(directory: str | Path) -> dict | None:
    """The manifest of an export, or None: for `paced distill` to say what the export left out."""
    return export_manifest(directory)
