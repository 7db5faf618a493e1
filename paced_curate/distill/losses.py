"""The distillation losses: per-token KL over the full vocabulary, chunked, and PACED weighting.

Pure functions of tensors; `tests/test_distill_losses.py` checks each against a slow, obvious
full-vocabulary computation.

Forward KL (`fkl`, mode covering) is KL(p_teacher || p_student) = sum_v p_t(v) (log p_t(v) - log p_s(v));
reverse KL (`rkl`, mode seeking) is KL(p_student || p_teacher) = sum_v p_s(v) (log p_s(v) - log p_t(v)).
Adaptive KL (`akl`, Wu et al. 2024, "Rethinking Kullback-Leibler Divergence in Knowledge
Distillation for Large Language Models", arXiv:2404.02657) mixes the two per position by where
the student is wrong: sort the teacher's vocabulary by probability; the head is the top token
and every further token whose cumulative teacher probability stays <= mu (0.5), the tail is
the rest; with g_head = sum_head |p_t - p_s| and g_tail = sum_tail |p_t - p_s|,
AKL = g_head / (g_head + g_tail) * FKL + g_tail / (g_head + g_tail) * RKL. The mixing weights
are constants (no gradient), as in the authors' code (github.com/wutaiqiang/LLM_KD_AKL).
Gradients flow through the student only.

    kl = chunked_kl(student_hidden, teacher_hidden, student.lm_head, teacher.lm_head, mask, "fkl", chunk_size=1024)
    loss = weighted_problem_loss(kl, token_problem, weights, batch_size=32)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

DIRECTIONS = ("fkl", "rkl", "akl")
REFERENCE_STAGES = frozenset({"fkl", "akl"})
"""Losses computed on the teacher's references (teacher forcing); rkl is computed on the student's own samples."""
AKL_MU = 0.5
"""AKL's head mass: the head holds the teacher's top tokens up to this cumulative probability (the paper's mu)."""


def token_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, direction: str) -> torch.Tensor:
    """KL between the two next-token distributions at each position, over the full vocabulary.

    Args:
        student_logits: [..., V] logits of the student (any float dtype; computed in float32).
        teacher_logits: [..., V] logits of the teacher, same shape.
        direction: "fkl" for KL(teacher || student), "rkl" for KL(student || teacher), "akl" for
            their adaptive mix (`akl_weights`; module docstring).

    Returns:
        [...] float32 KL per position (>= 0 up to rounding); gradients reach the student's logits only.
    """
    student = F.log_softmax(student_logits.float(), dim=-1)
    teacher = F.log_softmax(teacher_logits.detach().float(), dim=-1)
    if direction == "fkl":
        return (teacher.exp() * (teacher - student)).sum(-1)
    if direction == "rkl":
        return (student.exp() * (student - teacher)).sum(-1)
    if direction == "akl":
        forward = (teacher.exp() * (teacher - student)).sum(-1)
        reverse = (student.exp() * (student - teacher)).sum(-1)
        head, tail = akl_weights(student.detach().exp(), teacher.exp())
        return head * forward + tail * reverse
    raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")


def akl_weights(student_probs: torch.Tensor, teacher_probs: torch.Tensor, mu: float = AKL_MU) -> tuple[torch.Tensor, torch.Tensor]:
    """AKL's mixing weights: the share of the student's error in the teacher's head and in its tail.

    Source: Wu et al. 2024, arXiv:2404.02657, section 4 (head/tail split at cumulative teacher
    probability mu; the top token is always in the head, as in the authors' code).

    Args:
        student_probs: [..., V] the student's next-token probabilities (treated as constants).
        teacher_probs: [..., V] the teacher's, same shape.
        mu: cumulative teacher probability that bounds the head.

    Returns:
        (head, tail): [...] float32 each, g_head / (g_head + g_tail) and g_tail / (g_head + g_tail),
        summing to 1; 0.5 each where the two distributions are equal (both gaps 0).
    """
    sorted_teacher, order = teacher_probs.float().sort(dim=-1, descending=True)
    gap = (sorted_teacher - student_probs.float().gather(-1, order)).abs()
    in_tail = sorted_teacher.cumsum(-1) > mu
    in_tail[..., 0] = False
    g_head = gap.masked_fill(in_tail, 0.0).sum(-1)
    g_tail = gap.masked_fill(~in_tail, 0.0).sum(-1)
    total = g_head + g_tail
    safe = total.clamp(min=torch.finfo(total.dtype).tiny)
    head = torch.where(total > 0, g_head / safe, torch.full_like(total, 0.5))
    return head, 1.0 - head


def _chunk_kl(
    student_head: Callable, teacher_head: Callable, direction: str, student_hidden: torch.Tensor, teacher_hidden: torch.Tensor
) -> torch.Tensor:
    with torch.no_grad():
        teacher_logits = teacher_head(teacher_hidden)
    return token_kl(student_head(student_hidden), teacher_logits, direction)


def chunked_kl(
    student_hidden: torch.Tensor,
    teacher_hidden: torch.Tensor,
    student_head: Callable,
    teacher_head: Callable,
    positions_mask: torch.Tensor,
    direction: str,
    chunk_size: int,
) -> torch.Tensor:
    """Per-token KL at the masked positions, applying each model's output layer a chunk at a time.

    Only one chunk's [chunk_size, V] logits exist at a time: the chunk runs under
    `torch.utils.checkpoint`, so backward recomputes the chunk's logits instead of keeping
    them. Memory for the logits is O(chunk_size * V) instead of O(batch * seq * V), for the
    price of a second head matmul per chunk in backward.

    Args:
        student_hidden: [B, T, Hs] final hidden states of the student (with grad).
        teacher_hidden: [B, T, Ht] final hidden states of the teacher (no grad).
        student_head: the student's output layer (hidden -> logits).
        teacher_head: the teacher's output layer.
        positions_mask: [B, T] bool, True where the logits predict a response token.
        direction: "fkl", "rkl" or "akl" (see `token_kl`).
        chunk_size: positions per chunk.

    Returns:
        [N] float32 KL of the N masked positions, in row-major order of the mask.

    Example:
        >>> kl = chunked_kl(s_h, t_h, student.lm_head, teacher.lm_head, mask, "fkl", 1024)
        >>> torch.allclose(kl, token_kl(student.lm_head(s_h)[mask], teacher.lm_head(t_h)[mask], "fkl"))
        True
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    student_rows = student_hidden[positions_mask]
    teacher_rows = teacher_hidden[positions_mask]
    pieces = []
    for start in range(0, student_rows.shape[0], chunk_size):
        s, t = student_rows[start : start + chunk_size], teacher_rows[start : start + chunk_size]
        if torch.is_grad_enabled() and s.requires_grad:
            pieces.append(checkpoint(_chunk_kl, student_head, teacher_head, direction, s, t, use_reentrant=False))
        else:
            pieces.append(_chunk_kl(student_head, teacher_head, direction, s, t))
    if not pieces:
        return student_rows.new_zeros(0, dtype=torch.float32)
    return torch.cat(pieces)


def problem_means(per_token: torch.Tensor, token_problem: torch.Tensor, num_problems: int) -> torch.Tensor:
    """Mean of `per_token` over each problem's tokens.

    Args:
        per_token: [N] values (the KL of each response token).
        token_problem: [N] long, the problem (row of the micro-batch) each token belongs to.
        num_problems: number of problems in the micro-batch.

    Returns:
        [num_problems] means; a problem without tokens gets 0.
    """
    sums = per_token.new_zeros(num_problems).index_add(0, token_problem, per_token)
    counts = torch.bincount(token_problem, minlength=num_problems).to(per_token.dtype)
    return sums / counts.clamp(min=1)


def weighted_problem_loss(per_token: torch.Tensor, token_problem: torch.Tensor, weights: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The PACED batch loss: sum_i w_i * mean_t(kl_i,t) / batch_size.

    Each problem's loss is the mean over its own response tokens, so long and short responses
    count the same; the weight then scales it. Dividing by the number of problems, not by
    sum(w), keeps the weights meaningful within a batch: a batch of low-weight problems
    gives a small gradient, as PACED intends. Under gradient accumulation, pass the size of
    the whole (accumulated) batch: the micro-batch losses then add up to the batch loss.

    Args:
        per_token: [N] per-token KL.
        token_problem: [N] long, the problem index (0 .. len(weights) - 1) of each token.
        weights: [P] problem weights of this micro-batch.
        batch_size: problems in the whole batch (the divisor).

    Returns:
        A scalar tensor.
    """
    means = problem_means(per_token, token_problem, weights.shape[0])
    return (weights.to(means.dtype) * means).sum() / batch_size
