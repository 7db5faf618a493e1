"""`paced export --format llamafactory`: LLaMA-Factory's v1 data format, with a float `loss_weight` per turn.

LLaMA-Factory v1 (`llamafactory.v1`, in the 0.9.5 release and on main) reads one conversation per
row, `messages: [{role, content: [{type: "text", value}], loss_weight}]` (`utils/types.py`
`Message` and `Content`). Its renderer gives every token of a turn that turn's `loss_weight`
(default 1.0 for assistant turns, 0.0 otherwise; a weight under 1e-6 masks the turn) and its SFT
loss is `sum(w_t * nll_t) / sum(w_t)` over the tokens of a micro-batch (`trainers/sft_trainer.py`).
So the export puts the row's PACED weight on the assistant turn (the teacher reference) and 0.0 on
the prompt turns. Because the loss divides by the micro-batch's summed weights, a weight acts
relative to the other rows of its micro-batch: with `micro_batch_size: 1` it cancels out. The
dataset card says so, and `--weights-as copies` (every `loss_weight` 1, problems repeated in
proportion to their weights) is the layout that survives any batch size.

Its local loader (`plugins/data_plugins/loader.py`, `DataLoaderPlugin("local")`) opens a folder
with `datasets.load_dataset(<extension of the folder's first file>, data_dir=..., split=...)`,
so each split folder (Parquet only) or the single `-o NAME.parquet` file is one dataset; the
dataset_info YAML (`core/data_engine.py`: entries of `path`, `source`, `split`, ...) names it.
Every entry of one YAML is trained on, so train and val get a file each.

    table = llamafactory_table(prompts, references, weights, problem_ids)
    files = write_dataset_info(extras, {"train": Path("data/train")})
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from paced_curate.io import atomic_path

CONTENT = pa.struct([pa.field("type", pa.string()), pa.field("value", pa.string())])
MESSAGE = pa.struct(
    [pa.field("role", pa.string()), pa.field("content", pa.list_(CONTENT)), pa.field("loss_weight", pa.float64())]
)
SCHEMA = pa.schema([pa.field("messages", pa.list_(MESSAGE), nullable=False), pa.field("problem_id", pa.string(), nullable=False)])
DATASET_INFO = {"train": "dataset_info.yaml", "val": "dataset_info_val.yaml"}
"""The YAML per split, in the export's extras folder: pass it as LLaMA-Factory's train_dataset / eval_dataset."""
DATASET_NAME = "paced_{split}"


def llamafactory_table(
    prompts: list[list[dict]], references: list[str], weights: list[float], problem_ids: pa.ChunkedArray | pa.Array
) -> pa.Table:
    """One conversation per row: the prompt turns with loss_weight 0, the reference with the row's weight.

    Args:
        prompts: per row, the prompt as chat turns [{role, content}] (a plain prompt is one user turn).
        references: per row, the teacher completion (the assistant turn).
        weights: per row, the weight of the assistant turn (1.0 for weighted copies).
        problem_ids: per row, the problem id (kept for tracing; LLaMA-Factory ignores the column).

    Returns:
        A table with the `SCHEMA` (`messages`, `problem_id`), row for row.
    """
    conversations = []
    for turns, reference, weight in zip(prompts, references, weights):
        messages = [_message(turn["role"], turn["content"], 0.0) for turn in turns]
        messages.append(_message("assistant", reference, float(weight)))
        conversations.append(messages)
    if isinstance(problem_ids, pa.ChunkedArray):
        problem_ids = problem_ids.combine_chunks()
    return pa.Table.from_arrays([pa.array(conversations, pa.list_(MESSAGE)), problem_ids], schema=SCHEMA)


def _message(role: str, text: str, loss_weight: float) -> dict:
    return {"role": role, "content": [{"type": "text", "value": text}], "loss_weight": loss_weight}


def dataset_info_text(split: str, data: Path) -> str:
    """The YAML of one split: one dataset entry LLaMA-Factory's local loader reads (absolute path)."""
    entry = {"path": str(data.resolve()), "source": "local", "split": "train"}
    # JSON strings are valid YAML scalars, so every value is quoted safely whatever the path holds.
    lines = [f"{DATASET_NAME.format(split=split)}:"] + [f"  {key}: {json.dumps(value)}" for key, value in entry.items()]
    return "\n".join(lines) + "\n"


def write_dataset_info(extras: Path, splits: dict[str, Path]) -> list[str]:
    """Write `dataset_info.yaml` (and `dataset_info_val.yaml`) into the export's extras folder.

    Args:
        extras: the folder to write into (the export's `<OUT>.paced/`, or its staging copy).
        splits: split name -> where its data will be (a folder of Parquet files, or the one file).

    Returns:
        The names of the files written.
    """
    names = []
    for split, data in splits.items():
        with atomic_path(extras / DATASET_INFO[split]) as tmp:
            tmp.write_text(dataset_info_text(split, data))
        names.append(DATASET_INFO[split])
    return names
