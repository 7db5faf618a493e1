"""`torchrun --nproc-per-node 2 -m paced_curate distill` with FSDP2 on CPU (gloo) (#17).

Two ranks sharing a global batch must train what one process trains on that batch: the same
loss curve (to 1e-5) through 5 fkl and 5 rkl steps, the same final student; a run killed
after a checkpoint and resumed under 2 ranks must equal the uninterrupted 2-rank run.

The same holds for every loss on rows whose rkl budget the position limit cuts (a GPT-2 with
64 positions; #26) and on global batches holding a row twice (#21). Those runs share one
torchrun: this module, run as `torchrun ... -m tests.test_distill_fsdp SPEC.json`, trains each
config of SPEC in turn in one process group.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from paced_curate.distill import DistillConfig, run_distill
from paced_curate.errors import ConfigError
from tests.conftest import free_port
from tests.process_tree import kill_tree
from tests.test_distill_data import SHORT, make_export, models, one_torch_thread, short_examples  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[1]
# 10 steps of fkl-then-rkl: steps 1-5 train with fkl on the references, 6-10 with rkl on the student's samples.
SETTINGS = {
    "loss": "fkl-then-rkl", "switch_at": 0.5, "max_steps": 10, "batch_size": 4, "micro_batch_size": 1, "lr": 3e-3,
    "warmup_steps": 1, "seed": 5, "rkl_max_tokens": 8, "checkpoint_every": 2, "keep_checkpoints": 0, "log_every": 1,
}


def flags(settings: dict) -> list[str]:
    out = []
    for name, value in settings.items():
        out += [f"--{name.replace('_', '-')}", str(value)]
    return out


def torchrun_command(data: Path, models: dict, run_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
        "-m", "paced_curate", "distill", str(data), "--student", str(models["student"]), "--teacher", str(models["teacher"]),
        "-o", str(run_dir), "--template", SHORT.template, "--chat-template", "off", "--device", "cpu", *flags(SETTINGS), *extra,
    ]


def environment() -> dict:
    return os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def records(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == "train"]


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(run_dir / "final", dtype=torch.float32).state_dict()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_export(tmp_path_factory.mktemp("fsdp"), n=8)


@pytest.fixture(scope="module")
def two_ranks(data, models, tmp_path_factory) -> Path:
    """An uninterrupted 2-rank run."""
    run_dir = tmp_path_factory.mktemp("fsdp") / "two"
    done = subprocess.run(torchrun_command(data, models, run_dir), env=environment(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return run_dir


def test_two_ranks_train_what_one_process_trains_on_the_same_global_batch(data, models, two_ranks, tmp_path):
    config = DistillConfig(
        shards=str(data), student=str(models["student"]), teacher=str(models["teacher"]), output=str(tmp_path / "one"),
        template=SHORT.template, chat_template="off", device="cpu", **SETTINGS,
    )
    run_distill(config)
    one, two = records(tmp_path / "one"), records(two_ranks)
    assert [r["stage"] for r in two] == ["fkl"] * 5 + ["rkl"] * 5
    for name in ("loss", "kl", "grad_norm"):
        assert [r[name] for r in two] == pytest.approx([r[name] for r in one], abs=1e-5, rel=1e-5), name
    # Token counts add up over the ranks: the rkl samples are the same whichever rank draws them.
    assert [r["tokens"] for r in two] == [r["tokens"] for r in one]
    # The loss really moved (a curve that is flat because nothing trained would match trivially).
    assert abs(one[4]["loss"] - one[0]["loss"]) > 1e-3
    single, sharded = final_weights(tmp_path / "one"), final_weights(two_ranks)
    assert single.keys() == sharded.keys()
    for name, value in single.items():
        torch.testing.assert_close(sharded[name], value, atol=1e-5, rtol=1e-4, msg=name)


def test_the_final_student_of_two_ranks_is_saved_once_and_rolls_out(two_ranks, tmp_path):
    from paced_curate.rollout import RolloutConfig, run_rollout
    from tests.conftest import write_jsonl

    final = two_ranks / "final"
    assert (final / "config.json").exists() and (final / "model.safetensors").exists()
    assert not list(two_ranks.glob("**/*.tmp*")), "no staging folders left behind"
    checkpoints = sorted(p.name for p in (two_ranks / "checkpoints").iterdir())
    assert checkpoints == [f"step-{s:06d}" for s in (2, 4, 6, 8, 10)]
    assert (two_ranks / "checkpoints" / "step-000002" / "dcp" / ".metadata").exists()
    problems = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "question": "What is 1 + 1?", "answer": "2"}])
    result = run_rollout(RolloutConfig(problems=str(problems), model=str(final), output=str(tmp_path / "r"), engine="hf", samples=2, max_tokens=6))
    assert result.samples == 2


def test_a_killed_two_rank_run_resumes_to_the_uninterrupted_result(data, models, two_ranks, tmp_path):
    run_dir = tmp_path / "killed"
    # Niced, so that this process, polling for the first checkpoint, gets the CPU before the
    # ranks can run the remaining 8 steps; the niceness changes no number the ranks compute.
    process = subprocess.Popen(
        ["nice", "-n", "19", *torchrun_command(data, models, run_dir)], env=environment(), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, start_new_session=True,
    )
    target = run_dir / "checkpoints" / "step-000002"
    deadline = time.monotonic() + 300
    while not target.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    kill_tree(process.pid)  # torchrun and both ranks (torchrun starts them in sessions of their own), mid-run
    _, stderr = process.communicate()
    assert target.exists(), stderr.decode()[-4000:]
    assert not (run_dir / "final").exists(), "the run finished before it was killed; the test did not interrupt it"
    resumed = subprocess.run(torchrun_command(data, models, run_dir, "--resume"), env=environment(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert "resuming after step" in resumed.stderr
    whole, again = records(two_ranks), records(run_dir)
    assert [r["step"] for r in again] == list(range(1, 11))
    for name in ("loss", "kl", "grad_norm"):
        assert [r[name] for r in again] == pytest.approx([r[name] for r in whole], abs=1e-6, rel=1e-6), name
    uninterrupted, after_resume = final_weights(two_ranks), final_weights(run_dir)
    for name, value in uninterrupted.items():
        torch.testing.assert_close(after_resume[name], value, atol=1e-6, rtol=1e-6, msg=name)


LOSSES = ("fkl", "rkl", "fkl-then-rkl", "akl")
CUT = {
    "max_steps": 3, "batch_size": 8, "micro_batch_size": 2, "lr": 3e-3, "warmup_steps": 0, "seed": 3, "rkl_max_tokens": 64,
    "checkpoint_every": 0, "log_every": 1, "template": SHORT.template, "chat_template": "off", "device": "cpu",
}
"""6 examples in batches of 8 (so every batch holds rows twice), rkl budgets of up to 64 tokens on a 40-position model."""
POSITIONS = 40
VALUES = [3, 41, 7, 512, 96, 1234]
"""Problems 'What is v + v?': prompts of 15 to 21 tokens, so the position limit cuts the rkl budgets to 25, 23, 21 and 19."""


@pytest.fixture(scope="module")
def gpt2_pair(tmp_path_factory) -> dict[str, Path]:
    """A tiny GPT-2 student and a wider teacher with 40 positions (the character vocabulary)."""
    from paced_curate.toy.gpt2 import build_tiny_gpt2

    root = tmp_path_factory.mktemp("gpt2_pair")
    pair = {
        "student": build_tiny_gpt2(root / "student", n_positions=POSITIONS, hidden_size=64, init_seed=0),
        "teacher": build_tiny_gpt2(root / "teacher", n_positions=POSITIONS, hidden_size=96, init_seed=1),
    }
    # GPT-2's default dropout (0.1) draws from each process's RNG, so 2 ranks could not match 1 process on it;
    # the models paced trains (Qwen, Llama) have none.
    for folder in pair.values():
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps(config | {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}))
    return pair


@pytest.fixture(scope="module")
def cut_runs(gpt2_pair, tmp_path_factory) -> tuple[Path, Path]:
    """Every loss trained once by 2 ranks (one torchrun) and once by one process, on position-limited rows."""
    root = tmp_path_factory.mktemp("cut")
    data = make_export(root, values=VALUES)
    common = {"shards": str(data), "student": str(gpt2_pair["student"]), "teacher": str(gpt2_pair["teacher"])} | CUT
    spec = root / "spec.json"
    spec.write_text(json.dumps([common | {"loss": loss, "output": str(root / "two" / loss)} for loss in LOSSES]))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
        "-m", "tests.test_distill_fsdp", str(spec),
    ]
    done = subprocess.run(command, env=environment(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    for loss in LOSSES:
        run_distill(DistillConfig(**common, loss=loss, output=str(root / "one" / loss)))
    return root, data


def test_the_position_limit_cuts_the_rkl_budgets_and_batches_repeat_rows_across_ranks(cut_runs, gpt2_pair):
    """The conditions the next test needs: cut budgets that differ within a micro-batch, and rows copied across ranks."""
    from paced_curate.distill.data import global_batch

    _, data = cut_runs
    examples = short_examples(data, gpt2_pair)
    budgets = {e.row: min(CUT["rkl_max_tokens"], POSITIONS - len(e.prompt_ids)) for e in examples}
    assert sorted(set(budgets.values())) == [19, 21, 23, 25]
    rkl_steps = range(CUT["max_steps"])  # every step of --loss rkl (the last half of fkl-then-rkl among them)
    crossing = 0
    for step in rkl_steps:
        batch = global_batch(examples, step, CUT["batch_size"], CUT["seed"])
        for row in {e.row for e in batch if e.copy}:
            crossing += len({i % 2 for i, e in enumerate(batch) if e.row == row}) == 2
    assert crossing >= 2, "some row must have copies on both ranks (#21: each rank numbered its copies from 0)"


@pytest.mark.parametrize("loss", LOSSES)
def test_two_ranks_equal_one_process_for_every_loss_on_position_limited_rows_26_21(cut_runs, loss):
    """#26: two ranks with rkl crashed (gloo error, SIGABRT) once the position limit cut the budgets; #21: a row twice
    in one global batch got the same rkl seed on both ranks."""
    root, _ = cut_runs
    one, two = records(root / "one" / loss), records(root / "two" / loss)
    assert [r["step"] for r in two] == [1, 2, 3]
    for name in ("loss", "kl", "grad_norm"):
        assert [r[name] for r in two] == pytest.approx([r[name] for r in one], abs=1e-5, rel=1e-5), name
    assert [r["tokens"] for r in two] == [r["tokens"] for r in one]
    if "rkl" in loss:
        assert min(r["tokens"] for r in one if r["stage"] == "rkl") > 8 * 12, "the samples ran long, into the cut budgets"
    single, sharded = final_weights(root / "one" / loss), final_weights(root / "two" / loss)
    for name, value in single.items():
        # AdamW turns float noise in a near-zero gradient (a token seen once) into a visible step: 1e-4, not 1e-5.
        torch.testing.assert_close(sharded[name], value, atol=1e-4, rtol=1e-4, msg=name)


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"batch_size": 5}, "--batch-size 5 must be a multiple of the number of processes (2)"),
        ({"eval_problems": "held_out.jsonl"}, "--eval-problems is not supported under torchrun"),
    ],
)
def test_settings_fsdp_cannot_honour_are_refused_before_any_process_group(monkeypatch, changes, message):
    from paced_curate.distill import parallel

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    config = DistillConfig(shards="d", student="s", teacher="t", output="o", **changes)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parallel.start(config, torch.device("cpu"))


def train_each(spec: str) -> None:
    """Under torchrun: train every config in the JSON list `spec`, one after another, in one process group."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    try:
        for settings in json.loads(Path(spec).read_text()):
            run_distill(DistillConfig(**settings))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    train_each(sys.argv[1])
