"""The evaluation hook of `paced distill`: rollout + grade of the student in memory on held-out problems.

The student is wrapped in `rollout.hf_engine.HfEngine` (no copy, no reload) and run through
the same code as `paced rollout --engine hf` and `paced grade --grader math`, so a number
logged here equals what those commands give for a saved checkpoint with the same seed.
pass@1 is the mean over problems of (correct / scored samples), i.e. averaged over the k
samples (avg@k in `paced inspect`).

    problems = read_problems("heldout.jsonl")
    record = evaluate_student(student, tokenizer, problems, EvalSettings(samples=4, ...))
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import pyarrow as pa

from paced_curate.rollout.prompts import PromptFormat


@dataclass(frozen=True, kw_only=True)
class EvalSettings:
    """How the held-out problems are sampled and graded."""

    samples: int
    """k samples per problem."""
    max_tokens: int
    temperature: float
    seed: int
    """Run seed; sample i of problem P uses the seed `paced rollout --seed` would give it."""
    prompt_format: PromptFormat
    batch_size: int
    """Sequences per generate call."""
    workers: int | None
    """Grading processes (None: one per CPU)."""


def check_eval_set(problems: pa.Table, train: pa.Table, mode: str, eval_name: str, train_name: str) -> str:
    """`--eval-overlap`: compare the held-out problems with the training rows before training (#21).

    Args:
        problems: the held-out problems table.
        train: the training split's rows.
        mode: error, warn or allow (`contamination.check_eval_overlap`).
        eval_name, train_name: the two paths, for the line.

    Returns:
        The line to print (how many held-out problems are training problems, a few ids).

    Raises:
        InputError: mode "error" and some held-out problem is a training problem.
    """
    from paced_curate.contamination import check_eval_overlap, table_overlap

    return check_eval_overlap(table_overlap(problems, train), mode, eval_name, train_name)


def evaluate_student(model, tokenizer, problems: pa.Table, settings: EvalSettings, autocast=None) -> dict:
    """Sample and grade the student on the held-out problems.

    The model is put in eval mode for sampling and returned to the mode it was in. Grading
    uses a fork-server process pool: a script that trains with `--eval` needs an
    `if __name__ == "__main__":` guard.

    Args:
        model: the student (in memory; its device and dtype are used as they are).
        tokenizer: its tokenizer.
        problems: a problems table (`problems.read_problems`).
        settings: see `EvalSettings`.
        autocast: a context manager to sample under (bf16 autocast on CUDA), or None.

    Returns:
        {"pass_at_1", "maj_at_k", "problems", "unscored_problems", "samples", "truncated", "seconds"}.
    """
    from paced_curate.grade import grade_table
    from paced_curate.grade.metrics import evaluation_report
    from paced_curate.rollout import RolloutConfig, rollout_table
    from paced_curate.rollout.hf_engine import HfEngine

    started = time.perf_counter()
    config = RolloutConfig(
        problems="(held-out problems)", model="(student in memory)", output="(in memory)", engine="hf",
        samples=settings.samples, temperature=settings.temperature, max_tokens=settings.max_tokens, seed=settings.seed,
        prompt_format=settings.prompt_format, batch_size=settings.batch_size,
    )
    engine = HfEngine(model, tokenizer, batch_size=settings.batch_size)
    was_training = model.training
    model.eval()
    try:
        with autocast or contextlib.nullcontext():
            rollouts = rollout_table(config, problems, engine)
    finally:
        model.train(was_training)
    graded = grade_table(rollouts, "math", workers=settings.workers)
    overall = evaluation_report(graded)["overall"]
    return {
        "pass_at_1": overall["avg_at_k"],
        "maj_at_k": overall["maj_at_k"],
        "problems": overall["problems"],
        "unscored_problems": overall["unscored_problems"],
        "samples": graded.num_rows,
        "truncated": sum(1 for reason in graded.column("finish_reason").to_pylist() if reason == "length"),
        "seconds": round(time.perf_counter() - started, 3),
    }
