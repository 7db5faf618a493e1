"""`run_distill` on the tiny models: loss goes down, golden losses, the two-stage switch, resume,
gradient accumulation, weighting off, bad inputs, the final student and the evaluation hook.

Regenerate the golden loss file (after a deliberate change to the loss or the data order) with
    .venv/bin/python -m tests.test_distill_train --update-golden
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from paced_curate.distill import DistillConfig, run_distill
from paced_curate.errors import InputError, PacedError, ResumeMismatch
from tests.conftest import assert_user_error, write_jsonl
from tests.test_distill_data import SHORT, make_export, models, one_torch_thread  # noqa: F401 (fixtures)

GOLDEN = Path(__file__).parent / "assets" / "distill_fkl_losses.json"
GOLDEN_SETTINGS = {"loss": "fkl", "max_steps": 6, "batch_size": 4, "micro_batch_size": 2, "lr": 1e-3, "warmup_steps": 2, "seed": 3}


def config(data: Path, models: dict, output: Path, **options) -> DistillConfig:
    defaults = {
        "loss": "fkl", "max_steps": 4, "batch_size": 4, "lr": 1e-3, "warmup_steps": 1, "checkpoint_every": 0,
        "template": SHORT.template, "chat_template": "off", "log_every": 1, "rkl_max_tokens": 12,
    }
    return DistillConfig(shards=str(data), student=str(models["student"]), teacher=str(models["teacher"]), output=str(output), **(defaults | options))


def train_records(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == "train"]


def losses(run_dir: Path) -> list[float]:
    return [r["loss"] for r in train_records(run_dir)]


@pytest.fixture
def data(tmp_path) -> Path:
    return make_export(tmp_path, n=8)


def test_fkl_loss_decreases_on_a_fixed_batch(tmp_path, models):
    fixed = make_export(tmp_path, n=4)  # batch size 4: every step sees the same four examples
    run_distill(config(fixed, models, tmp_path / "run", max_steps=12, lr=3e-3, warmup_steps=0))
    curve = losses(tmp_path / "run")
    assert curve[-1] < 0.5 * curve[0], curve
    assert sum(curve[-3:]) < sum(curve[:3]), curve


def test_rkl_loss_decreases_on_a_fixed_batch(tmp_path, models):
    fixed = make_export(tmp_path, n=4, references=False)  # rkl needs no references
    run_distill(config(fixed, models, tmp_path / "run", loss="rkl", max_steps=12, lr=3e-3, warmup_steps=0))
    curve = losses(tmp_path / "run")
    assert sum(curve[-3:]) < 0.6 * sum(curve[:3]), curve


def test_fkl_losses_match_the_golden_file(tmp_path, models, data):
    run_distill(config(data, models, tmp_path / "run", **GOLDEN_SETTINGS))
    golden = json.loads(GOLDEN.read_text())
    assert golden["settings"] == GOLDEN_SETTINGS
    assert losses(tmp_path / "run") == pytest.approx(golden["losses"], rel=1e-4, abs=1e-6)


def test_fkl_then_rkl_switches_at_the_right_step(tmp_path, models, data):
    result = run_distill(config(data, models, tmp_path / "run", loss="fkl-then-rkl", max_steps=5, switch_at=0.4, rkl_max_tokens=3))
    records = train_records(tmp_path / "run")
    assert [r["stage"] for r in records] == ["fkl", "fkl", "rkl", "rkl", "rkl"]
    assert result.stages == {"fkl": [1, 2], "rkl": [3, 5]}
    # fkl trains on the references (14+ tokens each); rkl on at most 3 sampled tokens per example.
    assert all(r["tokens"] >= 4 * 14 for r in records[:2]) and all(4 <= r["tokens"] <= 4 * 3 for r in records[2:])


def test_resume_after_a_crash_gives_the_same_loss_curve_and_student(tmp_path, models, data):
    from safetensors.torch import load_file

    options = {"loss": "fkl-then-rkl", "max_steps": 10, "checkpoint_every": 5, "keep_checkpoints": 0, "lr": 3e-3}
    whole = run_distill(config(data, models, tmp_path / "whole", **options))
    assert whole.checkpoints == [str(tmp_path / "whole" / "checkpoints" / f"step-0000{n:02d}") for n in (5, 10)]

    # The state after a crash at step 7: checkpoint 5 complete, checkpoint 10 half-written, metrics up to a torn line.
    crashed = tmp_path / "crashed"
    shutil.copytree(tmp_path / "whole", crashed)
    shutil.rmtree(crashed / "final")
    shutil.rmtree(crashed / "checkpoints" / "step-000010")
    (crashed / "checkpoints" / ".step-000010.tmp-dead").mkdir()
    lines = (crashed / "metrics.jsonl").read_text().splitlines()
    (crashed / "metrics.jsonl").write_text("\n".join(lines[:7]) + "\n" + lines[7][:20])

    resumed = run_distill(config(data, models, crashed, resume=True, **options))
    assert resumed.start_step == 5
    first, second = train_records(tmp_path / "whole"), train_records(crashed)
    assert [r["step"] for r in second] == list(range(1, 11))
    for a, b in zip(first, second):
        assert (a["stage"], a["tokens"], a["lr"]) == (b["stage"], b["tokens"], b["lr"]), (a, b)
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5, abs=1e-7) and b["kl"] == pytest.approx(a["kl"], rel=1e-5, abs=1e-7)
    weights_a = load_file(tmp_path / "whole" / "final" / "model.safetensors")
    weights_b = load_file(crashed / "final" / "model.safetensors")
    assert all((weights_a[name] - weights_b[name]).abs().max() < 1e-6 for name in weights_a)


def test_resume_refuses_other_settings_and_names_the_flag(tmp_path, models, data):
    run_distill(config(data, models, tmp_path / "run", max_steps=2, checkpoint_every=1))
    with pytest.raises(ResumeMismatch, match=r"step-000002: was made with --lr 0.001, not 0.002; resume with the same settings"):
        run_distill(config(data, models, tmp_path / "run", max_steps=2, checkpoint_every=1, lr=2e-3, resume=True))
    # Memory and logging knobs may change on resume.
    result = run_distill(config(data, models, tmp_path / "run", max_steps=2, micro_batch_size=1, chunk_size=5, log_every=3, resume=True))
    assert result.start_step == 2 and result.response_tokens == 0


RESUME_WITHOUT_CHECKPOINT = [
    # what the run directory holds, what the error says, reason
    ("nothing", "the run directory does not exist", "a typo in -o"),
    ("empty", "the run directory holds no complete checkpoint", "an empty folder"),
    ("half", "the run directory holds no complete checkpoint", "a crash while writing the first checkpoint"),
    ("finished", "the run directory holds a finished run's final/ but no checkpoint", "a run with --checkpoint-every 0"),
]


@pytest.mark.parametrize(("holds", "found"), [c[:2] for c in RESUME_WITHOUT_CHECKPOINT], ids=[c[2] for c in RESUME_WITHOUT_CHECKPOINT])
def test_resume_without_a_checkpoint_is_refused_and_leaves_the_run_alone_26(tmp_path, models, data, cli, holds, found):
    """#26: `--resume` on a run with no checkpoint started over and replaced final/."""
    run = tmp_path / "run"
    if holds == "finished":
        run_distill(config(data, models, run, max_steps=1))
    elif holds != "nothing":
        run.mkdir()
    if holds == "half":
        (run / "checkpoints" / ".step-000001.tmp-dead").mkdir(parents=True)
    before = sorted((p.relative_to(run), p.stat().st_mtime_ns) for p in run.rglob("*")) if run.exists() else None
    result = cli("distill", data, "--student", models["student"], "--teacher", models["teacher"], "-o", run, "--max-steps", "1",
                 "--template", SHORT.template, "--chat-template", "off", "--resume")
    assert_user_error(
        result, f"{run}: --resume: {found}, so there is nothing to continue; run without --resume to start (add --overwrite to replace what is there)"
    )
    after = sorted((p.relative_to(run), p.stat().st_mtime_ns) for p in run.rglob("*")) if run.exists() else None
    assert after == before, "nothing in the run directory was written or deleted"


WARMUP = [
    # --warmup-steps, steps of the run, warm-up used, reason
    (None, 4, 0, "a 4-step run: no warm-up, so step 1 trains at --lr"),
    (None, 19, 1, "a tenth of 19, rounded down"),
    (None, 80, 8, "a tenth of 80"),
    (None, 100, 10, "a tenth reaches the cap"),
    (None, 5000, 10, "the cap: 10 steps, as before"),
    (0, 100, 0, "given: 0"),
    (25, 100, 25, "given: kept even past the cap"),
    (10, 4, 10, "given: kept even past the run (with a note)"),
]


@pytest.mark.parametrize(("given", "total", "used"), [c[:3] for c in WARMUP], ids=[c[3] for c in WARMUP])
def test_the_default_warmup_scales_with_the_run_26(given, total, used):
    assert DistillConfig(shards="d", student="s", teacher="t", output="o", warmup_steps=given).resolved_warmup_steps(total) == used


def test_a_short_run_reaches_lr_by_default_and_a_warmup_past_the_run_is_noted_26(tmp_path, models, data, cli):
    """#26: the default 10 warm-up steps meant a short `distill` never reached --lr."""
    common = ["distill", data, "--student", models["student"], "--teacher", models["teacher"], "--max-steps", "4", "--batch-size", "4",
              "--lr", "1e-3", "--template", SHORT.template, "--chat-template", "off"]
    default = cli(*common, "-o", tmp_path / "default")
    assert default.exit_code == 0, default.output
    assert [r["lr"] for r in train_records(tmp_path / "default")][0] == pytest.approx(1e-3)
    assert "warm-up 0 steps" in default.stderr and "NOTE: --warmup-steps" not in default.stderr
    assert json.loads((tmp_path / "default" / "run.json").read_text())["warmup_steps"] == 0
    long = cli(*common, "-o", tmp_path / "long", "--warmup-steps", "10")
    assert long.exit_code == 0, long.output
    assert max(r["lr"] for r in train_records(tmp_path / "long")) == pytest.approx(1e-3 * 4 / 11)
    assert (
        "NOTE: --warmup-steps 10 covers the whole run of 4 steps, so the learning rate never reaches --lr (it peaks at 3.64e-04); "
        "lower --warmup-steps, or leave it out for min(10, a tenth of the steps)"
    ) in long.stderr.splitlines()


def test_gradient_accumulation_gives_the_same_losses_as_one_big_batch(tmp_path, models, data):
    run_distill(config(data, models, tmp_path / "one", max_steps=3))
    run_distill(config(data, models, tmp_path / "four", max_steps=3, micro_batch_size=1, chunk_size=3))
    assert losses(tmp_path / "four") == pytest.approx(losses(tmp_path / "one"), rel=1e-5)


def test_gradient_checkpointing_does_not_change_the_losses_and_epochs_set_the_steps(tmp_path, models, data):
    plain = run_distill(config(data, models, tmp_path / "plain", max_steps=None, epochs=1.5))
    assert plain.steps == 3  # 1.5 epochs of 8 examples in batches of 4
    run_distill(config(data, models, tmp_path / "ckpt", max_steps=None, epochs=1.5, gradient_checkpointing=True))
    assert losses(tmp_path / "ckpt") == pytest.approx(losses(tmp_path / "plain"), rel=1e-5)


def test_weights_off_trains_the_unweighted_loss(tmp_path, models, data):
    run_distill(config(data, models, tmp_path / "off", weights="off", max_steps=2))
    run_distill(config(data, models, tmp_path / "on", max_steps=2))
    off, on = train_records(tmp_path / "off"), train_records(tmp_path / "on")
    assert all(r["loss"] == pytest.approx(r["kl"], rel=1e-6) for r in off)
    # Same batch, same student at step 1: the unweighted KL agrees, the weighted loss does not.
    assert on[0]["kl"] == pytest.approx(off[0]["kl"], rel=1e-6) and on[0]["loss"] != pytest.approx(on[0]["kl"], rel=1e-2)


def test_student_equal_to_teacher_has_zero_kl(tmp_path, models, data):
    same = models | {"teacher": models["student"]}
    result = run_distill(config(data, same, tmp_path / "run", max_steps=1))
    assert abs(result.final_loss) < 1e-6 and abs(result.final_kl) < 1e-6


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path, models, data):
    run = tmp_path / "run"
    # An absurd learning rate blows the weights up after step 1, so step 2's loss is NaN.
    expected = r"^step 2: the loss is nan \(not finite\); stopped before updating the student; the last good checkpoint is .*step-000001; try a lower --lr"
    with pytest.raises(PacedError, match=expected):
        run_distill(config(data, models, run, lr=1e30, warmup_steps=0, checkpoint_every=1))
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-000001"]
    assert not (run / "final").exists()
    assert [r["step"] for r in train_records(run)] == [1]


def test_run_directory_in_use_is_refused_unless_resume_or_overwrite(tmp_path, models, data):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    for overwrite in (False, True):  # a folder of files paced did not write is never deleted (#26)
        with pytest.raises(InputError, match=r"run: holds 'notes.txt', which paced did not write; choose another -o"):
            run_distill(config(data, models, run, max_steps=1, overwrite=overwrite))
    (run / "notes.txt").unlink()
    run_distill(config(data, models, run, max_steps=2, checkpoint_every=1, keep_checkpoints=1))
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-000002"]
    (run / "notes.txt").write_text("mine")  # notes beside a run are kept
    with pytest.raises(InputError, match=r"run: exists and is not empty \(it holds '.+'\); pass --resume .* or --overwrite"):
        run_distill(config(data, models, run, max_steps=1))
    run_distill(config(data, models, run, max_steps=1, overwrite=True))
    assert not (run / "checkpoints").exists() and (run / "notes.txt").read_text() == "mine"
    assert len(train_records(run)) == 1


def test_final_student_is_ready_for_paced_rollout(tmp_path, models, data, cli):
    from transformers import AutoModelForCausalLM

    result = run_distill(config(data, models, tmp_path / "run", max_steps=1))
    final = Path(result.final_model)
    assert AutoModelForCausalLM.from_pretrained(final).generation_config.eos_token_id == [0, 3]
    problems = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "question": "1+1", "answer": "2"}])
    rolled = cli("rollout", problems, "--model", final, "--engine", "hf", "-k", "2", "--max-tokens", "4", "-o", tmp_path / "r", "--json")
    assert rolled.exit_code == 0, rolled.output
    assert json.loads(rolled.stdout)["samples"] == 2
    run_file = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run_file["stage"] == "distill" and run_file["result"]["final_model"] == str(final)


def test_eval_hook_logs_the_pass_at_1_that_rollout_and_grade_give(tmp_path, models, cli):
    """A student trained to answer \\boxed{7}: the hook's step-0 pass@1 equals `paced rollout` + `paced grade`."""
    boxed = boxed_seven_model(tmp_path / "boxed", models["student"])
    held_out = write_jsonl(tmp_path / "held_out.jsonl", [{"id": f"h{i}", "question": f"{i} + {7 - i}", "answer": "7"} for i in range(4)])
    data = make_export(tmp_path, n=4)
    result = run_distill(DistillConfig(
        shards=str(data), student=str(boxed), teacher=str(models["teacher"]), output=str(tmp_path / "run"), max_steps=1,
        batch_size=4, template=SHORT.template, chat_template="off", eval_problems=str(held_out), eval_samples=3, eval_max_tokens=12,
        eval_workers=1, eval_every=1,
    ))
    assert [e["step"] for e in result.evaluations] == [0, 1]
    evals = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if '"eval"' in line]
    assert evals == result.evaluations

    flags = ["--template", SHORT.template, "--chat-template", "off"]
    rolled = cli("rollout", held_out, "--model", boxed, "--engine", "hf", "-k", "3", "--max-tokens", "12", "-o", tmp_path / "r", *flags)
    assert rolled.exit_code == 0, rolled.output
    graded = cli("grade", tmp_path / "r", "-o", tmp_path / "g", "--workers", "1")
    assert graded.exit_code == 0, graded.output
    report = json.loads(cli("inspect", tmp_path / "g", "--json").stdout)
    expected = report["evaluation"]["overall"]["avg_at_k"]
    assert 0 < expected and result.evaluations[0]["pass_at_1"] == pytest.approx(expected)
    assert result.evaluations[0]["problems"] == 4 and result.evaluations[0]["samples"] == 12


def boxed_seven_model(path: Path, student: Path) -> Path:
    """Fine-tune the tiny student for a few steps to answer '\\boxed{7}' to any prompt (cross-entropy)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from paced_curate.toy.models import save_model

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(student)
    model = AutoModelForCausalLM.from_pretrained(student)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    target = tokenizer("\\boxed{7}", add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    for step in range(60):
        prompt = tokenizer(SHORT.plain(f"{step % 8} + {7 - step % 8}")).input_ids
        ids = torch.tensor([prompt + target])
        labels = torch.tensor([[-100] * len(prompt) + target])
        model(input_ids=ids, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    save_model(model, tokenizer, path)
    return path


def test_cli_trains_and_prints_the_result_as_json(tmp_path, models, data, cli):
    result = cli(
        "distill", data, "--student", models["student"], "--teacher", models["teacher"], "-o", tmp_path / "run",
        "--max-steps", "2", "--batch-size", "4", "--micro-batch-size", "2", "--template", "{prompt}=", "--chat-template", "off", "--json",
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["steps"] == 2 and printed["stages"] == {"fkl": [1, 2]} and printed["response_tokens"] > 0
    assert "step 00002 | loss " in result.stderr and "| tok/s " in result.stderr


@pytest.mark.parametrize(
    "case,expected",
    [
        ("missing", "nowhere: no such folder; pass the output of 'paced export --format native'"),
        ("no_reference", "has no 'reference' column, which --loss fkl needs"),
        ("vocab", "its tokenizer differs from the student's (the teacher has token '<|think|>' (id 260) that the student lacks)"),
        ("student", "no_model: no such folder (models load from local folders; nothing is downloaded)"),
        ("eval", "nowhere.jsonl"),
        ("flags", "--switch-at must be in (0, 1), not 1.5; give --max-steps or --epochs, not both; --template must contain {prompt}"),
    ],
)
def test_cli_bad_inputs_fail_with_one_line(tmp_path, models, cli, case, expected):
    data = make_export(tmp_path, n=3, references=case != "no_reference")
    shards = tmp_path / "nowhere" if case == "missing" else data
    teacher = models["other_vocab"] if case == "vocab" else models["teacher"]
    student = tmp_path / "no_model" if case == "student" else models["student"]
    extra = {"flags": ["--loss", "fkl-then-rkl", "--switch-at", "1.5", "--epochs", "1", "--template", "no slot"], "eval": ["--eval", tmp_path / "nowhere.jsonl"]}.get(case, [])
    result = cli("distill", shards, "--student", student, "--teacher", teacher, "-o", tmp_path / "run", "--max-steps", "1", *extra)
    assert_user_error(result, expected)
    assert not (tmp_path / "run").exists()


def test_cli_resume_with_other_settings_is_refused_in_one_line(tmp_path, models, data, cli):
    common = ["distill", data, "--student", models["student"], "--teacher", models["teacher"], "-o", tmp_path / "run",
              "--max-steps", "1", "--batch-size", "4", "--checkpoint-every", "1"]
    assert cli(*common).exit_code == 0
    assert_user_error(cli(*common, "--resume", "--loss", "rkl"), "was made with --loss 'fkl', not 'rkl'")
    assert_user_error(cli(*common), "run: exists and is not empty (it holds 'checkpoints')")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_device_cuda_without_a_gpu_is_refused(tmp_path, models, data, cli):
    result = cli("distill", data, "--student", models["student"], "--teacher", models["teacher"], "-o", tmp_path / "run", "--device", "cuda")
    assert_user_error(result, "--device cuda: no CUDA device is available (use --device cpu or auto)")
    assert not (tmp_path / "run").exists()


def update_golden() -> None:
    """Rewrite tests/assets/distill_fkl_losses.json from a fresh run (same builders as the tests)."""
    import tempfile

    import transformers

    from paced_curate.toy.models import TinyModelSpec, build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        built = {
            "student": build_tiny_model(root / "student", TinyModelSpec(init_seed=0)),
            "teacher": build_tiny_model(root / "teacher", TinyModelSpec(init_seed=1, hidden_size=192, intermediate_size=384)),
        }
        run_distill(config(make_export(root, n=8), built, root / "run", **GOLDEN_SETTINGS))
        curve = losses(root / "run")
    GOLDEN.parent.mkdir(exist_ok=True)
    record = {"settings": GOLDEN_SETTINGS, "losses": curve, "torch": torch.__version__, "transformers": transformers.__version__}
    GOLDEN.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {GOLDEN}: {curve}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--update-golden"]:
        update_golden()
    else:
        sys.exit("usage: python -m tests.test_distill_train --update-golden")
