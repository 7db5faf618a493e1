"""Estimators of a problem's weight w(p) from c correct of n scored samples: one module for all four.

- `empirical` (plug-in, the paper): w(c / n).
- `bayes`: the posterior mean of w(p) under a fixed Beta(prior_a, prior_b) prior on p (Jeffreys
  by default).
- `eb` (empirical Bayes): the same posterior, with the Beta prior fitted to the pool itself by
  maximum marginal likelihood of the beta-binomial counts (`fit_beta_prior`). A pool where most
  problems sit at 0/n and n/n gets a U-shaped prior, so 0/4 already says "almost surely p near 0";
  a pool of mid-range problems gets a prior that keeps 0/4 uncertain.
- `zoib` (empirical Bayes with a zero-and-one-inflated Beta prior, `inflated.py`): the posterior
  mean of w(p) when the prior has point masses at p = 0 and p = 1 beside a Beta part, all fitted
  to the pool. Its posterior says how likely a 0/n problem is to be one the student never
  solves; `paced estimate --adaptive` writes it by default (docs/stages/estimate.md).

For the beta kernel w(p) = p^alpha (1-p)^beta and a Beta(a, b) posterior, both moments are
ratios of Beta functions (the k-th moment of p^alpha (1-p)^beta under Beta(a, b) is
B(a + k alpha, b + k beta) / B(a, b)), so the posterior mean and standard deviation are exact:

    mean = B(a + alpha, b + beta) / B(a, b)
    sd   = sqrt(B(a + 2 alpha, b + 2 beta) / B(a, b) - mean^2)

For the band kernel w = 1{low <= p <= high}, the posterior mean is q = P(low <= p <= high) and
the sd is sqrt(q (1 - q)). The uniform kernel is 1 with sd 0.

    prior = fit_beta_prior(n_correct, n_scored)               # BetaPrior(a=0.41, b=0.62, ...)
    result = estimate(n_correct, n_scored, kernel="beta", estimator="eb")
    result.mean, result.sd                                     # numpy arrays, one per problem

Source of the beta-binomial marginal likelihood: Skellam (1948), "A probability distribution
derived from the binomial distribution by regarding the probability of success as variable
between the sets of trials"; empirical Bayes as in Efron & Morris (1975).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from paced_curate.weight.inflated import InflatedPrior, fit_inflated_prior, inflated_moments
from paced_curate.weight.kernels import band_weight, kernel_weight

ESTIMATORS = ("empirical", "bayes", "eb", "zoib")
JEFFREYS = (0.5, 0.5)
# The fitted prior's parameters stay in this range: below it the prior puts all its mass on
# p = 0 and p = 1 (a pool with only 0/n and n/n counts drives the fit there), above it the
# prior is a point mass that no count could move.
PRIOR_BOUNDS = (1e-2, 1e4)


@dataclass(frozen=True)
class BetaPrior:
    """A Beta(a, b) prior on the pass rate, and how it was obtained."""

    a: float
    b: float
    fitted: bool = False
    """True: fitted to the pool by maximum marginal likelihood; False: fixed by the user."""
    log_likelihood: float | None = None
    """The beta-binomial marginal log-likelihood at (a, b), binomial coefficients left out."""

    @property
    def mean(self) -> float:
        return self.a / (self.a + self.b)

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "mean": self.mean, "fitted": self.fitted, "log_likelihood": self.log_likelihood}


@dataclass(frozen=True)
class Estimate:
    """Per-problem weight estimates (numpy arrays of the input's shape) and the prior used."""

    mean: np.ndarray
    """The estimate of w(p): plug-in value, or posterior mean."""
    sd: np.ndarray
    """Posterior standard deviation of w(p); NaN for the plug-in estimator."""
    prior: BetaPrior | InflatedPrior | None
    """The prior (None for the plug-in estimator)."""


def _scalar_or_array(out: np.ndarray):
    return float(out) if out.ndim == 0 else out


def posterior_moments(n_correct, n_scored, alpha: float, beta: float, prior_a: float = 0.5, prior_b: float = 0.5):
    """Posterior mean and sd of p^alpha (1-p)^beta after c of n samples passed, under Beta(prior_a, prior_b).

    Args:
        n_correct: c, correct samples (int or numpy array).
        n_scored: n, scored samples (int or numpy array), n >= c; n = 0 gives the prior moments.
        alpha: exponent of p, > 0.
        beta: exponent of 1 - p, > 0.
        prior_a: first Beta prior parameter, > 0.
        prior_b: second Beta prior parameter, > 0.

    Returns:
        (mean, sd), floats or numpy arrays of the broadcast shape of c and n. Computed through
        log-Beta functions, so large n does not overflow.
    """
    c = np.asarray(n_correct, dtype=np.float64)
    n = np.asarray(n_scored, dtype=np.float64)
    a, b = c + prior_a, n - c + prior_b
    base = special.betaln(a, b)
    mean = np.exp(special.betaln(a + alpha, b + beta) - base)
    second = np.exp(special.betaln(a + 2 * alpha, b + 2 * beta) - base)
    # Rounding can make second - mean^2 a hair negative when the posterior is very narrow.
    sd = np.sqrt(np.maximum(second - mean * mean, 0.0))
    return _scalar_or_array(mean), _scalar_or_array(sd)


def bayes_weight(n_correct, n_scored, alpha: float, beta: float, prior_a: float = 0.5, prior_b: float = 0.5):
    """The posterior mean of p^alpha (1-p)^beta after `n_correct` of `n_scored` samples passed.

    The prior on p is Beta(prior_a, prior_b) (default Jeffreys, 0.5 and 0.5), so the posterior
    is Beta(c + prior_a, n - c + prior_b) and the mean is B(c + a0 + alpha, n - c + b0 + beta) /
    B(c + a0, n - c + b0), computed through logarithms so that large n does not overflow.

    Args:
        n_correct: c, correct samples (int or numpy array).
        n_scored: n, scored samples (int or numpy array), n >= c. With n = 0 this is the
            prior mean; `paced weight` gives unscored problems weight 0 instead.
        alpha: exponent of p, > 0.
        beta: exponent of 1 - p, > 0.
        prior_a: first Beta prior parameter, > 0.
        prior_b: second Beta prior parameter, > 0.

    Returns:
        A positive float (or array) for every count, close to kernel_weight(c / n) for large n.

    Example:
        >>> round(bayes_weight(0, 8, 1.0, 1.0), 4)   # not 0: 0/8 is weak evidence that p = 0
        0.0472
    """
    c = np.asarray(n_correct, dtype=np.float64)
    n = np.asarray(n_scored, dtype=np.float64)
    a, b = c + prior_a, n - c + prior_b
    return _scalar_or_array(np.exp(special.betaln(a + alpha, b + beta) - special.betaln(a, b)))


def band_probability(n_correct, n_scored, low: float, high: float, prior_a: float = 0.5, prior_b: float = 0.5):
    """The posterior probability that p lies in [low, high] (the `band` kernel under `bayes` and `eb`).

    Args:
        n_correct: c, correct samples (int or numpy array).
        n_scored: n, scored samples (int or numpy array).
        low: lower end of the band, in [0, 1].
        high: upper end of the band, in [low, 1].
        prior_a: first Beta prior parameter, > 0.
        prior_b: second Beta prior parameter, > 0.

    Returns:
        I_high(a, b) - I_low(a, b) for the posterior Beta(c + prior_a, n - c + prior_b), where I
        is the regularised incomplete Beta function.
    """
    c = np.asarray(n_correct, dtype=np.float64)
    n = np.asarray(n_scored, dtype=np.float64)
    a, b = c + prior_a, n - c + prior_b
    return _scalar_or_array(np.clip(special.betainc(a, b, high) - special.betainc(a, b, low), 0.0, 1.0))


def marginal_log_likelihood(n_correct, n_scored, a: float, b: float) -> float:
    """The beta-binomial log-likelihood of the counts under a Beta(a, b) prior on p.

    sum_i [log B(c_i + a, n_i - c_i + b) - log B(a, b)], leaving out the binomial coefficients,
    which do not depend on (a, b). Problems with n_i = 0 add 0.
    """
    c = np.asarray(n_correct, dtype=np.float64)
    n = np.asarray(n_scored, dtype=np.float64)
    return float(np.sum(special.betaln(c + a, n - c + b) - special.betaln(a, b)))


def fit_beta_prior(n_correct, n_scored) -> BetaPrior:
    """Fit a Beta(a, b) prior on p to a pool's counts by maximum marginal (beta-binomial) likelihood.

    The optimiser works on (log a, log b) with the exact gradient (digamma functions), from a
    method-of-moments start, so the fit is deterministic. Problems without scored samples are
    left out; distinct (n, c) pairs are weighted by how often they occur, so a pool of a million
    problems costs as little as one of a hundred.

    Args:
        n_correct: c per problem (numpy array of ints).
        n_scored: n per problem (numpy array of ints, n >= c).

    Returns:
        The fitted `BetaPrior` (a, b within PRIOR_BOUNDS). With no scored problem the Jeffreys
        prior is returned, marked `fitted=False`.
    """
    from scipy import optimize

    c = np.asarray(n_correct, dtype=np.int64).ravel()
    n = np.asarray(n_scored, dtype=np.int64).ravel()
    keep = n > 0
    if not keep.any():
        return BetaPrior(*JEFFREYS, fitted=False)
    base = int(n[keep].max()) + 1
    pairs, counts = np.unique(n[keep] * base + c[keep], return_counts=True)
    pn, pc = (pairs // base).astype(np.float64), (pairs % base).astype(np.float64)
    weights = counts.astype(np.float64)
    total = weights.sum()

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = np.exp(theta)
        value = np.dot(weights, special.betaln(pc + a, pn - pc + b)) - total * special.betaln(a, b)
        d_ab = special.digamma(a + b)
        d_nab = special.digamma(pn + a + b)
        grad_a = np.dot(weights, special.digamma(pc + a) - d_nab) - total * (special.digamma(a) - d_ab)
        grad_b = np.dot(weights, special.digamma(pn - pc + b) - d_nab) - total * (special.digamma(b) - d_ab)
        return -value, -np.array([grad_a * a, grad_b * b])

    theta = np.log(_moment_start(pc, pn, weights))
    bounds = [(math.log(PRIOR_BOUNDS[0]), math.log(PRIOR_BOUNDS[1]))] * 2
    result = optimize.minimize(loss, theta, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 500, "ftol": 1e-13, "gtol": 1e-9})
    a, b = (float(x) for x in np.exp(result.x))
    return BetaPrior(a, b, fitted=True, log_likelihood=-float(result.fun))


def _moment_start(c: np.ndarray, n: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """A method-of-moments Beta(a, b) from the pass rates, clipped into PRIOR_BOUNDS."""
    rates = c / n
    mean = float(np.average(rates, weights=weights))
    var = float(np.average((rates - mean) ** 2, weights=weights))
    mean = min(max(mean, 0.01), 0.99)
    # The pass rates' variance also holds binomial noise; the start only needs to be sensible.
    strength = mean * (1 - mean) / var - 1 if var > 0 else 10.0
    strength = min(max(strength, 0.1), 100.0)
    return np.clip(np.array([mean * strength, (1 - mean) * strength]), *PRIOR_BOUNDS)


def estimate(
    n_correct,
    n_scored,
    *,
    kernel: str = "beta",
    estimator: str = "empirical",
    alpha: float = 1.0,
    beta: float = 1.0,
    low: float | None = None,
    high: float | None = None,
    prior: BetaPrior | InflatedPrior | None = None,
    min_weight: float = 0.0,
) -> Estimate:
    """Each problem's weight estimate and its posterior sd, for any kernel and estimator.

    Args:
        n_correct: c per problem (numpy array).
        n_scored: n per problem (numpy array); problems with n = 0 get mean 0 and sd 0 here
            (no evidence; `paced weight` warns about them).
        kernel: "beta", "uniform" or "band".
        estimator: "empirical", "bayes" or "eb".
        alpha: beta kernel exponent of p.
        beta: beta kernel exponent of 1 - p.
        low: band kernel's lower end.
        high: band kernel's upper end.
        prior: the Beta prior for "bayes" (default Jeffreys); for "eb" (a `BetaPrior`) and
            "zoib" (an `InflatedPrior`), a prior fitted before (else it is fitted here to these
            counts). Ignored by "empirical".
        min_weight: estimates below this are written as 0 (the problem is dropped: no teacher
            reference, no training); 0 keeps every estimate.

    Returns:
        An `Estimate` (mean, sd arrays; the prior used).

    Raises:
        ValueError: an unknown kernel or estimator (configs check this first for users).
    """
    c = np.asarray(n_correct, dtype=np.int64)
    n = np.asarray(n_scored, dtype=np.int64)
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; known: {', '.join(ESTIMATORS)}")
    scored = n > 0
    if estimator == "empirical":
        used = None
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(scored, c / np.maximum(n, 1), 0.0)
        if kernel == "uniform":
            mean = np.ones(c.shape)
        elif kernel == "band":
            mean = np.asarray(band_weight(rate, low, high), dtype=np.float64)
        elif kernel == "beta":
            mean = np.asarray(kernel_weight(rate, alpha, beta), dtype=np.float64)
        else:
            raise ValueError(f"unknown kernel {kernel!r}")
        sd = np.full(c.shape, np.nan)
    elif estimator == "zoib":
        used = prior if prior is not None else fit_inflated_prior(c, n)
        mean, sd = inflated_moments(c, n, used, kernel=kernel, alpha=alpha, beta=beta, low=low, high=high)
    else:
        if estimator == "eb":
            used = prior if prior is not None else fit_beta_prior(c, n)
        else:
            used = prior if prior is not None else BetaPrior(*JEFFREYS)
        if kernel == "uniform":
            mean, sd = np.ones(c.shape), np.zeros(c.shape)
        elif kernel == "band":
            mean = np.asarray(band_probability(c, n, low, high, used.a, used.b), dtype=np.float64)
            sd = np.sqrt(mean * (1.0 - mean))
        elif kernel == "beta":
            mean, sd = (np.asarray(x, dtype=np.float64) for x in posterior_moments(c, n, alpha, beta, used.a, used.b))
        else:
            raise ValueError(f"unknown kernel {kernel!r}")
    mean = np.where(scored & (mean >= min_weight), mean, 0.0)
    sd = np.where(scored, sd, 0.0)
    return Estimate(mean=mean, sd=sd, prior=used)


def fit_prior(estimator: str, n_correct, n_scored, prior_a: float = 0.5, prior_b: float = 0.5) -> BetaPrior | InflatedPrior | None:
    """The prior an estimator uses for a pool: fitted to all its counts (eb, zoib), fixed (bayes) or None (empirical).

    Args:
        estimator: one of ESTIMATORS.
        n_correct, n_scored: every problem's counts (numpy arrays).
        prior_a, prior_b: the bayes estimator's Beta prior.
    """
    if estimator == "eb":
        return fit_beta_prior(n_correct, n_scored)
    if estimator == "zoib":
        return fit_inflated_prior(n_correct, n_scored)
    if estimator == "bayes":
        return BetaPrior(prior_a, prior_b)
    return None
