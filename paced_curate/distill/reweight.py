"""`paced distill --reweight online` (#25): the trainer's side of online PACED.

`online.py` holds the posterior (pure); this module feeds it and reads it during training:

- Batches. Static runs take the seeded epoch stream as it is (`data.batch_indices`). An online
  run walks the same kind of stream (a seeded permutation of all rows per epoch) from a cursor
  kept in the checkpoint: a row whose current weight is > 0 joins the step's batch, until the
  batch holds --batch-size rows; a row at weight 0 is skipped, and in the rkl stage it is a
  probe with probability --explore (a seeded draw per stream position), i.e. each weight-0
  problem is probed with that chance once per pass over the pool. Sampling decides which
  problems are observed; the loss weight decides how much a trained problem counts. A probe
  is sampled and graded, never trained on, so the batch objective stays
  sum_i w_i * mean_t(kl_i,t) / batch_size over the batch's rows. Weights are renormalised at
  every step to mean 1 over the rows with weight > 0 (`online.row_weights`).
- Observations. Every rkl sample (trained rows and probes) is graded as `paced grade` grades it
  (`SampleGrader`: grader --reweight-grader, the hard-kill pool, the default options) in a
  background thread while the next step computes; the samples of step s enter the posterior at
  the end of step s + 1, so step t's weights hold the samples of steps <= t - 2 (a fixed lag,
  whatever the timing, so runs repeat exactly). In a forward-KL stage (fkl, akl) there are no
  student samples: with --reweight-every N, every N steps the current student samples
  --reweight-samples answers to every training problem, graded at once.
- FSDP: each rank grades its own share; the per-problem counts are summed over ranks
  (`par.total`) before they are added, so the posterior is one state, equal on every rank and
  equal to one process's. A checkpoint holds the posterior, the stream cursor and the last
  step's counts (graded and summed when the checkpoint is written), so a resumed run continues
  exactly.

    online = start_online(config, examples, table, par, draw, tokenizer, eos, max_length)
    online.refresh(step, stage)                   # a forward-KL stage, every --reweight-every steps
    batch, probes = online.batch(step, stage)     # this step's rows at their current weights; probes
    online.probe(step, probes)                    # before any backward
    online.observe(step, chunk, responses)        # after each rkl micro-batch is sampled
    online.end_step(step, sampled=True)           # after the optimizer step
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa

from paced_curate.distill.online import (
    Posterior,
    Weighting,
    check_export_weights,
    initial_counts,
    posterior_table,
    row_weights,
    weight_moved,
)
from paced_curate.distill.rundir import WEIGHTS_TABLES
from paced_curate.errors import ConfigError
from paced_curate.report import say
from paced_curate.rollout.requests import problem_seed

GRADE_TIMEOUT = 5.0
"""Seconds one sample may take to grade (`paced grade --timeout`'s default)."""
START_TABLE, FINAL_TABLE = WEIGHTS_TABLES
"""Weights tables (`paced weight`'s schema) a run writes: at the start, and the final posterior (seeds the next round)."""


@dataclass
class _Pending:
    """The counts of one step's samples: graded in the background (`future`), or already summed over ranks (`summed`)."""

    step: int
    future: Future | None
    summed: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


class OnlineReweighting:
    """Online PACED during one `run_distill` call (module docstring).

    Args:
        config: the run's DistillConfig (--reweight online).
        examples: the training rows (`data.load_examples`), weights as exported.
        table: the export's train split (problem_id, prompt, answer, n_correct, n_samples, pass_rate).
        weighting: the record of how the export's weights were made (`online.Weighting`).
        par: `parallel.Local` or `parallel.Fsdp` (share, total).
        draw: draw(prompts, seeds, budgets) -> token ids per row, the student's samples (collective under FSDP).
        decode: token ids -> text, as the rollout engines decode.
        eos: tokens that end a response.
        max_length: the run's --max-length (bounds each sample's budget).

    Raises:
        ConfigError: the export's weights are not the recorded weighting of its counts (so they
            cannot be re-estimated), or it lacks an answer column.
    """

    def __init__(self, config, examples: list, table: pa.Table, weighting: Weighting, par, draw, decode, eos, max_length: int) -> None:
        self.config, self.examples, self.par, self.draw, self.decode = config, examples, par, draw, decode
        self.eos, self.max_length = set(eos), max_length
        ids = [e.problem_id for e in examples]
        self.problem_ids = list(dict.fromkeys(ids))
        index = self.problem_index = {pid: i for i, pid in enumerate(self.problem_ids)}
        self.problem_of_row = np.array([index[pid] for pid in ids], dtype=np.int64)
        first = {}
        for position, example in enumerate(examples):
            first.setdefault(example.problem_id, position)
        self.first_row = [examples[first[pid]] for pid in self.problem_ids]
        rows = [e.row for e in self.first_row]
        self.answers = [table.column("answer")[r].as_py() for r in rows]
        rates = np.array([np.nan if v is None else v for v in table.column("pass_rate").to_pylist()], dtype=np.float64)
        correct, scored = initial_counts(table.column("n_correct").to_numpy(), table.column("n_samples").to_numpy(), rates)
        self.posterior = Posterior(correct[rows], scored[rows], weighting, config.resolved_halflife)
        self.start_counts = (correct[rows].copy(), scored[rows].copy())
        weights = self.posterior.weights(0)
        check_export_weights(weights, self.problem_of_row, examples, weighting, config.shards)
        self.cursor = 0
        self.noted_empty = False
        self.pending: _Pending | None = None
        self.queue: list[tuple[int, str, str]] = []
        self.last = {"weights": weights, "step": 0}
        self.since = _counters()
        self.grader = SampleGrader(config.resolved_reweight_grader, config.reweight_workers or 1)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="paced-reweight")

    # ---- batches --------------------------------------------------------------------------

    def batch(self, step: int, stage: str) -> tuple[list, list]:
        """The training rows of step `step` with their current weights, and the probes (rkl stage only).

        When no problem is on the frontier the batch is empty (the step trains nothing) after one
        pass over the pool, which probes in the rkl stage, so problems can come back.
        """
        weights = row_weights(self.posterior.weights(step), self.problem_of_row)
        explore = self.config.resolved_explore if stage == "rkl" else 0.0
        chosen, probed, self.cursor = walk(self.cursor, weights > 0, self.config.batch_size, self.config.seed, explore)
        if not chosen:
            if not self.noted_empty:
                self.noted_empty = True
                say(f"NOTE: step {step + 1}: no problem is on the frontier any more; steps like it train nothing"
                    + (" and only probe" if explore else ""))
            self.since["empty_steps"] += 1
        self.since["probes"] += len(probed)
        # Copies of a row in one batch (a batch can span epochs) are numbered, so each draws its own rkl sample (#21).
        seen: Counter = Counter()
        batch = []
        for i in chosen:
            batch.append(replace(self.examples[i], weight=float(weights[i]), copy=seen[i]))
            seen[i] += 1
        return batch, [self.examples[i] for i in probed]

    def probe(self, step: int, probes: list) -> None:
        """Sample this rank's share of the probes (every rank calls it: sampling is collective under FSDP) and queue them."""
        if not probes:
            return
        mine = self.par.share(probes)
        seeds = [problem_seed(self.config.seed, f"probe:step{step}:row{e.row}:{i}") for i, e in enumerate(probes)][self.par.rank :: self.par.world]
        budgets = [min(self.config.rkl_max_tokens, self.max_length - len(e.prompt_ids)) for e in mine]
        self.observe(step, mine, self.draw([e.prompt_ids for e in mine], seeds, budgets))

    # ---- observations ---------------------------------------------------------------------

    def observe(self, step: int, examples: list, responses: list[list[int]]) -> None:
        """Queue this rank's samples of step `step` for grading (as text, decoded as the rollout engines decode)."""
        for example, tokens in zip(examples, responses):
            stopped = bool(tokens) and tokens[-1] in self.eos
            self.queue.append((self.problem_index[example.problem_id], self.decode(tokens), "stop" if stopped else "length"))

    def end_step(self, step: int, sampled: bool) -> None:
        """After step `step`: hand its samples to the grader, and add the previous step's counts to the posterior.

        Args:
            step: the step just trained (0-based).
            sampled: whether the step drew student samples (an rkl step), the same on every rank.
        """
        submitted = None
        if sampled:
            items, self.queue = self.queue, []
            future = self.executor.submit(self.grader.counts, items, self.answers) if items else None
            submitted = _Pending(step, future)
        if self.pending is not None:
            self._apply(self.pending)
        self.pending = submitted

    def finish(self, total: int) -> None:
        """Add the last step's counts (the final posterior holds every sample)."""
        if self.pending is not None:
            self._apply(self.pending)
            self.pending = None

    def _summed(self, pending: _Pending) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import torch

        if pending.summed is None:
            waited = time.perf_counter()
            correct, scored, samples, seconds = (
                pending.future.result() if pending.future is not None else (*_zeros(len(self.problem_ids), 3), 0.0)
            )
            self.since["grader_wait_s"] += time.perf_counter() - waited
            self.since["grader_s"] += seconds
            totals = self.par.total(*(torch.from_numpy(a) for a in (correct, scored, samples)))  # (#17) summed over ranks
            pending.summed = tuple(t.numpy().astype(np.float64) for t in totals)
            pending.future = None
        return pending.summed

    def _apply(self, pending: _Pending) -> None:
        correct, scored, samples = self._summed(pending)
        self.posterior.add(correct, scored, pending.step)
        self.since["samples"] += int(samples.sum())
        self.since["correct"] += int(correct.sum())

    def refresh(self, step: int, stage: str) -> None:
        """In a forward-KL stage, every --reweight-every steps: K samples of the current student per problem, graded now."""
        every = self.config.reweight_every
        if not every or step == 0 or step % every or stage == "rkl":
            return
        started = time.perf_counter()
        k = self.config.resolved_reweight_samples
        jobs = [(p, i) for p in range(len(self.problem_ids)) for i in range(k)]
        mine = jobs[self.par.rank :: self.par.world]
        # Every rank makes the same number of (collective) sampling calls, some possibly empty.
        chunk = self.config.eval_batch_size
        calls = -(-((len(jobs) + self.par.world - 1) // self.par.world) // chunk)
        items = []
        for call in range(calls):
            part = mine[call * chunk : (call + 1) * chunk]
            rows = [self.first_row[p] for p, _ in part]
            seeds = [problem_seed(self.config.seed, f"refresh:step{step}:{self.problem_ids[p]}:{i}") for p, i in part]
            budgets = [min(self.config.rkl_max_tokens, self.max_length - len(e.prompt_ids)) for e in rows]
            for (p, _), tokens in zip(part, self.draw([e.prompt_ids for e in rows], seeds, budgets)):
                items.append((p, self.decode(tokens), "stop" if tokens and tokens[-1] in self.eos else "length"))
        future = self.executor.submit(self.grader.counts, items, self.answers) if items else None
        self._apply(_Pending(step, future))
        self.since["refresh_samples"] += len(jobs)
        self.since["refresh_s"] += time.perf_counter() - started

    # ---- records, state and tables --------------------------------------------------------

    def record(self, step: int) -> dict:
        """A metrics.jsonl record (kind "reweight"): the frontier now and what changed since the last record."""
        weights = self.posterior.weights(step)
        frontier, before = weights > 0, self.last["weights"] > 0
        c, n = self.posterior.counts(step)
        scored = n > 0
        since = self.since
        record = {
            "step": step, "kind": "reweight", "frontier": int(frontier.sum()), "problems": len(weights),
            "faded": int((frontier & (weights < self.posterior.threshold)).sum()),
            "entered": int((frontier & ~before).sum()), "left": int((~frontier & before).sum()),
            "weight_moved": weight_moved(self.last["weights"], weights), "mean_pass_rate": float((c[scored] / n[scored]).mean()) if scored.any() else None,
            "samples": since["samples"], "correct": since["correct"], "probes": since["probes"], "empty_steps": since["empty_steps"],
            "refresh_samples": since["refresh_samples"], "refresh_s": round(since["refresh_s"], 3),
            "grader_s": round(since["grader_s"], 3), "grader_wait_s": round(since["grader_wait_s"], 3), "since_step": self.last["step"],
        }
        self.last = {"weights": weights, "step": step}
        self.since = _counters()
        return record

    def state_dict(self) -> dict:
        """What a checkpoint needs (collective under FSDP: the last step's counts are graded and summed now)."""
        import torch

        pending = None
        if self.pending is not None:
            correct, scored, samples = self._summed(self.pending)
            pending = {"step": self.pending.step, "counts": torch.from_numpy(np.stack([correct, scored, samples]))}
        return {
            "posterior": self.posterior.state_dict(), "cursor": self.cursor, "pending": pending,
            "last_weights": torch.from_numpy(self.last["weights"].copy()), "last_step": self.last["step"], "since": dict(self.since),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from a checkpoint's `state_dict`."""
        self.posterior.load_state_dict(state["posterior"])
        self.cursor = int(state["cursor"])
        pending = state["pending"]
        self.pending = None if pending is None else _Pending(int(pending["step"]), None, tuple(pending["counts"].numpy().astype(np.float64)))
        self.last = {"weights": state["last_weights"].numpy().copy(), "step": int(state["last_step"])}
        self.since = _counters() | dict(state["since"])

    def weights_table(self, step: int) -> tuple[pa.Table, dict]:
        """The posterior at `step` as a `paced weight` table (counts rounded to whole samples) and its provenance."""
        counts = self.start_counts if step == 0 else self.posterior.counts(step)
        return posterior_table(self.problem_ids, *counts, self.posterior.weighting, {
            "step": step, "halflife": self.posterior.halflife, "explore": self.config.resolved_explore, "shards": self.config.shards,
        })

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.grader.close()

    def __enter__(self) -> "OnlineReweighting":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _counters() -> dict:
    return {"samples": 0, "correct": 0, "probes": 0, "empty_steps": 0, "refresh_samples": 0, "refresh_s": 0.0, "grader_s": 0.0, "grader_wait_s": 0.0}


def _zeros(size: int, count: int) -> list[np.ndarray]:
    return [np.zeros(size) for _ in range(count)]


def walk(cursor: int, active: np.ndarray, batch_size: int, seed: int, explore: float) -> tuple[list[int] | None, list[int], int]:
    """From stream position `cursor`, the next `batch_size` active rows, the probed inactive rows, and the new cursor.

    The stream is the epochs' seeded permutations of all rows, back to back (`data.epoch_order`);
    an inactive row at position j is probed when a uniform draw seeded by (seed, j) is below
    `explore`.

    Returns:
        (rows, probes, cursor); rows is empty when a whole pass over the rows found no active one.
    """
    from paced_curate.distill.data import epoch_order

    num_rows = len(active)
    chosen, probed, orders = [], [], {}
    position, idle = cursor, 0
    while len(chosen) < batch_size:
        epoch, offset = divmod(position, num_rows)
        if epoch not in orders:
            orders[epoch] = epoch_order(num_rows, seed, epoch)
        row = int(orders[epoch][offset])
        if active[row]:
            chosen.append(row)
            idle = 0
        else:
            if explore > 0 and np.random.default_rng([seed, 25, position]).random() < explore:
                probed.append(row)
            idle += 1
            if idle == num_rows:
                return [], probed, position + 1
        position += 1
    return chosen, probed, position


class SampleGrader:
    """`paced grade`'s verdicts on the student's samples, with one hard-kill pool for the whole run.

    The same steps as `paced grade` at its defaults: a sample cut at its token budget is
    `truncated` and scored as a failure (--truncated wrong), the others are reduced to their final
    answer (`graders.reduce_completion`) and graded in `pool.GradingPool` (a task past --timeout 5 s
    kills its worker); `timeout` and `error` are left out of the pass rate (--errors exclude).
    `grade.grade_table` would start a pool per call (a second or more per step on a busy CPU);
    this one keeps its workers, and its verdicts by (answer, gold), across steps.

    Args:
        grader: math, exact, numeric, choice or module:function (`paced grade --grader`).
        workers: grading processes.
    """

    def __init__(self, grader: str, workers: int) -> None:
        from paced_curate.grade.graders import load_grader
        from paced_curate.grade.pool import GradingPool

        self.spec = load_grader(grader)
        self.pool = GradingPool([self.spec], workers=workers, timeout=GRADE_TIMEOUT)
        self.cache: dict[tuple[str, str], str] = {}

    def counts(self, items: list[tuple[int, str, str]], answers: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Grade samples and count them per problem.

        Args:
            items: (problem index, completion text, finish reason "stop" or "length").
            answers: the gold answer of each problem.

        Returns:
            (correct, scored, samples, seconds): [problems] float64 counts, and the grading time.
        """
        from paced_curate.grade.graders import GRADED_VERDICTS, reduce_completion

        started = time.perf_counter()
        verdicts: list[str | None] = [None] * len(items)
        waiting: dict[tuple[str, str], list[int]] = {}
        for position, (problem, text, reason) in enumerate(items):
            if reason != "stop":
                verdicts[position] = "truncated"
                continue
            reduced = reduce_completion(self.spec, text)
            if reduced is None:
                verdicts[position] = "no_answer"
                continue
            key = (reduced, answers[problem])
            if key in self.cache:
                verdicts[position] = self.cache[key]
            else:
                waiting.setdefault(key, []).append(position)
        tasks = list(waiting)
        for key, outcome in zip(tasks, self.pool.run([(0, reduced, gold) for reduced, gold in tasks])):
            self.cache[key] = outcome.verdict
            for position in waiting[key]:
                verdicts[position] = outcome.verdict
        size = len(answers)
        problem = np.array([p for p, _, _ in items], dtype=np.int64)
        scored = np.array([v in GRADED_VERDICTS or v == "truncated" for v in verdicts], dtype=np.float64)
        correct = np.array([v == "correct" for v in verdicts], dtype=np.float64)
        return (np.bincount(problem, weights=correct, minlength=size), np.bincount(problem, weights=scored, minlength=size),
                np.bincount(problem, minlength=size).astype(np.float64), time.perf_counter() - started)

    def close(self) -> None:
        self.pool.close()


def start_online(config, examples: list, table: pa.Table, par, draw, tokenizer, eos: list[int], max_length: int) -> OnlineReweighting:
    """The `OnlineReweighting` of a run, from the export's record of how its weights were made; says what it will do.

    Raises:
        ConfigError: the export repeats rows instead of weighting them (--weights-as copies), or its
            weights are not its counts under the recorded weighting.
    """
    from paced_curate.export.layout import export_manifest
    from paced_curate.report import say

    manifest = export_manifest(config.shards) or {}
    if manifest.get("weights_as") == "copies":
        raise ConfigError(
            f"{config.shards}: repeats each problem in proportion to its weight (--weights-as copies), so there is no weight "
            "to re-estimate; export with --weights-as column (the default) for --reweight online"
        )
    weighting = Weighting.from_record(manifest.get("weighting"))
    online = OnlineReweighting(
        config, examples, table, weighting, par, draw, lambda tokens: tokenizer.decode(tokens, skip_special_tokens=True), eos, max_length
    )
    raw = online.posterior.weights(0)
    zero = int((raw == 0).sum())
    refresh = (f"; forward-KL stage: {config.resolved_reweight_samples} samples per problem every {config.reweight_every} steps"
               if config.reweight_every else "")
    say(
        f"online PACED: {len(raw):,} problems ({zero:,} at weight 0, {zero_weight_probing(config)}), "
        f"weights {weighting.describe()} on counts that halve every {config.resolved_halflife} steps, graded with "
        f"{config.resolved_reweight_grader}{refresh}"
    )
    return online


def zero_weight_probing(config) -> str:
    """What online PACED does with weight-0 problems under `config` (a `DistillConfig`), for its start line.

    Only the rkl stage samples the student on them (at --explore); an fkl or akl run never does.
    """
    if "rkl" in config.stages():
        return f"probed at --explore {config.resolved_explore:g} in the rkl stage"
    return f"not probed without an rkl stage (--loss {config.loss})"


def write_weights_tables(online: OnlineReweighting, run_dir, total: int) -> None:
    """RUN_DIR/weights_start.parquet and weights_final.parquet (the posterior at step 0 and after the last step)."""
    from pathlib import Path

    from paced_curate.io import write_table
    from paced_curate.report import say
    from paced_curate.schema import WEIGHTS

    for name, step in ((START_TABLE, 0), (FINAL_TABLE, total)):
        try:
            table, provenance = online.weights_table(step)
        except ConfigError as error:  # every rounded count gives weight 0: nothing a next round could train on
            say(f"NOTE: {name} not written: {error}")
            continue
        write_table(table, str(Path(run_dir) / name), WEIGHTS, provenance)
