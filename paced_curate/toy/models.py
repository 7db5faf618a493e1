"""Tiny Qwen2-architecture causal LMs with the character tokenizer, built locally.

The models load in transformers and in vLLM from a local folder. vLLM's CPU attention kernels
refuse head dims below 32, so `TinyModelSpec` rejects them too.

    from paced_curate.toy.models import TinyModelSpec, build_tiny_model
    build_tiny_model("student", TinyModelSpec(hidden_size=128, num_layers=2))
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from paced_curate.toy.tokenizer import END_OF_TEXT, IM_END, build_char_tokenizer


@dataclass(frozen=True, kw_only=True)
class TinyModelSpec:
    """Shape of a tiny Qwen2 model."""

    hidden_size: int = 128
    """Width of the residual stream."""
    num_layers: int = 2
    """Number of transformer blocks."""
    num_heads: int = 2
    """Attention heads; hidden_size / num_heads is the head dim (at least 32 for vLLM on CPU)."""
    num_kv_heads: int = 1
    """Key/value heads (grouped-query attention)."""
    intermediate_size: int = 256
    """Width of the MLP."""
    max_positions: int = 512
    """Longest sequence, prompt plus completion."""
    init_seed: int = 0
    """Seed of the random initialisation."""

    def __post_init__(self) -> None:
        problems = []
        if self.hidden_size % self.num_heads:
            problems.append(f"hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}")
        elif self.hidden_size // self.num_heads < 32:
            problems.append(f"head dim {self.hidden_size // self.num_heads} < 32 (vLLM's CPU kernels refuse it)")
        if self.num_heads % self.num_kv_heads:
            problems.append(f"num_heads {self.num_heads} is not a multiple of num_kv_heads {self.num_kv_heads}")
        if problems:
            raise ValueError("; ".join(problems))

    def digest(self) -> str:
        """A short stable hash of the spec, for cache keys."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def qwen2_config(spec: TinyModelSpec, tokenizer):
    """The `Qwen2Config` for a spec and the character tokenizer."""
    from transformers import Qwen2Config

    eos_ids = [tokenizer.convert_tokens_to_ids(END_OF_TEXT), tokenizer.convert_tokens_to_ids(IM_END)]
    return Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_kv_heads,
        max_position_embeddings=spec.max_positions,
        tie_word_embeddings=True,
        bos_token_id=eos_ids[0],
        eos_token_id=eos_ids,
        pad_token_id=tokenizer.pad_token_id,
        dtype="float32",
    )


def build_tiny_model(path: str | Path, spec: TinyModelSpec | None = None) -> Path:
    """Save a randomly initialised tiny Qwen2 model and its tokenizer to `path`.

    Args:
        path: folder to write (created if missing).
        spec: the model's shape; defaults to `TinyModelSpec()` (hidden 128, 2 layers).

    Returns:
        The folder, loadable with `AutoModelForCausalLM.from_pretrained` and `vllm.LLM`.
    """
    import torch
    from transformers import Qwen2ForCausalLM

    spec = spec or TinyModelSpec()
    path = Path(path)
    tokenizer = build_char_tokenizer()
    config = qwen2_config(spec, tokenizer)
    torch.manual_seed(spec.init_seed)
    model = Qwen2ForCausalLM(config)
    save_model(model, tokenizer, path)
    return path


def save_model(model, tokenizer, path: Path) -> None:
    """Save a model, its tokenizer and a generation config that stops at both end tokens."""
    from transformers import GenerationConfig

    path.mkdir(parents=True, exist_ok=True)
    model.generation_config = GenerationConfig(
        eos_token_id=model.config.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
