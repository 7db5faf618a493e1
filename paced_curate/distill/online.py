"""Online PACED (#25): each problem's pass-rate evidence as the student learns, and the weight it gives now.

Pure functions and state (numpy; `posterior_table` builds an Arrow table); `tests/test_distill_online.py`
checks the posterior against a slow reference that keeps every observation and its age.

Evidence. A problem's state is a pair of decayed counts: c correct of n scored samples. At the
start they are the export's counts (the samples the static weights were measured on, drawn from
the student before training). A sample drawn at optimizer step s (0-based; the student then had
s updates; the export's samples count as s = 0) counts 2^(-(t - s) / h) at step t, where h is
`--reweight-halflife`: the student that produced it no longer exists, so its evidence fades.
h = 0 turns the decay off (every sample counts 1 for ever).

Weight. The weight of a problem at step t is the estimator the static weights were made with
(the export records it: kernel, alpha, beta, estimator, prior, floor), applied to the decayed
counts:
- `empirical` (plug-in, the default): w(c / n). A common decay leaves c / n unchanged, so
  until new evidence arrives the online weight IS the static weight; the half-life only sets
  how much a new sample counts against the old ones. A problem has weight 0 exactly when all
  its evidence agrees (only failures or only successes), as in static PACED.
- `bayes`, `eb`: the posterior mean of w(p) under Beta(a0 + c, b0 + n - c) (eb's prior a0, b0
  is the one fitted at the start, kept fixed): decay widens the posterior towards the prior.
- the floor (`paced weight --floor`) is applied after, as `paced weight` applies it.
A problem with n = 0 has weight 0.

The frontier is the problems with weight > 0: those the run trains on. As in static PACED, a
problem has weight 0 when all its evidence agrees (only failures, only successes, or none), so a
problem the student has never solved enters the frontier with its first success, and a solved
problem that fails again re-enters it. Once a problem's evidence is mixed its plug-in weight
falls towards 0 as its estimate approaches 0 or 1 but does not reach it: an estimate that
drifts out of [1/K, 1 - 1/K] gives a weight below tau, the least weight any problem had at the
start (w(1/K), 0.109 for K = 8), which the records count as faded. (Cutting such weights to 0
was tried on a settings-selection world: a problem at 1/8 fell below tau at its first failure,
most likely at p near 1/8, and 88 of 217 frontier problems left in 20 steps, before the student
had changed; bench/online_prereg.md.)

The counts are stored in a fixed frame (each sample added with 2^(s/h), the whole multiplied by
2^(-t/h) when read), so decaying costs nothing and leaves c / n bit for bit unchanged; the frame
is moved by a whole number of half-lives (an exact power of two) every 64 half-lives. Evidence
about 1,000 half-lives old falls below float64's range and is gone.

    weighting = Weighting.from_record(manifest["weighting"])
    posterior = Posterior(n_correct, n_scored, weighting, halflife=40)
    posterior.add(correct, scored, step=12)          # dense [problems] counts of samples drawn at step 12
    weights = posterior.weights(step=14)              # [problems] w at step 14
    rows = row_weights(weights, problem_of_row)       # [rows] mean 1 over rows with weight > 0
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from paced_curate.errors import ConfigError

REBASE_HALFLIVES = 64
"""The frame moves after this many half-lives (2^64 stays far from float64's range)."""


@dataclass(frozen=True, kw_only=True)
class Weighting:
    """How weights are computed from counts: the `paced weight` settings the export records."""

    kernel: str = "beta"
    alpha: float = 1.0
    beta: float = 1.0
    low: float | None = None
    high: float | None = None
    estimator: str = "empirical"
    prior_a: float = 0.5
    """The Beta prior of `bayes`, or the prior `eb` fitted at the start."""
    prior_b: float = 0.5
    floor: float = 0.0

    @classmethod
    def from_record(cls, record: dict | None) -> "Weighting":
        """The weighting an export's manifest records (`weighting`: `paced weight`'s settings and fitted prior).

        Missing keys take `paced weight`'s defaults (an export of weights made by another tool
        records none: the check in `check_export_weights` then tells whether they fit).

        Raises:
            ConfigError: a kernel or estimator paced does not know.
        """
        record = record or {}
        known = {name: record[name] for name in cls.__dataclass_fields__ if record.get(name) is not None}
        prior = record.get("prior")
        if record.get("estimator") == "eb" and isinstance(prior, dict) and prior.get("a") and prior.get("b"):
            known |= {"prior_a": float(prior["a"]), "prior_b": float(prior["b"])}
        weighting = cls(**known)
        if weighting.kernel not in ("beta", "uniform", "band") or weighting.estimator not in ("empirical", "bayes", "eb"):
            raise ConfigError(f"the export's weights use kernel {weighting.kernel!r} and estimator {weighting.estimator!r}, which paced cannot re-estimate")
        if weighting.kernel == "band" and (weighting.low is None or weighting.high is None):
            raise ConfigError("the export's weights use the band kernel but the record lacks its low and high ends")
        return weighting

    def describe(self) -> str:
        """The weighting as `paced weight` flags, for messages."""
        from paced_curate.weight.kernels import weighting_flags

        return weighting_flags(self.kernel, self.alpha, self.beta, self.low, self.high, self.estimator, self.floor)

    def as_dict(self) -> dict:
        return asdict(self)


def raw_weights(c: np.ndarray, n: np.ndarray, weighting: Weighting) -> np.ndarray:
    """The raw (unnormalised) weight of each problem from its (possibly fractional) counts.

    Args:
        c: [problems] correct samples (decayed counts, >= 0).
        n: [problems] scored samples, n >= c.
        weighting: kernel, estimator, prior and floor.

    Returns:
        [problems] float64, 0 where n = 0; the same numbers `paced weight` writes to `weight_raw`
        for whole counts.
    """
    from paced_curate.weight.estimators import band_probability, posterior_moments
    from paced_curate.weight.kernels import band_weight, kernel_weight

    c = np.asarray(c, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    scored = n > 0
    if weighting.kernel == "uniform":
        raw = np.ones(c.shape)
    elif weighting.estimator == "empirical":
        rate = np.divide(c, n, out=np.zeros(c.shape), where=scored)
        if weighting.kernel == "band":
            raw = np.asarray(band_weight(rate, weighting.low, weighting.high), dtype=np.float64)
        else:
            raw = np.asarray(kernel_weight(rate, weighting.alpha, weighting.beta), dtype=np.float64)
    elif weighting.kernel == "band":
        raw = np.asarray(band_probability(c, n, weighting.low, weighting.high, weighting.prior_a, weighting.prior_b), dtype=np.float64)
    else:
        raw = np.asarray(posterior_moments(c, n, weighting.alpha, weighting.beta, weighting.prior_a, weighting.prior_b)[0], dtype=np.float64)
    raw = np.where(scored, raw, 0.0)
    if weighting.floor:
        raw = np.where(scored, np.maximum(raw, weighting.floor), raw)
    return raw.reshape(c.shape)


def row_weights(raw: np.ndarray, problem_of_row: np.ndarray) -> np.ndarray:
    """Each training row's weight: its problem's share (raw / rows of the problem), scaled to mean 1 over rows with weight > 0.

    A problem with R rows (one per teacher reference) gives each row raw / R, as `paced export`
    shares a problem's weight among its rows. Mean 1 over the rows that train (weight > 0) is
    the scale of a default export that left weight-0 problems out (`--normalize rows`), so a
    step's loss has the scale of a static PACED step whatever the share of weight-0 problems.

    Args:
        raw: [problems] raw weights (`raw_weights`).
        problem_of_row: [rows] int, the problem of each row.

    Returns:
        [rows] float64; all 0 when no problem has weight > 0.
    """
    raw = np.asarray(raw, dtype=np.float64)
    problem_of_row = np.asarray(problem_of_row, dtype=np.int64)
    rows_of = np.bincount(problem_of_row, minlength=len(raw)).astype(np.float64)
    shares = raw[problem_of_row] / rows_of[problem_of_row]
    positive = shares > 0
    if not positive.any():
        return shares
    return shares * (positive.sum() / shares[positive].sum())


class Posterior:
    """Decayed per-problem counts (see the module docstring): pure state, no I/O.

    Args:
        n_correct: [problems] initial correct samples (the export's n_correct).
        n_scored: [problems] initial scored samples.
        weighting: how counts become weights.
        halflife: steps after which a sample counts half; 0: no decay.
    """

    def __init__(self, n_correct, n_scored, weighting: Weighting, halflife: int) -> None:
        self.weighting = weighting
        self.halflife = int(halflife)
        self.correct = np.asarray(n_correct, dtype=np.float64).copy()
        self.scored = np.asarray(n_scored, dtype=np.float64).copy()
        if self.correct.shape != self.scored.shape or (self.correct > self.scored).any() or (self.correct < 0).any():
            raise ValueError("counts must be arrays of one shape with 0 <= n_correct <= n_scored")
        self.base = 0
        """The frame's step: a sample drawn at step s is stored times 2^((s - base) / h)."""
        self.threshold = frontier_threshold(self.raw_weights(0))
        """tau, the least positive weight at the start: below it a frontier problem counts as faded (records only)."""

    def __len__(self) -> int:
        return len(self.correct)

    def _scale(self, step: int) -> float:
        """2^((step - base) / h): what a sample drawn at `step` is stored with (1 without decay)."""
        return 1.0 if self.halflife == 0 else math.pow(2.0, (step - self.base) / self.halflife)

    def add(self, correct, scored, step: int) -> None:
        """Add samples drawn at optimizer step `step` (dense [problems] counts; scored >= correct)."""
        correct = np.asarray(correct, dtype=np.float64)
        scored = np.asarray(scored, dtype=np.float64)
        self._rebase(step)
        scale = self._scale(step)
        self.correct += correct * scale
        self.scored += scored * scale

    def _rebase(self, step: int) -> None:
        """Move the frame forward by whole half-lives (exact powers of two) before stored values grow large."""
        if self.halflife == 0 or step - self.base < REBASE_HALFLIVES * self.halflife:
            return
        whole = (step - self.base) // self.halflife
        self.correct = np.ldexp(self.correct, -whole)
        self.scored = np.ldexp(self.scored, -whole)
        self.base += whole * self.halflife

    def counts(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(c, n) at optimizer step `step`: each sample weighted 2^(-(step - s)/h). Reading changes no state."""
        if self.halflife == 0:
            return self.correct.copy(), self.scored.copy()
        whole, part = divmod(step - self.base, self.halflife)
        factor = math.pow(2.0, part / self.halflife)
        return np.ldexp(self.correct, -whole) / factor, np.ldexp(self.scored, -whole) / factor

    def raw_weights(self, step: int) -> np.ndarray:
        """[problems] the weight of each problem at `step` (see the module docstring)."""
        if self.weighting.estimator == "empirical":
            # The plug-in reads c / n, which the frame leaves exact: no division by the scale.
            return raw_weights(self.correct, self.scored, self.weighting)
        return raw_weights(*self.counts(step), self.weighting)

    def weights(self, step: int) -> np.ndarray:
        """[problems] the weight of each problem at `step` (`raw_weights`; 0 only where the evidence is one-sided or absent)."""
        return self.raw_weights(step)

    def state_dict(self) -> dict:
        """Plain values and tensors (for `torch.load(weights_only=True)`)."""
        import torch

        return {"correct": torch.from_numpy(self.correct.copy()), "scored": torch.from_numpy(self.scored.copy()),
                "base": self.base, "halflife": self.halflife}

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` returned (the weighting comes from the export, as at the start)."""
        if int(state["halflife"]) != self.halflife or len(state["correct"]) != len(self):
            raise ValueError("the saved posterior was made with another half-life or another set of problems")
        self.correct = state["correct"].numpy().astype(np.float64).copy()
        self.scored = state["scored"].numpy().astype(np.float64).copy()
        self.base = int(state["base"])


def frontier_threshold(raw: np.ndarray) -> float:
    """tau, the least positive raw weight at the start (module docstring, "The frontier"); inf when none is positive.

    With the plug-in beta kernel and K samples per problem this is w(1/K) (0.109 for K = 8): a
    weight below it is an estimated pass rate the start's K samples could not have given.
    """
    positive = raw[raw > 0]
    return float(positive.min()) if positive.size else math.inf


def weight_moved(before: np.ndarray, after: np.ndarray) -> float:
    """The share of the weight mass that moved between problems: total variation of the two normalised weight vectors, in [0, 1]."""
    a, b = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    if not a.sum() > 0 or not b.sum() > 0:
        return 0.0 if a.sum() == b.sum() else 1.0
    return float(0.5 * np.abs(a / a.sum() - b / b.sum()).sum())


def initial_counts(n_correct, n_samples, pass_rate) -> tuple[np.ndarray, np.ndarray]:
    """Per row: (n_correct, n_scored) from an export's columns (the export carries n_samples and pass_rate, not n_scored).

    n_scored = n_correct / pass_rate (exact for any realistic count) when pass_rate > 0; 0 when
    pass_rate is null (no scored sample); n_samples when pass_rate is 0, which is exact unless
    some of the problem's samples were excluded from its pass rate (truncated or errors under an
    exclude policy): then the old evidence counts a little more than it should.

    Args:
        n_correct, n_samples: [rows] ints.
        pass_rate: [rows] floats, NaN where null.
    """
    c = np.asarray(n_correct, dtype=np.float64)
    samples = np.asarray(n_samples, dtype=np.float64)
    rate = np.asarray(pass_rate, dtype=np.float64)
    n = np.where(np.isnan(rate), 0.0, np.where(rate > 0, np.round(c / np.where(rate > 0, rate, 1.0)), samples))
    return np.where(np.isnan(rate), 0.0, c), n


def check_export_weights(raw: np.ndarray, problem_of_row: np.ndarray, examples: list, weighting: Weighting, shards: str) -> None:
    """Refuse an export whose weights are not its counts under the recorded weighting (online PACED recomputes them).

    The recomputed row weights must be 0 where the export's are and proportional elsewhere.

    Raises:
        ConfigError: naming the first row that differs.
    """
    ours = row_weights(raw, problem_of_row)
    theirs = np.array([e.weight for e in examples], dtype=np.float64)
    positive = theirs > 0
    scale = ours[positive].sum() / theirs[positive].sum() if positive.any() else 1.0
    bad = np.flatnonzero((positive != (ours > 0)) | ~np.isclose(ours, theirs * scale, rtol=1e-6, atol=1e-12))
    if bad.size:
        e = examples[int(bad[0])]
        raise ConfigError(
            f"{shards} train row {e.row} (problem {e.problem_id!r}): its weight {e.weight:.6g} is not what the recorded weighting "
            f"({weighting.describe()}) gives for its counts, so --reweight online cannot re-estimate it; export the weights "
            "'paced weight' wrote for these samples (or train with --reweight static)"
        )


def posterior_table(problem_ids: list[str], correct: np.ndarray, scored: np.ndarray, weighting: Weighting, online: dict) -> tuple[pa.Table, dict]:
    """A `paced weight` table (schema.WEIGHTS) of decayed counts, rounded to whole samples, and its provenance.

    The weight and pass-rate columns are recomputed from the rounded counts with the same
    weighting, so the table is what `paced weight` would write for them and can seed the next
    round (`paced export --weights`).
    """
    from paced_curate.weight.estimators import BetaPrior
    from paced_curate.weight.runner import WeightConfig, weigh_counts
    from paced_curate.schema import WEIGHTS

    c = np.round(correct).astype(np.int64)
    n = np.maximum(np.round(scored).astype(np.int64), c)
    counts = pa.table({
        "problem_id": pa.array(problem_ids, pa.string()), "n_samples": pa.array(n, pa.int32()), "n_correct": pa.array(c, pa.int32()),
        "n_excluded": pa.array(np.zeros(len(c), dtype=np.int64), pa.int32()), "n_scored": pa.array(n, pa.int32()),
    })
    settings = {name: value for name, value in weighting.as_dict().items() if name != "floor" or value}
    config = WeightConfig(graded="(online posterior)", **settings)
    prior = BetaPrior(weighting.prior_a, weighting.prior_b, fitted=weighting.estimator == "eb") if weighting.estimator != "empirical" else None
    table, constant = weigh_counts(counts, config, prior)
    order = pc.sort_indices(table, [("problem_id", "ascending")])
    provenance = {"settings": settings | {"interval": config.interval, "confidence": config.confidence, "normalize": config.normalize},
                  "normalizing_constant": constant, "prior": prior.to_dict() if prior else None, "online": online}
    return table.take(order).cast(WEIGHTS.schema), provenance
