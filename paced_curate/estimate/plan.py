"""The adaptive sampling policy of `paced estimate`, as pure functions of per-problem counts.

Round 0 draws `min_samples` samples of every problem. After each round the empirical-Bayes
prior is refitted to the whole pool and every problem's posterior sd of w(p) is computed;
a problem stays open while that sd is above `tolerance` and it has fewer than `max_samples`
samples; once closed it stays closed (a refitted prior does not reopen it). Each later round draws `round_samples` more samples (capped at `max_samples`) of
every open problem at once, so the engine always gets a large batch. Open problems all
have the same number of samples (they were all open in every earlier round), so a round is
one rollout of "samples n .. n + m - 1" of its problems.

Nothing here touches files or engines, so `bench/adaptive.py` can replay the exact policy on
samples drawn once (an adaptive run is a per-problem prefix of a fixed-K run).

    policy = Policy(min_samples=4, max_samples=16, round_samples=4, tolerance=0.03)
    state = policy.assess(n_samples, n_correct, n_scored, weight_options)
    plan = policy.next_round(n_samples, state.open)        # (first_sample, count, problem indices) or None
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from paced_curate.weight.estimators import BetaPrior, estimate, fit_beta_prior


@dataclass(frozen=True)
class Policy:
    """The stopping rule's numbers (see the module docstring)."""

    min_samples: int
    max_samples: int
    round_samples: int
    tolerance: float
    """Largest acceptable posterior sd of a problem's raw kernel weight w(p) (for p(1-p): 0 to 0.25)."""


@dataclass(frozen=True)
class Assessment:
    """Where a pool stands after a round."""

    prior: BetaPrior | None
    mean: np.ndarray
    """Posterior mean of each problem's raw weight."""
    sd: np.ndarray
    """Posterior sd of each problem's raw weight."""
    open: np.ndarray
    """Boolean: the problem needs more samples."""


@dataclass(frozen=True)
class RoundPlan:
    """One round: samples first_sample .. first_sample + count - 1 of the listed problems."""

    first_sample: int
    count: int
    problems: np.ndarray
    """Indices (input order) of the problems to sample."""


def assess(policy: Policy, n_samples, n_correct, n_scored, *, kernel: str, estimator: str, alpha: float, beta: float,
           low: float | None, high: float | None, prior_a: float, prior_b: float) -> Assessment:
    """Refit the prior (eb) and decide which problems stay open.

    Args:
        policy: the stopping rule.
        n_samples: samples drawn per problem (numpy int array, input order).
        n_correct: correct scored samples per problem.
        n_scored: scored samples per problem (samples excluded by grading do not count).
        kernel, estimator, alpha, beta, low, high, prior_a, prior_b: as in `WeightConfig`;
            estimator must be "bayes" or "eb" (the plug-in estimator has no posterior sd).

    Returns:
        An `Assessment`. A problem is open when its posterior sd exceeds the tolerance, it has
        fewer than `policy.max_samples` samples, and it was sampled in the latest round (it has
        the most samples): a closed problem is never reopened.
    """
    n_samples = np.asarray(n_samples, dtype=np.int64)
    c, n = np.asarray(n_correct, dtype=np.int64), np.asarray(n_scored, dtype=np.int64)
    prior = fit_beta_prior(c, n) if estimator == "eb" else BetaPrior(prior_a, prior_b)
    result = estimate(c, n, kernel=kernel, estimator=estimator, alpha=alpha, beta=beta, low=low, high=high, prior=prior)
    # A problem whose samples were all excluded (n = 0) has no posterior to narrow: it stays
    # open like any uncertain one, until max_samples.
    uncertain = (result.sd > policy.tolerance) | (n == 0)
    # A closed problem stays closed, even if the refitted prior would widen its posterior again:
    # only the problems sampled in the latest round (the most samples) can go on, so open
    # problems always share one sample count and a round is one "samples n .. n + m - 1".
    latest = n_samples == n_samples.max(initial=0)
    return Assessment(prior=prior, mean=result.mean, sd=result.sd, open=uncertain & latest & (n_samples < policy.max_samples))


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
