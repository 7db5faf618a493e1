"""`paced distill --loss akl` end to end on the tiny models: it trains on the references and learns."""

from __future__ import annotations

import json

import pytest

from paced_curate.distill import DistillConfig, run_distill
from paced_curate.errors import InputError
from tests.test_distill_data import SHORT, make_export, models, one_torch_thread  # noqa: F401 (fixtures)


def _config(data, models, output, **options) -> DistillConfig:
    defaults = {"loss": "akl", "max_steps": 12, "batch_size": 4, "lr": 3e-3, "warmup_steps": 0, "checkpoint_every": 0,
                "template": SHORT.template, "chat_template": "off", "log_every": 1}
    return DistillConfig(shards=str(data), student=str(models["student"]), teacher=str(models["teacher"]), output=str(output), **(defaults | options))


def test_akl_trains_on_the_references_and_its_loss_falls(tmp_path, models):
    fixed = make_export(tmp_path, n=4)  # batch size 4: every step sees the same four examples
    result = run_distill(_config(fixed, models, tmp_path / "akl"))
    records = [json.loads(line) for line in (tmp_path / "akl" / "metrics.jsonl").read_text().splitlines()]
    curve = [r["loss"] for r in records if r["kind"] == "train"]
    assert result.stages == {"akl": [1, 12]}
    assert sum(curve[-3:]) < 0.6 * sum(curve[:3]), curve
    # teacher-forced like fkl: the same response tokens every step (the references), not samples
    fkl = run_distill(_config(fixed, models, tmp_path / "fkl", loss="fkl", max_steps=2))
    assert {r["tokens"] for r in records if r["kind"] == "train"} == {fkl.response_tokens // 2}


def test_akl_needs_references(tmp_path, models):
    bare = make_export(tmp_path, n=3, references=False)
    with pytest.raises(InputError, match="has no 'reference' column"):
        run_distill(_config(bare, models, tmp_path / "run", max_steps=1))
