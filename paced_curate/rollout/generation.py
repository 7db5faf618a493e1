"""What a checkpoint says about generation, and keeping it from changing paced's samples.

A checkpoint's `generation_config.json` often carries sampling defaults (Qwen2.5-Instruct:
`repetition_penalty` 1.05, `top_k` 20, `temperature` 0.7, `top_p` 0.8). transformers' `generate`
fills every setting the caller leaves unset from it, and vLLM's server does the same, so a
run would sample from another distribution than the one its flags describe (and an rkl step
would train on samples from a distribution other than the one its KL uses). paced therefore
samples with its own settings only, and reads a checkpoint's values only when asked
(`paced rollout --generation-config model`).

Also here: the longest sequence a model takes, from whichever config key its architecture
uses (`max_position_embeddings` for Llama/Qwen, `n_positions` for GPT-2, ...).

    with own_generation_config(model, eos_ids, pad_id):
        model.generate(...)            # no repetition penalty, top-k, min length ... from the checkpoint
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from paced_curate.errors import ConfigError

POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "max_seq_len", "seq_length", "n_ctx", "max_seq_length")
"""Config keys that hold a model's position limit, in the order they are looked up."""
CHECKPOINT_SAMPLING_KEYS = ("temperature", "top_p", "top_k", "repetition_penalty", "min_new_tokens")
"""The sampling values `--generation-config model` takes from a checkpoint's generation_config.json."""
GENERATION_CONFIG_MODES = ("ignore", "model")


def max_positions(config: dict | object) -> int | None:
    """The model's position limit: the first of `POSITION_KEYS` its config sets (also under `text_config`).

    Args:
        config: a config.json dict or a transformers `PretrainedConfig`.

    Returns:
        The limit in tokens, or None when the config names none of the keys.
    """
    values = config if isinstance(config, dict) else config.to_dict()
    for source in (values, values.get("text_config") or {}):
        for key in POSITION_KEYS:
            if isinstance(source.get(key), int) and source[key] > 0:
                return source[key]
    return None


def folder_max_positions(flag: str, folder: str) -> int:
    """`max_positions` of a model folder's config.json.

    Raises:
        ConfigError: the config names no position limit (then the user gives one explicitly).
    """
    limit = max_positions(json.loads((Path(folder) / "config.json").read_text()))
    if limit is None:
        raise ConfigError(
            f"{flag} {folder}: config.json names no position limit (none of {', '.join(POSITION_KEYS)}); give --max-length"
        )
    return limit


def checkpoint_sampling(folder: str) -> dict:
    """The sampling values a model folder's generation_config.json sets (keys of `CHECKPOINT_SAMPLING_KEYS`).

    Returns:
        {} when the folder has no generation_config.json or it sets none of them.
    """
    path = Path(folder) / "generation_config.json"
    if not path.exists():
        return {}
    try:
        values = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid JSON: {error}") from None
    return {key: values[key] for key in CHECKPOINT_SAMPLING_KEYS if values.get(key) is not None}


@contextlib.contextmanager
def own_generation_config(model, eos_ids: list[int], pad_id: int):
    """Let `model.generate` see a generation config with nothing but the stop and pad tokens.

    `generate` fills every value its `generation_config` argument leaves unset from
    `model.generation_config` (transformers 5), and passing a neutral value explicitly does not
    help for all of them; so the model's own config is swapped out while generating.
    """
    from transformers import GenerationConfig

    saved = model.generation_config
    model.generation_config = GenerationConfig(eos_token_id=list(eos_ids), pad_token_id=pad_id)
    try:
        yield
    finally:
        model.generation_config = saved


def budget_groups(budgets: list[int]) -> list[list[int]]:
    """Row indices grouped by budget, largest budget first.

    A batch of `generate` runs every row for the same number of steps, and a row that stops
    early keeps being fed pad tokens at ever later positions; so rows whose budget is cut by
    the position limit are generated with the rows of the same budget only, and no row ever
    runs past its limit.
    """
    groups: dict[int, list[int]] = {}
    for row, budget in enumerate(budgets):
        groups.setdefault(budget, []).append(row)
    return [groups[budget] for budget in sorted(groups, reverse=True)]
