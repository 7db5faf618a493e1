"""The distillation losses against a slow, obvious full-vocabulary computation, and PACED weighting.

Includes the weighting property on the real tiny model: a weight-0 problem contributes no
gradient, and doubling a weight doubles its contribution.
"""

from __future__ import annotations

import math

import pytest
import torch

from paced_curate.distill.data import collate
from paced_curate.distill.losses import akl_weights, chunked_kl, problem_means, token_kl, weighted_problem_loss
from tests.test_distill_data import make_export, models, one_torch_thread, short_examples  # noqa: F401 (fixtures)


def slow_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, direction: str) -> torch.Tensor:
    """KL per position, one position and one vocabulary entry at a time, in float64."""
    flat_s = student_logits.double().reshape(-1, student_logits.shape[-1])
    flat_t = teacher_logits.double().reshape(-1, teacher_logits.shape[-1])
    out = []
    for s_row, t_row in zip(flat_s.tolist(), flat_t.tolist()):
        s_norm = math.log(sum(math.exp(x) for x in s_row))
        t_norm = math.log(sum(math.exp(x) for x in t_row))
        total = 0.0
        for s, t in zip(s_row, t_row):
            log_p_s, log_p_t = s - s_norm, t - t_norm
            if direction == "fkl":
                total += math.exp(log_p_t) * (log_p_t - log_p_s)
            else:
                total += math.exp(log_p_s) * (log_p_s - log_p_t)
        out.append(total)
    return torch.tensor(out, dtype=torch.float64).reshape(student_logits.shape[:-1])


def slow_akl_weight(student_row: list[float], teacher_row: list[float], mu: float = 0.5) -> float:
    """AKL's head weight as the paper words it: walk the teacher's tokens from the most likely,
    the first always in the head, then each while the running teacher mass stays <= mu."""
    ranked = sorted(range(len(teacher_row)), key=lambda v: -teacher_row[v])
    head_gap = tail_gap = mass = 0.0
    for rank, v in enumerate(ranked):
        mass += teacher_row[v]
        gap = abs(teacher_row[v] - student_row[v])
        if rank == 0 or mass <= mu:
            head_gap += gap
        else:
            tail_gap += gap
    return 0.5 if head_gap + tail_gap == 0 else head_gap / (head_gap + tail_gap)


def slow_akl(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """AKL per position: head weight * fkl + (1 - head weight) * rkl, from the slow pieces, in float64."""
    fkl, rkl = slow_kl(student_logits, teacher_logits, "fkl").flatten(), slow_kl(student_logits, teacher_logits, "rkl").flatten()
    p_s = torch.softmax(student_logits.double(), -1).reshape(-1, student_logits.shape[-1]).tolist()
    p_t = torch.softmax(teacher_logits.double(), -1).reshape(-1, teacher_logits.shape[-1]).tolist()
    out = []
    for i, (s_row, t_row) in enumerate(zip(p_s, p_t)):
        head = slow_akl_weight(s_row, t_row)
        out.append(head * fkl[i].item() + (1 - head) * rkl[i].item())
    return torch.tensor(out, dtype=torch.float64).reshape(student_logits.shape[:-1])


def test_akl_equals_the_slow_reference_on_random_logits():
    generator = torch.Generator().manual_seed(5)
    for scale in (0.5, 3.0, 8.0):  # flat teachers (wide head), peaked ones (head = the top token)
        student = torch.randn(2, 3, 260, generator=generator) * scale
        teacher = torch.randn(2, 3, 260, generator=generator) * scale
        got = token_kl(student, teacher, "akl")
        assert got.shape == (2, 3) and got.dtype == torch.float32
        assert torch.allclose(got.double(), slow_akl(student, teacher), atol=1e-5, rtol=0)


# (teacher probs, student probs, expected head weight, why)
AKL_CASES = [
    ([0.7, 0.1, 0.1, 0.1], [0.4, 0.2, 0.2, 0.2], 0.5, "peaked teacher: the head is the top token alone; gaps 0.3 | 0.3"),
    ([0.25, 0.2, 0.2, 0.2, 0.15], [0.2, 0.25, 0.2, 0.2, 0.15], 1.0, "error only inside the head (top two, mass 0.45): akl is fkl"),
    ([0.25, 0.2, 0.2, 0.2, 0.15], [0.25, 0.2, 0.25, 0.15, 0.15], 0.0, "error only in the tail: akl is rkl"),
    ([0.5, 0.3, 0.2], [0.3, 0.3, 0.4], 0.5, "mass exactly mu stays in the head; 0.2 | 0.2"),
    ([0.3, 0.3, 0.4], [0.3, 0.3, 0.4], 0.5, "student equals teacher: no gap, even split, loss 0"),
    ([0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1], 0.3 / 0.8, "the head is found by sorting the teacher, not by index order"),
]


@pytest.mark.parametrize("teacher, student, head, why", AKL_CASES, ids=[case[-1] for case in AKL_CASES])
def test_akl_head_and_tail_weights(teacher, student, head, why):
    p_t, p_s = torch.tensor([teacher], dtype=torch.float64), torch.tensor([student], dtype=torch.float64)
    got_head, got_tail = akl_weights(p_s, p_t)
    assert got_head.item() == pytest.approx(head, abs=1e-6), why
    assert got_head.item() == pytest.approx(slow_akl_weight(student, teacher), abs=1e-6), why
    assert (got_head + got_tail).item() == pytest.approx(1.0)
    s_logits, t_logits = p_s.log().float(), p_t.log().float()
    akl = token_kl(s_logits, t_logits, "akl").item()
    expected = head * token_kl(s_logits, t_logits, "fkl").item() + (1 - head) * token_kl(s_logits, t_logits, "rkl").item()
    assert akl == pytest.approx(expected, abs=1e-6), why


def test_akl_gradient_treats_the_mixing_weights_as_constants():
    generator = torch.Generator().manual_seed(6)
    student = (torch.randn(4, 50, generator=generator) * 2).requires_grad_()
    teacher = torch.randn(4, 50, generator=generator) * 2
    token_kl(student, teacher, "akl").sum().backward()
    got = student.grad.clone()
    student.grad = None
    head, tail = akl_weights(torch.softmax(student, -1).detach(), torch.softmax(teacher, -1))
    (head * token_kl(student, teacher, "fkl") + tail * token_kl(student, teacher, "rkl")).sum().backward()
    assert torch.allclose(got, student.grad, atol=1e-6)
    assert teacher.grad is None


@pytest.mark.parametrize("direction", ["fkl", "rkl"])
def test_token_kl_equals_the_full_vocabulary_sum(direction):
    generator = torch.Generator().manual_seed(0)
    student = torch.randn(2, 3, 260, generator=generator) * 3
    teacher = torch.randn(2, 3, 260, generator=generator) * 3
    got = token_kl(student, teacher, direction)
    assert got.shape == (2, 3) and got.dtype == torch.float32
    assert torch.allclose(got.double(), slow_kl(student, teacher, direction), atol=1e-5, rtol=0)
    assert (got > 0).all()


@pytest.mark.parametrize("direction", ["fkl", "rkl", "akl"])
def test_token_kl_is_zero_when_student_equals_teacher(direction):
    logits = torch.randn(4, 5, 260, generator=torch.Generator().manual_seed(1)) * 5
    assert token_kl(logits, logits.clone(), direction).abs().max().item() < 1e-6


def test_the_two_directions_differ():
    # A peaked teacher and a flat student: fkl (mode covering) and rkl (mode seeking) disagree.
    teacher = torch.tensor([[8.0, 0.0, 0.0, 0.0]])
    student = torch.zeros(1, 4)
    assert token_kl(student, teacher, "fkl").item() == pytest.approx(slow_kl(student, teacher, "fkl").item(), abs=1e-6)
    assert token_kl(student, teacher, "rkl").item() == pytest.approx(slow_kl(student, teacher, "rkl").item(), abs=1e-6)
    assert token_kl(student, teacher, "fkl").item() != pytest.approx(token_kl(student, teacher, "rkl").item(), abs=0.1)


def _heads_and_hidden(seed: int = 2):
    generator = torch.Generator().manual_seed(seed)
    student_head = torch.nn.Linear(16, 50, bias=False)
    teacher_head = torch.nn.Linear(24, 50, bias=False)
    with torch.no_grad():
        student_head.weight.copy_(torch.randn(50, 16, generator=generator))
        teacher_head.weight.copy_(torch.randn(50, 24, generator=generator))
    student_hidden = torch.randn(3, 7, 16, generator=generator, requires_grad=True)
    teacher_hidden = torch.randn(3, 7, 24, generator=generator)
    mask = torch.rand(3, 7, generator=generator) > 0.4
    return student_head, teacher_head, student_hidden, teacher_hidden, mask


@pytest.mark.parametrize("direction", ["fkl", "rkl", "akl"])
@pytest.mark.parametrize("chunk_size", [1, 3, 1000])
def test_chunked_kl_equals_unchunked_in_value_and_gradient(direction, chunk_size):
    student_head, teacher_head, student_hidden, teacher_hidden, mask = _heads_and_hidden()
    full = token_kl(student_head(student_hidden), teacher_head(teacher_hidden), direction)[mask]
    (full * torch.arange(1, full.numel() + 1)).sum().backward()
    expected_hidden, expected_head = student_hidden.grad.clone(), student_head.weight.grad.clone()
    student_hidden.grad, student_head.weight.grad = None, None

    chunked = chunked_kl(student_hidden, teacher_hidden, student_head, teacher_head, mask, direction, chunk_size)
    assert torch.allclose(chunked, full, atol=1e-6)
    (chunked * torch.arange(1, chunked.numel() + 1)).sum().backward()
    assert torch.allclose(student_hidden.grad, expected_hidden, atol=1e-5)
    assert torch.allclose(student_head.weight.grad, expected_head, atol=1e-5)
    assert teacher_head.weight.grad is None


@pytest.mark.parametrize("direction", ["fkl", "akl"])
def test_chunked_kl_matches_the_slow_reference(direction):
    student_head, teacher_head, student_hidden, teacher_hidden, mask = _heads_and_hidden(3)
    with torch.no_grad():
        got = chunked_kl(student_hidden, teacher_hidden, student_head, teacher_head, mask, direction, 4)
        s_logits, t_logits = student_head(student_hidden)[mask], teacher_head(teacher_hidden)[mask]
        expected = slow_kl(s_logits, t_logits, "fkl") if direction == "fkl" else slow_akl(s_logits, t_logits)
    assert torch.allclose(got.double(), expected, atol=1e-5, rtol=0)


def test_weighted_problem_loss_is_sum_of_weighted_token_means_over_batch_size():
    per_token = torch.tensor([1.0, 3.0, 10.0, 2.0, 2.0, 2.0])
    problem = torch.tensor([0, 0, 1, 2, 2, 2])
    weights = torch.tensor([0.5, 0.0, 2.0])
    # means: 2, 10, 2 -> (0.5 * 2 + 0 * 10 + 2 * 2) / 8, not divided by sum(w) = 2.5
    assert weighted_problem_loss(per_token, problem, weights, batch_size=8).item() == pytest.approx(5 / 8)
    assert problem_means(per_token, problem, 4).tolist() == [2.0, 10.0, 2.0, 0.0]


def test_micro_batch_losses_add_up_to_the_batch_loss():
    per_token = torch.tensor([1.0, 3.0, 10.0, 2.0, 4.0])
    problem = torch.tensor([0, 0, 1, 2, 2])
    weights = torch.tensor([0.5, 1.5, 2.0])
    whole = weighted_problem_loss(per_token, problem, weights, batch_size=3)
    first = weighted_problem_loss(per_token[:3], problem[:3], weights[:2], batch_size=3)
    second = weighted_problem_loss(per_token[3:], problem[3:] - 2, weights[2:], batch_size=3)
    assert (first + second).item() == pytest.approx(whole.item())


def _model_gradient(student, teacher, batch, weights: list[float]) -> torch.Tensor:
    from paced_curate.distill.models import OutputLayers, response_kl

    student.zero_grad(set_to_none=True)
    batch.weights = torch.tensor(weights)
    kl = response_kl(student, teacher, batch, "fkl", chunk_size=7, heads=OutputLayers.of(student, teacher))
    weighted_problem_loss(kl, batch.token_problem, batch.weights, batch_size=2).backward()
    return torch.cat([p.grad.flatten() for p in student.parameters() if p.grad is not None])


def test_weight_zero_problem_gives_no_gradient_and_double_weight_doubles_its_gradient(tmp_path, models):
    from transformers import AutoModelForCausalLM

    data = make_export(tmp_path, n=2)
    examples = short_examples(data, models)
    student = AutoModelForCausalLM.from_pretrained(models["student"])
    teacher = AutoModelForCausalLM.from_pretrained(models["teacher"]).eval().requires_grad_(False)
    pair = collate(examples, [e.response_ids for e in examples], pad_id=1)
    alone = collate(examples[1:], [examples[1].response_ids], pad_id=1)

    only_b = _model_gradient(student, teacher, alone, [1.0])
    assert _model_gradient(student, teacher, pair, [0.0, 1.0]).allclose(only_b, atol=1e-7)
    a_once = _model_gradient(student, teacher, pair, [1.0, 1.0]) - only_b
    a_twice = _model_gradient(student, teacher, pair, [2.0, 1.0]) - only_b
    assert a_once.abs().max() > 1e-4
    assert a_twice.allclose(2 * a_once, atol=1e-6)
