"""`paced rollout --ray` and `paced grade --ray` on a real local Ray instance (2 CPUs, no GPU) (#17).

The Ray paths must write what the local paths write: the same rows (bitwise on CPU), the same
part files, through a dying actor, a killed driver, and graders that hang, raise or die.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from paced_curate.errors import ConfigError
from paced_curate.grade import GradeConfig, run_grade
from paced_curate.io import read_table
from paced_curate.rollout import RolloutConfig, run_rollout
from paced_curate.rollout.ray_rollout import EngineReplica, replica_plan, run_ray_rollout
from paced_curate.schema import GRADES, ROLLOUTS, build_table
from tests.conftest import assert_user_error, write_jsonl
from tests.process_tree import kill_tree
from tests.test_grade_pool import HANGS_MATH_VERIFY
from tests.test_rollout import arithmetic_problems, hf_config

ROOT = Path(__file__).resolve().parents[1]
RAY_OBJECT_STORE = 300 * 2**20


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray instance with 2 CPUs and a small object store, shut down after the module."""
    ray = pytest.importorskip("ray")
    # Workers import paced from this checkout, and this module's actor subclass as pytest named
    # it (`test_ray`, from the tests folder, which is not a package).
    ray.init(
        num_cpus=2, object_store_memory=RAY_OBJECT_STORE, include_dashboard=False, logging_level="WARNING",
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}},
    )
    yield ray
    ray.shutdown()


class DiesOnFirstCall(EngineReplica):
    """A replica whose process exits on its first block (once per run): Ray must restart it and retry the block."""

    def __call__(self, batch):
        marker = Path(self.config.output).parent / f"{Path(self.config.output).name}.died"
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(1)
        return super().__call__(batch)


def part_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*.parquet"))


@pytest.fixture(scope="module")
def problems(tmp_path_factory) -> Path:
    return arithmetic_problems(tmp_path_factory.mktemp("ray") / "p.jsonl", 24)


@pytest.fixture(scope="module")
def local_hf(problems, tiny_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ray") / "local"
    run_rollout(hf_config(problems, tiny_model, out, problems_per_part=5))
    return out


def test_hf_rollout_on_ray_writes_the_local_rows_and_parts_through_a_dying_actor(ray_local, problems, tiny_model, local_hf, tmp_path):
    config = replace(hf_config(problems, tiny_model, tmp_path / "ray", problems_per_part=5), ray="local")
    result = run_ray_rollout(config, replica=DiesOnFirstCall)
    assert (tmp_path / "ray.died").exists(), "the first actor did not die, so the retry was not exercised"
    assert result.generated == 24 and result.samples == 72
    on_ray, local = read_table(str(tmp_path / "ray"), ROLLOUTS), read_table(str(local_hf), ROLLOUTS)
    assert on_ray.num_rows == 72, "a retried block must not add rows twice"
    assert on_ray.equals(local)
    assert part_files(tmp_path / "ray") == part_files(local_hf)
    for name in part_files(local_hf):
        assert pq.read_table(tmp_path / "ray" / name).equals(pq.read_table(local_hf / name)), name


def test_a_killed_ray_driver_resumes_to_the_local_rows(ray_local, problems, tiny_model, local_hf, tmp_path):
    out = tmp_path / "killed"
    command = [
        sys.executable, "-m", "paced_curate", "rollout", str(problems), "--model", str(tiny_model), "-o", str(out), "--engine", "hf",
        "-k", "3", "--max-tokens", "12", "--batch-size", "8", "--problems-per-part", "5", "--ray", "local",
    ]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 240
    while not part_files(out) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    kill_tree(process.pid)  # the driver and the Ray instance it started
    _, stderr = process.communicate()
    written = part_files(out)
    assert written, stderr.decode()[-3000:]
    assert len(written) < len(part_files(local_hf)), "the run ended before it was killed"
    result = run_rollout(replace(hf_config(problems, tiny_model, out, problems_per_part=5), ray="auto"))
    assert result.skipped == 5 * len(written) and result.generated == 24 - result.skipped
    assert read_table(str(out), ROLLOUTS).equals(read_table(str(local_hf), ROLLOUTS))


def test_vllm_rollout_on_ray_is_bitwise_the_local_vllm_rollout(ray_local, problems, tiny_model, tmp_path):
    base = RolloutConfig(
        problems=str(problems), model=str(tiny_model), output=str(tmp_path / "local"), engine="vllm", samples=4, max_tokens=16,
        problems_per_part=8,
    )
    run_rollout(base)
    result = run_rollout(replace(base, output=str(tmp_path / "ray"), ray="local"))
    assert result.samples == 96
    on_ray, local = read_table(str(tmp_path / "ray"), ROLLOUTS), read_table(str(tmp_path / "local"), ROLLOUTS)
    assert set(on_ray.column("finish_reason").to_pylist()) <= {"stop", "length"}
    assert on_ray.equals(local)


def rollout_row(problem: str, index: int, completion: str, gold: str, finish: str = "stop") -> dict:
    return {
        "problem_id": problem, "prompt": "?", "answer": gold, "sample_index": index, "completion": completion, "finish_reason": finish,
        "completion_tokens": 3, "prompt_tokens": 1, "error": "engine failed" if finish == "error" else None,
    }


# (completion, gold, verdict on both paths, why it is here)
ADVERSARIAL = [
    ("\\boxed{3}", "3", "correct", "a plain right answer"),
    ("\\boxed{4}", "3", "incorrect", "a plain wrong answer"),
    (HANGS_MATH_VERIFY, "3", "timeout", "hangs math-verify for minutes: the worker must be killed"),
    ("no box at all " * 50, "3", "no_answer", "nothing to extract"),
    ("\\boxed{\\frac{1}{0}}", "3", None, "a division by zero inside the parser"),
    ("\\boxed{" * 200 + "1" + "}" * 200, "1", None, "deep nesting"),
    ("x" * 100_000 + "\\boxed{3}", "3", "correct", "a very long completion"),
    ("\\boxed{3}", "3", "truncated", "cut off at the token limit: not graded"),
    ("", "3", "error", "a failed rollout: not graded"),
]


def test_grade_on_ray_gives_the_local_verdicts_for_adversarial_answers(ray_local, tmp_path):
    rows = []
    for index, (completion, gold, _, _) in enumerate(ADVERSARIAL):
        finish = "length" if index == 7 else "error" if index == 8 else "stop"
        rows.append(rollout_row(f"p{index}", 0, completion, gold, finish))
    rollouts = tmp_path / "rollouts.parquet"
    pq.write_table(build_table(rows, ROLLOUTS), rollouts)
    local = run_grade(GradeConfig(rollouts=str(rollouts), output=str(tmp_path / "local"), workers=2, timeout=1.0, rows_per_part=4))
    started = time.monotonic()
    on_ray = run_grade(GradeConfig(rollouts=str(rollouts), output=str(tmp_path / "ray"), timeout=1.0, rows_per_part=4, ray="local"))
    assert time.monotonic() - started < 60, "a hanging answer held a Ray worker"
    assert on_ray.timeouts == local.timeouts >= 1
    graded_local, graded_ray = read_table(str(tmp_path / "local"), GRADES), read_table(str(tmp_path / "ray"), GRADES)
    assert graded_ray.equals(graded_local)
    verdicts = graded_ray.column("verdict").to_pylist()
    for (completion, _, expected, why), verdict in zip(ADVERSARIAL, verdicts):
        if expected is not None:
            assert verdict == expected, why


def test_a_grader_that_kills_its_process_or_sleeps_costs_one_sample_on_ray(ray_local, tmp_path):
    rows = [rollout_row("p", i, text, "a") for i, text in enumerate(["a", "die", "value error", "sleep", "b", "a"])]
    rollouts = tmp_path / "rollouts.parquet"
    pq.write_table(build_table(rows, ROLLOUTS), rollouts)
    result = run_grade(
        GradeConfig(rollouts=str(rollouts), output=str(tmp_path / "ray"), grader="tests.test_grade_pool:raising_grader", timeout=1.0, ray="auto")
    )
    verdicts = read_table(str(tmp_path / "ray"), GRADES).column("verdict").to_pylist()
    assert verdicts == ["correct", "error", "error", "timeout", "incorrect", "correct"]
    assert result.timeouts == 1 and result.worker_deaths == 1


# (cluster resources, --tensor-parallel-size, replicas, resources per replica)
PLANS = [
    ({"CPU": 2.0}, 1, 1, {"num_cpus": 1}),
    ({"CPU": 64.0, "GPU": 8.0}, 1, 8, {"num_cpus": 1, "num_gpus": 1}),
    ({"CPU": 64.0, "GPU": 8.0}, 2, 4, {"num_cpus": 1, "num_gpus": 2}),
    ({"CPU": 64.0, "GPU": 6.0}, 4, 1, {"num_cpus": 1, "num_gpus": 4}),
]


@pytest.mark.parametrize("resources,tp,replicas,each", PLANS)
def test_one_engine_replica_per_gpu_group(resources, tp, replicas, each):
    assert replica_plan(resources, tp) == (replicas, each)


def test_a_cluster_with_fewer_gpus_than_one_engine_needs_is_refused():
    with pytest.raises(ConfigError, match="--tensor-parallel-size 4: the Ray cluster has only 2 GPUs"):
        replica_plan({"GPU": 2.0}, 4)


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--ray", " "], "--ray needs an address"),
        (["--ray", "local", "--gpus", "0,1"], "--ray places one engine per GPU itself; drop --gpus"),
        (["--ray", "local", "--shard", "0/2"], "--ray spreads the problems over the cluster itself; drop --shard"),
        (["--ray", "local", "--engine", "openai", "--base-url", "http://x/v1"], "--engine openai talks to a server instead"),
    ],
)
def test_rollout_ray_flags_that_cannot_work_are_one_line_errors(cli, tmp_path, tiny_model, flags, message):
    problems = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "question": "1+1", "answer": "2"}])
    assert_user_error(cli("rollout", problems, "--model", tiny_model, "-o", tmp_path / "out", "--engine", "hf", *flags), message)


def test_rollout_ray_to_stdout_is_refused(cli, tmp_path, tiny_model):
    problems = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "question": "1+1", "answer": "2"}])
    assert_user_error(cli("rollout", problems, "--model", tiny_model, "-o", "-", "--engine", "hf", "--ray", "local"), "-o - is not possible")


def test_grade_ray_needs_an_address(cli, tmp_path):
    assert_user_error(cli("grade", tmp_path / "r.parquet", "-o", tmp_path / "g", "--ray", ""), "--ray needs an address")
