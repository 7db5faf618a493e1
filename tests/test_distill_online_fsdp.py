"""Online PACED under `torchrun --nproc-per-node 2` with FSDP2 on CPU (gloo) (#25, item 6).

Each rank grades its own share of the samples; the per-problem counts are summed over the ranks
before they join the posterior, so the posterior is one state. Two ranks must end with the
posterior one process ends with (the same weights tables, the same records), and a 2-rank run
resumed from a checkpoint taken while a step's samples were still being graded must too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from paced_curate.distill import DistillConfig, run_distill
from tests.online_helpers import PARITY, counts_export
from tests.test_distill_data import SHORT, models, one_torch_thread  # noqa: F401 (fixtures)
from tests.test_distill_fsdp import environment, flags, records, torchrun_command
from tests.test_distill_online_train import COUNTS

# fkl steps 1-4 with a refresh before the third; rkl steps 5-8 with probes; checkpoints after steps 3 and 6
# (the second holds step 6's samples, graded but not yet in the posterior).
SETTINGS = {
    "loss": "fkl-then-rkl", "max_steps": 8, "batch_size": 4, "micro_batch_size": 1, "lr": 3e-3, "warmup_steps": 1, "seed": 5,
    "rkl_max_tokens": 6, "checkpoint_every": 3, "keep_checkpoints": 0, "log_every": 1, "reweight": "online", "reweight_grader": PARITY,
    "reweight_halflife": 3, "explore": 0.5, "reweight_every": 2, "reweight_samples": 3, "eval_every": 2,
}
TIMES = ("grader_s", "grader_wait_s", "refresh_s")


def online_records(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in r.items() if k not in TIMES} for r in map(json.loads, lines) if r["kind"] == "reweight"]


def command(data: Path, models: dict, run_dir: Path, *extra: str) -> list[str]:
    base = torchrun_command(data, models, run_dir, *extra)
    # torchrun_command adds the plain FSDP test's settings; ours follow and take precedence (last flag wins).
    return base + flags(SETTINGS)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return counts_export(tmp_path_factory.mktemp("online_fsdp"), COUNTS)


@pytest.fixture(scope="module")
def one_process(data, models, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("online_fsdp") / "one"
    run_distill(DistillConfig(
        shards=str(data), student=str(models["student"]), teacher=str(models["teacher"]), output=str(run_dir),
        template=SHORT.template, chat_template="off", device="cpu", **SETTINGS,
    ))
    return run_dir


def run_two_ranks(data: Path, models: dict, run_dir: Path, *extra: str) -> None:
    done = subprocess.run(command(data, models, run_dir, *extra), env=environment(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]


def assert_same_posterior(run_dir: Path, reference: Path) -> None:
    for name in ("weights_start.parquet", "weights_final.parquet"):
        assert pq.read_table(run_dir / name).equals(pq.read_table(reference / name)), name
    assert online_records(run_dir) == online_records(reference)
    # The gradient norm too: a probe sampled between backward and the optimizer step once lost the step's gradients.
    for name in ("loss", "grad_norm"):
        assert [r[name] for r in records(run_dir)] == pytest.approx([r[name] for r in records(reference)], abs=1e-5, rel=1e-5), name


def test_two_ranks_end_with_the_posterior_of_one_process(data, models, one_process, tmp_path):
    run_two_ranks(data, models, tmp_path / "two")
    reweight = online_records(one_process)
    assert sum(r["refresh_samples"] for r in reweight) == 8 * 3 and sum(r["probes"] for r in reweight) > 0
    assert_same_posterior(tmp_path / "two", one_process)


def test_two_ranks_resumed_while_a_step_was_being_graded_end_with_the_same_posterior(data, models, one_process, tmp_path):
    run_dir = tmp_path / "resumed"
    run_two_ranks(data, models, run_dir)
    # The state after a crash during step 7: checkpoint 6 complete, nothing later.
    for name in ("final", "weights_start.parquet", "weights_final.parquet"):
        shutil.rmtree(run_dir / name) if (run_dir / name).is_dir() else (run_dir / name).unlink()
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    (run_dir / "metrics.jsonl").write_text("".join(line + "\n" for line in lines if json.loads(line)["step"] <= 6))
    run_two_ranks(data, models, run_dir, "--resume")
    assert json.loads((run_dir / "run.json").read_text())["resumed_after"] == [6]
    assert_same_posterior(run_dir, one_process)
