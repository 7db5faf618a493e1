"""paced export: weighted shards any trainer can read."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from paced_curate.cli.app import app, fails_cleanly, print_json
from paced_curate.cli.options import AsJsonOption


@app.command("export")
@fails_cleanly
def export_command(
    problems: Annotated[str, typer.Argument(help="The problem set the weights were computed for (file, folder or -).")],
    weights: Annotated[str, typer.Argument(help="The weights from 'paced weight' (file, folder or -).")],
    output: Annotated[
        str, typer.Option("--output", "-o", help="Export folder (train/, val/) or NAME.parquet to write; an earlier export made with the same settings is replaced.")
    ],
    references: Annotated[
        Optional[str], typer.Option(
            "--references", help="Graded teacher samples ('paced grade' output, or any table with an id, completion and verdict): correct ones become references."
        )
    ] = None,
    refs_per_problem: Annotated[int, typer.Option("--refs-per-problem", help="Correct references per problem (one row each).")] = 1,
    format: Annotated[str, typer.Option("--format", help="Row layout: native, trl, verl or llamafactory.")] = "native",
    drop_zero: Annotated[bool, typer.Option("--drop-zero/--keep-zero", help="Leave out problems whose weight is 0.")] = True,
    rows_per_shard: Annotated[int, typer.Option("--rows-per-shard", help="Rows per Parquet file.")] = 50_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the shuffle and the train/val split.")] = 0,
    val_fraction: Annotated[float, typer.Option("--val-fraction", help="Share of problems held out in val/.")] = 0.0,
    missing: Annotated[str, typer.Option("--missing", help="Problems without a weight: drop or error.")] = "drop",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing output made by another command or with other settings (files paced did not write in a folder are never deleted).")
    ] = False,
    id_field: Annotated[Optional[str], typer.Option("--id-field", help="Problem-set column with the ids.")] = None,
    prompt_field: Annotated[Optional[str], typer.Option("--prompt-field", help="Problem-set column with the prompt.")] = None,
    answer_field: Annotated[Optional[str], typer.Option("--answer-field", help="Problem-set column with the gold answer.")] = None,
    split: Annotated[Optional[str], typer.Option("--split", help="Split of a Hugging Face dataset folder.")] = None,
    weights_as: Annotated[
        str, typer.Option("--weights-as", help="column: a weight per row; copies: each problem repeated in proportion to its weight.")
    ] = "column",
    copies: Annotated[Optional[int], typer.Option("--copies", help="With --weights-as copies: train rows (default: its problems).")] = None,
    normalize: Annotated[str, typer.Option("--normalize", help="rows: row weights average 1 over the train rows; none: as weighed.")] = "rows",
    data_source: Annotated[
        str, typer.Option("--data-source", help="verl's data_source (default lighteval/MATH: verl's built-in boxed-answer reward).")
    ] = "lighteval/MATH",
    prompt_format: Annotated[str, typer.Option(
        "--prompt-format",
        help="record: prompts as the weights record the rollout rendered them (contradicting flags are refused); "
        "flags: from --template, --system-prompt, --chat-template.",
    )] = "record",
    template: Annotated[Optional[str], typer.Option(
        help="Prompt template the student was shown ({prompt} is the problem); for weights that record none.",
    )] = None,
    system_prompt: Annotated[Optional[str], typer.Option("--system-prompt", help="System prompt the student was shown.")] = None,
    chat_template: Annotated[Optional[str], typer.Option(
        "--chat-template", help="auto, on or off: whether the student's chat template applied (auto needs --tokenizer).",
    )] = None,
    tokenizer: Annotated[Optional[str], typer.Option(help="The student's tokenizer folder, to decide --chat-template auto.")] = None,
    eval_problems: Annotated[Optional[str], typer.Option("--eval", help="Held-out problems: say how many are also exported problems.")] = None,
    eval_overlap: Annotated[str, typer.Option("--eval-overlap", help="With --eval, overlapping problems are: error, warn or allow.")] = "warn",
    as_json: AsJsonOption = False,
) -> None:
    """Write the weighted dataset: shards with a weight per example, a manifest and a dataset card.

    Example: paced export problems.jsonl weights.parquet -o data/ --references teacher_graded/ --val-fraction 0.05
    """
    from paced_curate.export import ExportConfig, render_export_result, run_export

    config = ExportConfig(
        problems=problems,
        weights=weights,
        output=output,
        references=references,
        refs_per_problem=refs_per_problem,
        format=format,
        drop_zero=drop_zero,
        rows_per_shard=rows_per_shard,
        seed=seed,
        val_fraction=val_fraction,
        missing=missing,
        overwrite=overwrite,
        id_field=id_field,
        prompt_field=prompt_field,
        answer_field=answer_field,
        split=split,
        weights_as=weights_as,
        copies=copies,
        normalize=normalize,
        data_source=data_source,
        prompt_format=prompt_format,
        template=template,
        system_prompt=system_prompt,
        chat_template=chat_template,
        tokenizer=tokenizer,
        eval_problems=eval_problems,
        eval_overlap=eval_overlap,
    )
    result = run_export(config)
    render_export_result(result)
    if as_json:
        print_json(result.as_dict())
