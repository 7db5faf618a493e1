"""A tiny GPT-2 (absolute, learned position embeddings) with the character tokenizer, for position-limit tests.

GPT-2-style models name their position limit `n_positions` and cannot run past it: position
`n_positions` indexes outside the position table. A limit of 64 makes that edge easy to reach.

    from paced_curate.toy.gpt2 import build_tiny_gpt2
    build_tiny_gpt2("gpt2-64", n_positions=64)
"""

from __future__ import annotations

from pathlib import Path

from paced_curate.toy.models import save_model
from paced_curate.toy.tokenizer import END_OF_TEXT, IM_END, build_char_tokenizer


def build_tiny_gpt2(path: str | Path, *, n_positions: int = 64, hidden_size: int = 64, num_layers: int = 2, init_seed: int = 0) -> Path:
    """Save a randomly initialised GPT-2 (`GPT2LMHeadModel`) with the character tokenizer to `path`.

    Returns:
        The folder; its config.json has `n_positions` and no `max_position_embeddings`.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = build_char_tokenizer()
    eos = [tokenizer.convert_tokens_to_ids(END_OF_TEXT), tokenizer.convert_tokens_to_ids(IM_END)]
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=n_positions, n_embd=hidden_size, n_layer=num_layers, n_head=2,
        bos_token_id=eos[0], eos_token_id=eos, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(init_seed)
    path = Path(path)
    save_model(GPT2LMHeadModel(config), tokenizer, path)
    return path
