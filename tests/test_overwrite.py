"""No command overwrites what it did not write (#26): one rule and one message for every `-o`.

`partdir.claim_output` is the rule; rollout, grade, weight, estimate, export and distill call it
before any work. A table of output cases runs against every command, through the CLI:

- a fresh folder, a fresh `.parquet` file, an empty folder, a missing parent: written;
- an input itself, a path inside an input folder, a folder that contains an input: refused,
  even with --overwrite;
- another stage's output, a file paced did not write: refused, replaced with --overwrite;
- a folder holding files paced did not write: refused, even with --overwrite (kept untouched);
- a file where a folder is written: refused.

The inputs are real stage outputs made once (tiny model, hf engine). estimate and distill get
inputs that fail right after the check (a missing model folder, an export without teacher
references), so "written" means "got past the check" for them: their error is the later one.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from paced_curate.export import ExportConfig, run_export
from paced_curate.grade import GradeConfig, run_grade
from paced_curate.io import read_manifest, read_table
from paced_curate.partdir import RUN_FOLDERS
from paced_curate.rollout import RolloutConfig, run_rollout
from paced_curate.schema import GRADES, ROLLOUTS, WEIGHTS
from paced_curate.weight import WeightConfig, run_weight
from tests.conftest import assert_user_error, write_jsonl

NEVER = "choose another -o (an output never replaces its inputs)"
FOREIGN = "which paced did not write; choose another -o (--overwrite deletes only what paced wrote)"


@dataclass(frozen=True)
class Made:
    """Real inputs for every command, made once."""

    root: Path
    problems: Path
    model: Path
    rollouts: Path
    graded: Path
    graded_file: Path
    weights: Path
    shards: Path
    no_model: Path


@pytest.fixture(scope="module")
def made(tmp_path_factory, tiny_model) -> Made:
    root = tmp_path_factory.mktemp("made")
    rows = [{"id": f"q{i}", "question": f"{i} + {i} =", "answer": str(2 * i)} for i in range(3)]
    problems = write_jsonl(root / "problems.jsonl", rows)
    rollout = RolloutConfig(problems=str(problems), model=str(tiny_model), output=str(root / "rollouts"), engine="hf", samples=2, max_tokens=4)
    run_rollout(rollout)
    run_grade(GradeConfig(rollouts=str(root / "rollouts"), output=str(root / "graded"), workers=1))
    run_grade(GradeConfig(rollouts=str(root / "rollouts"), output=str(root / "graded.parquet"), workers=1))
    # bayes: a random model fails every problem, and the plug-in weight of p = 0 is 0.
    run_weight(WeightConfig(graded=str(root / "graded"), output=str(root / "weights"), estimator="bayes"))
    run_export(ExportConfig(problems=str(problems), weights=str(root / "weights"), output=str(root / "shards")))
    return Made(
        root=root, problems=problems, model=Path(tiny_model), rollouts=root / "rollouts", graded=root / "graded",
        graded_file=root / "graded.parquet", weights=root / "weights", shards=root / "shards", no_model=root / "no-model",
    )


@dataclass(frozen=True)
class Command:
    """One command's row of the table."""

    name: str
    kind: str
    """The kind of output it writes, as messages name it."""
    own_input: str
    """The input an `-o` equal to an input is set to."""
    first_input: str
    """The first input the command checks (named when -o contains all of them)."""
    inside: str
    """An input folder to put an `-o` inside."""
    run_folder: bool
    """estimate, distill: -o is a run folder, and a successful check is followed by a planned failure."""

    def argv(self, made: Made, out: Path) -> list:
        if self.name == "rollout":
            return ["rollout", made.problems, "--model", made.model, "--engine", "hf", "-k", "2", "--max-tokens", "4", "-o", out]
        if self.name == "grade":
            return ["grade", made.rollouts, "-o", out, "--workers", "1"]
        if self.name == "weight":
            return ["weight", made.graded, "-o", out, "--estimator", "bayes"]
        if self.name == "export":
            return ["export", made.problems, made.weights, "-o", out]
        if self.name == "estimate":
            # The missing model fails the first round, after the check.
            model = made.model if out.is_relative_to(made.model) else made.no_model
            return ["estimate", made.problems, "--model", model, "--engine", "hf", "-k", "1", "-o", out]
        return ["distill", made.shards, "--student", made.model, "--teacher", made.model, "-o", out, "--max-steps", "1"]

    def input_path(self, made: Made, field: str) -> Path:
        return getattr(made, field)

    def later_failure(self, made: Made) -> str:
        """The error a run-folder command stops with once the check has passed."""
        if self.name == "estimate":
            return f"--model {made.no_model}: no such folder"
        return f"{made.shards}: has no 'reference' column, which --loss fkl needs"


COMMANDS = [
    Command("rollout", "rollouts", "problems", "problems", "model", False),
    Command("grade", "grades", "rollouts", "rollouts", "rollouts", False),
    Command("weight", "weights", "graded", "graded", "graded", False),
    Command("export", "export", "weights", "problems", "weights", False),
    Command("estimate", "estimate", "problems", "problems", "model", True),
    Command("distill", "distill", "shards", "shards", "shards", True),
]


def snapshot(path: Path) -> dict[str, str]:
    """Every file under a path (or the file itself) with its sha256, to show nothing changed."""
    if path.is_file():
        return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()}
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.rglob("*")) if p.is_file()}


def assert_written(result, command: Command, made: Made, out: Path) -> None:
    """The command got past the check: it wrote its output, or (estimate, distill) failed later, as planned."""
    if command.run_folder:
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("error: ") and command.later_failure(made) in last, result.stderr
        return
    assert result.exit_code == 0, result.output
    if command.name == "export":
        assert read_manifest(out)["stage"] == "export"
        return
    spec = {"rollouts": ROLLOUTS, "grades": GRADES, "weights": WEIGHTS}[command.kind]
    assert read_table(str(out), spec).num_rows > 0


def other_stage_output(command: Command, made: Made, where: Path) -> Path:
    """A copy of another command's output, at `where` (not an input of `command`)."""
    source = made.rollouts if command.name == "grade" else made.graded
    shutil.copytree(source, where)
    shutil.copytree(source.with_name(source.name + ".paced"), where.with_name(where.name + ".paced"))
    return where


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
@pytest.mark.parametrize("case", ["fresh folder", "fresh file", "empty folder", "missing parent"])
def test_a_free_output_is_written(cli, made, tmp_path, command, case):
    out = {
        "fresh folder": tmp_path / "out",
        "fresh file": tmp_path / "out.parquet",
        "empty folder": tmp_path / "out",
        "missing parent": tmp_path / "a" / "b" / "out",
    }[case]
    if case == "empty folder":
        out.mkdir()
    if case == "fresh file" and command.name == "estimate":
        assert_user_error(cli(*command.argv(made, out)), f"-o {out}: name a run directory, not a .parquet file")
        return
    assert_written(cli(*command.argv(made, out)), command, made, out)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
@pytest.mark.parametrize("case", ["own input", "inside own input", "containing own input"])
def test_an_output_that_overlaps_an_input_is_refused_even_with_overwrite(cli, made, command, case, overwrite):
    if case == "own input":
        out, relation, name = command.input_path(made, command.own_input), "is", command.own_input
    elif case == "inside own input":
        out, relation, name = command.input_path(made, command.inside) / "sub", "is inside", command.inside
    else:
        out, relation, name = made.root, "contains", command.first_input
    source = command.input_path(made, name)
    before = snapshot(made.root), snapshot(made.model)
    result = cli(*command.argv(made, out), *(["--overwrite"] if overwrite else []))
    assert_user_error(result, f"{out}: {relation} the {name} input {source}; {NEVER}")
    assert (snapshot(made.root), snapshot(made.model)) == before  # nothing written, nothing deleted


def test_weight_refuses_to_overwrite_its_own_graded_file(cli, made):
    # The case: `paced weight graded.parquet -o graded.parquet` replaced the samples.
    before = snapshot(made.graded_file)
    assert_user_error(
        cli("weight", made.graded_file, "-o", made.graded_file, "--overwrite"),
        f"{made.graded_file}: is the graded input {made.graded_file}; {NEVER}",
    )
    assert snapshot(made.graded_file) == before


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_another_commands_output_is_replaced_only_with_overwrite(cli, made, tmp_path, command):
    out = other_stage_output(command, made, tmp_path / "other")
    stage = "rollouts" if command.name == "grade" else "grades"
    before = snapshot(out)
    assert_user_error(
        cli(*command.argv(made, out)),
        f"{out}: holds a paced '{stage}' output, not '{command.kind}'; choose another -o or pass --overwrite to replace it",
    )
    assert snapshot(out) == before
    assert_written(cli(*command.argv(made, out), "--overwrite"), command, made, out)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_a_file_paced_did_not_write_is_replaced_only_with_overwrite(cli, made, tmp_path, command):
    out = tmp_path / "mine.parquet"
    pq.write_table(pa.table({"id": ["a"], "question": ["1 + 1 ="]}), out)  # a user's problem set, say
    before = snapshot(out)
    result = cli(*command.argv(made, out))
    if command.name == "estimate":
        assert_user_error(result, f"-o {out}: name a run directory, not a .parquet file")
    elif command.run_folder:
        assert_user_error(result, f"{out}: exists and is a file; -o names a run folder")
    else:
        assert_user_error(result, f"{out}: exists and is not a paced output; choose another -o or pass --overwrite to replace it")
    assert snapshot(out) == before
    if not command.run_folder:
        assert_written(cli(*command.argv(made, out), "--overwrite"), command, made, out)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_a_file_where_a_folder_is_written_is_refused(cli, made, tmp_path, command):
    out = tmp_path / "notes.txt"
    out.write_text("mine")
    other = "-o names a run folder" if command.run_folder else "name a .parquet file to write one file, or a new folder"
    for flags in ([], ["--overwrite"]):
        assert_user_error(cli(*command.argv(made, out), *flags), f"{out}: exists and is a file; {other}")
    assert out.read_text() == "mine"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_a_folder_of_files_paced_did_not_write_is_refused_even_with_overwrite(cli, made, tmp_path, command):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "data.parquet").write_bytes(b"PAR1 not really")
    for flags in ([], ["--overwrite"]):
        assert_user_error(cli(*command.argv(made, out), *flags), f"{out}: holds 'data.parquet', {FOREIGN}")
    assert snapshot(out) == {"data.parquet": hashlib.sha256(b"PAR1 not really").hexdigest(), "notes.txt": hashlib.sha256(b"mine").hexdigest()}


# --- the same command again, other settings, a start that failed -----------------------------

TABLE_COMMANDS = [c for c in COMMANDS if not c.run_folder]


@pytest.mark.parametrize("command", TABLE_COMMANDS, ids=lambda c: c.name)
@pytest.mark.parametrize("name", ["out", "out.parquet"])
def test_the_same_command_again_finishes_as_before(cli, made, tmp_path, command, name):
    out = tmp_path / name
    assert cli(*command.argv(made, out)).exit_code == 0
    first = _rows(out, command)
    again = cli(*command.argv(made, out))
    assert again.exit_code == 0, again.output
    assert _rows(out, command) == first


OTHER_SETTINGS = {
    "rollout": (["--seed", "1"], "seed=0 (now 1)"),
    "grade": (["--truncated", "exclude"], "truncated='wrong' (now 'exclude')"),
    "weight": (["--alpha", "2"], "alpha=1.0 (now 2.0)"),
    "export": (["--seed", "3"], "seed=0 (now 3)"),
}


@pytest.mark.parametrize("command", TABLE_COMMANDS, ids=lambda c: c.name)
def test_other_settings_are_refused_unless_overwrite(cli, made, tmp_path, command):
    out = tmp_path / "out"
    assert cli(*command.argv(made, out)).exit_code == 0
    before = snapshot(out)
    flags, change = OTHER_SETTINGS[command.name]
    assert_user_error(
        cli(*command.argv(made, out), *flags), f"{out}: was made with {change}; pass --overwrite to start afresh or choose another -o"
    )
    assert snapshot(out) == before
    assert_written(cli(*command.argv(made, out), *flags, "--overwrite"), command, made, out)


@pytest.mark.parametrize("name", ["rollouts", "rollouts.parquet"])
def test_a_rollout_that_failed_on_a_bad_model_folder_does_not_block_the_corrected_command(cli, made, tmp_path, name):
    broken = tmp_path / "broken-model"
    shutil.copytree(made.model, broken)
    (broken / "model.safetensors").unlink()  # config.json passes the up-front check; loading fails
    out = tmp_path / name
    rollout = COMMANDS[0]
    argv = rollout.argv(made, out)
    failed = cli(*[str(broken) if str(a) == str(made.model) else a for a in argv])
    assert_user_error(failed, f"--model {broken}:")  # the model check (#24) refuses it before -o is written
    assert not out.exists()
    fixed = cli(*argv)
    assert fixed.exit_code == 0, fixed.output
    assert read_table(str(out), ROLLOUTS).num_rows == 3 * 2


@pytest.mark.parametrize("name", ["graded", "graded.parquet"])
def test_an_output_whose_start_wrote_no_results_does_not_block_the_corrected_command(cli, made, tmp_path, name):
    """A start that opened its output, with other settings, and died before its first part (a crash, a kill)."""
    from paced_curate.partdir import PartDirectory

    out = tmp_path / name
    PartDirectory.open(out, spec=GRADES, settings={"grader": "other"}, inputs={"rollouts": {"path": "elsewhere", "sha256": "0"}})
    assert read_manifest(out)["settings"] == {"grader": "other"}
    fixed = cli("grade", made.rollouts, "-o", out, "--workers", "1")
    assert fixed.exit_code == 0, fixed.output
    assert read_table(str(out), GRADES).num_rows == 3 * 2


def test_a_grade_that_failed_on_its_input_does_not_block_the_corrected_command(cli, made, tmp_path):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": "q0", "completion": "2"}])  # no gold answer
    out = tmp_path / "graded"
    failed = cli("grade", bad, "-o", out, "--workers", "1")
    assert failed.exit_code == 2
    fixed = cli("grade", made.rollouts, "-o", out, "--workers", "1")
    assert fixed.exit_code == 0, fixed.output
    assert read_table(str(out), GRADES).num_rows == 3 * 2


def test_run_folders_list_what_estimate_and_distill_write():
    from paced_curate.distill.rundir import OWNED as DISTILL_OWNED
    from paced_curate.estimate.runner import OWNED as ESTIMATE_OWNED
    from paced_curate.estimate.runner import STATE_FILE

    assert RUN_FOLDERS["estimate"][0] == STATE_FILE and set(ESTIMATE_OWNED) <= set(RUN_FOLDERS["estimate"])
    assert RUN_FOLDERS["distill"][0] == "run.json" and set(RUN_FOLDERS["distill"]) == set(DISTILL_OWNED)


def _rows(out: Path, command: Command) -> list:
    if command.name == "export":
        return pq.read_table(out if out.is_file() else out / "train").to_pylist()
    spec = {"rollouts": ROLLOUTS, "grades": GRADES, "weights": WEIGHTS}[command.kind]
    return read_table(str(out), spec).to_pylist()


@pytest.mark.parametrize(("entry", "kind"), [("checkpoints", "distill"), ("rounds", "estimate")])
def test_a_run_folder_is_known_before_its_marker_file(cli, made, tmp_path, entry, kind):
    # A crash during the first checkpoint or round leaves the run's own folder but no run.json / estimate.json yet.
    out = tmp_path / "run"
    (out / entry / ".step-000001.tmp-dead").mkdir(parents=True)
    assert_user_error(
        cli("weight", made.graded, "-o", out, "--estimator", "bayes"),
        f"{out}: holds a paced '{kind}' output, not 'weights'; choose another -o or pass --overwrite to replace it",
    )
