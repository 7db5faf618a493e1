"""paced demo: the built-in example end to end."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from paced_curate.cli.app import app, fails_cleanly, print_json
from paced_curate.errors import ConfigError


@app.command("demo")
@fails_cleanly
def demo_command(
    workdir: Annotated[str, typer.Option("--workdir", help="Folder for every artifact of the demo.")] = "demo-work",
    fast: Annotated[bool, typer.Option("--fast", help="A smaller, quicker version (about 3 minutes with a cold cache).")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the world: problem sets and rollouts.")] = 0,
    seeds: Annotated[Optional[int], typer.Option(help="Training seeds per method (default 3; 1 with --fast).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result table as one JSON document on stdout.")] = False,
) -> None:
    """Run the whole pipeline on the built-in world (rollout, grade, weight, export, distill, evaluate) and compare methods.

    Example: paced demo --workdir demo-work
    """
    from dataclasses import replace

    from paced_curate.demo import DemoConfig, run_demo

    if seed < 0:
        raise ConfigError(f"--seed must be >= 0 (a world's problem sets come from seed ranges numbered from 0), not {seed}")
    config = DemoConfig.small(workdir, seed) if fast else DemoConfig(workdir=workdir, seed=seed)
    if seeds is not None:
        if seeds < 1:
            raise ConfigError(f"--seeds must be at least 1, not {seeds}")
        config = replace(config, seeds=seeds)
    result = run_demo(config)
    if as_json:
        print_json(result.to_dict())
