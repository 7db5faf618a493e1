"""Distill checkpoints: RNG round trip, atomic folders, pruning, safe loading; rkl sampling seeds."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from paced_curate.distill.checkpoint import (
    TRAINER_STATE,
    latest_checkpoint,
    list_checkpoints,
    load_trainer_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from paced_curate.errors import InputError
from tests.test_distill_data import models, one_torch_thread, tokenizer_of  # noqa: F401 (fixtures)


def draws() -> tuple:
    return random.random(), float(np.random.rand()), float(np.random.randn()), torch.rand(3).tolist()


def test_rng_state_round_trip_restores_python_numpy_and_torch(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.randn()  # leaves a cached gaussian in numpy's state
    state = rng_state()
    torch.save(state, tmp_path / "rng.pt")
    expected = draws()
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert draws() == expected


def test_checkpoints_are_whole_folders_pruned_to_the_newest(tmp_path, models):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(models["student"])
    tokenizer = tokenizer_of(models["student"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(input_ids=torch.tensor([[5, 6, 7]]), labels=torch.tensor([[5, 6, 7]])).loss.backward()
    optimizer.step()
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, model, tokenizer, {"step": step, "optimizer": optimizer.state_dict(), "rng": rng_state()}, keep=2)
    (tmp_path / "checkpoints" / ".step-000004.tmp-dead").mkdir()  # a crash mid-write
    (tmp_path / "checkpoints" / "step-000005").mkdir()  # no trainer state: not complete
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-000002", "step-000003"]
    latest = latest_checkpoint(tmp_path)
    state = load_trainer_state(latest)
    assert state["step"] == 3
    assert torch.equal(state["optimizer"]["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    reloaded = AutoModelForCausalLM.from_pretrained(latest)
    assert all(torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), model.state_dict().values()))
    assert tokenizer_of(latest).get_vocab() == tokenizer.get_vocab()


def test_an_unreadable_trainer_state_names_the_file(tmp_path):
    folder = tmp_path / "step-000001"
    folder.mkdir()
    (folder / TRAINER_STATE).write_bytes(b"not a torch file")
    with pytest.raises(InputError, match=r"step-000001/trainer_state.pt: cannot read the checkpoint's trainer state"):
        load_trainer_state(folder)


def test_rkl_samples_depend_on_each_row_seed_not_on_the_batch(models):
    from transformers import AutoModelForCausalLM

    from paced_curate.distill.models import eos_ids, sample_responses

    model = AutoModelForCausalLM.from_pretrained(models["student"]).train()
    tokenizer = tokenizer_of(models["student"])
    prompts = [tokenizer(text).input_ids for text in ("1+1=", "What is 12 + 30?=", "7*8=")]
    settings = {"temperature": 1.0, "eos": eos_ids(model, tokenizer), "pad_id": tokenizer.pad_token_id}
    together = sample_responses(model, prompts, [11, 12, 13], [6, 6, 6], **settings)
    alone = [sample_responses(model, [p], [seed], [6], **settings)[0] for p, seed in zip(prompts, (11, 12, 13))]
    assert together == alone
    assert all(1 <= len(r) <= 6 for r in together)
    assert sample_responses(model, prompts[:1], [99], [6], **settings) != together[:1]
    assert sample_responses(model, prompts[:1], [11], [2], **settings)[0] == together[0][:2]
    assert model.training  # sampled in eval mode, handed back in train mode
