"""The `paced` command line: flags -> config -> `run_<stage>(config)` -> rendered result.

One module per command, each a thin layer over the stage's library entry point; `app.py`
holds the Typer app and the one-line error handling, `options.py` the flags several commands
share. Importing this package registers the commands in the order `paced --help` lists them.

    paced --help
"""

from paced_curate.cli import rollout, grade, weight, estimate, export, distill, demo, describe  # noqa: F401  (registers the commands)
from paced_curate.cli.app import app, main
from paced_curate.cli.estimate import estimate_command

__all__ = ["app", "main", "estimate_command"]
