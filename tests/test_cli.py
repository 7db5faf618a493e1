"""CLI conventions: commands, help, version, and how user errors look."""

from __future__ import annotations

import subprocess
import sys

from paced_curate import __version__
from paced_curate.cli import app
from tests.conftest import assert_user_error

COMMANDS = ["rollout", "grade", "weight", "estimate", "export", "distill", "demo", "inspect"]


def command_names() -> list[str]:
    import typer.main

    return list(typer.main.get_command(app).commands)


def test_help_lists_every_command_with_a_description(cli):
    result = cli("--help")
    assert result.exit_code == 0, result.output
    for name in COMMANDS:
        assert name in command_names()
        line = next((l for l in result.stdout.splitlines() if l.strip().startswith(("│ " + name, name))), None)
        assert line is not None and len(line.split()) > 3, (name, result.stdout)


def test_each_command_help_ends_with_an_example(cli):
    for name in command_names():
        result = cli(name, "--help")
        assert result.exit_code == 0, result.output
        assert "Example: paced " + name in " ".join(result.stdout.split()), (name, result.stdout)


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"paced {__version__}"


def test_missing_file_is_one_line_exit_2(cli, tmp_path):
    assert_user_error(cli("inspect", tmp_path / "nope.parquet"), f"error: {tmp_path / 'nope.parquet'}: no such file or directory")


def test_debug_shows_the_traceback(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "paced_curate", "--debug", "inspect", str(tmp_path / "nope.parquet")], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "InputError: " in done.stderr


def test_python_dash_m_and_console_script_agree(tmp_path):
    done = subprocess.run([sys.executable, "-m", "paced_curate", "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"paced {__version__}"


USAGE_ERRORS = [
    (["rollout", "p.jsonl", "-o", "out", "--model", "m", "-k", "abc"], "error: paced rollout: Invalid value for '--samples' / '-k'"),
    (["rollout", "p.jsonl", "-o", "out", "--model", "m", "--bogus"], "error: paced rollout: No such option: --bogus"),
    (["rollout", "p.jsonl", "-o", "out"], "error: paced rollout: Missing option '--model' / '-m'."),
    (["weight"], "error: paced weight: Missing argument"),
    (["nosuch"], "error: paced: No such command 'nosuch'."),
]


def test_flag_mistakes_are_one_line_errors_with_exit_2(cli):
    for args, expected in USAGE_ERRORS:
        result = cli(*args)
        assert_user_error(result, expected)
        assert result.stderr.rstrip().endswith("--help)"), result.stderr


def test_no_arguments_still_shows_the_help(cli):
    result = cli()
    assert "Usage: paced" in result.output and "rollout" in result.output
