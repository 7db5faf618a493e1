"""The `paced` command line: flags -> config -> `run_<stage>(config)` -> rendered result.

Nothing else lives here. A `PacedError` becomes one line on stderr and exit code 2
(`--debug` shows the traceback); any other exception is a bug and keeps its traceback.

    paced --help
"""

from __future__ import annotations

import functools
import json
import logging
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from paced_curate import __version__
from paced_curate.errors import PacedError
from paced_curate.report import console

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Turn a problem set into PACED-weighted distillation data: rollout -> grade -> weight -> export -> distill.",
)

_debug = False


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"paced {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show library logs (vLLM, transformers).")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for user errors too.")] = False,
) -> None:
    """paced: PACED-weighted distillation data from your problems."""
    global _debug
    _debug = debug
    quiet = not (verbose or debug)
    # vLLM and transformers read these when first imported, which happens later.
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING" if quiet else "INFO")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error" if quiet else "info")
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO)


def fails_cleanly(command):
    """Turn a `PacedError` raised by `command` into one line on stderr and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except PacedError as error:
            if _debug:
                raise
            console().print(f"error: {error}", markup=False)
            raise typer.Exit(code=2) from None

    return wrapper


def print_json(obj) -> None:
    """Print exactly one JSON document on stdout."""
    typer.echo(json.dumps(obj, default=str))


@app.command("inspect")
@fails_cleanly
def inspect_command(
    path: Annotated[str, typer.Argument(help="A stage output: file, directory, or - for a pipe.")],
    group_by: Annotated[
        Optional[str], typer.Option("--group-by", help="Graded output: evaluation numbers per value of this column.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON document on stdout.")] = False,
) -> None:
    """Summarise any stage's output: rows, schema, provenance and the stage's own tables.

    Example: paced inspect graded/ --group-by difficulty
    """
    from paced_curate.describe import InspectConfig, render_inspect, run_inspect

    report = run_inspect(InspectConfig(path=path, group_by=group_by))
    if as_json:
        print_json(report)
    else:
        render_inspect(report)


def main() -> None:
    """Entry point of the `paced` console script."""
    app()
