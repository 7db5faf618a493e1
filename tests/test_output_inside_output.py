"""No command writes its output inside another stage output's folder.

`paced weight graded/ -o rollouts/part-00001.parquet` used to write a weights file into the
rollouts folder: paced's own reader skipped it (the manifest lists the parts), but polars,
pandas and `datasets` open that folder as one table, and the next `--overwrite` of the rollouts
took the file for a foreign one. Every command now refuses an `-o` that lies anywhere inside
a rollouts, grades, weights, problems or export folder, in one line naming that output; run
folders (estimate, distill), which hold stage outputs of their own, and a shard of the same
output are not affected.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from paced_curate.export import ExportConfig, run_export
from paced_curate.grade import GradeConfig, run_grade
from paced_curate.partdir import claim_output
from paced_curate.rollout import RolloutConfig, run_rollout
from paced_curate.weight import WeightConfig, run_weight
from tests.conftest import assert_user_error, write_jsonl


def snapshot(path: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def made(tmp_path_factory, tiny_model) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("made")
    rows = [{"id": f"q{i}", "question": f"{i} + {i} =", "answer": str(2 * i)} for i in range(3)]
    problems = write_jsonl(root / "problems.jsonl", rows)
    run_rollout(RolloutConfig(problems=str(problems), model=str(tiny_model), output=str(root / "rollouts"), engine="hf", samples=2, max_tokens=4))
    run_grade(GradeConfig(rollouts=str(root / "rollouts"), output=str(root / "graded"), workers=1))
    run_weight(WeightConfig(graded=str(root / "graded"), output=str(root / "weights"), estimator="bayes"))
    run_export(ExportConfig(problems=str(problems), weights=str(root / "weights"), output=str(root / "shards")))
    # Copies that are no command's input, so only the new rule can refuse an -o inside them.
    for name in ("rollouts", "graded", "weights", "shards"):
        for suffix in ("", ".paced"):
            source, copy = root / (name + suffix), root / ("other-" + name + suffix)
            copy.mkdir()
            for file in source.rglob("*"):
                target = copy / file.relative_to(source)
                if file.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                else:
                    target.write_bytes(file.read_bytes())
    return {"root": root, "problems": problems, "model": Path(tiny_model)}


def argv(command: str, made, out: Path) -> list:
    root, model = made["root"], made["model"]
    return {
        "rollout": ["rollout", made["problems"], "--model", model, "--engine", "hf", "-k", "1", "--max-tokens", "2", "-o", out],
        "grade": ["grade", root / "rollouts", "-o", out, "--workers", "1"],
        "weight": ["weight", root / "graded", "-o", out, "--estimator", "bayes"],
        "export": ["export", made["problems"], root / "weights", "-o", out],
        "estimate": ["estimate", made["problems"], "--model", model, "--engine", "hf", "-k", "1", "--max-tokens", "2", "-o", out],
        "distill": ["distill", root / "shards", "--student", model, "--teacher", model, "-o", out, "--loss", "rkl", "--max-steps", "1"],
    }[command]


# (the output it would land in, its stage, where inside it)
PLACES = [
    ("other-rollouts", "rollouts", "part-00001.parquet"),
    ("other-rollouts", "rollouts", "sub"),
    ("other-graded", "grades", "mine.parquet"),
    ("other-graded", "grades", "a/b/c"),
    ("other-weights", "weights", "part-00001.parquet"),
    ("other-shards", "export", "train/more"),
    ("other-shards", "export", "val.parquet"),
]
COMMANDS = ["rollout", "grade", "weight", "export", "estimate", "distill"]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("output", "stage", "inside"), PLACES, ids=[f"{o}/{i}" for o, _, i in PLACES])
@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
def test_an_output_inside_another_stage_output_is_refused(cli, made, command, output, stage, inside, overwrite):
    folder = made["root"] / output
    out = folder / inside
    if command in ("estimate", "distill") and out.suffix == ".parquet":
        out = out.with_suffix("")  # a run folder
    before = snapshot(folder)
    result = cli(*argv(command, made, out), *(["--overwrite"] if overwrite else []))
    assert_user_error(result, f"{out}: lies inside the paced '{stage}' output {folder}/; choose another -o")
    assert snapshot(folder) == before
    assert not out.exists()


@pytest.mark.parametrize(
    ("layout", "kind"),
    [
        ("run/rounds/round-00000/rollouts", "rollouts"),  # an estimate run's own stage outputs
        ("run/graded", "grades"),
        ("run/weights.parquet", "weights"),
        ("plain/folder/graded", "grades"),  # under folders that are no output
    ],
)
def test_run_folders_and_plain_folders_may_hold_outputs(tmp_path, layout, kind):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "estimate.json").write_text('{"stage": "estimate"}')
    assert claim_output(tmp_path / layout, kind=kind, inputs={}, overwrite=False) is None


def test_a_shard_of_an_output_is_not_inside_another_output(made, tmp_path):
    out = tmp_path / "sharded"
    run_rollout(RolloutConfig(
        problems=str(made["problems"]), model=str(made["model"]), output=str(out), engine="hf", samples=1, max_tokens=2, shard="0/2",
    ))
    # The second shard is written beside the first, inside the same output folder.
    assert claim_output(out / "shard-00001-of-00002", kind="rollouts", inputs={}, overwrite=False) is None
