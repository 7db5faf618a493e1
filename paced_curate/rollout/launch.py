"""`--gpus 0,1,2,3`: one rollout process per GPU, each generating its own shard.

vLLM's offline `LLM` refuses data parallelism, so each GPU gets its own process with
`CUDA_VISIBLE_DEVICES` set before torch or vLLM is imported, running `--shard i/N`
into OUTPUT/shard-i-of-N. Reading OUTPUT afterwards combines the shards.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os

from paced_curate.errors import PacedError
from paced_curate.report import say


def _run_shard(config, gpu: str) -> None:
    # A fresh (spawned) interpreter: set the device before anything imports torch.
    os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    from paced_curate.errors import PacedError as Error
    from paced_curate.rollout.runner import run_rollout

    try:
        run_rollout(config)
    except Error as error:
        say(f"error: shard {config.shard}: {error}")
        raise SystemExit(2) from None


def launch_shards(config):
    """Run one shard per GPU in parallel and wait; returns the combined `RolloutResult`."""
    from paced_curate.rollout.runner import RolloutResult

    count = len(config.gpus)
    context = multiprocessing.get_context("spawn")
    processes = []
    for index, gpu in enumerate(config.gpus):
        shard_config = dataclasses.replace(config, gpus=(), shard=f"{index}/{count}")
        process = context.Process(target=_run_shard, args=(shard_config, gpu), name=f"paced-shard-{index}")
        process.start()
        processes.append((index, gpu, process))
    say(f"launched {count} shard processes on GPUs {', '.join(config.gpus)}")
    failed = []
    for index, gpu, process in processes:
        process.join()
        if process.exitcode != 0:
            failed.append(f"shard {index}/{count} (GPU {gpu}) exited with code {process.exitcode}")
    if failed:
        raise PacedError("; ".join(failed) + "; rerun the same command to resume the unfinished shards")
    from paced_curate.io import read_table
    from paced_curate.rollout.summary import rollout_summary
    from paced_curate.schema import ROLLOUTS

    summary = rollout_summary(read_table(config.output, ROLLOUTS))
    return RolloutResult(
        output=config.output, problems=summary["problems"], skipped=0, generated=summary["problems"],
        samples=summary["samples"], completion_tokens=summary["completion_tokens"]["total"],
        prompt_tokens=summary["prompt_tokens_total"], truncated=summary["finish_reasons"].get("length", 0),
        errors=summary["finish_reasons"].get("error", 0), seconds=0.0,
    )
