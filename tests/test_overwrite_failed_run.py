"""A run that fails on its input keeps the output it was asked to replace (`--overwrite`).

`--overwrite` means "replace the old output with the new one", not "delete the old output, then
see whether the input is any good": grade, weight, estimate and distill used to delete the old
output (graded parts, weights, an estimate run, a trained student) before reading their input,
so a typo in a path or one malformed line cost the earlier result. Each command here gets a
finished output of its own, then reruns with --overwrite on each kind of bad input (a missing
file, malformed JSON lines, an empty file, and a fault found only after reading), and must stop
with the one-line error and leave every file of the old output as it was.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from paced_curate.export import ExportConfig, run_export
from paced_curate.grade import GradeConfig, run_grade
from paced_curate.rollout import RolloutConfig, run_rollout
from paced_curate.weight import WeightConfig, run_weight
from tests.conftest import Cli, assert_user_error, write_jsonl


def snapshot(*paths: Path) -> dict[str, str]:
    """Every file under the paths with its sha256."""
    files = {}
    for path in paths:
        found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        files |= {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in found}
    return files


@pytest.fixture(scope="module")
def made(tmp_path_factory, tiny_model) -> dict[str, Path]:
    """Finished outputs of every command, and the bad inputs to rerun them on."""
    root = tmp_path_factory.mktemp("made")
    rows = [{"id": f"q{i}", "question": f"{i} + {i} =", "answer": str(2 * i)} for i in range(3)]
    problems = write_jsonl(root / "problems.jsonl", rows)
    run_rollout(RolloutConfig(problems=str(problems), model=str(tiny_model), output=str(root / "rollouts"), engine="hf", samples=2, max_tokens=4))
    run_grade(GradeConfig(rollouts=str(root / "rollouts"), output=str(root / "graded"), workers=1))
    # bayes: a random model fails every problem, and the plug-in weight of p = 0 is 0.
    run_weight(WeightConfig(graded=str(root / "graded"), output=str(root / "weights.parquet"), estimator="bayes"))
    run_export(ExportConfig(problems=str(problems), weights=str(root / "weights.parquet"), output=str(root / "shards")))
    cli = Cli()
    for args in (
        ["estimate", problems, "--model", tiny_model, "--engine", "hf", "-k", "2", "--max-tokens", "4", "--estimator", "bayes",
         "-o", root / "estimate"],
        ["distill", root / "shards", "--student", tiny_model, "--teacher", tiny_model, "-o", root / "run", "--loss", "rkl",
         "--max-steps", "1", "--batch-size", "2", "--rkl-max-tokens", "4"],
    ):
        result = cli(*args)
        assert result.exit_code == 0, result.output
    bad = root / "bad"
    bad.mkdir()
    (bad / "malformed.jsonl").write_text('{"id": "a", "question": "1 + 1 =", "answer": "2"}\n{"id": "b" "answer": "3"}\n')
    (bad / "empty.jsonl").write_text("")
    write_jsonl(bad / "unreadable_gold.jsonl", [
        {"id": "a", "completion": "\\boxed{2}", "answer": "2"}, {"id": "b", "completion": "\\boxed{2}", "answer": "$$"},
    ])
    write_jsonl(bad / "bad_verdict.jsonl", [{"id": "a", "verdict": "correct"}, {"id": "b", "verdict": "wrong"}])
    write_jsonl(bad / "no_prompt.jsonl", [{"id": "a", "answer": "2"}])
    return {"root": root, "model": Path(tiny_model), "bad": bad, "shards": root / "shards"}


def bad_input(made, name: str) -> str:
    return str(made["bad"] / name)


# (command, bad input, the error it stops with); the output is that command's own, finished.
CASES = [
    ("grade", "missing.jsonl", "missing.jsonl"),
    ("grade", "malformed.jsonl", "malformed.jsonl line 2, column 12: malformed JSON"),
    ("grade", "empty.jsonl", "empty.jsonl: is empty"),
    ("grade", "unreadable_gold.jsonl", "gold answer '$$' cannot be read by the math grader"),
    ("weight", "missing.jsonl", "missing.jsonl"),
    ("weight", "malformed.jsonl", "malformed.jsonl line 2, column 12: malformed JSON"),
    ("weight", "empty.jsonl", "empty.jsonl: is empty"),
    ("weight", "bad_verdict.jsonl", "column 'verdict' is 'wrong'"),
    ("weight", "min-weight", "every problem gets weight 0"),
    ("estimate", "missing.jsonl", "missing.jsonl"),
    ("estimate", "malformed.jsonl", "malformed.jsonl line 2, column 12: malformed JSON"),
    ("estimate", "empty.jsonl", "empty.jsonl: is empty"),
    ("estimate", "no_prompt.jsonl", "found none of prompt, problem, question"),
    ("distill", "missing.jsonl", "missing.jsonl"),
    ("distill", "malformed.jsonl", "malformed.jsonl line 2, column 12: malformed JSON"),
    ("distill", "empty.jsonl", "empty.jsonl: is empty"),
    ("distill", "fkl without references", "has no 'reference' column, which --loss fkl needs"),
]


def argv(command: str, case: str, made) -> tuple[list, list[Path]]:
    """The command line, and the old output's paths (folder and extras)."""
    root, model = made["root"], made["model"]
    if command == "grade":
        return ["grade", bad_input(made, case), "-o", root / "graded", "--workers", "1"], [root / "graded", root / "graded.paced"]
    if command == "weight":
        graded, extra = (root / "graded", ["--min-weight", "0.9"]) if case == "min-weight" else (bad_input(made, case), [])
        return ["weight", graded, "-o", root / "weights.parquet", "--estimator", "bayes", *extra], [root / "weights.parquet"]
    if command == "estimate":
        out = root / "estimate"
        return ["estimate", bad_input(made, case), "--model", model, "--engine", "hf", "-k", "2", "--max-tokens", "4", "-o", out], [out]
    shards, loss = (made["shards"], "fkl") if case.startswith("fkl") else (bad_input(made, case), "rkl")
    return ["distill", shards, "--student", model, "--teacher", model, "-o", root / "run", "--loss", loss, "--max-steps", "1"], [root / "run"]


@pytest.mark.parametrize(("command", "case", "error"), CASES, ids=[f"{c}-{k}" for c, k, _ in CASES])
def test_a_failed_overwrite_keeps_the_old_output(cli, made, command, case, error):
    args, kept = argv(command, case, made)
    before = snapshot(*kept)
    assert before, "the old output is there to keep"
    assert_user_error(cli(*args, "--overwrite"), error)
    assert snapshot(*kept) == before


def test_a_good_overwrite_still_replaces_the_old_output(cli, made, tmp_path):
    """The other half of the rule: with good inputs, --overwrite replaces (here: other weights)."""
    root = made["root"]
    out = tmp_path / "weights.parquet"
    assert cli("weight", root / "graded", "-o", out, "--estimator", "bayes").exit_code == 0
    before = snapshot(out)
    result = cli("weight", root / "graded", "-o", out, "--estimator", "bayes", "--prior-a", "2", "--overwrite")
    assert result.exit_code == 0, result.output
    assert snapshot(out) != before
