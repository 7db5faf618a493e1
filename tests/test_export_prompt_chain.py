"""#14: the prompt in trl/verl exports is the one `paced rollout` sent the student, end to end.

A real rollout (transformers engine, the tiny model and its ChatML template), a real grade
(math-verify), a real weight, then the export: the prompt TRL and verl will render from each
row (TRL's conversational tokenization, verl's `RLHFDataset` call
`tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=True)`)
has exactly the rollout's `prompt_tokens`. verl itself is not installed (verl 0.9.1 requires
transformers < 5.11); its column contract is from verl/utils/dataset/rl_dataset.py.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from paced_curate.export import ExportConfig, run_export
from paced_curate.grade import GradeConfig, run_grade
from paced_curate.io import read_table, write_table
from paced_curate.rollout import RolloutConfig, run_rollout
from paced_curate.rollout.prompts import PromptFormat
from paced_curate.schema import GRADES, ROLLOUTS, build_table
from paced_curate.weight import WeightConfig, run_weight
from tests.conftest import write_jsonl
from tests.test_schema import GRADE_ROW

FORMATS = [
    # prompt format, what TRL gets, reason
    (PromptFormat(template="Add: {prompt}", system_prompt="Be brief.", chat_template="on"), "chat", "ChatML turns with a system prompt"),
    (PromptFormat(template="{prompt}\nAnswer:", system_prompt="Sums.", chat_template="off"), "text", "plain text, system prompt prepended"),
]


@pytest.mark.parametrize(("fmt", "kind"), [(f, k) for f, k, _ in FORMATS], ids=[r for _, _, r in FORMATS])
def test_exported_prompts_tokenize_to_the_rollouts_prompt_tokens(tmp_path, tiny_model, fmt, kind):
    from transformers import AutoTokenizer

    problems = write_jsonl(tmp_path / "p.jsonl", [{"id": f"q{i}", "question": f"{i}+{i + 2}=", "answer": str(2 * i + 2)} for i in range(3)])
    run_rollout(RolloutConfig(
        problems=str(problems), model=str(tiny_model), output=str(tmp_path / "rollouts"), engine="hf", samples=2,
        max_tokens=4, dtype="float32", prompt_format=fmt,
    ))
    run_grade(GradeConfig(rollouts=str(tmp_path / "rollouts"), output=str(tmp_path / "graded"), workers=1))
    run_weight(WeightConfig(graded=str(tmp_path / "graded"), output=str(tmp_path / "weights.parquet"), kernel="uniform"))
    references = tmp_path / "teacher.parquet"
    rows = [GRADE_ROW | {"problem_id": f"q{i}", "completion": f"\\boxed{{{2 * i + 2}}}", "verdict": "correct"} for i in range(3)]
    write_table(build_table(rows, GRADES), str(references), GRADES)
    common = dict(problems=str(problems), weights=str(tmp_path / "weights.parquet"), drop_zero=False)
    run_export(ExportConfig(output=str(tmp_path / "trl"), format="trl", references=str(references), **common))
    run_export(ExportConfig(output=str(tmp_path / "verl"), format="verl", **common))

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    rollouts = read_table(str(tmp_path / "rollouts"), ROLLOUTS)
    prompt_tokens = dict(zip(rollouts.column("problem_id").to_pylist(), rollouts.column("prompt_tokens").to_pylist()))
    trl_rows = pq.read_table(tmp_path / "trl" / "train").to_pylist()
    verl_rows = pq.read_table(tmp_path / "verl" / "train").to_pylist()
    assert len(trl_rows) == len(verl_rows) == 3
    for row in trl_rows:
        if kind == "chat":
            assert isinstance(row["prompt"], list) and row["prompt"][0] == {"role": "system", "content": "Be brief."}
            ids = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
        else:
            assert row["prompt"].startswith("Sums.\n\n") and row["prompt"].endswith("\nAnswer:")
            ids = tokenizer(row["prompt"]).input_ids
        assert len(ids) == prompt_tokens[row["problem_id"]], row
    for row in verl_rows:
        pid = row["extra_info"]["problem_id"]
        if kind == "chat":  # verl applies the chat template to `prompt`: the same text as the rollout
            ids = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
            assert len(ids) == prompt_tokens[pid], row
        else:  # one user turn holding the plain text the model saw
            assert row["prompt"] == [{"role": "user", "content": next(r["prompt"] for r in trl_rows if r["problem_id"] == pid)}]
        assert row["reward_model"]["ground_truth"] == str(int(pid[1:]) * 2 + 2) and row["data_source"] == "lighteval/MATH"
    recorded = pq.read_schema(tmp_path / "weights.parquet").metadata[b"paced.provenance"]
    assert b'"prompt_format"' in recorded  # carried rollout -> grade -> weight
