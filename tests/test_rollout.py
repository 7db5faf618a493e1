"""Rollout with the transformers engine: schema, determinism, resume, sharding, pipes, bad input."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pyarrow as pa
import pytest

from paced_curate.errors import ResumeMismatch
from paced_curate.io import read_table
from paced_curate.rollout import RolloutConfig, run_rollout
from paced_curate.rollout.prompts import PromptFormat
from paced_curate.schema import ROLLOUTS
from tests.conftest import assert_user_error, write_jsonl

KEY = ["problem_id", "sample_index"]


def arithmetic_problems(path, count=12):
    rows = [{"id": f"q{i:03d}", "question": f"{i} + {i % 7} =", "answer": str(i + i % 7), "difficulty": ["easy", "hard"][i % 2]} for i in range(count)]
    return write_jsonl(path, rows)


def hf_config(problems, model, output, **changes) -> RolloutConfig:
    base = dict(problems=str(problems), model=str(model), output=str(output), engine="hf", samples=3, max_tokens=12, batch_size=8, problems_per_part=4)
    return RolloutConfig(**(base | changes))


def rows_by_key(table: pa.Table) -> dict:
    return {(r["problem_id"], r["sample_index"]): (r["completion"], r["finish_reason"], r["completion_tokens"]) for r in table.to_pylist()}


def test_rollout_table_has_k_samples_per_problem_and_carries_problem_columns(tmp_path, tiny_model):
    problems = arithmetic_problems(tmp_path / "p.jsonl", 5)
    result = run_rollout(hf_config(problems, tiny_model, tmp_path / "out", samples=4))
    table = read_table(str(tmp_path / "out"), ROLLOUTS)
    assert result.samples == table.num_rows == 20 and result.generated == 5
    assert table.column_names[: len(ROLLOUTS.fields)] == [f.name for f in ROLLOUTS.fields]
    assert "difficulty" in table.column_names
    rows = table.to_pylist()
    assert [r["sample_index"] for r in rows[:4]] == [0, 1, 2, 3]
    assert rows[0]["prompt"] == "0 + 0 =" and rows[0]["answer"] == "0" and rows[0]["difficulty"] == "easy"
    for r in rows:
        assert r["finish_reason"] in ("stop", "length")
        assert 1 <= r["completion_tokens"] <= 12
        assert (r["finish_reason"] == "length") == (r["completion_tokens"] == 12 and not r["completion"].endswith("<|endoftext|>"))
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": PromptFormat().template.replace("{prompt}", "0 + 0 =")}], tokenize=False, add_generation_prompt=True
    )
    assert rows[0]["prompt_tokens"] == len(tokenizer(rendered, add_special_tokens=False).input_ids)
    manifest = json.loads((tmp_path / "out.paced" / "manifest.json").read_text())
    assert manifest["complete"] and manifest["settings"]["samples"] == 4 and len(manifest["parts"]) == 2


def test_hf_samples_do_not_depend_on_batch_size_or_problem_order(tmp_path, tiny_model):
    problems = arithmetic_problems(tmp_path / "p.jsonl", 6)
    reference = rows_by_key(read_table(str(run_rollout(hf_config(problems, tiny_model, tmp_path / "a", batch_size=1)).output), ROLLOUTS))
    batched = rows_by_key(read_table(str(run_rollout(hf_config(problems, tiny_model, tmp_path / "b", batch_size=7)).output), ROLLOUTS))
    shuffled_rows = [json.loads(line) for line in problems.read_text().splitlines()]
    random.Random(0).shuffle(shuffled_rows)
    shuffled = write_jsonl(tmp_path / "shuffled.jsonl", shuffled_rows)
    reordered = rows_by_key(read_table(str(run_rollout(hf_config(shuffled, tiny_model, tmp_path / "c", batch_size=5)).output), ROLLOUTS))
    assert batched == reference
    assert reordered == reference
    other_seed = rows_by_key(read_table(str(run_rollout(hf_config(problems, tiny_model, tmp_path / "d", seed=1)).output), ROLLOUTS))
    assert other_seed != reference


def test_resume_skips_finished_problems_and_refuses_other_settings(tmp_path, tiny_model):
    problems = arithmetic_problems(tmp_path / "p.jsonl", 8)
    config = hf_config(problems, tiny_model, tmp_path / "out")
    first = run_rollout(config)
    again = run_rollout(config)
    assert (first.generated, again.generated, again.skipped) == (8, 0, 8)
    with pytest.raises(ResumeMismatch, match=r"was made with temperature=1.0 \(now 0.7\)"):
        run_rollout(replace(config, temperature=0.7))
    fresh = run_rollout(replace(config, temperature=0.7, overwrite=True))
    assert fresh.generated == 8


def test_killed_run_resumes_to_the_same_table(tmp_path, tiny_model):
    """A real SIGKILL at a random point after the first part, then a rerun of the same command."""
    problems = arithmetic_problems(tmp_path / "p.jsonl", 40)
    reference = read_table(str(run_rollout(hf_config(problems, tiny_model, tmp_path / "ref", max_tokens=24)).output), ROLLOUTS)
    out = tmp_path / "killed"
    command = [
        sys.executable, "-m", "paced_curate", "rollout", str(problems), "--model", str(tiny_model), "-o", str(out),
        "--engine", "hf", "-k", "3", "--max-tokens", "24", "--batch-size", "4", "--problems-per-part", "4",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out / "part-00001.parquet").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(random.uniform(0, 0.5))
    assert process.poll() is None, "the run finished before it could be killed; make it longer"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    manifest = json.loads((tmp_path / "killed.paced" / "manifest.json").read_text())
    assert not manifest["complete"] and 0 < manifest["rows"] < reference.num_rows
    resumed = run_rollout(hf_config(problems, tiny_model, out, max_tokens=24))
    assert resumed.skipped > 0 and resumed.generated < 40
    assert read_table(str(out), ROLLOUTS).to_pylist() == reference.to_pylist()


def test_shards_partition_the_problems_and_combine(tmp_path, tiny_model):
    problems = arithmetic_problems(tmp_path / "p.jsonl", 7)
    whole = read_table(str(run_rollout(hf_config(problems, tiny_model, tmp_path / "whole")).output), ROLLOUTS)
    for index in range(3):
        run_rollout(hf_config(problems, tiny_model, tmp_path / "sharded", shard=f"{index}/3"))
    assert sorted(p.name for p in (tmp_path / "sharded").iterdir()) == [f"shard-0000{i}-of-00003" for i in range(3)]
    shard0 = read_table(str(tmp_path / "sharded" / "shard-00000-of-00003"), ROLLOUTS)
    assert sorted(set(shard0.column("problem_id").to_pylist())) == ["q000", "q003", "q006"]
    combined = read_table(str(tmp_path / "sharded"), ROLLOUTS)
    assert rows_by_key(combined) == rows_by_key(whole)


def test_gpus_flag_launches_one_process_per_shard(tmp_path, tiny_model, cli):
    problems = arithmetic_problems(tmp_path / "p.jsonl", 5)
    whole = read_table(str(run_rollout(hf_config(problems, tiny_model, tmp_path / "whole")).output), ROLLOUTS)
    result = cli("rollout", problems, "--model", tiny_model, "-o", tmp_path / "multi", "--engine", "hf", "-k", "3", "--max-tokens", "12", "--batch-size", "8", "--gpus", "0,1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["samples"] == 15
    assert rows_by_key(read_table(str(tmp_path / "multi"), ROLLOUTS)) == rows_by_key(whole)


def test_pipe_output_equals_directory_output(tmp_path, tiny_model):
    problems = arithmetic_problems(tmp_path / "p.jsonl", 4)
    directory = read_table(str(run_rollout(hf_config(problems, tiny_model, tmp_path / "dir")).output), ROLLOUTS)
    command = [sys.executable, "-m", "paced_curate", "rollout", str(problems), "--model", str(tiny_model), "-o", "-", "--engine", "hf", "-k", "3", "--max-tokens", "12", "--problems-per-part", "4"]
    done = subprocess.run(command, capture_output=True, check=True)
    streamed = pa.ipc.open_stream(done.stdout).read_all()
    assert streamed.to_pylist() == directory.to_pylist()
    assert b"rollout" in done.stderr


BAD_FLAGS = [
    (["-k", "0"], "-k/--samples must be at least 1, not 0"),
    (["--max-tokens", "0"], "--max-tokens must be at least 1, not 0"),
    (["--engine", "tgi"], "--engine must be one of vllm, hf, openai, not 'tgi'"),
    (["--shard", "3/2"], "--shard 3/2: I must be below N"),
    (["--template", "no placeholder"], "--template must contain {prompt}"),
    (["--engine", "openai"], "--engine openai needs --base-url"),
    (["--dtype", "float8"], "--dtype must be one of auto, float32, float16, bfloat16, not 'float8'"),
    (["--dtype", "int"], "--dtype must be one of auto, float32, float16, bfloat16, not 'int'"),
]


@pytest.mark.parametrize("stage", ["rollout", "grade", "weight"])
@pytest.mark.parametrize("output", ["afile/out", "afile/out.parquet"])
def test_an_output_under_a_file_is_a_one_line_error(tmp_path, tiny_model, cli, stage, output):
    """-o naming a path below an existing file: one line naming the path, exit 2, no traceback."""
    (tmp_path / "afile").write_text("mine")
    graded = tmp_path / "g.jsonl"
    graded.write_text(json.dumps({"problem_id": "a", "sample_index": 0, "completion": "\\boxed{1}", "answer": "1", "verdict": "correct", "scored": True}) + "\n")
    inputs = {"rollout": [arithmetic_problems(tmp_path / "p.jsonl", 2), "--model", tiny_model, "--engine", "hf", "-k", "1", "--max-tokens", "2"],
              "grade": [graded], "weight": [graded, "--estimator", "bayes"]}[stage]
    result = cli(stage, *inputs, "-o", tmp_path / output)
    assert_user_error(result, "afile")
    assert (tmp_path / "afile").read_text() == "mine"


@pytest.mark.parametrize("flags,expected", BAD_FLAGS, ids=[f[1][:20] for f in BAD_FLAGS])
def test_bad_flags_fail_before_any_work(tmp_path, tiny_model, cli, flags, expected):
    problems = arithmetic_problems(tmp_path / "p.jsonl", 2)
    assert_user_error(cli("rollout", problems, "--model", tiny_model, "-o", tmp_path / "out", *flags), expected)
    assert not (tmp_path / "out").exists()


def test_bad_model_and_empty_problems_fail_before_heavy_imports(tmp_path, tiny_model):
    problems = arithmetic_problems(tmp_path / "p.jsonl", 2)
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    (tmp_path / "empty.jsonl").write_text("\n")
    cases = [
        ([str(problems), "--model", str(tmp_path / "nowhere")], f"--model {tmp_path / 'nowhere'}: no such folder (models load from local folders; nothing is downloaded)"),
        ([str(problems), "--model", str(tmp_path / "bert")], f"--model {tmp_path / 'bert'}: is not a causal LM (architectures: ['BertModel'])"),
        ([str(tmp_path / "empty.jsonl"), "--model", str(tiny_model)], None),
    ]
    for args, expected in cases:
        code = (
            "import sys; from typer.testing import CliRunner; from paced_curate.cli import app; "
            f"r = CliRunner().invoke(app, ['rollout', *{args!r}, '-o', {str(tmp_path / 'o')!r}]); "
            "print(r.exit_code, 'vllm' in sys.modules, 'torch' in sys.modules); print(r.stderr)"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        status, message = out.split("\n", 1)
        assert status == "2 False False", out
        assert message.startswith("error: ") and (expected is None or expected in message), message
    assert "empty.jsonl: is empty" in message


def test_rollout_table_in_memory_equals_a_run_with_the_same_engine_settings(tmp_path, tiny_model):
    from paced_curate.problems import read_problems
    from paced_curate.rollout import rollout_table
    from paced_curate.rollout.hf_engine import HfEngine

    problems = arithmetic_problems(tmp_path / "p.jsonl", 4)
    config = hf_config(problems, tiny_model, tmp_path / "dir")
    on_disk = read_table(run_rollout(config).output, ROLLOUTS)
    engine = HfEngine.load(str(tiny_model), batch_size=5)
    in_memory = rollout_table(config, read_problems(str(problems)), engine)
    assert in_memory.to_pylist() == on_disk.to_pylist()
