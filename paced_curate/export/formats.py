"""Row layouts of `paced export` (native, trl, verl, llamafactory), the seeded split and shuffle, and shard files.

Each format has an explicit Arrow schema, so the files load the same way in `datasets`, polars
or a trainer's own reader. Shards are zstd Parquet written atomically; they hold no
timestamps or paths, so the same inputs and seed give byte-identical files.

    table = format_table(rows, "verl", data_source="lighteval/MATH", prompts=prompts)
    splits = split_and_shuffle(rows.column("problem_id").to_pylist(), seed=0, val_fraction=0.1)
    files = write_shards(table.take(splits["train"]), out / "train", rows_per_shard=50_000, metadata=...)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from paced_curate.errors import InputError
from paced_curate.export.llamafactory import llamafactory_table
from paced_curate.io import PART_NAME, write_parquet
from paced_curate.schema import MESSAGE

FORMATS = ("native", "trl", "verl", "llamafactory")
NEEDS_REFERENCES = ("trl", "llamafactory")
"""Formats whose rows hold a completion, so they need --references."""
ROW_GROUP_ROWS = 4096
"""Rows per Parquet row group: small enough for a loader to read part of a shard, large enough to compress well."""

CHAT = pa.list_(MESSAGE)
TRL_TEXT = pa.schema(
    [
        pa.field("prompt", pa.string(), nullable=False),
        pa.field("completion", pa.string(), nullable=False),
        pa.field("weight", pa.float64(), nullable=False),
        pa.field("problem_id", pa.string(), nullable=False),
    ]
)
TRL_CHAT = pa.schema(
    [
        pa.field("prompt", CHAT, nullable=False),
        pa.field("completion", CHAT, nullable=False),
        pa.field("weight", pa.float64(), nullable=False),
        pa.field("problem_id", pa.string(), nullable=False),
    ]
)
REWARD_MODEL = pa.struct([pa.field("style", pa.string()), pa.field("ground_truth", pa.string())])
EXTRA_INFO = pa.struct(
    [
        pa.field("index", pa.int64()),
        pa.field("weight", pa.float64()),
        pa.field("pass_rate", pa.float64()),
        pa.field("problem_id", pa.string()),
    ]
)
VERL = pa.schema(
    [
        pa.field("data_source", pa.string(), nullable=False),
        pa.field("prompt", CHAT, nullable=False),
        pa.field("ability", pa.string(), nullable=False),
        pa.field("reward_model", REWARD_MODEL, nullable=False),
        pa.field("extra_info", EXTRA_INFO, nullable=False),
    ]
)


def format_table(
    rows: pa.Table, fmt: str, data_source: str, prompts: list | None = None, with_weight: bool = True
) -> pa.Table:
    """Lay out joined rows (`schema.EXPORT` layout) in an export format, row for row.

    Args:
        rows: the joined rows, each with its row weight.
        fmt: "native" (the rows as they are), "trl", "verl" or "llamafactory".
        data_source: verl's `data_source` of every row.
        prompts: per row, the prompt as rolled out: ("chat", messages) or ("text", str) from
            `rollout.prompt_record.rendered_prompt`; None when the weights record no prompt
            format (then the problem's own prompt, or its messages, are used as they are).
        with_weight: False for weighted copies: trl rows get no weight column and llamafactory's
            assistant turns `loss_weight` 1 (every row counts once).

    Returns:
        A table with the format's schema and the same number and order of rows.
    """
    if fmt == "native":
        return rows
    if fmt == "trl":
        return _trl(rows, prompts, with_weight)
    if fmt == "verl":
        return _verl(rows, data_source, prompts)
    if fmt == "llamafactory":
        return _llamafactory(rows, prompts, with_weight)
    raise AssertionError(f"unknown format {fmt!r}")


def _chat(kind: str, value) -> list[dict]:
    return value if kind == "chat" else [{"role": "user", "content": value}]


def _prompts(rows: pa.Table, prompts: list | None) -> list[tuple[str, str | list[dict]]]:
    """Each row's prompt as (kind, value); without a record, the problem's messages or raw prompt."""
    if prompts is not None:
        return prompts
    messages = rows.column("messages").to_pylist() if "messages" in rows.column_names else [None] * rows.num_rows
    texts = rows.column("prompt").to_pylist()
    return [("chat", chat) if chat else ("text", text) for chat, text in zip(messages, texts)]


def _trl(rows: pa.Table, prompts: list | None, with_weight: bool) -> pa.Table:
    problem_id = rows.column("problem_id").combine_chunks()
    references = rows.column("reference").to_pylist()
    shown = _prompts(rows, prompts)
    weight = [rows.column("weight").combine_chunks()] if with_weight else []
    if any(kind == "chat" for kind, _ in shown):
        prompt = pa.array([_chat(kind, value) for kind, value in shown], CHAT)
        completion = pa.array([[{"role": "assistant", "content": text}] for text in references], CHAT)
        schema = TRL_CHAT if with_weight else pa.schema([f for f in TRL_CHAT if f.name != "weight"])
    else:
        prompt = pa.array([value for _, value in shown], pa.string())
        completion = pa.array(references, pa.string())
        schema = TRL_TEXT if with_weight else pa.schema([f for f in TRL_TEXT if f.name != "weight"])
    return pa.Table.from_arrays([prompt, completion, *weight, problem_id], schema=schema)


def _verl(rows: pa.Table, data_source: str, prompts: list | None) -> pa.Table:
    n = rows.num_rows
    sources = pa.array([data_source] * n, pa.string())
    prompt = pa.array([_chat(kind, value) for kind, value in _prompts(rows, prompts)], CHAT)
    reward = pa.StructArray.from_arrays(
        [pa.array(["rule"] * n, pa.string()), rows.column("answer").combine_chunks()], fields=list(REWARD_MODEL)
    )
    extra = pa.StructArray.from_arrays(
        [
            pa.array(np.arange(n, dtype=np.int64)),
            rows.column("weight").combine_chunks(),
            rows.column("pass_rate").combine_chunks(),
            rows.column("problem_id").combine_chunks(),
        ],
        fields=list(EXTRA_INFO),
    )
    ability = pa.array(["math"] * n, pa.string())
    return pa.Table.from_arrays([sources, prompt, ability, reward, extra], schema=VERL)


def _llamafactory(rows: pa.Table, prompts: list | None, with_weight: bool) -> pa.Table:
    shown = [_chat(kind, value) for kind, value in _prompts(rows, prompts)]
    weights = rows.column("weight").to_pylist() if with_weight else [1.0] * rows.num_rows
    return llamafactory_table(shown, rows.column("reference").to_pylist(), weights, rows.column("problem_id"))


def split_and_shuffle(problem_ids: list[str], seed: int, val_fraction: float) -> dict[str, np.ndarray]:
    """Row indices of each split, in shuffled order; a problem's rows all go to one split.

    Args:
        problem_ids: each row's problem id, rows in canonical order.
        seed: seed of `numpy.random.default_rng`.
        val_fraction: share of problems (not rows) for the "val" split; 0 gives "train" only.

    Returns:
        {"train": indices} or {"train": indices, "val": indices}.

    Raises:
        InputError: a split is asked for but fewer than 2 problems are exported.
    """
    rng = np.random.default_rng(seed)
    val: set[str] = set()
    if val_fraction > 0:
        names = sorted(set(problem_ids))
        if len(names) < 2:
            raise InputError(f"only {len(names)} problem is left to export; --val-fraction needs at least 2")
        num_val = min(max(round(val_fraction * len(names)), 1), len(names) - 1)
        val = {names[i] for i in rng.permutation(len(names))[:num_val]}
    order = rng.permutation(len(problem_ids))
    if not val:
        return {"train": order}
    in_val = np.array([problem_ids[i] in val for i in order], dtype=bool)
    return {"train": order[~in_val], "val": order[in_val]}


def write_shards(table: pa.Table, directory: Path, rows_per_shard: int, metadata: dict[bytes, bytes]) -> list[dict]:
    """Write `table` as `part-00000.parquet`, ... of at most `rows_per_shard` rows (the last holds the rest).

    Returns:
        One entry per file: {"file": name, "rows": count, "sha256": digest}.
    """
    directory.mkdir(parents=True, exist_ok=True)
    table = table.replace_schema_metadata(metadata)
    row_group = min(rows_per_shard, ROW_GROUP_ROWS)
    files = []
    for index, start in enumerate(range(0, table.num_rows, rows_per_shard)):
        # One contiguous chunk, so page boundaries depend on the rows only, not on how they were assembled.
        part = table.slice(start, rows_per_shard).combine_chunks()
        path = directory / PART_NAME.format(index)
        digest = write_parquet(part, path, row_group_size=row_group)
        files.append({"file": path.name, "rows": part.num_rows, "sha256": digest})
    return files


def write_single(table: pa.Table, path: Path, metadata: dict[bytes, bytes]) -> list[dict]:
    """Write `table` as one Parquet file (`-o NAME.parquet`), row groups as in `write_shards`.

    Returns:
        One entry: {"file": name, "rows": count, "sha256": digest}.
    """
    table = table.replace_schema_metadata(metadata).combine_chunks()
    digest = write_parquet(table, path, row_group_size=ROW_GROUP_ROWS)
    return [{"file": path.name, "rows": table.num_rows, "sha256": digest}]
