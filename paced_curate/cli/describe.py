"""paced inspect: a summary of any stage's output."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from paced_curate.cli.app import app, fails_cleanly, print_json


@app.command("inspect")
@fails_cleanly
def inspect_command(
    path: Annotated[str, typer.Argument(help="A stage output: file, directory, or - for a pipe.")],
    group_by: Annotated[
        Optional[str], typer.Option("--group-by", help="Graded output: evaluation numbers per value of this column (one value per problem; a problem whose rows differ is an error).")
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
