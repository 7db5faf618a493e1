"""Training the built-in teacher and student from scratch: supervised next-token learning on worked solutions.

A tiny Qwen2 model learns to write `worked_solution` after each prompt (the loss covers the
solution and the end-of-text token, not the prompt), on fresh reasoning-gym problems every
step, with AdamW and a warmup-then-cosine learning rate. Models are cached under the user's
cache directory by a hash of everything that shapes them, so a second `paced demo` reuses them.

    path = trained_model(TEACHER)      # trains on first use (minutes), then loads from the cache
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from paced_curate.report import say
from paced_curate.toy.models import TinyModelSpec, qwen2_config, save_model
from paced_curate.toy.tokenizer import build_char_tokenizer
from paced_curate.toy.world import make_mixture

CACHE_VERSION = 3
"""Bump when the training code changes in a way that changes the models."""


@dataclass(frozen=True, kw_only=True)
class PretrainSpec:
    """Everything that determines a pretrained toy model."""

    name: str
    model: TinyModelSpec = field(default_factory=TinyModelSpec)
    steps: int = 1000
    """Optimizer steps."""
    batch_size: int = 64
    """Problems per step."""
    lr: float = 3e-3
    """Peak learning rate (AdamW)."""
    warmup_steps: int = 100
    """Linear warmup steps before the cosine decay to lr / 10."""
    terms: tuple[int, int] = (2, 7)
    """Range of the number of terms in training problems (additions)."""
    skills: tuple[tuple[str, float], ...] = (("add", 1.0),)
    """(skill, share) pairs of the training mixture (`toy.world.SKILLS`); a skill left out is never seen."""
    data_seed: int = 1000
    """reasoning-gym seed of the training problems (held-out sets use other seeds)."""

    def digest(self) -> str:
        """A short hash of the spec and the training code version, for the cache."""
        text = json.dumps({"spec": dataclasses.asdict(self), "version": CACHE_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def cache_dir() -> Path:
    """Where trained toy models live: $PACED_CACHE, else $XDG_CACHE_HOME/paced, else ~/.cache/paced."""
    if os.environ.get("PACED_CACHE"):
        return Path(os.environ["PACED_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "paced"


def trained_model(spec: PretrainSpec) -> Path:
    """The folder of the model `spec` describes, training it first if it is not cached."""
    target = cache_dir() / "models" / f"{spec.name}-{spec.digest()}"
    if (target / "config.json").exists():
        say(f"using cached {spec.name} model {target}")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    pretrain(spec, staging)
    os.replace(staging, target)
    return target


def training_problems(spec: PretrainSpec) -> list:
    """The problems a model is pretrained on, in order: `steps * batch_size` from `make_mixture(data_seed)`.

    They cover every short addition chain, product and difference, so a world's evaluation
    problems occur in them (bench/world_overlap.py counts how many); the worlds' sets are
    disjoint from the distillation pool only (`toy.world.world_sets`).
    """
    return make_mixture(spec.data_seed, spec.steps * spec.batch_size, dict(spec.skills), spec.terms, prefix="train")


def pretrain(spec: PretrainSpec, output: Path) -> Path:
    """Train a model from scratch on worked solutions and save it (HF format) to `output`."""
    import torch
    from transformers import Qwen2ForCausalLM

    torch.manual_seed(spec.model.init_seed)
    tokenizer = build_char_tokenizer()
    model = Qwen2ForCausalLM(qwen2_config(spec.model, tokenizer))
    model.train()
    problems = training_problems(spec)
    prompts = tokenizer([p.prompt + "\n" for p in problems], add_special_tokens=False).input_ids
    solutions = tokenizer([p.solution for p in problems], add_special_tokens=False).input_ids
    eos = tokenizer.eos_token_id
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=spec.lr, betas=(0.9, 0.98))
    parameters = sum(p.numel() for p in model.parameters())
    say(f"training the {spec.name} model from scratch: {parameters / 1e6:.2f}M parameters, {spec.steps} steps of {spec.batch_size} problems")
    started = last = time.perf_counter()
    for step in range(spec.steps):
        batch = range(step * spec.batch_size, (step + 1) * spec.batch_size)
        input_ids, labels = _batch([prompts[i] for i in batch], [solutions[i] + [eos] for i in batch], tokenizer.pad_token_id)
        loss = train_step(model, optimizer, input_ids, labels, step, spec)
        if (step + 1) % 100 == 0 or step + 1 == spec.steps:
            now = time.perf_counter()
            # note: .item() is a sync point; it runs once per 100 steps
            say(f"{spec.name} step {step + 1:05d} | loss {loss.item():.4f} | {100 / (now - last):.1f} steps/s | {now - started:.0f}s")
            last = now
    model.eval()
    save_model(model, tokenizer, output)
    (output / "pretrain.json").write_text(json.dumps(dataclasses.asdict(spec) | {"seconds": time.perf_counter() - started}, indent=2))
    return output


def train_step(model, optimizer, input_ids, labels, step: int, spec):
    """One step of the toy models' training: the learning rate of `step` (warm-up, then cosine to
    a tenth, `distill.train.lr_at` with spec.lr, spec.warmup_steps, spec.steps), the loss, AdamW
    with gradients clipped at norm 1. Returns the loss tensor (shape ()), not synced."""
    import torch

    from paced_curate.distill.train import lr_at

    for group in optimizer.param_groups:
        group["lr"] = lr_at(step, lr=spec.lr, min_lr=spec.lr / 10, warmup=spec.warmup_steps, total=spec.steps)
    loss = model(input_ids=input_ids, labels=labels).loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss


def _batch(prompts: list[list[int]], completions: list[list[int]], pad: int):
    """Right-padded input ids and labels that cover only the completion tokens."""
    import torch

    lengths = [len(p) + len(c) for p, c in zip(prompts, completions)]
    width = max(lengths)
    input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    labels = torch.full((len(prompts), width), -100, dtype=torch.long)
    for row, (prompt, completion) in enumerate(zip(prompts, completions)):
        ids = prompt + completion
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, len(prompt) : len(ids)] = torch.tensor(completion)
    return input_ids, labels
