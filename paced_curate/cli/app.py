"""The Typer app, its global options, and how a user error becomes one line and exit code 2.

A `PacedError`, or an OS error about a path the user gave (-o under a file, no permission),
becomes one line on stderr and exit code 2 (`--debug` shows the traceback); any other
exception is a bug and keeps its traceback. The commands live beside this module, one
module per command, each a thin layer: flags -> config -> `run_<stage>(config)` -> render.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from typing import Annotated

import typer
import typer.core

from paced_curate import __version__
from paced_curate.errors import PacedError
from paced_curate.report import console, key_value_table, show

class OneLineUsageErrors(typer.core.TyperGroup):
    """Typer's command group, but a wrong flag or a missing option is one line on stderr
    (`error: paced rollout: No such option: --foo (see --help)`) and exit code 2, like every
    other bad input, instead of a usage box."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        import sys

        # Typer 0.29 carries its own copy of click (pinned in requirements/cpu.lock); its
        # exceptions are these, not the `click` package's.
        from typer._click import exceptions as click_errors

        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except click_errors.NoArgsIsHelpError as error:
            error.show()  # `paced` alone: the help, as no_args_is_help promises
            sys.exit(error.exit_code)
        except click_errors.UsageError as error:
            where = error.ctx.command_path if error.ctx is not None else "paced"
            message = " ".join(error.format_message().split())
            console().print(f"error: {where}: {message} (see {where} --help)", markup=False, soft_wrap=True)
            sys.exit(2)
        except click_errors.ClickException as error:
            error.show()
            sys.exit(error.exit_code)
        except typer.Abort:  # Ctrl-C outside a command's own code (click turns it into Abort)
            console().print(f"error: {INTERRUPTED}", markup=False, soft_wrap=True)
            sys.exit(130)
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    cls=OneLineUsageErrors,
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
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR" if quiet else "INFO")
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")  # stdout carries data only
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error" if quiet else "info")
    if quiet:
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO)


def fails_cleanly(command):
    """Turn a `PacedError` raised by `command` into one line on stderr and exit code 2, and Ctrl-C into one line
    and exit code 130; first refuse flags that would do nothing in the chosen mode (`cli.mode_flags`)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from paced_curate.cli.mode_flags import refuse_unused_flags

        try:
            refuse_unused_flags(kwargs)  # (#24) a flag that would do nothing here is refused before any work
            return command(*args, **kwargs)
        except PacedError as error:
            if _debug:
                raise
            console().print(f"error: {error}", markup=False)
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            # Ctrl-C: one line and the shell's code for SIGINT; worker processes ignore SIGINT and
            # are stopped by their owners on the way out (#24).
            if _debug:
                raise
            console().print(f"error: {INTERRUPTED}", markup=False, soft_wrap=True)
            raise typer.Exit(code=130) from None
        except PATH_ERRORS as error:
            # A path the user gave that cannot be made or written (-o under a file, a folder
            # without permission): bad input, not a bug.
            if _debug or error.filename is None:
                raise
            console().print(f"error: {error.filename}: {error.strerror.lower()}", markup=False)
            raise typer.Exit(code=2) from None

    return wrapper


INTERRUPTED = "interrupted (Ctrl-C); finished parts are kept, and rerunning the same command resumes from them"
PATH_ERRORS = (NotADirectoryError, IsADirectoryError, FileExistsError, PermissionError, FileNotFoundError)


def print_json(obj) -> None:
    """Print exactly one JSON document on stdout."""
    typer.echo(json.dumps(obj, default=str))


def render_result(title: str, result: dict) -> None:
    """Print a stage's result as a two-column table on stderr."""
    show(key_value_table(title, list(result.items())))
def main() -> None:
    """Entry point of the `paced` console script."""
    app()
