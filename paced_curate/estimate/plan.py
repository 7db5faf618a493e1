"""The adaptive sampling policy of `paced estimate`, as pure functions of per-problem counts.

Round 0 draws `min_samples` samples of every problem. After each round the zero-and-one-inflated
Beta prior is refitted to the whole pool, and each problem is judged by the stopping rule of
`stopping.py`: sample again only while the expected drop in the written weight's error is worth
the samples, at the price per sample that makes the run's weights as good as fixed
K = `match_k` plug-in weights under that prior. A problem stays open while the rule says so and
it has fewer than `max_samples` samples; once closed it stays closed (a refitted prior does not
reopen it). Each later round draws `round_samples` more samples (capped at `max_samples`) of
every open problem at once, so the engine always gets a large batch. Open problems all have the
same number of samples (they were all open in every earlier round), so a round is one rollout
of "samples n .. n + m - 1" of its problems.

Nothing here touches files or engines, so `bench/simulated_student.py` and `bench/adaptive.py`
replay the exact policy on samples drawn once (an adaptive run is a per-problem prefix of a
fixed-K run).

    policy = Policy(min_samples=4, max_samples=16, round_samples=2, match_k=8)
    state = assess(policy, n_samples, n_correct, n_scored, weight_config)
    plan = next_round(policy, n_samples, state.open)        # (first_sample, count, problem indices) or None
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from paced_curate.estimate.stopping import Schedule, StoppingModel
from paced_curate.weight.estimators import estimate, fit_prior
from paced_curate.weight.inflated import InflatedPrior, fit_inflated_prior

# The run aims at this share of fixed K plug-in weights' expected squared error, so that the
# realised error, which scatters around the expectation, is not above it (bench/adaptive_prereg.md).
RISK_MARGIN = 0.9
# The loss of keeping (weight > 0) a never-solved problem, in squared raw weight (an error of
# about 0.055 in one weight): a teacher reference and training for nothing (bench/adaptive_prereg.md).
WASTE = 0.003


@dataclass(frozen=True)
class Policy:
    """The stopping rule's numbers (see the module docstring)."""

    min_samples: int
    max_samples: int
    round_samples: int
    match_k: int = 8
    """The fixed K whose plug-in weights the adaptive weights must be as good as (expected squared error)."""
    margin: float = RISK_MARGIN
    """Aim at margin x that expected squared error."""
    waste: float = WASTE
    """The loss of keeping a never-solved problem (`stopping.StoppingModel`), where --min-weight can drop it."""

    @property
    def schedule(self) -> Schedule:
        return Schedule(self.min_samples, self.max_samples, self.round_samples)


@dataclass(frozen=True)
class Assessment:
    """Where a pool stands after a round."""

    prior: InflatedPrior
    """The stopping rule's model of the pool's pass rates."""
    written: np.ndarray
    """Each problem's raw weight if the run stopped now (the written estimator, --min-weight applied)."""
    error: np.ndarray
    """Each problem's posterior root expected squared error of that written weight."""
    open: np.ndarray
    """Boolean: the problem needs more samples."""
    price: float
    """The calibrated (careful) price per sample, in squared weight error."""
    share: float
    """The share of problems that follow the careful price's rule (`stopping.Calibration`)."""
    expected_rmse: float
    """Root expected squared error per problem of the whole run's written weights, under the prior."""
    reference_rmse: float
    """The same for fixed K = match_k plug-in weights."""
    expected_samples: float
    """Expected samples per problem of the whole run, under the prior."""
    expected_waste: float
    """Expected share of problems the run keeps (weight > 0) that are never solved."""

    @property
    def written_rmse(self) -> float:
        """Root mean over problems of `error` squared: the model's RMSE of the weights as they stand."""
        return math.sqrt(float(np.mean(self.error**2))) if len(self.error) else 0.0


@dataclass(frozen=True)
class RoundPlan:
    """One round: samples first_sample .. first_sample + count - 1 of the listed problems."""

    first_sample: int
    count: int
    problems: np.ndarray
    """Indices (input order) of the problems to sample."""


def estimated_weights(weight, n_correct, n_scored, prior: InflatedPrior):
    """The run's weight estimate at any counts, before --min-weight, as a function (c, n) -> array.

    Args:
        weight: the run's `WeightConfig` (kernel, estimator, its prior).
        n_correct, n_scored: the pool's counts now (eb fits its own Beta prior to them).
        prior: the fitted inflated prior (what zoib writes with).
    """
    used = prior if weight.estimator == "zoib" else fit_prior(weight.estimator, n_correct, n_scored, weight.prior_a, weight.prior_b)

    def estimated(c, n):
        return estimate(c, n, kernel=weight.kernel, estimator=weight.estimator, alpha=weight.alpha, beta=weight.beta,
                        low=weight.low, high=weight.high, prior=used).mean

    return estimated


def problem_uniforms(problem_ids: list[str]) -> np.ndarray:
    """A fixed number in [0, 1) per problem (from its id alone), which says which side of a
    calibration step it follows (`stopping.Calibration.share`): whatever the input order."""
    return np.array([int.from_bytes(hashlib.sha256(f"paced-adaptive:{i}".encode()).digest()[:8], "big") / 2.0**64 for i in problem_ids])


def assess(policy: Policy, n_samples, n_correct, n_scored, weight, uniforms=None) -> Assessment:
    """Refit the prior, calibrate the rule to the target and decide which problems stay open.

    Args:
        policy: the stopping rule.
        n_samples: samples drawn per problem (numpy int array, input order).
        n_correct: correct scored samples per problem.
        n_scored: scored samples per problem (samples excluded by grading do not count).
        weight: the run's `WeightConfig`: the weights whose error the rule controls.
        uniforms: `problem_uniforms` of the problems' ids (default: a golden-ratio sequence over
            the input positions).

    Returns:
        An `Assessment`. A problem is open when its side of the calibrated rule samples its
        (scored, correct) counts again, it has fewer than `policy.max_samples` samples, and it was
        sampled in the latest round (it has the most samples): a closed problem is never reopened.
    """
    n_samples = np.asarray(n_samples, dtype=np.int64)
    c, n = np.asarray(n_correct, dtype=np.int64), np.asarray(n_scored, dtype=np.int64)
    if uniforms is None:
        uniforms = (np.arange(len(c)) * 0.6180339887498949) % 1.0
    prior = fit_inflated_prior(c, n)
    model = StoppingModel(prior, estimated_weights(weight, c, n, prior), weight.min_weight, policy.schedule, kernel=weight.kernel,
                          alpha=weight.alpha, beta=weight.beta, low=weight.low, high=weight.high, waste=policy.waste,
                          floor=weight.floor)
    rule = model.calibrate(model.target_loss(policy.match_k, policy.margin))
    careful, frugal = model.continues(rule.careful), model.continues(rule.frugal)
    # Excluded samples leave a problem's scored count behind its sample count; it is judged at
    # the counts it has.
    state = [(min(ni, policy.max_samples), ci) for ni, ci in zip(n.tolist(), c.tolist())]
    again = np.array([bool((careful if u < rule.share else frugal)[ni][ci]) for (ni, ci), u in zip(state, uniforms)], dtype=bool)
    latest = n_samples == n_samples.max(initial=0)
    own = np.array([model.squared[ni][ci] for ni, ci in state])
    return Assessment(
        prior=prior, written=model.written(c, n), error=np.sqrt(own), open=again & latest & (n_samples < policy.max_samples),
        price=rule.careful, share=rule.share, expected_rmse=math.sqrt(rule.squared), expected_waste=rule.waste,
        reference_rmse=math.sqrt(model.reference_loss(policy.match_k)), expected_samples=rule.samples,
    )


def first_round(policy: Policy, num_problems: int) -> RoundPlan:
    """Round 0: `min_samples` samples of every problem."""
    return RoundPlan(0, policy.min_samples, np.arange(num_problems))


def next_round(policy: Policy, n_samples, open_mask) -> RoundPlan | None:
    """The next round for the open problems, or None when none is open.

    Open problems normally share one sample count; if they do not (an earlier run with other
    settings cannot resume here, so only by hand), the ones with the fewest samples go first.
    """
    n_samples = np.asarray(n_samples, dtype=np.int64)
    open_indices = np.flatnonzero(open_mask)
    if not len(open_indices):
        return None
    start = int(n_samples[open_indices].min())
    problems = open_indices[n_samples[open_indices] == start]
    return RoundPlan(start, min(policy.round_samples, policy.max_samples - start), problems)


def projected_total(policy: Policy, spent: int, n_open: int, n_open_before: int, next_start: int) -> int:
    """A projection of the total samples the run will draw, for the progress line.

    Assumes each later round keeps the same share of its problems open as the last round did.
    """
    keep = n_open / n_open_before if n_open_before else 0.0
    total, open_now, start = float(spent), float(n_open), next_start
    while open_now >= 0.5 and start < policy.max_samples:
        count = min(policy.round_samples, policy.max_samples - start)
        total += open_now * count
        start += count
        open_now *= keep
    return int(round(total))
