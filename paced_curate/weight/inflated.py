"""A zero-and-one-inflated Beta prior on pass rates, fitted to a pool by empirical Bayes.

Real pools hold many problems a student never solves (p = 0 exactly) and some it always
solves (p = 1), beside a spread of pass rates in between. A single Beta prior has to bend
into a U to fit the first two, and then says that 0 of 4 means "p is almost surely near 0"
for every problem, frontier problems included. The zero-and-one-inflated Beta (ZOIB) prior
keeps the three apart:

    p ~ pi0 * delta(0) + pi1 * delta(1) + (1 - pi0 - pi1) * Beta(a, b)

so the posterior after c of n says how likely a 0/n problem is to be one that is never
solved (the point mass) rather than a hard one (the Beta part), and its posterior mean of
w(p) is a proper shrinkage estimate of the weight.

With c of n correct, the marginal probability of the counts is (binomial coefficient left out;
it is 1 where a point mass contributes, at c = 0 and c = n):

    pi0 [c = 0] + pi1 [c = n] + (1 - pi0 - pi1) B(c + a, n - c + b) / B(a, b)

and the posterior is the same mixture with weights proportional to those three terms and the
Beta part updated to Beta(c + a, n - c + b). Kernel moments under it are those of the Beta
part (exact ratios of Beta functions, `estimators.posterior_moments`) mixed with the kernel's
values at 0 and 1.

The fit maximises the marginal likelihood of the pool's counts over (pi0, pi1, a, b) times a
weak hyperprior: on the Beta part's strength s = a + b a density proportional to (a + b)^(-5/2)
(as for the hierarchical beta-binomial in Gelman et al., Bayesian Data Analysis, 3rd ed.,
section 5.3), and on the three weights a Dirichlet(2, 2, 2), one pseudo-problem each (a MAP
estimate). A pool of thousands barely notices them; a pool of one problem, which cannot say
what a pool looks like, is kept from the certainty of a point mass (one 0/4 problem does not
make "never solved" certain), and a pool too small or too alike to say how strong the prior is
does not get an arbitrarily strong one. The Beta part is kept in a >= 1/2, b >= 1/2 (its density
rises towards 0 or 1 no faster than Jeffreys' p^(-1/2)), which is what identifies the point
masses: mass piled more steeply at the ends is the point masses' to explain.

    prior = fit_inflated_prior(n_correct, n_scored)     # InflatedPrior(zero=0.41, one=0.05, a=1.0, b=3.9)
    post = inflated_posterior(0, 4, prior)              # InflatedPosterior: weights of 0, 1 and Beta(1.0, 7.9)
    mean, sd = inflated_moments(0, 4, prior, alpha=1.0, beta=1.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

# The Beta part's a and b stay in [0.5, 1e4]: its density may rise towards 0 or 1 at most like
# Jeffreys' p^(-1/2) (a frontier tail of hard problems does), and steeper piles at the ends are
# the point masses' to explain; above 1e4 it is a point mass no count could move. (A lower
# bound of 1 fitted real-shaped pools worse: bench/adaptive_prereg.md.)
BETA_BOUNDS = (0.5, 1e4)
# Exponent of the hyperprior on the Beta part's strength a + b (Gelman et al., BDA3, 5.3).
STRENGTH_EXPONENT = 2.5


@dataclass(frozen=True)
class InflatedPrior:
    """p ~ zero * delta(0) + one * delta(1) + (1 - zero - one) * Beta(a, b)."""

    zero: float
    """Probability that a problem is never solved (p = 0 exactly)."""
    one: float
    """Probability that a problem is always solved (p = 1 exactly)."""
    a: float
    b: float
    fitted: bool = False
    """True: fitted to the pool (maximum marginal likelihood with the strength hyperprior)."""
    log_likelihood: float | None = None
    """The marginal log-likelihood of the counts at the fit (binomial coefficients left out)."""

    @property
    def mean(self) -> float:
        """The prior mean of p."""
        return self.one + (1.0 - self.zero - self.one) * self.a / (self.a + self.b)

    def to_dict(self) -> dict:
        return {
            "kind": "zero-one-inflated beta", "zero": self.zero, "one": self.one, "a": self.a, "b": self.b,
            "mean": self.mean, "fitted": self.fitted, "log_likelihood": self.log_likelihood,
        }

    def describe(self) -> str:
        """One line for summaries: 'P(p=0) 0.41, P(p=1) 0.05, else Beta(1, 3.9)'."""
        return f"P(p=0) {self.zero:.3g}, P(p=1) {self.one:.3g}, else Beta({self.a:.3g}, {self.b:.3g})"


# A pool with no scored sample says nothing: the prior is then an even three-way split with a
# uniform Beta part, and each problem's own samples decide.
UNINFORMED = InflatedPrior(1 / 3, 1 / 3, 1.0, 1.0, fitted=False)


@dataclass(frozen=True)
class InflatedPosterior:
    """The posterior after c of n: the same mixture, reweighted, with the Beta part updated."""

    zero: np.ndarray
    """Posterior probability that p = 0."""
    one: np.ndarray
    """Posterior probability that p = 1."""
    a: np.ndarray
    """The Beta part's a + c."""
    b: np.ndarray
    """The Beta part's b + n - c."""

    @property
    def interior(self) -> np.ndarray:
        """Posterior probability that 0 < p < 1."""
        return 1.0 - self.zero - self.one


def _log_terms(c: np.ndarray, n: np.ndarray, log_zero: float, log_one: float, log_interior: float, a: float, b: float) -> np.ndarray:
    """log of the three mixture terms of P(c | n), stacked on a last axis (zero, one, beta)."""
    log_zero_term = np.where(c == 0, log_zero, -np.inf)
    log_one_term = np.where(c == n, log_one, -np.inf)
    log_beta = log_interior + special.betaln(c + a, n - c + b) - special.betaln(a, b)
    return np.stack(np.broadcast_arrays(log_zero_term, log_one_term, log_beta), axis=-1)


def _log_masses(zero: float, one: float) -> tuple[float, float, float]:
    with np.errstate(divide="ignore"):
        return float(np.log(zero)), float(np.log(one)), float(np.log(max(1.0 - zero - one, 0.0)))


def inflated_posterior(n_correct, n_scored, prior: InflatedPrior) -> InflatedPosterior:
    """The posterior mixture after `n_correct` of `n_scored` samples passed.

    Args:
        n_correct: c (int or numpy array).
        n_scored: n (int or numpy array), n >= c; n = 0 gives the prior itself.
        prior: the `InflatedPrior`.

    Returns:
        An `InflatedPosterior` of arrays of the broadcast shape of c and n.
    """
    c = np.asarray(n_correct, dtype=np.float64)
    n = np.asarray(n_scored, dtype=np.float64)
    terms = _log_terms(c, n, *_log_masses(prior.zero, prior.one), prior.a, prior.b)
    weights = np.exp(terms - special.logsumexp(terms, axis=-1, keepdims=True))
    return InflatedPosterior(zero=weights[..., 0], one=weights[..., 1], a=c + prior.a, b=n - c + prior.b)


def log_sequence_probability(n_correct, n_scored, prior: InflatedPrior) -> np.ndarray:
    """log P(one given sequence of n samples with c correct) under the prior (no binomial coefficient).

    Args:
        n_correct, n_scored: counts (ints or numpy arrays).
        prior: the `InflatedPrior`.

    Returns:
        log(pi0 [c = 0] + pi1 [c = n] + (1 - pi0 - pi1) B(c + a, n - c + b) / B(a, b)), an array.
    """
    c = np.asarray(n_correct, dtype=np.float64)
    n = np.asarray(n_scored, dtype=np.float64)
    return special.logsumexp(_log_terms(c, n, *_log_masses(prior.zero, prior.one), prior.a, prior.b), axis=-1)


def inflated_moments(n_correct, n_scored, prior: InflatedPrior, *, kernel: str = "beta", alpha: float = 1.0, beta: float = 1.0,
                     low: float | None = None, high: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and sd of the kernel weight w(p) under the inflated prior.

    Args:
        n_correct, n_scored: counts (numpy arrays).
        prior: the `InflatedPrior`.
        kernel: "beta" (w = p^alpha (1-p)^beta), "band" (w = 1 on [low, high]) or "uniform" (1).
        alpha, beta, low, high: the kernel's parameters.

    Returns:
        (mean, sd) as numpy arrays: the mixture's moments, E[w] = q0 w(0) + q1 w(1) + qB E_B[w].
    """
    from paced_curate.weight.kernels import band_weight, kernel_weight

    post = inflated_posterior(n_correct, n_scored, prior)
    if kernel == "uniform":
        ones = np.ones(np.shape(post.zero))
        return ones, np.zeros_like(ones)
    if kernel == "band":
        at0, at1 = band_weight(0.0, low, high), band_weight(1.0, low, high)
        inside = np.clip(special.betainc(post.a, post.b, high) - special.betainc(post.a, post.b, low), 0.0, 1.0)
        first = second = post.zero * at0 + post.one * at1 + post.interior * inside
    elif kernel == "beta":
        at0, at1 = kernel_weight(0.0, alpha, beta), kernel_weight(1.0, alpha, beta)
        base = special.betaln(post.a, post.b)
        beta_first = np.exp(special.betaln(post.a + alpha, post.b + beta) - base)
        beta_second = np.exp(special.betaln(post.a + 2 * alpha, post.b + 2 * beta) - base)
        first = post.zero * at0 + post.one * at1 + post.interior * beta_first
        second = post.zero * at0**2 + post.one * at1**2 + post.interior * beta_second
    else:
        raise ValueError(f"unknown kernel {kernel!r}")
    return first, np.sqrt(np.maximum(second - first * first, 0.0))


def _objective(theta: np.ndarray, pc: np.ndarray, pn: np.ndarray, weights: np.ndarray) -> tuple[float, np.ndarray]:
    """Negative log posterior of the fit and its gradient in theta = (logit zero, logit one, log(a - 1/2), log(b - 1/2)).

    The weights are a softmax of (theta0, theta1, 0); the hyperprior is (a + b)^(-5/2) and a
    Dirichlet(2, 2, 2) on the weights.
    """
    logits = np.array([theta[0], theta[1], 0.0])
    log_masses = logits - special.logsumexp(logits)
    masses = np.exp(log_masses)
    a, b = BETA_BOUNDS[0] + np.exp(theta[2:])
    terms = _log_terms(pc, pn, *log_masses, a, b)
    total = special.logsumexp(terms, axis=-1)
    responsibility = np.exp(terms - total[:, None]) * weights[:, None]
    value = float(np.dot(weights, total)) - STRENGTH_EXPONENT * math.log(a + b) + float(log_masses.sum())
    shares = responsibility.sum(0)
    grad_logits = shares[:2] - weights.sum() * masses[:2] + 1.0 - 3.0 * masses[:2]
    d_ab, d_nab = special.digamma(a + b), special.digamma(pn + a + b)
    d_a = special.digamma(pc + a) - d_nab - special.digamma(a) + d_ab
    d_b = special.digamma(pn - pc + b) - d_nab - special.digamma(b) + d_ab
    grad_a = float(np.dot(responsibility[:, 2], d_a)) - STRENGTH_EXPONENT / (a + b)
    grad_b = float(np.dot(responsibility[:, 2], d_b)) - STRENGTH_EXPONENT / (a + b)
    gradient = np.array([grad_logits[0], grad_logits[1], grad_a * (a - BETA_BOUNDS[0]), grad_b * (b - BETA_BOUNDS[0])])
    return -value, -gradient


def _pack(zero: float, one: float, a: float, b: float) -> np.ndarray:
    interior = 1.0 - zero - one
    low = BETA_BOUNDS[0]
    return np.array([math.log(zero / interior), math.log(one / interior), math.log(max(a - low, 1e-3)), math.log(max(b - low, 1e-3))])


def fit_inflated_prior(n_correct, n_scored) -> InflatedPrior:
    """Fit the zero-and-one-inflated Beta prior to a pool's counts (see the module docstring).

    Distinct (n, c) pairs are weighted by how often they occur, so the cost does not grow with
    the pool. The optimiser (Nelder-Mead, then L-BFGS-B) starts from three fixed points and
    keeps the best, so the fit is deterministic.

    Args:
        n_correct: c per problem (numpy array of ints).
        n_scored: n per problem (numpy array of ints, n >= c); problems with n = 0 are left out.

    Returns:
        The fitted `InflatedPrior`; `UNINFORMED` (fitted=False) when no problem has a scored sample.
    """
    from scipy import optimize

    c = np.asarray(n_correct, dtype=np.int64).ravel()
    n = np.asarray(n_scored, dtype=np.int64).ravel()
    keep = n > 0
    if not keep.any():
        return UNINFORMED
    base = int(n[keep].max()) + 1
    pairs, counts = np.unique(n[keep] * base + c[keep], return_counts=True)
    pn, pc = (pairs // base).astype(np.float64), (pairs % base).astype(np.float64)
    weights = counts.astype(np.float64)
    total = weights.sum()
    all_zero = float(weights[pc == 0].sum()) / total
    all_one = float(weights[pc == pn].sum()) / total
    middle = (pc > 0) & (pc < pn)
    rate = float(np.average(pc[middle] / pn[middle], weights=weights[middle])) if middle.any() else 0.5
    starts = [
        (max(all_zero, 0.02) * 0.8, max(all_one, 0.02) * 0.8, 1.0 + 2 * rate, 1.0 + 2 * (1 - rate)),
        (0.05, 0.05, 1.0, 1.0),
        (max(all_zero, 0.02) * 0.5, max(all_one, 0.02) * 0.5, 1.0 + 10 * rate, 1.0 + 10 * (1 - rate)),
    ]
    # Logits within +-25 keep every weight above 1e-11; log(a - 1/2) within [-14, log(1e4)].
    bounds = [(-25.0, 25.0)] * 2 + [(-14.0, math.log(BETA_BOUNDS[1] - BETA_BOUNDS[0]))] * 2
    best = None
    for start in starts:
        result = optimize.minimize(_objective, _pack(*start), args=(pc, pn, weights), jac=True, method="L-BFGS-B", bounds=bounds,
                                   options={"ftol": 1e-13, "gtol": 1e-9, "maxiter": 1000})
        if best is None or result.fun < best.fun - 1e-9:
            best = result
    logits = np.array([best.x[0], best.x[1], 0.0])
    zero, one, _ = np.exp(logits - special.logsumexp(logits))
    a, b = BETA_BOUNDS[0] + np.exp(best.x[2:])
    zero, one, a, b = float(zero), float(one), float(a), float(b)
    log_lik = float(np.dot(weights, special.logsumexp(_log_terms(pc, pn, *_log_masses(zero, one), a, b), axis=-1)))
    return InflatedPrior(zero, one, a, b, fitted=True, log_likelihood=log_lik)
