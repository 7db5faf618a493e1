"""What `paced export` says about its output: statistics, the dataset card, status lines, `paced inspect`.

    stats = weight_summary(np.array([0.5, 1.0, 1.5]))
    text = dataset_card(manifest)       # markdown, written next to the shards as README.md
    render_export_inspection(inspect_export("data/", manifest))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from paced_curate.errors import InputError
from paced_curate.export.config import ExportResult
from paced_curate.export.layout import export_manifest, split_files
from paced_curate.export.prompting import describe, same_prompt
from paced_curate.io import list_parts, read_parquet
from paced_curate.report import bar_chart, equal_bins, key_value_table, say, show
from paced_curate.schema import read_metadata


QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)

REASONS = {
    "no_weight": "without a weight",
    "zero_weight": "with weight 0",
    "no_reference": "without a correct teacher reference",
}
"""Why problems were left out, as the status lines and errors say it."""

COLUMNS = {
    "native": [
        ("problem_id", "string", "the problem's id in the problem set"),
        ("prompt", "string", "the prompt (for chat problems, the last user message; the whole chat is in `messages`)"),
        ("answer", "string", "the gold answer"),
        ("weight", "float64", "this row's PACED weight (its problem's weight, shared among the problem's rows): multiply this example's loss by it"),
        ("pass_rate", "float64 or null", "the student's pass rate p on this problem (null when no sample was scored)"),
        ("n_samples", "int32", "student samples drawn for the problem"),
        ("n_correct", "int32", "of those, how many were graded correct"),
        ("reference", "string", "a correct teacher completion (only when exported with --references)"),
        ("messages", "list of {role, content}", "the chat prompt (only for chat problem sets)"),
    ],
    "trl": [
        ("prompt", "string or list of {role, content}", "the prompt as the student's rollout rendered it: the filled template, or the chat turns (system, user) when a chat template applied (TRL's conversational format; the trainer applies the tokenizer's chat template)"),
        ("completion", "string or list of {role, content}", "a correct teacher completion"),
        ("weight", "float64", "this row's PACED weight: multiply this example's loss by it (absent with --weights-as copies)"),
        ("problem_id", "string", "the problem's id in the problem set"),
    ],
    "verl": [
        ("data_source", "string", "`--data-source`; the default `lighteval/MATH` makes verl's default reward function grade the last `\\boxed{}` answer against `reward_model.ground_truth`"),
        ("prompt", "list of {role, content}", "the chat turns as the student's rollout sent them (system prompt, filled template); verl applies the tokenizer's chat template"),
        ("ability", "string", "always `math`"),
        ("reward_model", "{style, ground_truth}", "`rule` and the gold answer, for a rule-based reward"),
        ("extra_info", "{index, weight, pass_rate, problem_id}", "the row's position in its split, its PACED weight, the student's pass rate and the problem id"),
    ],
    "llamafactory": [
        ("messages", "list of {role, content: [{type, value}], loss_weight}", "LLaMA-Factory v1's conversation: the prompt turns (system, user) with `loss_weight` 0, then the teacher reference as the assistant turn with `loss_weight` = this row's PACED weight"),
        ("problem_id", "string", "the problem's id in the problem set (LLaMA-Factory ignores it)"),
    ],
}


def weight_summary(weights: np.ndarray) -> dict:
    """Statistics of exported weights (one value per problem): count, mean, min, max, quantiles, ESS.

    The effective sample size is (sum w)^2 / sum w^2: how many equally weighted problems the
    weighted set is worth.

    Example:
        >>> weight_summary(np.array([1.0, 1.0, 0.0, 2.0]))["effective_sample_size"]
        2.6666666666666665
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.size == 0:
        return {"problems": 0}
    squares = float(np.sum(weights**2))
    ess = float(np.sum(weights)) ** 2 / squares if squares > 0 else 0.0
    stats = {
        "problems": int(weights.size),
        "mean": float(np.mean(weights)),
        "min": float(np.min(weights)),
        "max": float(np.max(weights)),
        "zero": int(np.sum(weights == 0)),
        "effective_sample_size": ess,
        "effective_fraction": ess / weights.size,
    }
    for q, value in zip(QUANTILES, np.quantile(weights, QUANTILES)):
        stats[f"p{round(q * 100)}"] = float(value)
    return stats


def dataset_card(manifest: dict) -> str:
    """The README.md of an export folder: what the columns mean, how to apply the weight, counts."""
    fmt = manifest["format"]
    copies = manifest.get("weights_as") == "copies"
    lines = [
        "# PACED-weighted dataset",
        "",
        f"Written by `paced export` (paced {manifest['paced_version']}) in the `{fmt}` format: "
        + (
            "each problem appears a number of times proportional to its weight w(p)"
            if copies
            else "each example carries a weight w(p)"
        )
        + " computed from the student's pass rate p on its problem (PACED, arXiv 2603.11178).",
        "",
        "## Files",
        "",
        "| split | rows | problems | files |",
        "|---|---:|---:|---|",
    ]
    for name, split in manifest["splits"].items():
        files = ", ".join(f"`{entry['file']}`" for entry in split["files"])
        lines.append(f"| {name} | {split['rows']:,} | {split['problems']:,} | {files} |")
    lines += ["", "## Columns", ""]
    for name, type_, meaning in COLUMNS[fmt]:
        if name not in manifest.get("columns", []) and (fmt == "native" and name in ("reference", "messages") or name == "weight"):
            continue
        if copies and name in ("weight", "extra_info"):
            meaning += " (with weighted copies every weight is 1: the weights are in the copy counts)"
        lines.append(f"- `{name}` ({type_}): {meaning}")
    extra = [c for c in manifest.get("columns", []) if c not in {name for name, _, _ in COLUMNS[fmt]}]
    if extra:
        lines.append(f"- also passed through from the problem set: {', '.join(f'`{c}`' for c in extra)}")
    lines += _weight_section(manifest, fmt)
    lines += _prompt_section(manifest, fmt)
    lines += ["", "## Where it came from", ""]
    weighting = manifest.get("weighting") or {}
    if weighting:
        lines.append("Weighting: " + ", ".join(f"{key}={value}" for key, value in weighting.items()) + ".")
    stats = manifest["weight_statistics"]
    if stats.get("problems"):
        lines.append(
            f"Weights over the {stats['problems']:,} exported problems: mean {stats['mean']:.4g}, "
            f"min {stats['min']:.4g}, max {stats['max']:.4g}, effective sample size {stats['effective_sample_size']:.4g}."
        )
    dropped = {reason: count for reason, count in manifest["dropped"].items() if count}
    if dropped:
        shown = ", ".join(f"{count:,} ({reason.replace('_', ' ')})" for reason, count in dropped.items())
        lines.append(f"Left out: {shown} problems.")
    lines += ["", "Inputs (sha256):", ""]
    for name, entry in manifest["inputs"].items():
        lines.append(f"- {name}: `{entry['path']}` ({entry['sha256']})")
    lines += ["", "Command:", "", "```", " ".join(manifest["command"]), "```", ""]
    return "\n".join(lines)


def _weight_section(manifest: dict, fmt: str) -> list[str]:
    settings = manifest["settings"]
    refs = settings.get("refs_per_problem", 1) if settings.get("references") else 1
    if manifest.get("weights_as") == "copies":
        copies = manifest.get("copies") or {}
        return [
            "",
            "## Weighted copies: how the weights are applied",
            "",
            "There is no weight to apply: each row counts once (`weight`, where the format has one, is 1). "
            "Instead each problem appears a number of times proportional to its PACED weight: problem i gets "
            "`c_i` rows, where `c_i` rounds its exact share `s_i = w_i * N / sum(w)` by systematic sampling "
            f"(one seeded offset, `--seed {settings['seed']}`), so every `c_i` is `floor(s_i)` or `ceil(s_i)` "
            f"and the rows total N ({', '.join(f'{split}: {count:,}' for split, count in copies.items())}).",
            "",
            "What this changes: a trainer that samples rows uniformly optimises exactly the weighted objective "
            "in expectation (`E[c_i] = s_i`, problem by problem), but not row for row: the rounding moves each "
            "problem's share by less than one row, repeated rows add gradient variance (the same example twice "
            "instead of two examples), and problems with a share below one appear once or not at all. Copies of "
            "one problem are spread through the shuffle, never next to each other"
            + (f" (except {manifest['adjacent_copies']} pairs that could not be separated)." if manifest.get("adjacent_copies") else ".")
            + (f" A problem with several teacher references cycles through them, up to {refs} per problem." if refs > 1 else ""),
        ] + (_llamafactory_files(manifest) if fmt == "llamafactory" else [])
    factor = manifest.get("normalizing_factor", 1.0)
    if fmt == "llamafactory":
        return _llamafactory_section(manifest, refs, factor)
    where = "`extra_info.weight`" if fmt == "verl" else "`weight`"
    lines = [
        "",
        "## How to apply the weight",
        "",
        f"An example's loss is the mean of its per-token losses over the response tokens; multiply it by {where}.",
        "A batch's loss is `sum_i w_i * loss_i / batch_size`: divide by the number of examples in the batch,",
        "not by the sum of their weights, so that weight-1 examples train exactly as unweighted ones do",
        "(`paced distill` and `paced_curate.integrations.trl.PacedSFTTrainer` do the same).",
        "",
    ]
    if refs > 1:
        lines.append(
            f"A problem has up to {refs} rows here (one per correct teacher reference); its rows share its weight "
            "equally, so they sum to the problem's weight whatever the number of references."
        )
    if manifest.get("normalize") == "rows":
        lines.append(
            f"The row weights are normalised over the train split's rows (the rows a trainer averages over): their mean "
            f"there is 1 (every weight from `paced weight` was multiplied by {factor:.6g}; val rows by the same factor)."
        )
    else:
        lines.append("The weights are as `paced weight` wrote them (`--normalize none`), divided among each problem's rows.")
    return lines


def _llamafactory_section(manifest: dict, refs: int, factor: float) -> list[str]:
    lines = [
        "",
        "## How LLaMA-Factory applies the weight",
        "",
        "The rows are LLaMA-Factory's v1 data format (`llamafactory.v1`): each conversation's assistant turn (the "
        "teacher reference) has `loss_weight` = the row's PACED weight, the prompt turns 0. LLaMA-Factory gives every "
        "token of a turn its `loss_weight` and takes `sum(w_t * nll_t) / sum(w_t)` over the tokens of a micro-batch. "
        "So a weight acts relative to the other rows of its micro-batch, and a longer reference counts more than a "
        "short one of the same weight: with `micro_batch_size: 1` the weight cancels out entirely (only weight 0 "
        "still masks a row). Train with a micro-batch of several rows, or export with `--weights-as copies` "
        "(every `loss_weight` 1, problems repeated in proportion to their weights), which holds at any batch size. "
        "`paced distill` instead multiplies each example's token-averaged loss by its weight and divides by the "
        "number of examples.",
    ] + _llamafactory_files(manifest)
    if refs > 1:
        lines.append(f"A problem has up to {refs} rows (one per correct teacher reference); they share its weight equally.")
    if manifest.get("weights_as") != "copies" and manifest.get("normalize") == "rows":
        lines.append(f"The row weights are normalised to mean 1 over the train rows (x{factor:.6g}).")
    lines.append(
        "Checked against the fields LLaMA-Factory's loader reads (its `Message`/`Content` types and the local loader's "
        "`datasets.load_dataset` call); LLaMA-Factory itself is not installed beside this paced (it pins transformers "
        "<= 5.6 and datasets <= 4.0)."
    )
    return lines


def _llamafactory_files(manifest: dict) -> list[str]:
    files = " and ".join(f"`{name}`" for name in manifest.get("llamafactory") or [])
    return [
        "",
        f"Point LLaMA-Factory at the data with {files} beside this card (`train_dataset:` and `eval_dataset:` in its "
        "training YAML): each names one split by absolute path, as its local loader reads it, so a moved export "
        "needs its paths edited.",
    ]


def _prompt_section(manifest: dict, fmt: str) -> list[str]:
    record = manifest.get("prompt_format")
    source = manifest.get("prompt_source", "record" if record is not None else "none")
    lines = ["", "## The prompt", ""]
    if record is None:
        return lines + [
            "Nothing says how the student's prompts were rendered: the weights record no prompt format (they were made "
            "from samples another tool generated, by an older paced, or came through a pipe) and no --template, "
            "--system-prompt or --chat-template was given. So the rows carry the problems' own text, which may differ "
            "from the prompt the pass rates were measured on."
        ]
    recorded = manifest.get("prompt_format_recorded")
    if source == "flags" and recorded is None:
        origin = "the prompt flags given to `paced export` (the weights record none)"
    elif source == "flags" and not same_prompt(record, recorded):
        origin = f"the prompt flags given to `paced export`, overriding the weights' record ({describe(recorded)})"
    elif source == "flags":
        origin = "the prompt flags given to `paced export`, which agree with the weights' record"
    else:
        origin = "the record `paced rollout` wrote when it prompted the student (carried by grade and weight)"
    if fmt == "native":
        carried = "the rows hold the problems as they are (`prompt`, `messages`) and `paced distill` renders them the same way"
    else:
        carried = "the prompt turns of `messages` carry that prompt" if fmt == "llamafactory" else "`prompt` carries that prompt"
    lines.append(
        f"The pass rates behind the weights were measured on the prompt the student was shown; {carried}, as "
        f"{origin}: {describe(record)}."
    )
    if fmt in ("verl", "llamafactory") and record["chat"] == "off":
        lines.append(
            f"The student was prompted with plain text, but {'verl' if fmt == 'verl' else 'LLaMA-Factory'} applies a chat "
            "template to the prompt: to train on the same text, use a tokenizer (or template) without one."
        )
    return lines


def problems_count(count: int) -> str:
    """A count of problems in words: "1 problem", "2 problems"."""
    return f"{count:,} problem" + ("" if count == 1 else "s")


def _shard_files(path: Path, manifest: dict | None) -> list[Path]:
    if manifest is not None:
        return [file for split in manifest.get("splits", {}) for file in split_files(path, manifest, split)]
    if path.is_file():
        return [path]
    return list_parts(path) or sorted(path.glob("*/part-*.parquet"))


def _weight_column(table: pa.Table) -> np.ndarray:
    """Each row's weight, wherever the format keeps it."""
    if "extra_info" in table.column_names:
        return pc.struct_field(table.column("extra_info"), "weight").to_numpy()
    if "weight" in table.column_names:
        return table.column("weight").to_numpy()
    if "messages" in table.column_names:  # llamafactory: the assistant turn's loss_weight
        return np.array([turns[-1]["loss_weight"] for turns in table.column("messages").to_pylist()], dtype=np.float64)
    return np.ones(table.num_rows)  # trl copies: every row counts once


def _row_problems(table: pa.Table) -> list[str]:
    """Each row's problem id, wherever the format keeps it (none in a table without one)."""
    if "extra_info" in table.column_names:
        return pc.struct_field(table.column("extra_info"), "problem_id").to_pylist()
    return table.column("problem_id").to_pylist() if "problem_id" in table.column_names else []


def inspect_export(path: str, manifest: dict | None, table: pa.Table | None = None) -> dict:
    """The `paced inspect` report of an export: its manifest and a histogram of the rows' weights.

    A `--weights-as copies` export (every row weighs 1; a problem's weight is its number of
    rows) gets a histogram of copies per problem as well (#26).

    Args:
        path: an export folder (or one of its shards, or a split folder), or the source of `table`.
        manifest: the folder's manifest, or None for a shard or split folder.
        table: export rows already read (from JSONL, CSV, a pipe, ...: no shards to open), or None.
    """
    if table is not None:
        schema, tables = table.schema, [table]
    else:
        if manifest is None or manifest.get("stage") != "export":
            manifest = export_manifest(path)
        files = _shard_files(Path(path), manifest)
        if not files:
            raise InputError(f"{path}: holds no export shards")
        schema = pq.read_schema(files[0])
        wanted = [name for name in ("extra_info", "weight", "messages") if name in schema.names][:1]
        if "extra_info" not in wanted and "problem_id" in schema.names:
            wanted.append("problem_id")  # for the copies per problem
        tables = [read_parquet(f, wanted) for f in files]
    weights = np.concatenate([_weight_column(part) for part in tables])
    meta = read_metadata(schema)
    provenance = meta.get("provenance") or {}
    weights_as = (manifest or {}).get("weights_as") or provenance.get("weights_as") or (
        "copies" if not {"extra_info", "weight", "messages"} & set(schema.names) else "column"
    )
    labels, counts = equal_bins(weights.tolist(), 10, low=0.0, high=max(float(weights.max(initial=0.0)), 1e-12))
    report = {
        "rows": int(weights.size),
        "format": (manifest or {}).get("format") or (meta.get("provenance") or {}).get("format") or ("native" if table is not None else None),
        "weights_as": weights_as,
        "schema": [[f.name, str(f.type)] for f in schema],
        "schema_version": meta.get("schema_version"),
        "provenance": meta.get("provenance"),
        "weight_histogram": {"labels": labels, "counts": counts},
    }
    ids = [pid for part in tables for pid in _row_problems(part)]
    if weights_as == "copies" and ids:
        copies = np.unique(ids, return_counts=True)[1]
        report["problems"] = int(copies.size)
        report["copies_per_problem"] = {"min": int(copies.min()), "max": int(copies.max()), "counts": {
            str(value): int(number) for value, number in zip(*np.unique(copies, return_counts=True))
        }}
    if manifest is not None:
        report["manifest"] = manifest
    return report


def render_export_inspection(report: dict) -> None:
    """Print an export's counts, weighting and weight histogram with rich on stderr."""
    manifest = report.get("manifest") or {}
    rows = [("format", report.get("format")), ("weights as", report.get("weights_as"))]
    for name, split in manifest.get("splits", {}).items():
        files = len(split["files"])
        rows.append((name, f"{split['rows']:,} rows, {problems_count(split['problems'])}, {files} file" + "s" * (files != 1)))
    rows += [(f"dropped: {reason.replace('_', ' ')}", count) for reason, count in manifest.get("dropped", {}).items()]
    rows += [(f"weighting: {key}", value) for key, value in manifest.get("weighting", {}).items()]
    stats = manifest.get("weight_statistics", {})
    rows += [(f"weight {key}", stats[key]) for key in ("mean", "min", "max", "effective_sample_size") if key in stats]
    show(key_value_table("export", rows))
    copies = report.get("copies_per_problem")
    if copies is not None:
        # Weighted copies: every row weighs 1, a problem's weight is its number of copies.
        counts = copies["counts"]
        labels = [f"{k} cop{'y' if k == '1' else 'ies'}" for k in counts]
        say(bar_chart(labels, list(counts.values()), title=f"problems by number of copies ({report['rows']:,} rows, each of weight 1)"))
        return
    histogram = report["weight_histogram"]
    say(bar_chart(histogram["labels"], histogram["counts"], title="weight per row"))


def render_export_result(result: ExportResult) -> None:
    """Print what an export wrote and left out, one status line each, on stderr."""
    parts = ", ".join(
        f"{name} {split['rows']:,} rows in {len(split['files'])} file" + ("" if len(split["files"]) == 1 else "s")
        for name, split in result.splits.items()
    )
    say(f"exported {result.num_rows:,} rows ({result.num_problems:,} problems, {result.format}) to {result.output}: {parts}")
    hints = {"no_weight": " (--missing drop)", "zero_weight": " (--keep-zero keeps them)", "no_reference": ""}
    for reason, count in result.dropped.items():
        if count:
            say(f"dropped {problems_count(count)} {REASONS[reason]}{hints[reason]}")
    if result.short_references:
        say(f"{problems_count(result.short_references)} had fewer correct references than --refs-per-problem")
    if result.adjacent_copies:
        say(f"{result.adjacent_copies} pairs of copies of one problem are next to each other (one problem has over half the rows)")
    if result.normalizing_factor != 1.0:
        say(f"row weights normalised to mean 1 over the train rows (x{result.normalizing_factor:.4g})")
    stats = result.weight_statistics
    say(
        f"problem weights: mean {stats['mean']:.4g}, min {stats['min']:.4g}, max {stats['max']:.4g}, "
        f"effective sample size {stats['effective_sample_size']:.4g}"
    )
