"""Training examples for `paced distill`: export rows -> token ids -> padded micro-batches.

Each row of the export's train split is one example: the prompt rendered exactly as
`paced rollout` renders it (template, system prompt, chat template), the teacher reference
tokenized without special tokens plus the eos token (used by fkl), and the row's PACED weight
(1.0 under `--weights off`). Only response tokens enter the loss.

Batches are deterministic functions of (seed, step): the examples form an endless stream of
epochs, each a permutation seeded by (seed, epoch), and step s takes stream positions
s*B .. s*B+B-1. A resumed run therefore needs only the step to find its place. Within a batch
the examples are sorted by length before being cut into micro-batches, so each micro-batch
pads little.

    table = read_train_split("data/", need_reference=True)
    examples, report = load_examples(table, "data/", tokenizer, PromptFormat(), use_weights=True, max_length=2048)
    for micro in micro_batches(global_batch(examples, step, 32, seed=0), 8):
        batch = collate(micro, [e.response_ids for e in micro], pad_id=tokenizer.pad_token_id)
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from paced_curate.distill.prompts import PromptPlan
from paced_curate.errors import ConfigError, InputError
from paced_curate.rollout.prompts import PromptFormat, render


@dataclass(frozen=True)
class Example:
    """One training example (one export row)."""

    row: int
    """Row of the export's train split (also part of the rkl sampling seed)."""
    problem_id: str
    prompt_ids: list[int]
    response_ids: list[int] | None
    """Reference tokens + eos, cut to fit max_length; None when the export has no reference."""
    weight: float
    copy: int = 0
    """Which copy of the row this is in its step's global batch (0: the first; batches span epochs, so a row
    can be in one twice). Numbered over the whole global batch, not per rank, so the rkl seed it keys is the
    same whichever rank trains it (#21)."""

    def length(self) -> int:
        return len(self.prompt_ids) + len(self.response_ids or ())


@dataclass
class DataReport:
    """What `load_examples` kept and changed."""

    rows: int = 0
    """Rows in the export's train split."""
    skipped_long_prompts: list[str] = field(default_factory=list)
    """Problems whose prompt leaves no room for a response token within max_length (left out)."""
    truncated_references: int = 0
    """References cut to fit max_length."""
    response_tokens: int = 0
    """Reference tokens in the kept examples (one epoch of fkl)."""


@dataclass
class Batch:
    """A padded micro-batch. Position t's logits predict token t + 1."""

    input_ids: torch.Tensor
    """[B, T] prompt + response, right-padded."""
    attention_mask: torch.Tensor
    """[B, T] 1 on real tokens."""
    loss_mask: torch.Tensor
    """[B, T] bool, True at positions whose logits predict a response token."""
    token_problem: torch.Tensor
    """[N] the row of each True in loss_mask, in row-major order."""
    weights: torch.Tensor
    """[B] problem weights."""
    num_tokens: int
    """Response tokens in the loss (N)."""

    def to(self, device) -> "Batch":
        return Batch(
            self.input_ids.to(device), self.attention_mask.to(device), self.loss_mask.to(device),
            self.token_problem.to(device), self.weights.to(device), self.num_tokens,
        )


def check_same_vocab(student_tokenizer, teacher_tokenizer, teacher: str) -> None:
    """Refuse a teacher whose tokenizer maps any token to another id than the student's does.

    Raises:
        ConfigError: naming the first token (by student id) that differs, or a token only the teacher has.
    """
    student_vocab, teacher_vocab = student_tokenizer.get_vocab(), teacher_tokenizer.get_vocab()
    if student_vocab == teacher_vocab:
        return
    detail = ""
    for token, index in sorted(student_vocab.items(), key=lambda item: item[1]):
        if token not in teacher_vocab:
            detail = f"token {token!r} (student id {index}) is not in the teacher's vocabulary"
            break
        if teacher_vocab[token] != index:
            detail = f"token {token!r} is id {index} for the student but {teacher_vocab[token]} for the teacher"
            break
    else:
        token, index = min(((t, i) for t, i in teacher_vocab.items() if t not in student_vocab), key=lambda item: item[1])
        detail = f"the teacher has token {token!r} (id {index}) that the student lacks"
    raise ConfigError(
        f"--teacher {teacher}: its tokenizer differs from the student's ({detail}); "
        "distillation compares the two next-token distributions id by id, so both need the same vocabulary"
    )


def read_train_split(shards: str, *, need_reference: bool) -> pa.Table:
    """The train split of a native paced export, checked before any model is loaded.

    Args:
        shards: a native export folder (`paced export --format native`).
        need_reference: the loss has an fkl stage, so every row needs a `reference`.

    Raises:
        InputError: the folder is missing or not a native paced export, or it lacks the
            `reference` column (or holds a null reference) when one is needed.
        SchemaError: a shard does not match `schema.EXPORT`.
    """
    from paced_curate.export import read_export

    if shards == "-":
        raise InputError("SHARDS cannot be '-': every training process reads it, and --resume reads it again; save the rows to a file")
    if not Path(shards).exists():
        raise InputError(f"{shards}: no such folder; pass the output of 'paced export --format native'")
    table = read_export(shards, split="train")
    if need_reference:
        if "reference" not in table.column_names:
            raise InputError(
                f"{shards}: has no 'reference' column, which --loss fkl needs (teacher responses to distill on); "
                "re-run 'paced export' with --references, or use --loss rkl"
            )
        nulls = table.column("reference").is_null()
        if pc.any(nulls).as_py():
            row = pc.index(nulls, True).as_py()
            problem = table.column("problem_id")[row].as_py()
            raise InputError(f"{shards} train row {row} (problem {problem!r}): 'reference' is null, which --loss fkl cannot train on")
    return table


def unweighted_note(shards: str) -> str | None:
    """With --weights off: one line when the export left weight-0 problems out (a hard filter, not the baseline)."""
    from paced_curate.export.layout import export_manifest

    dropped = ((export_manifest(shards) or {}).get("dropped") or {}).get("zero_weight", 0)
    if not dropped:
        return None
    return (
        f"NOTE: --weights off trains unweighted on {shards}, which left out {dropped:,} weight-0 problems: that is the "
        "hard filter, not the unweighted baseline; for the baseline, export with --keep-zero (or weigh with --kernel uniform)"
    )


def train_digest(shards: str) -> str:
    """A hash of the export's train files (from their sha256 in the manifest): a resume checks it is unchanged."""
    from paced_curate.export.layout import export_manifest

    manifest = export_manifest(shards)
    if manifest is None:  # export rows in another format (JSONL, CSV, ...): their content
        from paced_curate.io import input_digest

        return input_digest(shards)[:16]
    files = manifest.get("splits", {}).get("train", {}).get("files", [])
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]


def load_examples(
    table: pa.Table, shards: str, tokenizer, prompt_format: PromptFormat | PromptPlan, *, use_weights: bool, max_length: int
) -> tuple[list[Example], DataReport]:
    """Tokenize the train split: prompts rendered as `paced rollout` does, references + eos.

    Args:
        table: the train split (`read_train_split`).
        shards: its folder, for messages.
        tokenizer: the student's tokenizer.
        prompt_format: template, system prompt and chat-template mode (as for `paced rollout`), or a
            `prompts.PromptPlan` (the export's record, which may differ per row).
        use_weights: take each row's `weight`; False gives each problem weight 1, shared equally among its
            rows (1/R for a problem with R rows), so the unweighted baseline weighs every problem the same.
        max_length: longest prompt + response in tokens; longer references are cut (counted).

    Returns:
        (examples in row order, report). Rows whose prompt leaves no room are left out (listed).

    Raises:
        InputError: a weight is negative or not finite, a prompt renders to no tokens, or no
            example fits max_length.
    """
    report = DataReport(rows=table.num_rows)
    ids = table.column("problem_id").to_pylist()
    prompts = table.column("prompt").to_pylist()
    messages = table.column("messages").to_pylist() if "messages" in table.column_names else [None] * len(ids)
    weights = table.column("weight").to_pylist()
    references = table.column("reference").to_pylist() if "reference" in table.column_names else [None] * len(ids)
    for row, weight in enumerate(weights):
        if use_weights and not (math.isfinite(weight) and weight >= 0):
            raise InputError(f"{shards} train row {row} (problem {ids[row]!r}): weight {weight} is not a finite number >= 0")

    # --weights off: each problem's rows share weight 1 (R references -> 1/R each), as the export shares a
    # problem's PACED weight among its rows; so every problem weighs the same whatever its number of rows (#21).
    rows_of = Counter(ids)
    eos = tokenizer.eos_token_id
    present = [row for row, ref in enumerate(references) if ref is not None]
    tokenized = tokenizer([references[row] for row in present], add_special_tokens=False).input_ids if present else []
    response_of = dict(zip(present, tokenized))
    examples = []
    plan = prompt_format if isinstance(prompt_format, PromptPlan) else PromptPlan(prompt_format)
    for row in range(len(ids)):
        _, prompt_ids, _ = render(plan.format_for(messages[row]), tokenizer, prompts[row], messages[row])
        if not prompt_ids:
            raise InputError(f"{shards} train row {row} (problem {ids[row]!r}): the rendered prompt has no tokens")
        room = max_length - len(prompt_ids)
        if room < 1:
            report.skipped_long_prompts.append(ids[row])
            continue
        response = None
        if row in response_of:
            response = response_of[row] + [eos]
            if len(response) > room:
                response = response[:room]
                report.truncated_references += 1
            report.response_tokens += len(response)
        examples.append(Example(row, ids[row], prompt_ids, response, float(weights[row]) if use_weights else 1.0 / rows_of[ids[row]]))
    if not examples:
        raise InputError(f"{shards}: no prompt fits in --max-length {max_length} tokens with room for a response")
    return examples, report


def epoch_order(num_examples: int, seed: int, epoch: int) -> np.ndarray:
    """The permutation of examples used in `epoch` (a function of seed and epoch only)."""
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


def batch_indices(step: int, batch_size: int, num_examples: int, seed: int) -> list[int]:
    """The examples of optimizer step `step` (0-based): stream positions step*B .. step*B+B-1.

    A batch may span the end of one epoch and the start of the next.
    """
    indices, orders = [], {}
    for position in range(step * batch_size, (step + 1) * batch_size):
        epoch, offset = divmod(position, num_examples)
        if epoch not in orders:
            orders[epoch] = epoch_order(num_examples, seed, epoch)
        indices.append(int(orders[epoch][offset]))
    return indices


def global_batch(examples: list[Example], step: int, batch_size: int, seed: int) -> list[Example]:
    """The examples of optimizer step `step` (`batch_indices`), each numbered by its copy in the batch.

    The k-th occurrence of a row in the batch (in stream order) gets `copy` k, so each copy of a
    row draws its own rkl sample, and the numbering does not depend on how the batch is split
    among ranks or micro-batches.
    """
    seen: Counter = Counter()
    batch = []
    for index in batch_indices(step, batch_size, len(examples), seed):
        batch.append(examples[index] if not seen[index] else replace(examples[index], copy=seen[index]))
        seen[index] += 1
    return batch


def micro_batches(examples: list[Example], micro_batch_size: int) -> list[list[Example]]:
    """Cut a batch into micro-batches of similar length (longest first), so padding stays small."""
    ordered = sorted(examples, key=lambda e: (-e.length(), e.row, e.copy))
    return [ordered[i : i + micro_batch_size] for i in range(0, len(ordered), micro_batch_size)]


def collate(examples: list[Example], responses: list[list[int]], pad_id: int) -> Batch:
    """Pad prompt + response rows on the right and mark the positions that predict response tokens.

    Args:
        examples: the micro-batch.
        responses: each example's response tokens (the reference for fkl, a sample for rkl), non-empty.
        pad_id: the padding token.
    """
    width = max(len(e.prompt_ids) + len(r) for e, r in zip(examples, responses))
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    loss_mask = torch.zeros((len(examples), width), dtype=torch.bool)
    for row, (example, response) in enumerate(zip(examples, responses)):
        assert response, f"example {example.problem_id!r} has an empty response"
        sequence = example.prompt_ids + list(response)
        input_ids[row, : len(sequence)] = torch.tensor(sequence)
        attention[row, : len(sequence)] = 1
        # The logits at position t predict token t + 1: the last prompt token predicts the first response token.
        loss_mask[row, len(example.prompt_ids) - 1 : len(sequence) - 1] = True
    token_problem = loss_mask.nonzero()[:, 0]
    weights = torch.tensor([e.weight for e in examples], dtype=torch.float32)
    return Batch(input_ids, attention, loss_mask, token_problem, weights, int(loss_mask.sum()))

