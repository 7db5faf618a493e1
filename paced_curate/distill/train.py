"""`paced distill`: train the student on an export with PACED-weighted fkl, rkl or fkl-then-rkl.

    paced distill data/ --student models/student --teacher models/teacher -o runs/paced --loss fkl-then-rkl
    paced distill data/ --student models/student --teacher models/teacher -o runs/paced --loss fkl-then-rkl --resume
    paced distill data/ --student models/student --teacher models/teacher -o runs/base --weights off

    result = run_distill(DistillConfig(shards="data/", student="models/student", teacher="models/teacher", output="runs/paced"))

Prompts are rendered as the export records the student's rollout rendered them (`prompts.py`,
`--prompt-format`), so the trainer sees the prompt the weights were measured on.

One step: take the step's batch (`data.global_batch`), cut it into micro-batches, get the
response tokens (the references for fkl; the student's own samples for rkl), compute the
per-token KL over the full vocabulary, and backpropagate the PACED loss
sum_i w_i * mean_t(kl_i,t) / batch_size of each micro-batch (they add up to the batch loss).
Then clip, AdamW step, warm-up + cosine schedule. The run directory gets metrics.jsonl (one
JSON object per step, plus evaluation records), checkpoints/ and final/.

The loop below reads top to bottom: run directory, device, data, models, optimizer and
schedule, then the steps with their logging, checkpoints and evaluations, then the summary.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import time
from fractions import Fraction
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from paced_curate.distill import parallel
from paced_curate.distill.checkpoint import load_trainer_state, set_rng_state, trainer_state
from paced_curate.distill.config import DistillConfig
from paced_curate.distill.data import collate, global_batch, load_examples, micro_batches, read_train_split, train_digest, unweighted_note
from paced_curate.distill.evaluate import check_eval_set
from paced_curate.distill.losses import REFERENCE_STAGES, problem_means, weighted_problem_loss
from paced_curate.distill.models import OutputLayers, eos_ids, load_pair, load_tokenizers
from paced_curate.distill.prompts import PromptPlan, prompt_plan, read_prompt_record
from paced_curate.distill.reweight import start_online, write_weights_tables
from paced_curate.distill.rundir import METRICS, MetricsLog, check_resume, claim_run_dir, prepare_run_dir, write_run_file
from paced_curate.errors import ConfigError, PacedError
from paced_curate.report import console, key_value_table, say, show
from paced_curate.rollout.generation import folder_max_positions, max_positions
from paced_curate.rollout.requests import problem_seed


@dataclass
class DistillResult:
    """What one `run_distill` call did."""

    output: str
    final_model: str
    """RUN_DIR/final: the trained student in HF format."""
    steps: int
    """Optimizer steps of the whole run."""
    start_step: int
    """Steps already done when this call started (a resumed checkpoint), else 0."""
    stages: dict
    """Loss -> [first step, last step] (1-based)."""
    examples: int
    final_loss: float | None
    final_kl: float | None
    response_tokens: int
    """Response tokens trained on by this call."""
    tokens_per_second: float
    """Response tokens per second of step time (start-up, checkpoints and evaluations excluded)."""
    seconds: float
    checkpoints: list[str] = field(default_factory=list)
    evaluations: list[dict] = field(default_factory=list)
    data: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """The result as a JSON-ready dict (what `paced distill --json` prints)."""
        return asdict(self)


def lr_at(step: int, *, lr: float, min_lr: float, warmup: int, total: int) -> float:
    """Learning rate of (0-based) step `step`: linear warm-up, then cosine decay to min_lr at `total`."""
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    if total <= warmup:
        return lr
    ratio = (step - warmup) / (total - warmup)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)


def num_steps(config: DistillConfig, num_examples: int) -> int:
    """Total optimizer steps: --max-steps, or --epochs (default 1) passes over the examples."""
    if config.max_steps is not None:
        return config.max_steps
    return max(1, math.ceil((config.epochs or 1.0) * num_examples / config.batch_size))


def switch_step(config: DistillConfig, total: int) -> int:
    """Steps s < switch_step train with the first stage (fkl for fkl-then-rkl).

    fkl-then-rkl trains floor(switch_at * total) fkl steps (switch_at read as the decimal it was
    written as, so 0.29 * 100 is 29, not 28), then at least one step of each stage: the result is
    clamped to [1, total - 1].

    Raises:
        ConfigError: fkl-then-rkl over a single step (it cannot hold both stages).
    """
    if config.loss != "fkl-then-rkl":
        return total
    if total < 2:
        raise ConfigError(f"--loss fkl-then-rkl needs at least 2 steps (one of each stage), but this run has {total}")
    fkl_steps = math.floor(Fraction(repr(config.switch_at)) * total)
    return min(max(fkl_steps, 1), total - 1)


def run_distill(config: DistillConfig) -> DistillResult:
    """Train the student (see the module docstring) and save it to RUN_DIR/final.

    Raises:
        ConfigError: a bad flag, a model folder that is not a causal LM, tokenizers that differ.
        InputError: SHARDS is missing or not a native export, has no references for fkl, or the
            run directory is not empty (without --resume or --overwrite).
        ResumeMismatch: --resume with settings or data that differ from the checkpoint's.
        PacedError: the loss or gradient became non-finite (names the step and the last good checkpoint).
    """
    started = time.perf_counter()
    run_dir = Path(config.output)
    stages = config.stages()

    # ---- device, data and tokenizer, checked before anything heavy is loaded or anything is deleted
    par = parallel.start(config, _device(config.device))  # (#17) Local, or FSDP2 under torchrun
    par.run_on_main(claim_run_dir, run_dir, config)  # -o by the rule every command follows, before any work (#26)
    device = par.device
    table = read_train_split(config.shards, need_reference=bool(REFERENCE_STAGES & set(stages)))
    if config.weights == "off" and (note := unweighted_note(config.shards)):
        say(note)  # #14: --weights off on a filtered export is not the unweighted baseline
    tokenizer = load_tokenizers(config.student, config.teacher)
    # #26: the prompts the weights were measured on, as the export records them (or the flags; prompts.py)
    prompt, prompt_note = prompt_plan(config, read_prompt_record(config.shards), tokenizer)
    max_length = _max_length(config)
    examples, report = load_examples(
        table, config.shards, tokenizer, prompt, use_weights=config.weights == "on", max_length=max_length
    )
    digest = train_digest(config.shards)
    eval_problems = _read_eval_problems(config, prompt)
    if eval_problems is not None:  # (#21) held-out problems that are also training problems, before anything is written
        say(check_eval_set(eval_problems, table, config.eval_overlap, config.eval_problems, config.shards))
    total = num_steps(config, len(examples))
    switch = switch_step(config, total)
    warmup = config.resolved_warmup_steps(total)
    batch_size, micro = config.batch_size, config.resolved_micro_batch_size

    # ---- run directory: fresh, overwritten, or resumed from its newest checkpoint
    checkpoint = par.run_on_main(prepare_run_dir, run_dir, config)  # (#17)
    state = load_trainer_state(checkpoint) if checkpoint else None
    if state is not None:
        check_resume(state, config, digest, checkpoint)
    start_step = state["step"] if state else 0

    # ---- precision: bf16 autocast on CUDA, float32 on CPU
    torch.manual_seed(config.seed)
    autocast = functools.partial(torch.autocast, "cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext

    # ---- models
    student, teacher = load_pair(
        config.student, config.teacher, device, student_from=par.student_from(checkpoint),  # (#17)
        gradient_checkpointing=config.gradient_checkpointing,
    )
    heads = OutputLayers.of(student, teacher, vocab_size=len(tokenizer))
    stop_tokens, pad_id = eos_ids(student, tokenizer), tokenizer.pad_token_id
    pad_id = stop_tokens[0] if pad_id is None else pad_id
    par.prepare(student, teacher, heads, len(tokenizer))  # (#17) FSDP2 shards the student here

    # ---- optimizer and schedule: AdamW, decay on matrices only; warm-up then cosine
    matrices = [p for p in student.parameters() if p.requires_grad and p.dim() >= 2]
    others = [p for p in student.parameters() if p.requires_grad and p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": matrices, "weight_decay": config.weight_decay}, {"params": others, "weight_decay": 0.0}],
        lr=config.lr, fused=device.type == "cuda",
    )
    schedule = functools.partial(_lr_factor, lr=config.lr, min_lr=config.resolved_min_lr, warmup=warmup, total=total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    if state is not None:
        par.load_optimizer(optimizer, state, checkpoint)  # (#17)
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])

    # ---- online PACED (#25): the posterior of each problem's pass rate, fed by the student's graded samples
    online = None
    if config.reweight == "online":
        def draw(prompts, seeds, budgets):
            with autocast():
                return par.sample(prompts, seeds, budgets, temperature=config.rkl_temperature, eos=stop_tokens, pad_id=pad_id)

        online = start_online(config, examples, table, par, draw, tokenizer, stop_tokens, max_length)
        if state is not None:
            online.load_state_dict(state["online"])

    # ---- metrics log and run record
    run_record = {"prompt": prompt.as_dict(), "warmup_steps": warmup}
    metrics = MetricsLog(run_dir / METRICS, keep_through=start_step) if par.is_main else contextlib.nullcontext()  # (#17)
    if par.is_main:  # (#17)
        write_run_file(run_dir, config, total=total, switch=switch, skipped=report.skipped_long_prompts, start_step=start_step, run=run_record)
    say(
        f"distill: {len(examples):,} examples, {total:,} steps of {batch_size} ({_stage_plan(stages, switch, total)}), "
        f"warm-up {warmup} steps, weights {config.weights}, {device.type}"
        + (f", resuming after step {start_step} from {checkpoint}" if checkpoint else "")
    )
    if prompt_note:
        say(prompt_note)
    if config.warmup_steps is not None and warmup >= total:
        say(
            f"NOTE: --warmup-steps {warmup} covers the whole run of {total} steps, so the learning rate never reaches --lr "
            f"(it peaks at {lr_at(total - 1, lr=config.lr, min_lr=config.resolved_min_lr, warmup=warmup, total=total):.2e}); "
            "lower --warmup-steps, or leave it out for min(10, a tenth of the steps)"
        )
    if report.skipped_long_prompts or report.truncated_references:
        say(
            f"NOTE: {len(report.skipped_long_prompts)} examples left out (prompt fills --max-length {max_length}), "
            f"{report.truncated_references} references cut to fit it"
        )

    evaluations: list[dict] = []

    def evaluate(step: int) -> None:
        from paced_curate.distill.evaluate import EvalSettings, evaluate_student

        settings = EvalSettings(
            samples=config.eval_samples, max_tokens=config.eval_max_tokens, temperature=config.eval_temperature,
            seed=config.seed, prompt_format=prompt.format, batch_size=config.eval_batch_size, workers=config.eval_workers,
        )
        with progress.paused():
            record = {"step": step, "kind": "eval"} | evaluate_student(student, tokenizer, eval_problems, settings, autocast())
        metrics.write(record)
        evaluations.append(record)
        pass_at_1 = "n/a" if record["pass_at_1"] is None else f"{record['pass_at_1']:.4f}"
        say(f"eval {step:05d} | pass@1 {pass_at_1} | {record['problems']} problems x {config.eval_samples} | {record['seconds']:.1f}s")

    # ---- the loop
    checkpoints: list[str] = []
    last_checkpoint = checkpoint
    trained_tokens, step_seconds, record = 0, 0.0, None
    progress = _Progress(total, start_step)
    loop_started = time.perf_counter()
    with metrics, progress, online or contextlib.nullcontext():
        if eval_problems is not None and start_step == 0:
            evaluate(0)
        if online is not None and start_step == 0 and par.is_main:
            metrics.write(online.record(0))  # (#25)
        for step in range(start_step, total):
            step_started = time.perf_counter()
            stage = stages[0] if step < switch else stages[-1]
            if online is None:
                # Copies of a row in the global batch are numbered before it is shared, so each keeps its seed on any rank (#21).
                batch_examples = global_batch(examples, step, batch_size, config.seed)
            else:  # (#25) rows at their current weight; weight-0 rows skipped, or probed in the rkl stage
                online.refresh(step, stage)
                batch_examples, probes = online.batch(step, stage)
                # Probes (rkl stage) are sampled and graded, never trained on; sampled before any backward: under FSDP a
                # forward call between backward and the optimizer step lost the step's gradients.
                online.probe(step, probes)
            loss_sum = torch.zeros((), device=device)
            kl_sum = torch.zeros((), device=device)
            tokens = input_tokens = 0
            for chunk in micro_batches(par.share(batch_examples), micro):  # (#17) this rank's share
                if stage in REFERENCE_STAGES:
                    responses = [e.response_ids for e in chunk]
                else:
                    seeds = [problem_seed(config.seed, rkl_seed_key(step, e)) for e in chunk]
                    budgets = [min(config.rkl_max_tokens, max_length - len(e.prompt_ids)) for e in chunk]
                    with autocast():
                        responses = par.sample(  # (#17)
                            [e.prompt_ids for e in chunk], seeds, budgets,
                            temperature=config.rkl_temperature, eos=stop_tokens, pad_id=pad_id,
                        )
                    if online is not None:
                        online.observe(step, chunk, responses)  # (#25) graded in the background
                batch = collate(chunk, responses, pad_id)
                input_tokens += int(batch.attention_mask.sum())  # counted on the CPU copy: no GPU sync
                batch = batch.to(device)
                with autocast():
                    kl = par.kl(batch, stage, config.chunk_size)  # (#17)
                loss = weighted_problem_loss(kl, batch.token_problem, batch.weights, batch_size)
                loss.backward()
                loss_sum += loss.detach()
                kl_sum += problem_means(kl.detach(), batch.token_problem, len(chunk)).sum()
                tokens += batch.num_tokens
            loss_sum, kl_sum, tokens, input_tokens = par.total(  # (#17) sums over ranks
                loss_sum, kl_sum, torch.tensor(float(tokens)), torch.tensor(float(input_tokens))
            )
            tokens, input_tokens = int(tokens), int(input_tokens)
            # note: a CPU-GPU sync point; the check needs the value before the weights change.
            loss_value = loss_sum.item()
            if not math.isfinite(loss_value):
                raise _non_finite(step + 1, "loss", loss_value, last_checkpoint)
            grad_norm = par.clip_grad_norm(student.parameters(), config.grad_clip or math.inf)  # (#17)
            if not math.isfinite(grad_norm):
                raise _non_finite(step + 1, "gradient norm", grad_norm, last_checkpoint)
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if online is not None:
                online.end_step(step, sampled=stage not in REFERENCE_STAGES)  # (#25) step - 1's counts join the posterior
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - step_started
            done = step + 1
            trained_tokens += tokens
            step_seconds += seconds
            record = {
                "step": done, "kind": "train", "stage": stage, "loss": loss_value, "kl": kl_sum.item() / max(len(batch_examples), 1),
                "lr": lr, "grad_norm": grad_norm, "tokens": tokens, "input_tokens": input_tokens, "tokens_per_s": tokens / seconds,
                "dt_ms": seconds * 1000, "elapsed_s": time.perf_counter() - loop_started,
            }
            if par.is_main:  # (#17)
                metrics.write(record)
            if online is not None and par.is_main and config.eval_every and done % config.eval_every == 0 and done < total:
                metrics.write(online.record(done))  # (#25) before the checkpoint, which saves what it has counted
            progress.update(done, record)
            if done % config.log_every == 0 or done in (start_step + 1, total):
                say(_log_line(record))
            if config.checkpoint_every and done % config.checkpoint_every == 0:
                to_save = trainer_state(
                    done, optimizer, scheduler, settings=config.settings(), data_digest=digest, total=total,
                    batch_size=batch_size, num_examples=len(examples),
                )
                if online is not None:
                    to_save["online"] = online.state_dict()  # (#25)
                last_checkpoint = par.save_checkpoint(run_dir, done, tokenizer, to_save, config.keep_checkpoints, optimizer)  # (#17)
                checkpoints.append(str(last_checkpoint))
            if eval_problems is not None and config.eval_every and done % config.eval_every == 0:
                evaluate(done)
        if eval_problems is not None and (not evaluations or evaluations[-1]["step"] != total):
            evaluate(total)
        if online is not None:
            online.finish(total)  # (#25) the last step's samples, then the final posterior
            if par.is_main:
                metrics.write(online.record(total))
                write_weights_tables(online, run_dir, total)

    final = par.save_final(run_dir, tokenizer)  # (#17) gathered once, saved by rank 0
    result = DistillResult(
        output=config.output, final_model=str(final), steps=total, start_step=start_step,
        stages=_stage_ranges(stages, switch, total), examples=len(examples),
        final_loss=record["loss"] if record else None, final_kl=record["kl"] if record else None,
        response_tokens=trained_tokens, tokens_per_second=trained_tokens / step_seconds if step_seconds else 0.0,
        seconds=time.perf_counter() - started, checkpoints=checkpoints, evaluations=evaluations,
        data={"rows": report.rows, "skipped_long_prompts": len(report.skipped_long_prompts),
              "truncated_references": report.truncated_references, "max_length": max_length},
    )
    if par.is_main:  # (#17)
        write_run_file(
            run_dir, config, total=total, switch=switch, skipped=report.skipped_long_prompts, start_step=start_step, run=run_record,
            result=result.as_dict(),
        )
    par.close()
    return result


def render_distill_result(result: DistillResult) -> None:
    """The run's summary as a table on stderr."""
    last_eval = result.evaluations[-1]["pass_at_1"] if result.evaluations else None
    rows = [
        ("run directory", result.output), ("final student", result.final_model), ("steps", result.steps),
        ("resumed after step", result.start_step), ("stages", ", ".join(f"{k} {a}-{b}" for k, (a, b) in result.stages.items())),
        ("examples", result.examples), ("final loss", result.final_loss), ("final kl", result.final_kl),
        ("response tokens", result.response_tokens), ("tokens/s", result.tokens_per_second),
        ("checkpoints written", len(result.checkpoints)), ("last pass@1", last_eval), ("seconds", result.seconds),
    ]
    show(key_value_table("distill", rows))


# ---- helpers ---------------------------------------------------------------------------------


def _lr_factor(step: int, *, lr: float, min_lr: float, warmup: int, total: int) -> float:
    return lr_at(step, lr=lr, min_lr=min_lr, warmup=warmup, total=total) / lr


def _max_length(config: DistillConfig) -> int:
    """--max-length, else the student's position limit (from whichever config key it uses); never past that limit."""
    if config.max_length is None:
        return folder_max_positions("--student", config.student)
    limit = max_positions(json.loads((Path(config.student) / "config.json").read_text()))
    if limit is not None and config.max_length > limit:
        raise ConfigError(f"--max-length {config.max_length} is past the student's position limit ({limit} positions)")
    return config.max_length


def rkl_seed_key(step: int, example) -> str:
    """The rkl sampling seed key of one example of step `step`: (step, row, copy in the global batch); copy 0 keeps the plain key."""
    return f"rkl:step{step}:row{example.row}" + (f":copy{example.copy}" if example.copy else "")


def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available (use --device cpu or auto)")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def _non_finite(step: int, what: str, value: float, checkpoint: Path | None) -> PacedError:
    where = f"the last good checkpoint is {checkpoint}" if checkpoint else "no checkpoint was written before it"
    return PacedError(
        f"step {step}: the {what} is {value} (not finite); stopped before updating the student; {where}; "
        "try a lower --lr (start afresh with --overwrite) or check the models for NaN weights"
    )


def _read_eval_problems(config: DistillConfig, prompt: PromptPlan):
    if config.eval_problems is None:
        return None
    from paced_curate.problems import read_problems

    problems = read_problems(config.eval_problems)
    if prompt.chat_rows_only and "messages" in problems.column_names and problems.column("messages").null_count < problems.num_rows:
        say(
            f"NOTE: --eval {config.eval_problems}: the export's rollout sent only problems with chat messages as chat turns, "
            "but the evaluation renders every held-out problem as plain text, those with chat messages included"
        )
    return problems


def _stage_ranges(stages: tuple[str, ...], switch: int, total: int) -> dict:
    if len(stages) == 1:
        return {stages[0]: [1, total]}
    ranges = {}
    if switch > 0:
        ranges[stages[0]] = [1, switch]
    if switch < total:
        ranges[stages[1]] = [switch + 1, total]
    return ranges


def _stage_plan(stages: tuple[str, ...], switch: int, total: int) -> str:
    return ", ".join(f"{stage} steps {a}-{b}" for stage, (a, b) in _stage_ranges(stages, switch, total).items())


def _log_line(record: dict) -> str:
    return (
        f"step {record['step']:05d} | loss {record['loss']:.4f} | kl {record['kl']:.4f} | lr {record['lr']:.2e} | "
        f"dt {record['dt_ms']:.0f}ms | tok/s {record['tokens_per_s']:,.0f} | {record['stage']}"
    )


class _Progress:
    """A rich progress bar with the latest loss, KL, lr and tokens/s, on a terminal only; paused while evaluating."""

    def __init__(self, total: int, completed: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.enabled = console().is_terminal
        self.progress = Progress(
            TextColumn("distill"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"), TimeRemainingColumn(),
            console=console(), transient=True,
        )
        self.task = self.progress.add_task("distill", total=total, completed=completed, stats="")

    def __enter__(self) -> "_Progress":
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.progress.stop()

    def update(self, step: int, record: dict) -> None:
        stats = f"loss {record['loss']:.4f} kl {record['kl']:.4f} lr {record['lr']:.2e} {record['tokens_per_s']:,.0f} tok/s"
        self.progress.update(self.task, completed=step, stats=stats)

    @contextlib.contextmanager
    def paused(self):
        if self.enabled:
            self.progress.stop()
        try:
            yield
        finally:
            if self.enabled:
                self.progress.start()
