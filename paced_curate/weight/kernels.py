"""The numbers behind `paced weight`: kernels, intervals, normalisation.

PACED weights a problem by its student pass rate p with the Beta kernel w(p) = p^alpha (1-p)^beta
(alpha = beta = 1 gives the paper's p(1-p)). How p, and so w(p), is estimated from c correct of
n samples (plug-in, Bayes with a fixed prior, empirical Bayes) lives in `estimators.py`.
Everything here is a pure function of numbers or numpy arrays:

    kernel_weight(0.25, 1.0, 1.0)                 # 0.1875
    pass_rate_interval(3, 8, "jeffreys", 0.95)    # (0.119, 0.705)
"""

from __future__ import annotations

import numpy as np
from scipy import special

from paced_curate.errors import ConfigError

KERNELS = ("beta", "uniform", "band")
INTERVALS = ("jeffreys", "wilson")
NORMALIZATIONS = ("mean", "sum", "max", "none")


def weighting_flags(kernel: str, alpha: float, beta: float, low: float | None, high: float | None, estimator: str, floor: float) -> str:
    """A weighting as the `paced weight` flags that make it, for messages (`--kernel beta --alpha 1 --beta 1 --estimator empirical`)."""
    if kernel == "beta":
        flags = f"--kernel beta --alpha {alpha:g} --beta {beta:g}"
    elif kernel == "band":
        flags = f"--kernel band --low {low:g} --high {high:g}"
    else:
        flags = f"--kernel {kernel}"
    return f"{flags} --estimator {estimator}" + (f" --floor {floor:g}" if floor and floor > 0 else "")


def kernel_weight(p, alpha: float, beta: float):
    """The Beta kernel w(p) = p^alpha (1-p)^beta.

    Args:
        p: pass rate(s) in [0, 1], a float or a numpy array.
        alpha: exponent of p, > 0 (1.0 in the paper).
        beta: exponent of 1 - p, > 0 (1.0 in the paper).

    Returns:
        w(p), same shape as `p`: 0 at p = 0 and p = 1, largest at p = alpha / (alpha + beta).
    """
    p = np.asarray(p, dtype=np.float64)
    out = np.power(p, alpha) * np.power(1.0 - p, beta)
    return float(out) if out.ndim == 0 else out


def band_weight(p, low: float, high: float):
    """The hard-filter baseline: 1 where low <= p <= high, else 0 (float or numpy array)."""
    p = np.asarray(p, dtype=np.float64)
    out = ((p >= low) & (p <= high)).astype(np.float64)
    return float(out) if out.ndim == 0 else out


def floor_weight(raw, floor: float, scored):
    """The weight floor (`paced weight --floor`): raw weights below `floor` are raised to it.

    Applied to the estimator's raw value (`weight_raw`), before normalisation, for every kernel
    and estimator: with the plug-in beta kernel it lifts the problems at p = 0 and p = 1 (kernel
    value 0) and any p with w(p) < floor; with bayes and eb it lifts posterior means below the
    floor; with the band kernel every problem outside the band gets `floor` (a soft filter); the
    uniform kernel is 1 everywhere and does not change. Problems without scored samples
    (`scored` False) keep weight 0: there is no evidence to weight.

    Why: Uni-OPD (arXiv 2605.03677) found that dropping all-correct and all-wrong problems in
    on-policy distillation scored below not filtering; a floor keeps them in training at a small
    weight instead of none.

    Args:
        raw: raw weights (numpy array), >= 0.
        floor: the floor, in [0, 1); 0 changes nothing.
        scored: boolean array of raw's shape: whether the problem has scored samples.

    Returns:
        A new numpy array: max(raw, floor) where scored, raw elsewhere.
    """
    raw = np.asarray(raw, dtype=np.float64)
    return np.where(np.asarray(scored, dtype=bool), np.maximum(raw, floor), raw)


def pass_rate_interval(n_correct, n_scored, method: str = "jeffreys", confidence: float = 0.95):
    """A two-sided confidence interval for the pass rate p from c correct of n scored samples.

    Args:
        n_correct: c (int or numpy array).
        n_scored: n (int or numpy array); where n = 0 both ends are NaN (no information).
        method: "jeffreys" (quantiles of Beta(c + 0.5, n - c + 0.5), with low = 0 at c = 0 and
            high = 1 at c = n, the usual convention) or "wilson" (the Wilson score interval).
        confidence: coverage, in (0, 1); default 0.95.

    Returns:
        (low, high): floats or numpy arrays with 0 <= low <= c / n <= high <= 1.

    Raises:
        ValueError: an unknown method (the config checks this first for users).
    """
    c = np.asarray(n_correct, dtype=np.float64)
    n = np.asarray(n_scored, dtype=np.float64)
    tail = (1.0 - confidence) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "jeffreys":
            # betaincinv is the Beta quantile function; scipy.stats would cost 0.6 s of import.
            low = special.betaincinv(c + 0.5, n - c + 0.5, tail)
            high = special.betaincinv(c + 0.5, n - c + 0.5, 1.0 - tail)
        elif method == "wilson":
            z = special.ndtri(1.0 - tail)
            p = c / n
            denominator = 1.0 + z * z / n
            centre = (p + z * z / (2.0 * n)) / denominator
            half = z / denominator * np.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n))
            low, high = centre - half, centre + half
        else:
            raise ValueError(f"unknown interval method {method!r}; known: {', '.join(INTERVALS)}")
        # Both methods put the end at exactly 0 (1) when c = 0 (c = n); rounding must not move it.
        low = np.where(c == 0, 0.0, np.clip(low, 0.0, 1.0))
        high = np.where(c == n, 1.0, np.clip(high, 0.0, 1.0))
    low, high = np.where(n > 0, low, np.nan), np.where(n > 0, high, np.nan)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


def normalizing_constant(weights, how: str) -> float:
    """The number `normalize` divides by: the mean, sum or max of `weights`, or 1 for "none".

    Raises:
        ConfigError: every weight is 0, so no scaling can make them usable.
        ValueError: an unknown `how` (the config checks this first for users).
    """
    weights = np.asarray(weights, dtype=np.float64)
    if how == "none":
        return 1.0
    if how not in NORMALIZATIONS:
        raise ValueError(f"unknown normalisation {how!r}; known: {', '.join(NORMALIZATIONS)}")
    total = float(weights.sum())
    constant = {"mean": total / len(weights), "sum": total, "max": float(weights.max())}[how] if total > 0 else 0.0
    if not constant > 0:
        raise ConfigError(f"every weight is 0, so --normalize {how} has nothing to scale by")
    return constant


def normalize(weights, how: str):
    """Scale raw weights: "mean" (mean 1), "sum" (sum 1), "max" (max 1) or "none".

    "mean" is the default because a trainer that multiplies each problem's token-averaged loss
    by its weight and divides by the number of problems then keeps the loss scale of
    unweighted training.

    Args:
        weights: raw kernel values (numpy array), >= 0.
        how: one of "mean", "sum", "max", "none".

    Returns:
        weights / normalizing_constant(weights, how), a new numpy array.

    Raises:
        ConfigError: every weight is 0 (and `how` is not "none").
    """
    weights = np.asarray(weights, dtype=np.float64)
    return weights / normalizing_constant(weights, how)
