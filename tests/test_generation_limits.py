"""Sampling limits (#13): position limits from any config key, rows never past their position table
(a tiny GPT-2 with n_positions 64), the fkl->rkl switch step, and two samples for an example
that is twice in one rkl batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from paced_curate.distill import DistillConfig, run_distill
from paced_curate.distill.train import switch_step
from paced_curate.errors import ConfigError
from paced_curate.rollout.generation import budget_groups, folder_max_positions, max_positions
from tests.conftest import write_jsonl
from tests.test_distill_data import SHORT, make_export, models, one_torch_thread  # noqa: F401 (fixtures)

N_POSITIONS = 64


@pytest.mark.parametrize(
    "config, expected, why",
    [
        ({"max_position_embeddings": 4096}, 4096, "Llama, Qwen2, Mistral"),
        ({"n_positions": 64, "n_ctx": 64}, 64, "GPT-2 (transformers 5 saves no max_position_embeddings)"),
        ({"max_sequence_length": 2048}, 2048, "some remote-code models"),
        ({"max_seq_len": 1024}, 1024, "MPT-style"),
        ({"seq_length": 8192}, 8192, "ChatGLM-style"),
        ({"n_ctx": 512}, 512, "old GPT-2 configs with n_ctx only"),
        ({"text_config": {"max_position_embeddings": 32768}}, 32768, "multimodal wrappers keep it under text_config"),
        ({"max_position_embeddings": 128, "n_positions": 64}, 128, "max_position_embeddings is looked up first"),
        ({"hidden_size": 64}, None, "no limit named"),
        ({"n_positions": None, "max_seq_len": 256}, 256, "a null value is skipped"),
    ],
)
def test_max_positions_reads_whichever_key_the_config_uses(config, expected, why):
    assert max_positions(config) == expected, why


def test_a_config_without_a_position_limit_asks_for_max_length(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["FooForCausalLM"]}))
    with pytest.raises(ConfigError, match="names no position limit .*give --max-length"):
        folder_max_positions("--student", str(tmp_path))


@pytest.mark.parametrize(
    "switch_at, total, expected, why",
    [
        (0.5, 2, 1, "the issue's case: one step of each (round() gave 0 fkl steps at 1 step; floor + clamp)"),
        (0.01, 10, 1, "floor is 0: at least one fkl step"),
        (0.99, 10, 9, "floor is 9: one rkl step remains"),
        (0.999, 2, 1, "floor is 1: clamped to leave one rkl step"),
        (0.5, 3, 1, "floor(1.5) = 1 (round would give 2)"),
        (0.5, 7, 3, "floor(3.5) = 3 (banker's round gives 4)"),
        (0.5, 5, 2, "floor(2.5) = 2"),
        (0.29, 100, 29, "0.29 * 100 is 28.999... in binary floating point; the decimal 0.29 is meant"),
        (0.7, 10, 7, "0.7 * 10 is 7.000000000000001"),
        (0.4, 5, 2, "exact product"),
    ],
)
def test_switch_step_is_the_floor_with_one_step_of_each_stage(switch_at, total, expected, why, tmp_path):
    config = DistillConfig(shards="s", student="a", teacher="b", output=str(tmp_path / "o"), loss="fkl-then-rkl", switch_at=switch_at)
    assert switch_step(config, total) == expected, why


def test_switch_step_of_single_stage_runs_and_a_one_step_two_stage_run(tmp_path):
    for loss in ("fkl", "rkl"):
        assert switch_step(DistillConfig(shards="s", student="a", teacher="b", output="o", loss=loss), 5) == 5
    two_stage = DistillConfig(shards="s", student="a", teacher="b", output="o", loss="fkl-then-rkl")
    with pytest.raises(ConfigError, match="fkl-then-rkl needs at least 2 steps"):
        switch_step(two_stage, 1)


def test_budget_groups_keep_rows_of_one_budget_together():
    assert budget_groups([5, 61, 61, 5, 12]) == [[1, 2], [4], [0, 3]]
    assert budget_groups([]) == []


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory) -> Path:
    from paced_curate.toy.gpt2 import build_tiny_gpt2

    return build_tiny_gpt2(tmp_path_factory.mktemp("gpt2") / "gpt2-64", n_positions=N_POSITIONS)


def gpt2_problems(path: Path) -> Path:
    # With the character tokenizer and the template "{prompt}=", a question of n characters is n + 1 tokens.
    return write_jsonl(path, [{"id": "long", "question": "9" * 58, "answer": "1"}, {"id": "short", "question": "ab", "answer": "1"}])


def test_rkl_sampling_keeps_every_row_inside_its_position_table(gpt2):
    """Prompts of 59 and 3 tokens at n_positions 64: the long row gets 5 tokens, the short one up to 61, nothing crashes."""
    from transformers import AutoModelForCausalLM

    from paced_curate.distill.models import sample_responses

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(gpt2)
    prompts = [list(range(10, 69)), [10, 11, 12]]
    budgets = [min(100, N_POSITIONS - len(p)) for p in prompts]
    assert budgets == [5, 61]
    # Old code generated max(budgets) tokens for every row: the long row indexed position 64 and crashed.
    responses = sample_responses(model, prompts, [1, 2], budgets, temperature=1.0, eos=[0], pad_id=1)
    assert len(responses[0]) <= 5 and len(prompts[0]) + len(responses[0]) <= N_POSITIONS
    assert 5 < len(responses[1]) <= 61, "the short row keeps its own budget (a random model rarely stops)"
    alone = sample_responses(model, prompts[1:], [2], budgets[1:], temperature=1.0, eos=[0], pad_id=1)
    assert alone == responses[1:], "a row's sample does not depend on the long row beside it"


def test_distill_rkl_and_eval_on_gpt2_stay_inside_n_positions(tmp_path, gpt2):
    """`paced distill --loss rkl --eval` on a GPT-2 (n_positions, no max_position_embeddings) with prompts of 59 and 3 tokens."""
    problems = gpt2_problems(tmp_path / "problems.jsonl")
    data = _export_of(tmp_path, [json.loads(line) for line in problems.read_text().splitlines()])
    result = run_distill(DistillConfig(
        shards=str(data), student=str(gpt2), teacher=str(gpt2), output=str(tmp_path / "run"), loss="rkl", max_steps=1, batch_size=2,
        rkl_max_tokens=100, template=SHORT.template, chat_template="off", eval_problems=str(problems), eval_samples=1,
        eval_max_tokens=100, eval_workers=1, eval_every=0, checkpoint_every=0, lr=1e-3,
    ))
    assert result.data["max_length"] == N_POSITIONS, "the limit comes from n_positions (old code defaulted to 2048)"
    train = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if '"train"' in line]
    assert 2 <= train[0]["tokens"] <= 5 + 61
    assert [e["samples"] for e in result.evaluations] == [2, 2]


def _export_of(tmp_path: Path, rows: list[dict]) -> Path:
    from paced_curate.export import ExportConfig, run_export
    from paced_curate.io import write_table
    from paced_curate.schema import WEIGHTS, build_table
    from tests.test_schema import WEIGHT_ROW

    problems = write_jsonl(tmp_path / "export_problems.jsonl", rows)
    weights = tmp_path / "export_weights.parquet"
    write_table(build_table([WEIGHT_ROW | {"problem_id": r["id"], "weight_raw": 1.0, "weight": 1.0} for r in rows], WEIGHTS), str(weights), WEIGHTS)
    output = tmp_path / "export"
    run_export(ExportConfig(problems=str(problems), weights=str(weights), references=None, output=str(output), format="native", drop_zero=False))
    return output


def test_an_example_twice_in_one_rkl_batch_gets_two_samples(tmp_path, models, monkeypatch):
    """Batch 4 over 2 examples: each example is in the batch twice and must be sampled twice, independently."""
    import paced_curate.distill.parallel as parallel

    seen: list[tuple[list[int], list[int]]] = []
    real = parallel.sample_responses

    def recording(student, prompts, seeds, budgets, **options):
        responses = real(student, prompts, seeds, budgets, **options)
        seen.extend(zip(map(tuple, prompts), seeds))
        return responses

    monkeypatch.setattr(parallel, "sample_responses", recording)
    data = make_export(tmp_path, n=2, references=False)
    run_distill(DistillConfig(
        shards=str(data), student=str(models["student"]), teacher=str(models["teacher"]), output=str(tmp_path / "run"), loss="rkl",
        max_steps=1, batch_size=4, micro_batch_size=2, rkl_max_tokens=6, template=SHORT.template, chat_template="off", checkpoint_every=0,
    ))
    by_prompt: dict[tuple, list[int]] = {}
    for prompt, seed in seen:
        by_prompt.setdefault(prompt, []).append(seed)
    assert sorted(len(s) for s in by_prompt.values()) == [2, 2]
    assert all(len(set(seeds)) == 2 for seeds in by_prompt.values()), "the two copies must draw with different seeds"


def test_max_length_past_the_position_table_is_refused(tmp_path, gpt2):
    problems = gpt2_problems(tmp_path / "problems.jsonl")
    data = _export_of(tmp_path, [json.loads(line) for line in problems.read_text().splitlines()])
    with pytest.raises(ConfigError, match=r"--max-length 100 is past the student's position limit \(64 positions\)"):
        run_distill(DistillConfig(
            shards=str(data), student=str(gpt2), teacher=str(gpt2), output=str(tmp_path / "run"), loss="rkl", max_steps=1,
            batch_size=2, max_length=100, template=SHORT.template, chat_template="off",
        ))
