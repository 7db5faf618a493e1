"""The front page and the documentation site stay true.

README.md is a front page (at most 250 lines); the depth lives in the MkDocs site under docs/.
These tests build the site with `mkdocs build --strict` (a broken link or anchor fails), and
check that every command and every flag of `paced`, every module and every bench result is in
the docs, and that CHANGELOG.md follows Keep a Changelog.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import typer.main

from paced_curate.cli import app
from tests.test_cli import command_names

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README_MAX_LINES = 250


def docs_text() -> str:
    """Every page under docs/, and the files its pages include (examples/README.md), but not the
    changelog: a changelog bullet does not document a flag."""
    pages = [path.read_text() for path in sorted(DOCS.rglob("*.md"))]
    included = re.findall(r'^--8<-- "([^"]+)"', "\n".join(pages), re.M)
    return "\n".join(pages + [(ROOT / name).read_text() for name in included if name != "CHANGELOG.md"])


def mentions(text: str, word: str) -> bool:
    """`word` (a flag like -o or --top-p, or `paced NAME`) appears on its own, not inside a longer flag."""
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


def command_flags() -> dict[str, list[str]]:
    """Every option string of every command (`--overwrite`, `--no-overwrite`, `-o`, ...), and the global ones under ''."""
    root = typer.main.get_command(app)
    flags = {"": [opt for param in root.params for opt in param.opts + param.secondary_opts]}
    for name, command in root.commands.items():
        flags[name] = [
            opt
            for param in command.params
            if param.param_type_name == "option" and opt_visible(param)
            for opt in param.opts + param.secondary_opts
            if opt != "--help"
        ]
    return flags


def opt_visible(param) -> bool:
    return not getattr(param, "hidden", False)


def test_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; the front page keeps to {README_MAX_LINES} (move depth into docs/)"


def test_readme_gives_the_two_commands_and_ci_runs_one_of_them():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_names_every_command_and_links_its_page():
    readme = (ROOT / "README.md").read_text()
    for name in command_names():
        assert mentions(readme, f"paced {name}"), f"README.md does not name `paced {name}`"
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).is_file(), f"README.md links to {link}, which does not exist"


def test_readme_pipes_the_three_stages():
    """The front page shows rollout | grade | weight as one shell pipeline (other tests run it)."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    piped = [line for block in blocks for line in block.splitlines() if re.fullmatch(r"paced rollout problems\.jsonl --model \S+ -o - \| paced grade - -o - \| paced weight - -o weights\.parquet", line)]
    assert len(piped) == 1, "README.md needs the fenced bash line `paced rollout problems.jsonl --model MODEL -o - | paced grade - -o - | paced weight - -o weights.parquet`"


def test_every_command_and_flag_is_documented():
    """Every `paced` command and every flag of it appears somewhere in docs/ (a flag you add needs its docs)."""
    text = docs_text()
    missing = [f"paced {name}" for name in command_names() if not mentions(text, f"paced {name}")]
    for name, flags in command_flags().items():
        where = f"paced {name}" if name else "paced"
        missing += [f"{where} {flag}" for flag in flags if not mentions(text, flag)]
    assert not missing, "not in docs/ (document each on its command's page, e.g. docs/stages/<command>.md, flags table): " + ", ".join(missing)


def test_flags_tables_list_each_commands_own_flags():
    """Each stage page's flags table lists that command's flags, so a reader finds them where the command is."""
    pages = {"rollout", "grade", "weight", "estimate", "export", "distill", "inspect"}
    missing = []
    for name, flags in command_flags().items():
        if name not in pages:
            continue
        page = (DOCS / "stages" / f"{name}.md").read_text()
        table = page.split("## Flags", 1)[1] if "## Flags" in page else ""
        missing += [f"paced {name} {flag}" for flag in flags if not mentions(table, flag)]
    assert not missing, "missing from the '## Flags' table of docs/stages/<command>.md: " + ", ".join(missing)


def layout_tree_paths(text: str) -> set[str]:
    """The file paths the layout page's tree names: `paced_curate/cli/app.py`, ...

    The tree is the page's first fenced block: two spaces of indent per level, a folder ends
    with `/`, a line may name several files (`rollout.py grade.py`), and two or more spaces
    separate the names from their description.
    """
    block = re.search(r"```\n(.*?)```", text, re.S).group(1)
    folders: list[str] = []
    paths = set()
    for line in block.splitlines():
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 2
        names = re.split(r"\s{2,}", line.strip())[0].split(" ")
        del folders[depth:]
        for name in names:
            if name.endswith("/"):
                folders.append(name.rstrip("/"))
            else:
                paths.add("/".join(folders + [name]))
    return paths


def test_layout_page_names_every_module():
    """docs/layout.md's tree names every module at its place (paced_curate/grade/runner.py, not just some runner.py)."""
    named = layout_tree_paths((DOCS / "layout.md").read_text())
    modules = {
        str(module.relative_to(ROOT))
        for module in (ROOT / "paced_curate").rglob("*.py")
        if module.name != "__init__.py"
    }
    assert not sorted(modules - named), "docs/layout.md's module tree does not name: " + ", ".join(sorted(modules - named))
    gone = sorted(path for path in named - modules if path.startswith("paced_curate/"))
    assert not gone, "docs/layout.md names modules that do not exist: " + ", ".join(gone)


def test_docs_quote_every_bench_result():
    text = docs_text()
    missing = []
    for path in sorted((ROOT / "bench" / "results").glob("*.json")):
        json.loads(path.read_text())  # a result is valid JSON
        if f"bench/results/{path.name}" not in text:
            missing.append(path.name)
    assert not missing, "docs/ does not quote (performance.md, or the page of its feature): " + ", ".join(f"bench/results/{name}" for name in missing)


def test_changelog_follows_keep_a_changelog():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in text and "keepachangelog.com" in text
    assert re.search(r"^### (Added|Changed|Fixed)$", text, re.M)
    headings = re.findall(r"^### (.+)$", text, re.M)
    assert set(headings) <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}, headings


def test_site_builds_strictly(tmp_path):
    """`mkdocs build --strict`: every page in the nav, every link and anchor resolves (into tmp, not site/)."""
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "stages" / "grade" / "index.html").is_file()
