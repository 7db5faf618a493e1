"""A tiny verifier model that answers "yes" or "no": is an answer equivalent to the gold?

It stands in for xVerify or CompassVerifier in tests of `paced grade --judge` (#23), served by a
real vLLM server: a character-level Qwen2 model trained from scratch, like the toy teacher and
student (pretrain.py), on chat-formatted requests

    7.0 = 7?          ->  yes

where the answer is a digit written with one decimal ("7.0", "8.5") and the gold 3 or 7:
equivalent when they are the same number. Exact string comparison calls "7.0" wrong against "7"; the verifier does
not. Cached under the toy model cache (`pretrain.cache_dir`) by a hash of everything that shapes it.

    path = trained_verifier()           # trains on first use (800 steps, a few minutes on 2 busy cores), then loads
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from paced_curate.report import say
from paced_curate.toy.models import TinyModelSpec, qwen2_config, save_model
from paced_curate.toy.pretrain import _batch, cache_dir, train_step
from paced_curate.toy.tokenizer import IM_END, build_char_tokenizer

VERIFIER_PROMPT = "{answer} = {gold}?"
"""The request the verifier is trained on: `paced grade --judge-prompt` takes the same template."""
CACHE_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class VerifierSpec:
    """Everything that determines the toy verifier."""

    name: str = "verifier"
    model: TinyModelSpec = field(default_factory=lambda: TinyModelSpec(hidden_size=64, num_layers=2, num_heads=2, num_kv_heads=1,
                                                                      intermediate_size=256, max_positions=128, init_seed=3))
    steps: int = 800
    """Measured: right on every (answer, gold) pair from step 400 (the comparison is learnt late, then at once)."""
    batch_size: int = 64
    lr: float = 3e-3
    warmup_steps: int = 30
    golds: tuple[int, ...] = (3, 7)
    """The golds it judges against (a comparison of any two digits takes a model this small
    thousands of steps to learn; two golds take a few hundred)."""
    data_seed: int = 5000

    def digest(self) -> str:
        text = json.dumps({"spec": dataclasses.asdict(self), "version": CACHE_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


VERIFIER = VerifierSpec()


def verifier_example(rng: random.Random, golds: tuple[int, ...]) -> tuple[str, str, str]:
    """(answer, gold, "yes" or "no"): the gold is one of `golds`, the answer a digit written with one
    decimal, "D.0" or "D.5" (its digits at fixed places); equivalent exactly when the answer is
    "G.0". Half the examples are equivalent."""
    gold = rng.choice(golds)
    if rng.random() < 0.5:
        return f"{gold}.0", str(gold), "yes"
    other = (gold + rng.randint(1, 9)) % 10
    # The other gold's "G.0" is the hard negative: without it the model learns "3.0 or 7.0 means yes".
    rival = rng.choice([g for g in golds if g != gold] or [other])
    answer = rng.choice([f"{rival}.0", f"{other}.0", f"{gold}.5", f"{other}.5"])
    return answer, str(gold), "no"


def trained_verifier(spec: VerifierSpec = VERIFIER) -> Path:
    """The folder of the toy verifier, training it first if it is not cached."""
    target = cache_dir() / "models" / f"{spec.name}-{spec.digest()}"
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    _train(spec, staging)
    os.replace(staging, target)
    return target


def _train(spec: VerifierSpec, output: Path) -> Path:
    import torch

    torch.manual_seed(spec.model.init_seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small gains nothing from more threads; other processes need the CPU
    try:
        return _steps(spec, output)
    finally:
        torch.set_num_threads(threads)


def _steps(spec: VerifierSpec, output: Path) -> Path:
    import torch
    from transformers import Qwen2ForCausalLM

    tokenizer = build_char_tokenizer()
    model = Qwen2ForCausalLM(qwen2_config(spec.model, tokenizer))
    model.train()
    rng = random.Random(spec.data_seed)
    end = tokenizer.convert_tokens_to_ids(IM_END)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, betas=(0.9, 0.98), weight_decay=0.01)
    say(f"training the toy verifier: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, {spec.steps} steps of {spec.batch_size}")
    started = time.perf_counter()
    for step in range(spec.steps):
        examples = [verifier_example(rng, spec.golds) for _ in range(spec.batch_size)]
        prompts = [
            tokenizer.apply_chat_template([{"role": "user", "content": VERIFIER_PROMPT.format(answer=a, gold=g)}], add_generation_prompt=True, tokenize=False)
            for a, g, _ in examples
        ]
        prompt_ids = tokenizer(prompts, add_special_tokens=False).input_ids
        reply_ids = [ids + [end] for ids in tokenizer([reply for _, _, reply in examples], add_special_tokens=False).input_ids]
        input_ids, labels = _batch(prompt_ids, reply_ids, tokenizer.pad_token_id)
        loss = train_step(model, optimizer, input_ids, labels, step, spec)
        if (step + 1) % 100 == 0 or step + 1 == spec.steps:
            # note: .item() is a sync point; it runs once per 100 steps
            say(f"verifier step {step + 1:05d} | loss {loss.item():.4f} | {time.perf_counter() - started:.0f}s")
    model.eval()
    save_model(model, tokenizer, output)
    (output / "verifier.json").write_text(json.dumps(dataclasses.asdict(spec) | {"seconds": time.perf_counter() - started}, indent=2))
    return output
