"""`paced demo --fast` end to end, with real vLLM, math-verify, Parquet and training; each stage's output checked."""

from __future__ import annotations

import json

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


def test_demo_writes_the_worlds_problem_sets(demo):
    run, _, _, _ = demo
    sets = {name: [json.loads(line) for line in (run / f"problems_{name}.jsonl").read_text().splitlines()] for name in ("pool", "heldout", "hard", "probe")}
    pool = sets["pool"]
    assert len(pool) == 48 and {p["skill"] for p in pool} == {"add", "mul"}
    assert {p["num_terms"] for p in pool if p["skill"] == "add"} == {2, 3, 4}
    for problems in sets.values():
        assert all(int(p["answer"]) == eval(p["prompt"].removeprefix("Calculate ").rstrip(".")) for p in problems)
    assert {p["skill"] for p in sets["heldout"]} == {"add", "mul"} and {p["skill"] for p in sets["hard"]} == {"add"}
    assert {p["skill"] for p in sets["probe"]} == {"sub"}
    # #21: no evaluation problem is a pool problem, and the demo says so
    from paced_curate.contamination import normalise_prompt

    training = {normalise_prompt(p["prompt"]) for p in pool}
    assert not [p["prompt"] for name in ("heldout", "hard", "probe") for p in sets[name] if normalise_prompt(p["prompt"]) in training]
    _, _, _, stderr = demo
    assert "held-out problems that are also pool problems (normalised prompt; gold answer + prompt): 0" in stderr
    assert f"eval overlap: none of the 16 problems in {run / 'problems_heldout.jsonl'} is among the" in stderr


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
    weights = read_table(str(run / "weights_paced.parquet"), WEIGHTS)
    assert weights.num_rows == 48
    assert abs(sum(weights.column("weight").to_pylist()) / 48 - 1) < 1e-9
    assert "pass rate" in stderr and "0/4" in stderr  # the histogram was printed
    uniform = read_table(str(run / "weights_unweighted.parquet"), WEIGHTS).column("weight").to_pylist()
    assert set(uniform) == {1.0}


def test_demo_generates_teacher_references_first_only_for_weight_above_zero(demo):
    run, _, _, stderr = demo
    weights = read_table(str(run / "weights_paced.parquet"), WEIGHTS)
    positive = {p for p, w in zip(weights.column("problem_id").to_pylist(), weights.column("weight").to_pylist()) if w > 0}
    active = read_table(str(run / "teacher_graded_active"), GRADES)
    assert set(active.column("problem_id").to_pylist()) == positive
    everything = read_table(str(run / "teacher_graded_all.parquet"), GRADES)
    assert set(everything.column("problem_id").to_pylist()) == set(weights.column("problem_id").to_pylist())
    assert f"PACED needs teacher references for {len(positive)} of 48 pool problems" in stderr


def test_the_probe_skill_is_absent_from_every_export(demo):
    run, _, _, _ = demo
    probe = [json.loads(line) for line in (run / "problems_probe.jsonl").read_text().splitlines()]
    probe_prompts = {p["prompt"] for p in probe}
    exports = sorted(e for e in run.glob("data_*") if not e.name.endswith(".paced"))  # data.paced/: manifest and card
    assert [e.name for e in exports if e.is_dir()] == ["data_paced", "data_unweighted"]
    for folder in (e for e in exports if e.is_dir()):
        data = read_export(folder)
        assert data.num_rows > 0
        assert not probe_prompts & set(data.column("prompt").to_pylist()), folder
        assert all(" - " not in prompt and "-" not in (reference or "") for prompt, reference in
                   zip(data.column("prompt").to_pylist(), data.column("reference").to_pylist())), folder
        if "skill" in data.column_names:
            assert set(data.column("skill").to_pylist()) <= {"add", "mul"}, folder


def test_demo_exports_and_distills_each_method(demo):
    run, _, _, _ = demo
    for name in ("paced", "unweighted"):
        data = read_export(run / f"data_{name}")
        assert data.num_rows > 0 and "reference" in data.column_names
    for method in ("unweighted", "PACED_fkl-then-rkl"):
        final = run / "runs" / f"{method}-seed0" / "final"
        assert (final / "config.json").exists() and (final / "model.safetensors").exists()
        records = [json.loads(line) for line in (run / "runs" / f"{method}-seed0" / "metrics.jsonl").read_text().splitlines()]
        assert [r["stage"] for r in records if r["kind"] == "train"] == ["fkl"] * 3 + ["rkl"] * 3
        assert [r["step"] for r in records if r["kind"] == "eval"] == [0, 3, 6]  # the learning curve
    uniform = read_export(run / "data_unweighted")
    assert set(uniform.column("weight").to_pylist()) == {1.0}


def test_demo_prints_the_comparison_table_and_writes_the_curves(demo):
    run, result, _, stderr = demo
    rows = {row["method"]: row for row in result["rows"]}
    assert list(rows) == ["base", "unweighted", "PACED fkl-then-rkl"]
    for row in rows.values():
        assert all(0 <= row[name] <= 1 for name in ("heldout", "hard", "probe"))
    assert [step for step, _ in rows["unweighted"]["curve"]] == [0, 3, 6]
    assert rows["PACED fkl-then-rkl"]["teacher_tokens"] <= rows["unweighted"]["teacher_tokens"]
    paired = result["summary"]["paired"]["PACED fkl-then-rkl"]["heldout"]
    assert paired["mean"] == pytest.approx(rows["PACED fkl-then-rkl"]["heldout"] - rows["unweighted"]["heldout"])
    assert json.loads((run / "results.json").read_text())["rows"] == result["rows"]
    assert (run / "learning_curves.png").read_bytes()[:4] == b"\x89PNG" and result["plot"].endswith("learning_curves.png")
    assert "paired difference vs unweighted" in stderr and "learning curves:" in stderr
    # one training seed: nothing is tested, and the demo says where the comparison is (#21)
    assert "1 training seed on one world: nothing is tested" in stderr and "docs/example.md" in stderr
    assert "better" not in stderr.split("paired difference vs unweighted")[1], "no verdict without a test"


# (seeds, Holm family size, what the note must say, why)
SCOPES = [
    (3, 3, "the verdicts above cover 3 training seeds on world 0 only", "tested: the verdicts are about one world's training noise"),
    (1, 0, "1 training seed on one world: nothing is tested", "one seed: no test, no verdict"),
    (2, 0, "2 training seeds on one world: nothing is tested", "no family (a method missing)"),
]


@pytest.mark.parametrize("seeds, m, expected, why", SCOPES, ids=[case[-1] for case in SCOPES])
def test_the_demo_says_what_its_verdicts_cover(seeds, m, expected, why):
    from paced_curate.demo import DemoConfig, scope_note

    summary = {"holm": {"m": m, "comparisons": []}} if m else {}
    note = scope_note(DemoConfig(seeds=seeds), summary)
    assert note.startswith(expected), (why, note)
    assert "pre-registered comparison over 12 worlds: docs/example.md" in note
