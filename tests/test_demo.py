"""`paced demo --fast` end to end, with real vLLM, math-verify, Parquet and training; each stage's output checked."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from paced_curate.export import read_export
from paced_curate.io import read_table
from paced_curate.schema import GRADES, ROLLOUTS, WEIGHTS


@pytest.fixture(scope="module")
def demo(tmp_path_factory, toy_cache):
    """One fast demo run shared by the checks below (models trained into the session's fresh toy cache)."""
    import os

    from typer.testing import CliRunner

    from paced_curate.cli import app

    work = tmp_path_factory.mktemp("demo")
    cache = toy_cache
    old = os.environ.get("PACED_CACHE")
    os.environ["PACED_CACHE"] = str(cache)
    try:
        result = CliRunner().invoke(app, ["demo", "--fast", "--workdir", str(work / "run"), "--json"])
    finally:
        os.environ.pop("PACED_CACHE") if old is None else os.environ.__setitem__("PACED_CACHE", old)
    assert result.exit_code == 0, result.output[-3000:]
    return work / "run", json.loads(result.stdout), cache, result.stderr


def test_demo_writes_problem_sets_with_a_difficulty_ladder(demo):
    run, _, _, _ = demo
    pool = [json.loads(line) for line in (run / "problems_pool.jsonl").read_text().splitlines()]
    assert len(pool) == 48 and {p["num_terms"] for p in pool} == {2, 3, 4}
    assert all(int(p["answer"]) == eval(p["prompt"].removeprefix("Calculate ").rstrip(".")) for p in pool)
    assert (run / "problems_hard.jsonl").exists() and (run / "problems_easy.jsonl").exists()


def test_demo_trains_and_caches_both_models_and_they_load_in_vllm_and_transformers(demo):
    run, _, cache, stderr = demo
    models = sorted(p.name.rsplit("-", 1)[0] for p in (cache / "models").iterdir())
    assert models == ["student-fast", "teacher-fast"]
    rollouts = json.loads((run / "rollouts.paced" / "manifest.json").read_text())
    assert rollouts["settings"]["engine"] == "vllm" and rollouts["complete"]
    assert "training the teacher-fast model from scratch" in stderr
    from transformers import AutoModelForCausalLM

    for folder in (cache / "models").iterdir():
        model = AutoModelForCausalLM.from_pretrained(folder)
        assert model.config.hidden_size // model.config.num_attention_heads >= 32


def test_demo_rollouts_grades_and_weights(demo):
    run, _, _, stderr = demo
    rollouts = read_table(str(run / "rollouts"), ROLLOUTS)
    assert rollouts.num_rows == 48 * 4
    graded = read_table(str(run / "graded"), GRADES)
    assert set(graded.column("verdict").to_pylist()) <= {"correct", "incorrect", "no_answer", "truncated"}
    assert "audit_verdict" in graded.column_names
    weights = read_table(str(run / "weights.parquet"), WEIGHTS)
    assert weights.num_rows == 48
    assert abs(sum(weights.column("weight").to_pylist()) / 48 - 1) < 1e-9
    assert "pass rate" in stderr and "0/4" in stderr  # the histogram was printed
    band = read_table(str(run / "weights_band.parquet"), WEIGHTS).column("weight_raw").to_pylist()
    assert set(band) <= {0.0, 1.0}


def test_demo_exports_and_distills_three_students(demo):
    run, _, _, _ = demo
    for name in ("paced", "unweighted", "hard_filter"):
        data = read_export(run / f"data_{name}")
        assert data.num_rows > 0 and "reference" in data.column_names
        final = run / "runs" / name / "final"
        assert (final / "config.json").exists() and (final / "model.safetensors").exists()
        stages = [json.loads(line)["stage"] for line in (run / "runs" / name / "metrics.jsonl").read_text().splitlines() if '"train"' in line]
        assert stages == ["fkl"] * 3 + ["rkl"] * 3
    uniform = read_export(run / "data_unweighted")
    assert set(uniform.column("weight").to_pylist()) == {1.0}


def test_demo_prints_the_comparison_table(demo):
    run, result, _, stderr = demo
    table = {row["student"]: row for row in result["table"]}
    assert list(table) == ["teacher", "base", "paced", "unweighted", "hard filter"]
    for row in table.values():
        assert 0 <= row["hard"] <= 1 and 0 <= row["easy"] <= 1
        assert row["hard_gain"] == pytest.approx(row["hard"] - table["base"]["hard"])
    assert json.loads((run / "results.json").read_text())["table"] == result["table"]
    assert "held-out accuracy" in stderr
