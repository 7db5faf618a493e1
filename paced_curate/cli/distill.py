"""paced distill: the minimal trainer for the shards."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer

from paced_curate.cli.app import app, fails_cleanly, print_json
from paced_curate.cli.options import AsJsonOption


@app.command("distill")
@fails_cleanly
def distill_command(
    shards: Annotated[str, typer.Argument(help="Export folder from 'paced export --format native' (its train split).")],
    student: Annotated[str, typer.Option("--student", help="Local folder of the student model (trained).")],
    teacher: Annotated[str, typer.Option("--teacher", help="Local folder of the teacher model (same tokenizer vocabulary).")],
    output: Annotated[str, typer.Option("--output", "-o", help="Run directory: metrics.jsonl, checkpoints/, final/.")],
    loss: Annotated[str, typer.Option(help="fkl (on the references), rkl (on student samples), fkl-then-rkl, or akl (adaptive fkl/rkl mix per token, on the references).")] = "fkl",
    switch_at: Annotated[float, typer.Option("--switch-at", help="fkl-then-rkl: fraction of the steps trained with fkl (floor; at least one step of each stage).")] = 0.5,
    weights: Annotated[str, typer.Option(help="on: scale each problem's loss by its PACED weight; off: unweighted baseline.")] = "on",
    reweight: Annotated[str, typer.Option(help="static: the export's weights throughout; online: re-estimate each problem's pass rate from the student's graded samples as it trains (#25).")] = "static",
    reweight_halflife: Annotated[Optional[int], typer.Option("--reweight-halflife", help="online: steps after which a graded sample counts half (0: no decay; default 40).")] = None,
    explore: Annotated[Optional[float], typer.Option(help="online, rkl stage: chance that a weight-0 problem is sampled and graded (not trained on) each time the data stream passes it (default 0.1).")] = None,
    reweight_every: Annotated[int, typer.Option("--reweight-every", help="online, forward-KL stage: every N steps sample and grade the student on every training problem (0: never).")] = 0,
    reweight_samples: Annotated[Optional[int], typer.Option("--reweight-samples", help="--reweight-every: samples per problem (default 4).")] = None,
    reweight_grader: Annotated[Optional[str], typer.Option("--reweight-grader", help="online: grader of the student's samples, as paced grade --grader (default math).")] = None,
    reweight_workers: Annotated[Optional[int], typer.Option("--reweight-workers", help="online: grading processes (default 1).")] = None,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", help="Optimizer steps (or give --epochs; default 1 epoch).")] = None,
    epochs: Annotated[Optional[float], typer.Option(help="Passes over the examples (may be fractional).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Examples per optimizer step.")] = 32,
    micro_batch_size: Annotated[Optional[int], typer.Option("--micro-batch-size", help="Examples per forward pass (gradient accumulation).")] = None,
    lr: Annotated[float, typer.Option(help="Peak AdamW learning rate.")] = 1e-5,
    min_lr: Annotated[Optional[float], typer.Option("--min-lr", help="Learning rate at the end of the cosine (default lr/10).")] = None,
    warmup_steps: Annotated[Optional[int], typer.Option("--warmup-steps", help="Linear warm-up steps (default min(10, a tenth of the steps)).")] = None,
    weight_decay: Annotated[float, typer.Option("--weight-decay", help="AdamW weight decay (matrices only).")] = 0.0,
    grad_clip: Annotated[float, typer.Option("--grad-clip", help="Clip the gradient norm to this (0: off).")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the data order, rkl samples and evaluation samples.")] = 0,
    max_length: Annotated[Optional[int], typer.Option("--max-length", help="Longest prompt + response in tokens (default: the model's).")] = None,
    chunk_size: Annotated[int, typer.Option("--chunk-size", help="Response positions whose logits are computed at a time.")] = 1024,
    gradient_checkpointing: Annotated[bool, typer.Option("--gradient-checkpointing", help="Recompute the student's activations in backward.")] = False,
    rkl_max_tokens: Annotated[int, typer.Option("--rkl-max-tokens", help="rkl: most tokens sampled per prompt.")] = 512,
    rkl_temperature: Annotated[float, typer.Option(
        "--rkl-temperature",
        help="rkl: sampling temperature. Only 1 is on-policy: the KL is against the student's temperature-1 distribution, "
        "so other values train on samples from a sharper (<1) or flatter (>1) distribution than the one the KL uses.",
    )] = 1.0,
    prompt_format: Annotated[str, typer.Option(
        "--prompt-format",
        help="record: render prompts as the export records the rollout did (flags that contradict it are refused); "
        "flags: render them from --template, --system-prompt, --chat-template (recorded in run.json). Also for --eval.",
    )] = "record",
    template: Annotated[Optional[str], typer.Option(help="Prompt template; {prompt} is replaced by the problem (default: as the export records).")] = None,
    system_prompt: Annotated[Optional[str], typer.Option("--system-prompt", help="System prompt (default: as the export records).")] = None,
    chat_template: Annotated[Optional[str], typer.Option(
        "--chat-template", help="auto, on or off: apply the tokenizer's chat template (default: as the export records, else auto).",
    )] = None,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", help="Write a checkpoint every N steps (0: none).")] = 200,
    keep_checkpoints: Annotated[int, typer.Option("--keep-checkpoints", help="Keep the newest N checkpoints (0: all).")] = 2,
    eval_problems: Annotated[Optional[str], typer.Option("--eval", help="Held-out problems: sample + grade the student on them.")] = None,
    eval_every: Annotated[int, typer.Option("--eval-every", help="Evaluate every N steps (and before and after training); with --reweight online also how often the frontier is recorded.")] = 100,
    eval_samples: Annotated[int, typer.Option("--eval-samples", help="k samples per held-out problem; pass@1 averages them.")] = 4,
    eval_max_tokens: Annotated[int, typer.Option("--eval-max-tokens", help="Most tokens per evaluation sample.")] = 512,
    eval_temperature: Annotated[float, typer.Option("--eval-temperature", help="Evaluation sampling temperature.")] = 1.0,
    eval_batch_size: Annotated[int, typer.Option("--eval-batch-size", help="Sequences per generate call when evaluating.")] = 64,
    eval_workers: Annotated[Optional[int], typer.Option("--eval-workers", help="Grading processes (default: number of CPUs).")] = None,
    eval_overlap: Annotated[str, typer.Option("--eval-overlap", help="Held-out problems that are also training problems (normalised prompt; gold answer + prompt): error, warn or allow.")] = "warn",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda (bf16 autocast on CUDA).")] = "auto",
    log_every: Annotated[int, typer.Option("--log-every", help="Print the log line every N steps.")] = 10,
    resume: Annotated[bool, typer.Option(help="Continue from the newest checkpoint in the run directory.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Delete an earlier run in the run directory and start afresh.")] = False,
    as_json: AsJsonOption = False,
) -> None:
    """Distill the teacher into the student on PACED-weighted data (forward KL, reverse KL, or both).

    Example: paced distill data/ --student models/student --teacher models/teacher -o runs/paced --loss fkl-then-rkl
    """
    from paced_curate.distill import DistillConfig, render_distill_result, run_distill

    config = DistillConfig(
        shards=shards, student=student, teacher=teacher, output=output, loss=loss, switch_at=switch_at, weights=weights,
        max_steps=max_steps, epochs=epochs, batch_size=batch_size, micro_batch_size=micro_batch_size, lr=lr, min_lr=min_lr,
        reweight=reweight, reweight_halflife=reweight_halflife, explore=explore, reweight_every=reweight_every,
        reweight_samples=reweight_samples, reweight_grader=reweight_grader, reweight_workers=reweight_workers, warmup_steps=warmup_steps, weight_decay=weight_decay, grad_clip=grad_clip, seed=seed, max_length=max_length,
        chunk_size=chunk_size, gradient_checkpointing=gradient_checkpointing, rkl_max_tokens=rkl_max_tokens,
        rkl_temperature=rkl_temperature, prompt_format=prompt_format, template=template, system_prompt=system_prompt, chat_template=chat_template,
        checkpoint_every=checkpoint_every, keep_checkpoints=keep_checkpoints, eval_problems=eval_problems,
        eval_every=eval_every, eval_samples=eval_samples, eval_max_tokens=eval_max_tokens, eval_temperature=eval_temperature,
        eval_batch_size=eval_batch_size, eval_workers=eval_workers, eval_overlap=eval_overlap, device=device, log_every=log_every, resume=resume,
        overwrite=overwrite,
    )
    result = run_distill(config)
    render_distill_result(result)
    if as_json and os.environ.get("RANK", "0") == "0":  # (#17) under torchrun, one result: rank 0's
        print_json(result.as_dict())
