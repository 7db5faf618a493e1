"""Online PACED on the built-in models (#25): the weights follow a student that really learns.

The built-in fast student (about 0.1 on 2-3 term additions) is distilled from the fast teacher
with forward KL on 16 such problems, whose weights come from the real pipeline (8 student
samples each through `paced rollout` and `paced grade`, `paced weight`, teacher references,
`paced export --keep-zero`). With `--reweight online --reweight-every 5` the trainer samples and
grades the student on every problem every 5 steps. The student learns: a problem it now solves
most of the time loses weight, and problems it never solved before training (0 of 8, weight 0,
not trained on) come into reach through what it learns on the others and gain weight.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.test_distill_data import one_torch_thread  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def pair(toy_cache) -> tuple[Path, Path]:
    """The built-in fast student and teacher (trained once into the session's toy cache, shared with the demo tests)."""
    from paced_curate.toy.pretrain import trained_model
    from paced_curate.toy.zoo import student_spec, teacher_spec

    old = os.environ.get("PACED_CACHE")
    os.environ["PACED_CACHE"] = str(toy_cache)
    try:
        return trained_model(student_spec(fast=True)), trained_model(teacher_spec(fast=True))
    finally:
        os.environ.pop("PACED_CACHE") if old is None else os.environ.__setitem__("PACED_CACHE", old)


@pytest.fixture(scope="module")
def export(pair, tmp_path_factory) -> Path:
    """16 additions of 2-3 terms, weighted from 8 real samples of the student each; weight-0 problems kept."""
    from paced_curate import demo
    from paced_curate.export import ExportConfig, run_export
    from paced_curate.weight import WeightConfig, run_weight

    student, teacher = pair
    work = tmp_path_factory.mktemp("online_world")
    settings = dataclasses.replace(demo.DemoConfig.small(str(work)), engine="hf")
    problems = work / "problems.jsonl"
    problems.write_text("".join(json.dumps(p.row()) + "\n" for p in demo_problems()))
    demo.rollout(settings, problems, student, work / "rollouts", 8)
    demo.grade(work / "rollouts", work / "graded", audit=False)
    run_weight(WeightConfig(graded=str(work / "graded"), output=str(work / "weights.parquet")))
    demo.rollout(settings, problems, teacher, work / "teacher_rollouts", 2)
    demo.grade(work / "teacher_rollouts", work / "teacher_graded", audit=False)
    run_export(ExportConfig(problems=str(problems), weights=str(work / "weights.parquet"), output=str(work / "data"),
                            references=str(work / "teacher_graded"), drop_zero=False))
    return work / "data"


def demo_problems():
    from paced_curate.toy.world import make_problems

    return make_problems(11, 16, (2, 3), prefix="e2e")


def test_weights_follow_a_student_that_learns(pair, export, tmp_path):
    from paced_curate.demo import DEMO_TEMPLATE, MAX_TOKENS
    from paced_curate.distill import DistillConfig, run_distill

    student, teacher = pair
    run = tmp_path / "run"
    run_distill(DistillConfig(
        shards=str(export), student=str(student), teacher=str(teacher), output=str(run), loss="fkl", max_steps=40, batch_size=4, lr=3e-3,
        template=DEMO_TEMPLATE, chat_template="off", checkpoint_every=0, log_every=20, rkl_max_tokens=MAX_TOKENS, reweight="online",
        reweight_every=5, reweight_samples=8, reweight_halflife=5, eval_every=5,
    ))
    start = pq.read_table(run / "weights_start.parquet").to_pylist()
    final = {row["problem_id"]: row for row in pq.read_table(run / "weights_final.parquet").to_pylist()}
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    refreshes = [r for r in records if r["kind"] == "reweight" and r["refresh_samples"]]
    # The student learns: the share of correct refresh samples grows from the first refresh to the last ones.
    assert refreshes[-1]["correct"] + refreshes[-2]["correct"] > 1.5 * (refreshes[0]["correct"] + refreshes[1]["correct"]), refreshes
    learned = [row["problem_id"] for row in start if row["weight"] > 0 and final[row["problem_id"]]["pass_rate"] >= 0.75
               and final[row["problem_id"]]["weight_raw"] < row["weight_raw"]]
    entered = [row["problem_id"] for row in start if row["n_correct"] == 0 and final[row["problem_id"]]["weight"] > 0]
    assert learned, "no frontier problem became solved and lost weight"
    assert entered, "no problem unsolved before training came into reach and gained weight"
    assert sum(r["entered"] for r in records if r["kind"] == "reweight") >= len(entered)
