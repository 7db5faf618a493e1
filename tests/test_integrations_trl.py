"""PacedSFTTrainer against real TRL (SFTTrainer 1.16) on the tiny Qwen2 model.

Every expectation is computed independently of the trainer: plain transformers forward passes,
log-softmax and the PACED formula sum_i w_i * mean_t(nll_i,t) / batch_size written out by hand.
"""

from __future__ import annotations

import math

import pytest
import torch

datasets = pytest.importorskip("datasets")
trl = pytest.importorskip("trl")

from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from paced_curate.integrations.trl import PacedSFTTrainer  # noqa: E402

ROWS = [
    # prompt, completion, weight: lengths differ, so a token-mean would differ from the example-mean.
    ("1+2=", "3", 1.0),
    ("12+30=", "42", 0.0),
    ("7+8=", "15 because 7+8 is 15", 2.0),
    ("100+1=", "101", 0.5),
    ("5+5=", "10", 1.5),
    ("9+0=", "9", 0.25),
    ("3+33=", "36", 3.0),
    ("4+4=", "8", 1.0),
]


def _dataset(rows=ROWS):
    return datasets.Dataset.from_list(
        [{"prompt": p, "completion": c, "weight": w, "problem_id": f"p{i}"} for i, (p, c, w) in enumerate(rows)]
    )


def _trainer(model_path, tmp_path, data, **overrides):
    settings = dict(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=len(data), max_steps=1, learning_rate=0.0,
        report_to=[], save_strategy="no", use_cpu=True, logging_steps=1, seed=0, dataloader_drop_last=False,
        disable_tqdm=True, bf16=False,  # TRL defaults to bf16 autocast, even on CPU; the checks need float32
    )
    settings.update(overrides)
    model = AutoModelForCausalLM.from_pretrained(model_path)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    return PacedSFTTrainer(model=model, args=trl.SFTConfig(**settings), train_dataset=data, processing_class=tokenizer)


def _example_losses(model_path, rows) -> list[float]:
    """Mean NLL over each completion's tokens (completion + eos), from a plain forward pass of a fresh copy."""
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path)
    losses = []
    with torch.no_grad():
        for prompt, completion, _ in rows:
            prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids
            response = tokenizer(completion, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
            ids = torch.tensor([prompt_ids + response])
            logp = torch.log_softmax(model(ids).logits.float()[0], dim=-1)
            nll = [-logp[len(prompt_ids) - 1 + t, token].item() for t, token in enumerate(response)]
            losses.append(sum(nll) / len(nll))
    return losses


def test_the_first_steps_loss_equals_an_independent_computation(tiny_model, tmp_path):
    trainer = _trainer(tiny_model, tmp_path, _dataset())
    trainer.train()
    logged = trainer.state.log_history[0]["loss"]
    losses = _example_losses(tiny_model, ROWS)
    expected = sum(w * loss for (_, _, w), loss in zip(ROWS, losses)) / len(ROWS)
    assert logged == pytest.approx(expected, abs=1e-5)
    unweighted_token_mean = sum(losses) / len(losses)
    assert abs(logged - unweighted_token_mean) > 1e-3  # the weights changed the loss


def _chat_dataset():
    """The same rows in TRL's conversational prompt-completion format (what `--format trl` writes for chat)."""
    return datasets.Dataset.from_list([
        {"prompt": [{"role": "system", "content": "Add."}, {"role": "user", "content": p}],
         "completion": [{"role": "assistant", "content": c}], "weight": w, "problem_id": f"p{i}"}
        for i, (p, c, w) in enumerate(ROWS)
    ])


@pytest.mark.parametrize("make", [_dataset, _chat_dataset], ids=["text", "conversational"])
def test_the_weight_column_survives_pruning_and_collation(tiny_model, tmp_path, make):
    trainer = _trainer(tiny_model, tmp_path, make(), per_device_train_batch_size=3)
    assert trainer.args.remove_unused_columns  # TRL's default: columns the model does not take are dropped
    batches = list(trainer.get_train_dataloader())
    weights = sorted(float(w) for batch in batches for w in batch["weight"])
    assert weights == sorted(w for _, _, w in ROWS)
    assert all(batch["weight"].dtype == torch.float32 and set(batch) >= {"input_ids", "labels", "weight"} for batch in batches)
    assert not any("problem_id" in batch or "prompt" in batch for batch in batches)


def _gradient(trainer, weights: list[float], rows) -> torch.Tensor:
    """The gradient of compute_loss on one micro-batch of `rows` with the given weights, flattened."""
    model = trainer.model
    model.train()
    model.zero_grad()
    examples = [dict(trainer.train_dataset[i]) | {"weight": w} for i, w in zip(rows, weights)]
    examples = [{k: v for k, v in e.items() if k in ("input_ids", "labels", "weight")} for e in examples]
    batch = trainer.data_collator(examples)
    trainer._step_examples = len(rows)
    trainer.compute_loss(model, batch).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


GRADIENT_CASES = [
    # (weights a, weights b, scale): gradient(a) == scale * gradient(b), with reasons.
    ([0.0, 0.0], [1.0, 1.0], 0.0),   # weight 0 everywhere: no gradient at all
    ([2.0, 0.0], [1.0, 0.0], 2.0),   # doubling the only weighted example doubles the gradient
    ([0.0, 3.0], [0.0, 1.0], 3.0),   # linear in the weight, whatever the example
]


@pytest.mark.parametrize(("weights_a", "weights_b", "scale"), GRADIENT_CASES)
def test_the_gradient_is_linear_in_each_weight(tiny_model, tmp_path, weights_a, weights_b, scale):
    trainer = _trainer(tiny_model, tmp_path, _dataset())
    a = _gradient(trainer, weights_a, [0, 2])
    b = _gradient(trainer, weights_b, [0, 2])
    assert b.abs().max() > 0
    assert torch.allclose(a, scale * b, atol=1e-7, rtol=1e-5)


def test_a_weight_zero_example_contributes_no_gradient(tiny_model, tmp_path):
    trainer = _trainer(tiny_model, tmp_path, _dataset())
    with_zero = _gradient(trainer, [1.0, 0.0], [0, 2])
    # The same example alone in a batch of one: its gradient, halved because the divisor was 2 examples.
    alone = _gradient(trainer, [1.0], [0])
    # Padding to the longer example changes float32 sums slightly (seen: 3e-7 on entries up to 1).
    assert torch.allclose(with_zero, alone / 2, atol=1e-6, rtol=1e-5)
    doubled = _gradient(trainer, [1.0, 2.0], [0, 2]) - _gradient(trainer, [1.0, 1.0], [0, 2])
    only_second = _gradient(trainer, [0.0, 1.0], [0, 2])
    assert torch.allclose(doubled, only_second, atol=1e-6, rtol=1e-4)


ACCUMULATION_CASES = [
    # rows, micro-batch, accumulation steps: each one optimizer step over all rows.
    (8, 4, 2),  # two equal micro-batches
    (7, 4, 2),  # 4 + 3: dividing each micro-batch by its own size (or by steps) would be wrong here
    (6, 2, 3),  # three micro-batches
]


@pytest.mark.parametrize(("num_rows", "micro", "steps"), ACCUMULATION_CASES)
def test_accumulated_micro_batches_step_like_one_batch(tiny_model, tmp_path, num_rows, micro, steps):
    data = _dataset(ROWS[:num_rows])
    common = dict(learning_rate=0.5, optim="sgd", lr_scheduler_type="constant", max_grad_norm=0.0, max_steps=1)
    accumulated = _trainer(tiny_model, tmp_path / "a", data, per_device_train_batch_size=micro, gradient_accumulation_steps=steps, **common)
    whole = _trainer(tiny_model, tmp_path / "b", data, per_device_train_batch_size=num_rows, **common)
    accumulated.train()
    whole.train()
    before = AutoModelForCausalLM.from_pretrained(tiny_model).state_dict()
    moved = False
    for (name, a), b in zip(accumulated.model.state_dict().items(), whole.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5), name
        moved |= not torch.equal(a, before[name])
    assert moved
    assert accumulated.state.log_history[0]["loss"] == pytest.approx(whole.state.log_history[0]["loss"], abs=1e-5)


BAD_WEIGHTS = [
    ([1.0, -0.5], "row 1: 'weight' is -0.5"),
    ([math.inf, 1.0], "row 0: 'weight' is inf"),
    ([1.0, math.nan], "row 1: 'weight' is nan"),
]


@pytest.mark.parametrize(("weights", "message"), BAD_WEIGHTS)
def test_bad_weights_are_refused_before_training(tiny_model, tmp_path, weights, message):
    rows = [(p, c, w) for (p, c, _), w in zip(ROWS, weights)]
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        _trainer(tiny_model, tmp_path, _dataset(rows))


def test_a_dataset_without_weights_and_packing_are_refused(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="has no 'weight' column"):
        _trainer(tiny_model, tmp_path, _dataset().remove_columns("weight"))
    with pytest.raises(ValueError, match="packing=False"):
        _trainer(tiny_model, tmp_path, _dataset(), packing=True, max_length=32)
