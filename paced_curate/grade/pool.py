"""Worker processes that grade with a hard deadline per task: a stuck task costs its worker, not the run.

math-verify's own timeout relies on SIGALRM and some inputs hang it anyway (`str()` of a huge
sympy object, enormous powers), so the parent enforces the deadline: each worker gets small
chunks of tasks over its own pipe and answers task by task; a task that is not answered within
`timeout` seconds of its start gets the verdict `timeout`, its worker is SIGKILLed and replaced,
and the rest of its chunk goes back to the queue. An exception of any kind inside a task
(BaseException included) becomes the verdict `error`; a worker that dies on its own (a segfault,
`os._exit`) turns its current task into `error` and is replaced the same way.

    with GradingPool([load_grader("math")], workers=2, timeout=5.0) as pool:
        outcomes = pool.run([(0, "\\\\boxed{3}", "3")])   # [Outcome('correct', '3', None)]

Workers are forked from a "forkserver" that has math-verify imported already, so a replacement
starts in tens of milliseconds. Each worker has its own pipe: killing a worker mid-write can
only break that pipe, which is thrown away with it.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

from paced_curate.grade.graders import GraderSpec, Outcome, make_grader, warm_up

Task = tuple[int, str, str]
"""(index of the grader in the pool's specs, reduced completion, gold answer)."""

READY = "ready"
MESSAGE_LIMIT = 300


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:MESSAGE_LIMIT]


def _worker_main(conn: Connection, specs: tuple[GraderSpec, ...]) -> None:
    """A worker's loop: receive a chunk, answer each task as soon as it is graded."""
    # Ctrl-C reaches the whole process group; only the parent should act on it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A grader that prints must never write into a `-o -` data stream.
    os.dup2(2, 1)
    graders = [make_grader(spec) for spec in specs]
    for spec in specs:
        warm_up(spec)
    conn.send(READY)
    while True:
        try:
            chunk = conn.recv()
        except EOFError:
            return
        for task_id, grader_index, text, gold in chunk:
            try:
                outcome = tuple(graders[grader_index](text, gold))
            except BaseException as error:  # TimeoutException, SystemExit, ... are BaseExceptions
                outcome = ("error", None, _describe(error))
            try:
                conn.send((task_id, outcome))
            except BaseException as error:  # an unpicklable answer from a plugin
                conn.send((task_id, ("error", None, f"grader answer cannot be sent back: {_describe(error)}")))


def _context():
    context = multiprocessing.get_context("forkserver")
    # Takes effect when the fork server starts (once per parent process).
    context.set_forkserver_preload(["paced_curate.grade.pool", "math_verify"])
    # Start it now: it imports math-verify (about a second) while the caller reads its input.
    multiprocessing.forkserver.ensure_running()
    return context


@dataclass(eq=False)
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    ready: bool = False
    chunk: list[int] = field(default_factory=list)
    """Task ids sent and not all answered yet; `position` is the one being graded."""
    position: int = 0
    deadline: float = float("inf")


class GradingPool:
    """N grading processes with a hard per-task deadline (see the module docstring).

    Args:
        specs: the graders tasks may use, by index.
        workers: number of processes (at most one per task is started).
        timeout: seconds a single task may take before its worker is killed.
        chunk_size: most tasks sent to a worker at once.
    """

    def __init__(self, specs: Sequence[GraderSpec], *, workers: int, timeout: float, chunk_size: int = 8) -> None:
        self.specs = tuple(specs)
        self.num_workers = workers
        self.timeout = timeout
        self.chunk_size = chunk_size
        self.timeouts = 0
        """Tasks that ran past the deadline (their workers were killed)."""
        self.deaths = 0
        """Workers that died on their own while grading."""
        self._workers: list[_Worker] = []
        self._context = _context()

    def __enter__(self) -> GradingPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker (SIGKILL: they hold no state worth saving)."""
        for worker in self._workers:
            self._stop(worker)
        self._workers = []

    def _start(self) -> _Worker:
        parent_conn, child_conn = self._context.Pipe(duplex=True)
        process = self._context.Process(target=_worker_main, args=(child_conn, self.specs), daemon=True, name="paced-grade")
        process.start()
        # Without closing our copy of the child's end, a dead worker's pipe would never show EOF.
        child_conn.close()
        return _Worker(process=process, conn=parent_conn)

    @staticmethod
    def _stop(worker: _Worker) -> None:
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join()
        worker.conn.close()

    def run(self, tasks: Sequence[Task], on_done: Callable[[int, Outcome], None] | None = None) -> list[Outcome]:
        """Grade `tasks`; returns one outcome per task, in order.

        Args:
            tasks: (grader index, reduced completion, gold) triples.
            on_done: called as on_done(task index, outcome) as each task finishes (progress).

        Raises:
            RuntimeError: a worker died before it was ready (a broken installation, not an input).
        """
        results: list[Outcome | None] = [None] * len(tasks)
        pending = deque(range(len(tasks)))
        remaining = len(tasks)

        def finish(task_id: int, outcome: Outcome) -> None:
            nonlocal remaining
            results[task_id] = outcome
            remaining -= 1
            if on_done is not None:
                on_done(task_id, outcome)

        while len(self._workers) < min(self.num_workers, len(tasks)):
            self._workers.append(self._start())
        while remaining:
            self._dispatch(tasks, pending)
            busy = [w for w in self._workers if w.chunk]
            earliest = min((w.deadline for w in busy), default=None)
            wait_s = None if earliest is None else max(0.0, earliest - time.monotonic())
            handles = {}
            for worker in self._workers:
                handles[worker.conn] = worker
                handles[worker.process.sentinel] = worker
            for worker in {id(handles[h]): handles[h] for h in wait(list(handles), timeout=wait_s)}.values():
                self._receive(worker, finish, pending)
            now = time.monotonic()
            for index, worker in enumerate(self._workers):
                if worker.chunk and worker.deadline <= now and not worker.conn.poll():
                    self.timeouts += 1
                    message = f"grading took longer than {self.timeout:g} s; the worker was killed"
                    self._workers[index] = self._replace(worker, Outcome("timeout", None, message), finish, pending)
        return results  # type: ignore[return-value]

    def _dispatch(self, tasks: Sequence[Task], pending: deque) -> None:
        for worker in self._workers:
            if worker.ready and not worker.chunk and pending:
                # Smaller chunks near the end keep every worker busy until the last task.
                size = max(1, min(self.chunk_size, len(pending) // (2 * len(self._workers))))
                worker.chunk = [pending.popleft() for _ in range(min(size, len(pending)))]
                worker.position = 0
                worker.conn.send([(task_id, *tasks[task_id]) for task_id in worker.chunk])
                worker.deadline = time.monotonic() + self.timeout

    def _receive(self, worker: _Worker, finish: Callable[[int, Outcome], None], pending: deque) -> None:
        try:
            while worker.conn.poll():
                message = worker.conn.recv()
                if message == READY:
                    worker.ready = True
                    continue
                task_id, outcome = message
                assert task_id == worker.chunk[worker.position], (task_id, worker.chunk, worker.position)
                finish(task_id, Outcome(*outcome))
                worker.position += 1
                worker.deadline = time.monotonic() + self.timeout
                if worker.position == len(worker.chunk):
                    worker.chunk = []
            if worker.process.is_alive():
                return
        except (EOFError, OSError):
            pass
        worker.process.join()
        if not worker.ready:
            raise RuntimeError(f"a grading worker exited before it was ready (exit code {worker.process.exitcode})")
        if worker.chunk:
            self.deaths += 1
        message = f"the grading worker died (exit code {worker.process.exitcode})"
        self._workers[self._workers.index(worker)] = self._replace(worker, Outcome("error", None, message), finish, pending)

    def _replace(self, worker: _Worker, outcome: Outcome, finish: Callable[[int, Outcome], None], pending: deque) -> _Worker:
        """Stop `worker`, give its current task `outcome`, requeue the rest of its chunk, start another."""
        self._stop(worker)
        if worker.chunk:
            finish(worker.chunk[worker.position], outcome)
            pending.extendleft(reversed(worker.chunk[worker.position + 1 :]))
        return self._start()
