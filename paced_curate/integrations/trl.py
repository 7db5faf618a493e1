"""`PacedSFTTrainer`: TRL's `SFTTrainer` with PACED's per-example weights.

Sequence-level distillation on teacher references: supervised fine-tuning on a `paced export
--format trl` dataset (prompt, completion = a correct teacher completion, weight), where each
example's loss is scaled by its PACED weight, exactly as `paced distill` scales its losses:

    loss_i = mean over example i's completion tokens of -log p_student(token)
    batch loss = sum_i w_i * loss_i / batch_size

`batch_size` counts the examples of the whole optimizer step (every micro-batch of a gradient
accumulation, on this process), so two micro-batches with accumulation give the same gradient
as one batch of both. With several processes (DDP), each process divides by its own count and
DDP averages the gradients: the same value when every process gets equal micro-batches (the
default sampler drops or pads to equal sizes).

    from datasets import load_dataset
    from trl import SFTConfig
    from paced_curate.integrations.trl import PacedSFTTrainer

    data = load_dataset("parquet", data_files="data/train/*.parquet", split="train")
    trainer = PacedSFTTrainer(model="models/student", train_dataset=data, args=SFTConfig(output_dir="runs/sft"))
    trainer.train()

How the weight survives TRL's data path: `SFTTrainer` prepares the dataset with `map` calls
that keep other columns; `Trainer` then drops every column the model's `forward` does not take
(`remove_unused_columns`), so `weight` is added to the columns it keeps, and a collator wrapper
turns it into a float tensor beside `input_ids` and `labels`. `compute_loss` takes it out before
the forward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from trl import SFTTrainer

from paced_curate.distill.losses import weighted_problem_loss

WEIGHT_COLUMN = "weight"


class WeightCollator:
    """Wraps a TRL collator: the batch it builds, plus the examples' weights as a float32 tensor [B]."""

    def __init__(self, collator: Callable[[list[dict]], dict], weight_column: str = WEIGHT_COLUMN) -> None:
        self.collator = collator
        self.weight_column = weight_column

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        weights = [float(example[self.weight_column]) for example in examples]
        batch = self.collator([{k: v for k, v in example.items() if k != self.weight_column} for example in examples])
        batch[self.weight_column] = torch.tensor(weights, dtype=torch.float32)
        return batch


def sequence_losses(token_nll: torch.Tensor, label_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-token losses of the trained positions and the example each belongs to.

    Args:
        token_nll: [B, T] negative log-likelihood of each next-token label (0 where masked).
        label_mask: [B, T] bool, True where the label is trained (a completion token).

    Returns:
        ([N] losses of the N trained positions, [N] long row index of each), row-major.
    """
    positions = label_mask.nonzero()
    return token_nll[label_mask], positions[:, 0]


class PacedSFTTrainer(SFTTrainer):
    """`trl.SFTTrainer` that scales each example's loss by its PACED weight (see the module docstring).

    Takes every `SFTTrainer` argument, plus `weight_column` (default "weight"), which every row of
    `train_dataset` (and `eval_dataset`) must have: finite and >= 0. A weight-0 example contributes
    no gradient; doubling a weight doubles its example's gradient.

    Raises:
        ValueError: the dataset has no weight column, a weight is negative or not finite, or
            packing / padding-free batching is on (they merge examples, so no per-example
            weight can apply).
    """

    # compute_loss divides by the examples of the whole accumulated step itself.
    loss_is_scaled_for_ga = True

    def __init__(self, *args, weight_column: str = WEIGHT_COLUMN, **kwargs) -> None:
        self.weight_column = weight_column
        self._step_examples: int | None = None
        super().__init__(*args, **kwargs)
        if self.args.packing or self.padding_free:
            raise ValueError(
                "PacedSFTTrainer needs one example per sequence to weigh it: set packing=False and padding_free=False"
            )
        for name, dataset in (("train_dataset", self.train_dataset), ("eval_dataset", self.eval_dataset)):
            for split, data in (dataset.items() if isinstance(dataset, dict) else [(name, dataset)]):
                if data is not None:
                    _check_weights(data, weight_column, split)
        self.data_collator = WeightCollator(self.data_collator, weight_column)

    def _set_signature_columns_if_needed(self) -> None:
        # Trainer drops columns the model's forward does not take; keep the weight.
        super()._set_signature_columns_if_needed()
        if self.weight_column not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, self.weight_column]

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        """Trainer's micro-batches of one optimizer step; also counts their examples (the loss's divisor)."""
        batch_samples, num_items_in_batch = super().get_batch_samples(epoch_iterator, num_batches, device)
        self._step_examples = sum(len(batch[self.weight_column]) for batch in batch_samples)
        return batch_samples, num_items_in_batch

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """sum_i w_i * mean_t(nll_i,t) / (examples in the optimizer step), over this micro-batch's examples."""
        weights = inputs.pop(self.weight_column)
        inputs["use_cache"] = False
        outputs = model(**inputs, fused_lm_head=True)
        per_token, rows = sequence_losses(-outputs.log_probs, outputs.label_mask)
        training = model.training and self._step_examples is not None
        divisor = self._step_examples if training else len(weights)
        loss = weighted_problem_loss(per_token, rows, weights.to(per_token.device), divisor)
        mode = "train" if model.training else "eval"
        self._metrics[mode]["weight_mean"].append(float(weights.mean()))
        return (loss, outputs) if return_outputs else loss


def _check_weights(dataset, column: str, split: str) -> None:
    names = dataset.column_names if hasattr(dataset, "column_names") else None
    if names is not None and column not in names:
        raise ValueError(
            f"{split} has no '{column}' column (it has {', '.join(names)}); "
            "use a 'paced export --format trl' dataset or pass weight_column="
        )
    if names is None:
        return  # an IterableDataset: its rows are not known before training
    values = torch.tensor(dataset[column], dtype=torch.float64)
    bad = (~torch.isfinite(values)) | (values < 0)
    if bool(bad.any()):
        row = int(bad.nonzero()[0, 0])
        raise ValueError(f"{split} row {row}: '{column}' is {float(values[row])}; weights must be finite and >= 0")
