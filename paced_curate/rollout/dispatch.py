"""`run_rollout`: the entry point that picks where a rollout runs (#17).

    run_rollout(config)   # --ray ADDRESS -> ray_rollout.py; --gpus 0,1 -> launch.py; else runner.py

This module sits above the three paths, so none of them imports another upward: runner.py
is the one-process path, launch.py starts one runner.py process per GPU, ray_rollout.py
runs paced's engines as Ray Data actors and writes the parts with runner.py's writer.
"""

from __future__ import annotations

from paced_curate.rollout.config import RolloutConfig
from paced_curate.rollout.runner import RolloutResult


def run_rollout(config: RolloutConfig) -> RolloutResult:
    """Generate `config.samples` samples per problem and write the rollouts table.

    Where it runs: on a Ray cluster (`config.ray`), in one process per local GPU
    (`config.gpus`), or in this process. All three write the same rows.

    Raises:
        ConfigError: a flag is out of range, or the model path is not a causal LM.
        InputError: the problem set is missing, empty or malformed.
        ResumeMismatch: the output holds a run made with other settings.
        PacedError: a Ray cluster cannot be reached, or a shard process failed.
    """
    if config.ray is not None:
        from paced_curate.rollout.ray_rollout import run_ray_rollout

        return run_ray_rollout(config)
    if config.gpus:
        from paced_curate.rollout.launch import launch_shards

        return launch_shards(config)
    from paced_curate.rollout import runner

    return runner.run_rollout(config)
