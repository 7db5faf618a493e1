"""`paced grade --ray ADDRESS`: the grading tasks run as Ray CPU tasks, each with paced's hard-kill pool (#17).

    paced grade rollouts/ -o graded/ --ray auto --timeout 5

The driver reads the rollouts, deduplicates (grader, answer, gold) triples and writes the parts
exactly as a local run does (runner.py); only the grading moves. `RayGradingPool` has
`GradingPool`'s interface: its `run` cuts the tasks into chunks and sends each chunk to a Ray
task (one CPU), which grades it with a one-worker `GradingPool` of its own. That inner pool
enforces the same per-sample deadline as a local run by SIGKILLing its grading process, so a
pathological answer costs a process inside the Ray worker, never the Ray worker itself, and
the verdict is `timeout` as it would be locally. A Ray task lost with its node is retried
(`max_retries`); its chunk is graded again from scratch, and verdicts are deterministic.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

from paced_curate.grade.graders import GraderSpec, Outcome
from paced_curate.grade.pool import GradingPool, Task
from paced_curate.ray_cluster import ray_cluster

MAX_CHUNK = 256
"""Most grading tasks per Ray task: big enough to amortise a Ray task (~ms), small enough to spread."""
TASK_RETRIES = 3
"""Retries of a Ray task whose worker or node died (not of a grader's verdict: a hang is `timeout`)."""


def grade_chunk(specs: tuple[GraderSpec, ...], tasks: list[Task], timeout: float) -> tuple[list[tuple], int, int]:
    """Grade `tasks` inside a Ray task with a one-process `GradingPool` (hard deadline per task).

    Returns:
        (outcomes as (verdict, extracted, error) tuples in task order, timeouts, worker deaths).
    """
    with GradingPool(specs, workers=1, timeout=timeout) as pool:
        outcomes = pool.run(tasks)
        return [tuple(o) for o in outcomes], pool.timeouts, pool.deaths


class RayGradingPool:
    """`GradingPool`'s interface over Ray tasks (see the module docstring).

    Args:
        ray: the connected `ray` module.
        specs: the graders tasks may use, by index.
        timeout: seconds a single grading task may take before its process is killed.
    """

    def __init__(self, ray, specs: Sequence[GraderSpec], *, timeout: float) -> None:
        self.ray, self.specs, self.timeout = ray, tuple(specs), timeout
        self.timeouts = 0
        self.deaths = 0
        self._remote = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(grade_chunk)
        self._cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))

    def run(self, tasks: Sequence[Task], on_done: Callable[[int, Outcome], None] | None = None) -> list[Outcome]:
        """Grade `tasks`; returns one outcome per task, in order (as `GradingPool.run`)."""
        results: list[Outcome | None] = [None] * len(tasks)
        if not tasks:
            return []
        # Two chunks per CPU keep every CPU busy to the end without many tiny Ray tasks.
        size = max(1, min(MAX_CHUNK, -(-len(tasks) // (2 * self._cpus))))
        specs = self.ray.put(self.specs)
        pending = {
            self._remote.remote(specs, list(tasks[start : start + size]), self.timeout): start for start in range(0, len(tasks), size)
        }
        while pending:
            ready, _ = self.ray.wait(list(pending), num_returns=1)
            start = pending.pop(ready[0])
            outcomes, timeouts, deaths = self.ray.get(ready[0])
            self.timeouts += timeouts
            self.deaths += deaths
            for offset, outcome in enumerate(outcomes):
                results[start + offset] = Outcome(*outcome)
                if on_done is not None:
                    on_done(start + offset, results[start + offset])
        return results  # type: ignore[return-value]

    def close(self) -> None:
        """Nothing to stop: Ray owns its workers (each task's pool is closed when the task ends)."""


@contextlib.contextmanager
def ray_grading_pool(address: str, specs: Sequence[GraderSpec], *, timeout: float):
    """Connect to the cluster at `address` and yield a `RayGradingPool` (see `ray_cluster`)."""
    with ray_cluster(address) as ray:
        yield RayGradingPool(ray, specs, timeout=timeout)
