"""A flag that does nothing in the chosen mode is refused in one line, not silently ignored (#24).

A user who passes `--batch-size 8` to a vLLM rollout believes it did something; it did not. Each
case below gives a flag in a mode where it has no effect, and the line that refuses it. The same
rollout flags in `paced estimate` go through the same `RolloutConfig` checks. Nothing is created.
"""

from __future__ import annotations

import pytest

from paced_curate.errors import ConfigError
from paced_curate.problems import FieldMap
from paced_curate.rollout.config import DEFAULTS, RolloutConfig
from tests.conftest import assert_user_error, write_jsonl

URL = "http://127.0.0.1:9/v1"
OPENAI = ["--engine", "openai", "--base-url", URL]
HF = ["--engine", "hf"]

ROLLOUT_CASES = [
    (["--batch-size", "8"], "--batch-size does nothing with --engine vllm (it is for hf)"),
    (OPENAI + ["--batch-size", "8"], "--batch-size does nothing with --engine openai (it is for hf)"),
    (HF + ["--tensor-parallel-size", "2"], "--tensor-parallel-size does nothing with --engine hf (it is for vllm)"),
    (HF + ["--gpu-memory-utilization", "0.5"], "--gpu-memory-utilization does nothing with --engine hf (it is for vllm)"),
    (HF + ["--kv-cache-gib", "1"], "--kv-cache-gib does nothing with --engine hf (it is for vllm)"),
    (HF + ["--max-in-flight", "8"], "--max-in-flight does nothing with --engine hf (it is for vllm)"),
    (OPENAI + ["--tensor-parallel-size", "2"], "--tensor-parallel-size does nothing with --engine openai (it is for vllm)"),
    (OPENAI + ["--kv-cache-gib", "1"], "--kv-cache-gib does nothing with --engine openai (it is for vllm)"),
    (OPENAI + ["--max-in-flight", "8"], "--max-in-flight does nothing with --engine openai (it is for vllm)"),
    (OPENAI + ["--dtype", "float32"], "--dtype does nothing with --engine openai (it is for vllm and hf)"),
    (OPENAI + ["--max-model-len", "64"], "--max-model-len does nothing with --engine openai (it is for vllm and hf)"),
    (["--base-url", URL], "--base-url does nothing with --engine vllm (it is for openai)"),
    (HF + ["--api-key", "secret"], "--api-key does nothing with --engine hf (it is for openai)"),
    (["--tokenizer", "{model}"], "--tokenizer does nothing with --engine vllm (it is for openai)"),
    (HF + ["--concurrency", "4"], "--concurrency does nothing with --engine hf (it is for openai)"),
    (["--request-timeout", "5"], "--request-timeout does nothing with --engine vllm (it is for openai)"),
    (HF + ["--max-retries", "1"], "--max-retries does nothing with --engine hf (it is for openai)"),
    (["--kv-cache-gib", "1", "--gpu-memory-utilization", "0.5"],
     "--kv-cache-gib sets the KV cache size, so --gpu-memory-utilization would do nothing: give one of them"),
    (["--temperature", "0", "--top-p", "0.9"], "--top-p does nothing at --temperature 0 (greedy decoding)"),
    (["--split", "train"], "--split picks a split of a Hugging Face dataset folder; {problems} is not one"),
    (OPENAI + ["--gpus", "0,1"], "--gpus does nothing with --engine openai (the server owns the GPUs)"),
]
"""(flags, the refusal) for `paced rollout PROBLEMS --model MODEL -o OUT FLAGS`."""

ESTIMATE_CASES = [
    (["--batch-size", "8"], "--batch-size does nothing with --engine vllm (it is for hf)"),
    (HF + ["--tensor-parallel-size", "2"], "--tensor-parallel-size does nothing with --engine hf (it is for vllm)"),
    (HF + ["--gpu-memory-utilization", "0.5"], "--gpu-memory-utilization does nothing with --engine hf (it is for vllm)"),
    (HF + ["--kv-cache-gib", "1"], "--kv-cache-gib does nothing with --engine hf (it is for vllm)"),
    (OPENAI + ["--dtype", "bfloat16"], "--dtype does nothing with --engine openai (it is for vllm and hf)"),
    (HF + ["--base-url", URL], "--base-url does nothing with --engine hf (it is for openai)"),
    (["--tokenizer", "{model}"], "--tokenizer does nothing with --engine vllm (it is for openai)"),
    (["--kv-cache-gib", "0.5", "--gpu-memory-utilization", "0.1"],
     "--kv-cache-gib sets the KV cache size, so --gpu-memory-utilization would do nothing: give one of them"),
    (["--temperature", "0", "--top-p", "0.5"], "--top-p does nothing at --temperature 0 (greedy decoding)"),
    (["--split", "test"], "--split picks a split of a Hugging Face dataset folder; {problems} is not one"),
]
"""(flags, the refusal) for `paced estimate PROBLEMS --model MODEL -o OUT FLAGS`: its rollout flags."""


@pytest.fixture
def problems(tmp_path):
    return write_jsonl(tmp_path / "problems.jsonl", [{"id": "q0", "question": "1 + 1 =", "answer": "2"}])


def _filled(flags: list[str], **values) -> list[str]:
    return [flag.format(**values) for flag in flags]


@pytest.mark.parametrize("flags,expected", ROLLOUT_CASES)
def test_rollout_refuses_a_flag_that_does_nothing_in_its_mode(cli, tiny_model, problems, tmp_path, flags, expected):
    output = tmp_path / "out"
    result = cli("rollout", problems, "--model", tiny_model, "-o", output, *_filled(flags, model=tiny_model))
    assert_user_error(result, expected.format(problems=problems))
    assert not output.exists()


@pytest.mark.parametrize("flags,expected", ESTIMATE_CASES)
def test_estimate_refuses_a_rollout_flag_that_does_nothing_in_its_mode(cli, tiny_model, problems, tmp_path, flags, expected):
    output = tmp_path / "run"
    result = cli("estimate", problems, "--model", tiny_model, "-o", output, *_filled(flags, model=tiny_model))
    assert_user_error(result, expected.format(problems=problems))
    assert not output.exists()


def test_overwrite_with_a_stream_output_is_refused(cli, tiny_model, problems):
    result = cli("rollout", problems, "--model", tiny_model, "-o", "-", "--overwrite")
    assert_user_error(result, "--overwrite does nothing with -o - (a stream has no earlier output)")


def test_split_on_a_folder_of_parquet_files_is_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "problems"
    folder.mkdir()
    pq.write_table(pa.table({"id": ["q0"], "question": ["1 + 1 ="], "answer": ["2"]}), folder / "part-0.parquet")
    with pytest.raises(ConfigError, match="--split picks a split of a Hugging Face dataset folder"):
        RolloutConfig(problems=str(folder), model="m", output="out", fields=FieldMap(split="train"))


def test_split_on_a_dataset_folder_is_accepted(tmp_path):
    import datasets

    folder = tmp_path / "dataset"
    datasets.DatasetDict({"test": datasets.Dataset.from_dict({"question": ["1 + 1 ="], "answer": ["2"]})}).save_to_disk(str(folder))
    config = RolloutConfig(problems=str(folder), model="m", output="out", fields=FieldMap(split="test"))
    assert config.fields.split == "test"


@pytest.mark.parametrize(
    "engine,given",
    [
        ("vllm", {"tensor_parallel_size": 1, "gpu_memory_utilization": 0.5, "max_in_flight": 8, "max_model_len": 64, "dtype": "float32"}),
        ("vllm", {"kv_cache_gib": 0.5}),
        ("hf", {"batch_size": 8, "max_model_len": 64, "dtype": "float32"}),
        ("openai", {"base_url": URL, "api_key": "k", "tokenizer": "tok", "concurrency": 4, "request_timeout": 5.0, "max_retries": 1}),
    ],
)
def test_each_flag_is_accepted_in_the_mode_it_works_in(engine, given):
    config = RolloutConfig(problems="p.jsonl", model="m", output="out", engine=engine, **given)
    assert all(config.resolved(name) == value for name, value in given.items())


@pytest.mark.parametrize("engine,extra", [("vllm", {}), ("hf", {}), ("openai", {"base_url": URL})])
def test_a_flag_left_out_means_its_default_and_the_resume_settings_do_not_change(engine, extra):
    """Runs made before these flags defaulted to None must resume: the settings use the resolved values."""
    bare = RolloutConfig(problems="p.jsonl", model="m", output="out", engine=engine, **extra)
    explicit = RolloutConfig(problems="p.jsonl", model="m", output="out", engine=engine, top_p=DEFAULTS["top_p"], **extra,
                             **({"dtype": "auto"} if engine != "openai" else {}))
    assert bare.settings() == explicit.settings()
    assert bare.settings()["top_p"] == 1.0 and bare.settings()["dtype"] == "auto"
    assert bare.resolved("batch_size") == 64 and bare.resolved("max_in_flight") == 1024 and bare.resolved("concurrency") == 32


def test_several_unused_flags_are_named_in_the_one_line(cli, tiny_model, problems, tmp_path):
    result = cli("rollout", problems, "--model", tiny_model, "-o", tmp_path / "out", "--engine", "hf", "--tensor-parallel-size", "2", "--base-url", URL)
    assert_user_error(result, "--tensor-parallel-size does nothing with --engine hf (it is for vllm); --base-url does nothing with --engine hf")


OTHER_CASES = [
    (["weight", "g", "-o", "w.parquet", "--kernel", "band", "--low", "0.2", "--high", "0.8", "--alpha", "2"],
     "--alpha does nothing with --kernel band (it is an exponent of --kernel beta)"),
    (["weight", "g", "-o", "w.parquet", "--kernel", "uniform", "--beta", "2"], "--beta does nothing with --kernel uniform (it is an exponent of --kernel beta)"),
    (["weight", "g", "-o", "w.parquet", "--low", "0.1"], "--low does nothing with --kernel beta (it bounds --kernel band)"),
    (["weight", "g", "-o", "w.parquet", "--high", "0.9"], "--high does nothing with --kernel beta (it bounds --kernel band)"),
    (["weight", "g", "-o", "w.parquet", "--prior-a", "1"], "--prior-a does nothing with --estimator empirical (it is the prior of --estimator bayes)"),
    (["weight", "g", "-o", "w.parquet", "--estimator", "eb", "--prior-b", "1"], "--prior-b does nothing with --estimator eb (it is the prior of --estimator bayes)"),
    (["estimate", "p.jsonl", "--model", "m", "-o", "run", "--kernel", "uniform", "--alpha", "2"],
     "--alpha does nothing with --kernel uniform (it is an exponent of --kernel beta)"),
    (["estimate", "p.jsonl", "--model", "m", "-o", "run", "--prior-a", "2"], "--prior-a does nothing with --estimator empirical"),
    (["grade", "r", "-o", "g", "--tolerance", "0.01"], "--tolerance does nothing with --grader math (it is for the numeric grader)"),
    (["grade", "r", "-o", "g", "--ray", "local", "--workers", "4"], "--workers does nothing with --ray (each Ray task grades in a process of its own)"),
    (["grade", "r", "-o", "-", "--overwrite"], "--overwrite does nothing with -o - (a stream has no earlier output)"),
    (["export", "p.jsonl", "w.parquet", "-o", "data", "--refs-per-problem", "2"], "--refs-per-problem does nothing without --references"),
    (["export", "p.jsonl", "w.parquet", "-o", "data", "--format", "verl", "--references", "g"],
     "--references does nothing with --format verl (verl rows carry no completion)"),
    (["export", "p.jsonl", "w.parquet", "-o", "data", "--data-source", "x"], "--data-source does nothing with --format native (it is verl's data_source column)"),
    (["distill", "d", "--student", "s", "--teacher", "t", "-o", "r", "--switch-at", "0.3"], "--switch-at does nothing with --loss fkl (it is for --loss fkl-then-rkl)"),
    (["distill", "d", "--student", "s", "--teacher", "t", "-o", "r", "--loss", "akl", "--rkl-max-tokens", "8"],
     "--rkl-max-tokens does nothing with --loss akl (no stage samples from the student)"),
    (["distill", "d", "--student", "s", "--teacher", "t", "-o", "r", "--rkl-temperature", "0.5"],
     "--rkl-temperature does nothing with --loss fkl (no stage samples from the student)"),
    (["distill", "d", "--student", "s", "--teacher", "t", "-o", "r", "--eval-samples", "8"], "--eval-samples does nothing without --eval"),
    (["distill", "d", "--student", "s", "--teacher", "t", "-o", "r", "--eval-workers", "2"], "--eval-workers does nothing without --eval"),
    (["distill", "d", "--student", "s", "--teacher", "t", "-o", "r", "--eval-every", "5"], "--eval-every does nothing without --eval or --reweight online"),
    (["distill", "d", "--student", "s", "--teacher", "t", "-o", "r", "--checkpoint-every", "0", "--keep-checkpoints", "5"],
     "--keep-checkpoints does nothing with --checkpoint-every 0 (no checkpoints are written)"),
]
"""(arguments, the refusal) for the other commands: refused before any input is read (the paths need not exist)."""


@pytest.mark.parametrize("arguments,expected", OTHER_CASES)
def test_other_commands_refuse_a_flag_that_does_nothing_in_their_mode(cli, tmp_path, monkeypatch, arguments, expected):
    monkeypatch.chdir(tmp_path)
    result = cli(*arguments)
    assert_user_error(result, expected)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "arguments",
    [
        ["weight", "g", "-o", "w.parquet", "--alpha", "2", "--beta", "2", "--estimator", "bayes", "--prior-a", "1"],
        ["weight", "g", "-o", "w.parquet", "--kernel", "band", "--low", "0.2", "--high", "0.8"],
        ["grade", "r", "-o", "g", "--grader", "numeric", "--tolerance", "0.01"],
        ["grade", "r", "-o", "-", "--rows-per-part", "10"],  # a stream's record batches (#26)
        ["grade", "r", "-o", "g", "--audit", "numeric", "--tolerance", "0.01"],
        ["distill", "d", "--student", "s", "--teacher", "t", "-o", "r", "--loss", "fkl-then-rkl", "--switch-at", "0.3", "--rkl-max-tokens", "8"],
        ["distill", "d", "--student", "s", "--teacher", "t", "-o", "r", "--eval", "e.jsonl", "--eval-samples", "8"],
        ["distill", "d", "--student", "s", "--teacher", "t", "-o", "r", "--eval", "e.jsonl", "--eval-every", "5"],
        # an online run records its frontier every --eval-every steps, with or without --eval (#25)
        ["distill", "d", "--student", "s", "--teacher", "t", "-o", "r", "--loss", "rkl", "--reweight", "online", "--eval-every", "5"],
        ["export", "p.jsonl", "w.parquet", "-o", "data", "--format", "verl", "--data-source", "x"],
    ],
)
def test_the_same_flags_pass_in_the_mode_they_work_in(cli, tmp_path, monkeypatch, arguments):
    """The command then goes on to its inputs, which do not exist here: that is the error it stops at."""
    monkeypatch.chdir(tmp_path)
    result = cli(*arguments)
    assert result.exit_code == 2
    assert "does nothing" not in result.stderr, result.stderr
