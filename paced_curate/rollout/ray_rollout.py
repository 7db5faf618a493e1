"""`paced rollout --ray ADDRESS`: paced's own engines as Ray Data actors, parts written by the driver (#17).

    paced rollout problems.jsonl --model models/student -k 8 -o rollouts/ --ray auto

The driver reads the problems, skips those the output already holds (resume), and puts the
rest into a Ray dataset, one block of `--problems-per-part` problems per task. `map_batches`
sends each block to an `EngineReplica` actor, one per GPU (or per `--tensor-parallel-size`
GPUs; one on a CPU-only cluster), which renders the prompts and runs paced's vllm or hf
engine on them, returning all K samples of each problem with their finish reasons (Ray Data's
own LLM processor keeps only the first of n samples and drops `finish_reason`, so it is not
used). The driver collects the samples and writes them with the one-process path's writer
(runner.py), so the part files, their order, schema and resume state are exactly those of a
local run, and the rows are too: each sample's seed is a function of (seed, problem_id,
sample_index) only, whichever actor generates it.

An actor that dies (a crashed process, a lost node) is restarted and its task retried by Ray
Data (`max_restarts=-1`, `max_task_retries=-1`); only a finished task's output reaches the
driver, and the driver ignores a problem it already has, so no row is written twice. A driver
that dies loses at most the problems not yet in a finished part; a rerun resumes.

The output directory is written by the driver: on a cluster, run the driver where the output
path is (a shared file system, or the head node). The actors need paced and the model folder
at the same path on every node.
"""

from __future__ import annotations

import os
import time

import pyarrow as pa

from paced_curate.errors import ConfigError
from paced_curate.ray_cluster import quiet_data_context, ray_cluster
from paced_curate.report import StageProgress, plural, say
from paced_curate.rollout.config import RolloutConfig
from paced_curate.rollout.prompt_record import KEY as PROMPT_KEY
from paced_curate.rollout.prompt_record import prompt_record
from paced_curate.rollout.requests import Sample

# runner.py's writer and sinks: the Ray path writes exactly what the one-process path writes.
from paced_curate.rollout.runner import RolloutResult, _InOrderParts, make_request, run_with

SAMPLES_SCHEMA = pa.schema([
    pa.field("index", pa.int64()), pa.field("sample_index", pa.int32()), pa.field("text", pa.large_string()),
    pa.field("finish_reason", pa.string()), pa.field("completion_tokens", pa.int64()), pa.field("prompt_tokens", pa.int64()),
    pa.field("error", pa.string()),
])
"""One row per generated sample, as an actor returns it; `index` is the problem's position in the input."""


class EngineReplica:
    """A Ray Data actor holding one started paced engine (vllm or hf) for the whole run.

    Called with a block of problems (index, problem_id, prompt, and messages for chat problem
    sets) as a pyarrow Table; returns their samples (`SAMPLES_SCHEMA`), K rows per problem.
    """

    def __init__(self, config: RolloutConfig) -> None:
        from paced_curate.rollout.engines import get_engine

        self.config = config
        self.engine = get_engine(config)
        self.sampling = config.sampling()

    def __call__(self, batch: pa.Table) -> pa.Table:
        columns = {name: [] for name in SAMPLES_SCHEMA.names}
        for request, samples in self.engine.generate(self._requests(batch), self.sampling):
            for sample_index, sample in enumerate(samples):
                columns["index"].append(request.index)
                columns["sample_index"].append(sample_index)
                columns["text"].append(sample.text)
                columns["finish_reason"].append(sample.finish_reason)
                columns["completion_tokens"].append(sample.completion_tokens)
                columns["prompt_tokens"].append(sample.prompt_tokens)
                columns["error"].append(sample.error)
        return pa.table(columns, schema=SAMPLES_SCHEMA)

    def _requests(self, batch: pa.Table):
        for row in batch.to_pylist():
            yield make_request(self.config, self.engine.tokenizer, row["index"], row["problem_id"], row["prompt"], row.get("messages"))


def replica_plan(cluster_resources: dict, tensor_parallel_size: int) -> tuple[int, dict]:
    """How many engine replicas to start and what each asks Ray for.

    Args:
        cluster_resources: `ray.cluster_resources()` ({"CPU": 16.0, "GPU": 8.0, ...}).
        tensor_parallel_size: GPUs per engine.

    Returns:
        (replicas, resources): one replica per `tensor_parallel_size` GPUs with that many GPUs
        each; on a cluster without GPUs, one replica with one CPU.

    Raises:
        ConfigError: the cluster has GPUs, but fewer than one engine needs.
    """
    gpus = int(cluster_resources.get("GPU", 0))
    if gpus == 0:
        return 1, {"num_cpus": 1}
    if gpus < tensor_parallel_size:
        raise ConfigError(f"--tensor-parallel-size {tensor_parallel_size}: the Ray cluster has only {gpus} GPUs")
    return gpus // tensor_parallel_size, {"num_cpus": 1, "num_gpus": tensor_parallel_size}


def run_ray_rollout(config: RolloutConfig, *, replica: type = EngineReplica) -> RolloutResult:
    """Generate the rollouts on the Ray cluster at `config.ray` (see the module docstring).

    Args:
        config: the rollout settings; `config.ray` is "local", "auto" or a cluster address.
        replica: the actor class (tests pass a subclass that dies once, to check the retry).

    Raises:
        ConfigError, InputError, ResumeMismatch: as `run_rollout`.
        PacedError: no Ray cluster answers at `config.ray`.
    """
    def generate(config, problems, todo, writer, sink) -> float:
        from transformers import AutoTokenizer

        # The driver renders nothing, but records how the actors render (#14), as the local path does.
        sink.provenance[PROMPT_KEY] = prompt_record(config.prompt_format, AutoTokenizer.from_pretrained(config.model))
        with ray_cluster(config.ray) as ray:
            return _generate_on_ray(ray, config, problems, todo, writer, replica)

    return run_with(config, generate, shard=False)


def _generate_on_ray(ray, config: RolloutConfig, problems: pa.Table, todo: list[int], writer: _InOrderParts, replica: type) -> float:
    """Stream the `todo` problems through the actors into `writer`; returns generation seconds."""
    import ray.data

    quiet_data_context()
    replicas, resources = replica_plan(ray.cluster_resources(), config.resolved("tensor_parallel_size"))
    if "num_gpus" not in resources:
        # Ray gives an actor OMP_NUM_THREADS=<its CPUs> (1); the local path uses every core, and
        # the same thread count keeps CPU results identical to it.
        resources["runtime_env"] = {"env_vars": {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(os.cpu_count() or 1))}}
    wanted = ["problem_id", "prompt"] + (["messages"] if "messages" in problems.column_names else [])
    table = problems.select(wanted).take(todo).append_column("index", pa.array(todo, pa.int64()))
    # One block per task: a task is the unit Ray retries, and problems_per_part bounds what a retry redoes.
    size = config.problems_per_part
    blocks = [table.slice(start, size) for start in range(0, table.num_rows, size)]
    dataset = ray.data.from_arrow(blocks).map_batches(
        replica, batch_size=None, batch_format="pyarrow", fn_constructor_kwargs={"config": config},
        compute=ray.data.ActorPoolStrategy(size=min(replicas, len(blocks))), **resources,
    )
    say(f"rollout on Ray: {plural(len(todo), 'problem')} in {plural(len(blocks), 'task')} over {plural(min(replicas, len(blocks)), 'engine replica')}")
    started = time.perf_counter()
    collected: dict[int, dict[int, Sample]] = {}
    written: set[int] = set()
    total = problems.num_rows
    with StageProgress(
        "rollout", total=total, unit="problems", completed=total - len(todo), rates={"samples": "samples/s", "tokens": "tok/s"}
    ) as progress:
        for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            for row in batch.to_pylist():
                index = row["index"]
                if index in written:
                    continue  # a retried task's second answer: the first is kept
                samples = collected.setdefault(index, {})
                samples[row["sample_index"]] = Sample(
                    row["text"], row["finish_reason"], row["completion_tokens"], row["prompt_tokens"], row["error"]
                )
                if len(samples) == config.samples:
                    del collected[index]
                    written.add(index)
                    ordered = [samples[i] for i in range(config.samples)]
                    writer.add(index, ordered)
                    progress.advance(1, samples=len(ordered), tokens=sum(s.completion_tokens for s in ordered))
    missing = len(todo) - len(written)
    if missing:
        raise RuntimeError(f"Ray returned samples for {len(written)} of {plural(len(todo), 'problem')}; rerun to resume")
    return time.perf_counter() - started
