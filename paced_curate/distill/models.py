"""The student and teacher in `paced distill`: loading, per-token KL of a batch, and rkl sampling.

Logits are never materialised as a whole: each model's base returns final hidden states
[B, T, H], and `losses.chunked_kl` applies the output layers to a chunk of response positions
at a time. This assumes the logits are `lm_head(hidden)`, as for Llama, Qwen2, Mistral and
most causal LMs; a model that post-processes its logits (soft-capping, scaling) would need it
added in `OutputLayer`.

    student, teacher, tokenizer = load_pair("models/student", "models/teacher", device, student_from=None)
    kl = response_kl(student, teacher, batch, "fkl", chunk_size=1024, heads=OutputLayers.of(student, teacher))
    responses = sample_responses(student, prompts, seeds, budgets, temperature=1.0, eos_ids=[...], pad_id=0)
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from paced_curate.distill.data import Batch, check_same_vocab
from paced_curate.distill.losses import chunked_kl
from paced_curate.errors import ConfigError
from paced_curate.model_check import check_model_folder as check_folder
from paced_curate.rollout.generation import budget_groups, own_generation_config

CAUSAL_LM_SUFFIXES = ("ForCausalLM", "LMHeadModel")


@contextlib.contextmanager
def quiet_loading():
    """Hide transformers' per-file progress bars while loading or saving (the run has its own display)."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def check_model_folder(flag: str, path: str) -> None:
    """Refuse a model folder AutoModelForCausalLM cannot load or paced cannot use (`paced_curate.model_check`, #24)."""
    check_folder(flag, path, CAUSAL_LM_SUFFIXES, transformers_only=True)


def load_tokenizers(student: str, teacher: str):
    """The student's tokenizer, after checking that the teacher's has the same vocabulary."""
    from transformers import AutoTokenizer

    check_model_folder("--student", student)
    check_model_folder("--teacher", teacher)
    student_tokenizer = AutoTokenizer.from_pretrained(student)
    check_same_vocab(student_tokenizer, AutoTokenizer.from_pretrained(teacher), teacher)
    if student_tokenizer.eos_token_id is None:
        raise ConfigError(f"--student {student}: its tokenizer has no eos token, so a response cannot end")
    return student_tokenizer


def load_pair(student: str, teacher: str, device: torch.device, *, student_from: str | None, gradient_checkpointing: bool):
    """Load the student (float32 master weights, train mode) and the frozen teacher.

    Args:
        student: the student folder (its tokenizer is the run's tokenizer).
        teacher: the teacher folder.
        device: where both live.
        student_from: load the student's weights from this folder instead (a checkpoint).
        gradient_checkpointing: recompute the student's activations in backward.

    Returns:
        (student, teacher); the teacher is bf16 on CUDA and float32 on CPU, with no gradients.
    """
    from transformers import AutoModelForCausalLM

    teacher_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    with quiet_loading():
        student_model = AutoModelForCausalLM.from_pretrained(student_from or student, dtype=torch.float32).to(device)
        teacher_model = AutoModelForCausalLM.from_pretrained(teacher, dtype=teacher_dtype).to(device)
    student_model.train()
    if gradient_checkpointing:
        student_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    teacher_model.eval().requires_grad_(False)
    return student_model, teacher_model


class OutputLayer:
    """A model's output layer restricted to the first `width` vocabulary rows.

    Student and teacher may pad their embedding matrices to different sizes beyond the
    tokenizer's vocabulary (Qwen2 0.5B and 7B do); the KL is taken over the shared rows.
    """

    def __init__(self, head: torch.nn.Linear, width: int) -> None:
        self.weight = head.weight
        self.bias = head.bias
        self.width = width

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias[: self.width]
        return F.linear(hidden, self.weight[: self.width], bias)


@dataclass(frozen=True)
class OutputLayers:
    """The student's and teacher's output layers over their shared vocabulary."""

    student: OutputLayer
    teacher: OutputLayer

    @classmethod
    def of(cls, student, teacher, vocab_size: int | None = None) -> "OutputLayers":
        """Both output layers, cut to the smaller of the two widths.

        Raises:
            ConfigError: that width is below the tokenizer's vocabulary size.
        """
        student_head, teacher_head = student.get_output_embeddings(), teacher.get_output_embeddings()
        width = min(student_head.weight.shape[0], teacher_head.weight.shape[0])
        if vocab_size is not None and width < vocab_size:
            raise ConfigError(f"an output layer has {width} rows but the tokenizer has {vocab_size} tokens")
        return cls(OutputLayer(student_head, width), OutputLayer(teacher_head, width))


def hidden_states(model, batch: Batch) -> torch.Tensor:
    """The final hidden states [B, T, H] of a causal LM (what its output layer reads).

    No attention mask is passed: rows are right-padded, so under the causal mask no real
    token can see a pad, and positions count from 0 as they should. Without a padding mask
    the attention runs its fused causal kernel instead of materialising a [B, heads, T, T]
    mask. The pad positions get meaningless states, which the loss mask leaves out.
    """
    base = model.get_decoder()
    return base(input_ids=batch.input_ids, use_cache=False).last_hidden_state


def response_kl(student, teacher, batch: Batch, direction: str, chunk_size: int, heads: OutputLayers) -> torch.Tensor:
    """Per-token KL at the batch's response positions, with gradients through the student.

    Returns:
        [batch.num_tokens] float32, in the order of `batch.token_problem`.
    """
    student_hidden = hidden_states(student, batch)
    # no_grad, not inference_mode: the teacher's activations are saved for the student's backward,
    # and inference tensors cannot be.
    with torch.no_grad():
        teacher_hidden = hidden_states(teacher, batch)
    return chunked_kl(student_hidden, teacher_hidden, heads.student, heads.teacher, batch.loss_mask, direction, chunk_size)


def eos_ids(model, tokenizer) -> list[int]:
    """Tokens that end a response: the generation config's eos ids and the tokenizer's."""
    eos = model.generation_config.eos_token_id
    eos = [eos] if isinstance(eos, int) else list(eos or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos:
        eos.append(tokenizer.eos_token_id)
    return eos


def sample_responses(
    student, prompts: list[list[int]], seeds: list[int], budgets: list[int], *, temperature: float, eos: list[int], pad_id: int
) -> list[list[int]]:
    """Sample one response per prompt from the student (transformers generate, left padding).

    Each row draws from its own seeded generator (`rollout.hf_engine.SeededSampler`), so a
    row's sample depends on its seed, not on the rest of the batch, and a resumed run samples
    exactly what the uninterrupted run did. Only `temperature` shapes the distribution: the
    checkpoint's generation config is not applied. No row runs past its own budget.

    Args:
        student: the model being trained (put in eval mode while sampling, then back).
        prompts: prompt token ids per row.
        seeds: one seed per row.
        budgets: most new tokens per row (>= 1).
        temperature: sampling temperature (> 0).
        eos: tokens that end a response (kept as its last token).
        pad_id: padding token.

    Returns:
        Token ids per row, up to and including the first eos, at most the row's budget.
    """
    responses: list[list[int] | None] = [None] * len(prompts)
    was_training = student.training
    student.eval()
    try:
        # Rows cut by the position limit are generated only with rows of the same budget (rollout.generation.budget_groups).
        for group in budget_groups(budgets):
            sampled = _sample_group(
                student, [prompts[i] for i in group], [seeds[i] for i in group], budgets[group[0]],
                temperature=temperature, eos=eos, pad_id=pad_id,
            )
            for row, tokens in zip(group, sampled):
                responses[row] = tokens
    finally:
        student.train(was_training)
    return responses


def _sample_group(student, prompts, seeds, budget: int, *, temperature: float, eos: list[int], pad_id: int) -> list[list[int]]:
    from transformers import GenerationConfig, LogitsProcessorList

    from paced_curate.rollout.hf_engine import SeededSampler

    device = next(student.parameters()).device
    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, ids in enumerate(prompts):
        input_ids[row, width - len(ids) :] = torch.tensor(ids)
        attention[row, width - len(ids) :] = 1
    config = GenerationConfig(do_sample=False, max_new_tokens=budget, eos_token_id=eos, pad_token_id=pad_id, use_cache=True)
    sampler = SeededSampler(seeds, temperature, top_p=1.0)
    # The checkpoint's generation_config.json (repetition penalty, top-k, ...) must not reshape the samples:
    # rkl's KL is taken against the plain softmax at `temperature`.
    # synced_gpus=False: fully_shard marks the student `_is_fsdp_managed_module`, so under torchrun generate would
    # default to synced_gpus=True: an all-reduce of a "finished" flag at every step, and a finished rank running
    # forward passes until every rank is done. Rows whose budgets the position limit cuts differently make the ranks
    # run different numbers of generate calls (budget_groups), so those all-reduces met FSDP's collectives (gloo
    # error, SIGABRT), and a rank past its budget fed positions beyond the limit (GPT-2: IndexError) (#26). Under
    # FSDP the parameters are gathered for the whole sampling call (parallel.py): generating needs no collective.
    with torch.no_grad(), own_generation_config(student, eos, pad_id):
        out = student.generate(
            input_ids=input_ids.to(device), attention_mask=attention.to(device), generation_config=config,
            logits_processor=LogitsProcessorList([sampler]), synced_gpus=False,
        )
    responses = []
    for tokens in out[:, width:].tolist():
        stop = next((i for i, token in enumerate(tokens) if token in eos), None)
        responses.append(tokens if stop is None else tokens[: stop + 1])
    return responses
