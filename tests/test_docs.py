"""README and CHANGELOG stay true: every command is documented, every bench result is quoted."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.test_cli import command_names

ROOT = Path(__file__).resolve().parent.parent


def test_every_command_appears_in_readme():
    readme = (ROOT / "README.md").read_text()
    for name in command_names():
        assert f"paced {name}" in readme, name


def test_readme_gives_the_two_commands_and_ci_runs_one_of_them():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_tree_names_every_module():
    readme = (ROOT / "README.md").read_text()
    for module in sorted((ROOT / "paced_curate").rglob("*.py")):
        if module.name == "__init__.py":
            continue
        assert module.name in readme, f"README's module tree does not mention {module.relative_to(ROOT)}"


def test_changelog_follows_keep_a_changelog():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in text and "keepachangelog.com" in text
    assert re.search(r"^### (Added|Changed|Fixed)$", text, re.M)


def test_readme_quotes_every_bench_result():
    readme = (ROOT / "README.md").read_text()
    results = sorted((ROOT / "bench" / "results").glob("*.json"))
    for path in results:
        json.loads(path.read_text())  # a result is valid JSON
        assert f"bench/results/{path.name}" in readme, f"README's Performance section does not quote {path.name}"
