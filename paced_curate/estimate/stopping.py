"""The adaptive stopping rule: sample a problem again only while that is worth a sample, at a
price set so the written weights are expected to be as good as fixed K plug-in weights.

The pool's pass rates are modelled by the zero-and-one-inflated Beta prior fitted to the
counts so far (`weight.inflated`). For a problem at c correct of n scored samples, the weight
the run will write, w_hat(n, c) (whatever `--estimator` writes it, after `--min-weight`), costs

    loss(n, c) = Var[w(p) | c, n] + (w_hat(n, c) - E[w(p) | c, n])^2 + waste * P(p = 0 | c, n) [w_hat > 0]:

its posterior expected squared error, so the rule controls the error of the weights that are
written, not of some other estimate; and, where `--min-weight` can drop problems, `waste` for
each problem kept (a teacher reference, and training) that the student in fact never solves,
which fixed K plug-in weights never keep (0/K weighs 0). Without that term the rule stopped
most never-solved problems at 0/4 with a small weight, cheap in squared error. (Always-solved
problems are not charged: telling them from easy ones took many more samples than it saved
teacher references; bench/adaptive_prereg.md.)
With a price `price` per sample, the best sequential rule (a Bayes sequential decision, solved
by backward induction from --max-samples) continues a problem at (n, c) if and only if

    price * step + E[V(n + step, c + X) | c, n] < loss(n, c),    V = min(loss, continuation),

where X is the number correct among the next `step` samples (its predictive distribution under
the posterior). Under the prior, the rule's expected loss and expected samples are exact sums
over the states a run can reach (every problem starts with --min-samples samples). The price is
set so that the expected loss is `margin` times the expected squared error of fixed K =
--match-k plug-in weights (the paper's estimator, which keeps no never-solved problem) under the
same prior (`calibrate`: the loss rises with the price, in steps, and a share
of the problems follows the rule on each side of the step that holds the target). So the run is
as good as fixed K plug-in by the model's account, with as few samples as the pool allows: a
pool of many never-solved problems needs more samples to tell them from hard ones than a pool
of middling problems does. Reference for the method: DeGroot, Optimal Statistical Decisions
(1970), ch. 12 (sequential sampling by backward induction).

    model = StoppingModel(prior, estimated, min_weight, schedule, kernel="beta", alpha=1.0, beta=1.0, low=None, high=None)
    rule = model.calibrate(model.target_loss(match_k=8, margin=0.9))
    careful, frugal = model.continues(rule.careful), model.continues(rule.frugal)   # [n][c]: sample (n, c) again?
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from paced_curate.weight.inflated import InflatedPrior, inflated_moments, inflated_posterior, log_sequence_probability
from paced_curate.weight.estimators import estimate
from paced_curate.weight.kernels import floor_weight

# Expected squared errors below this (an RMSE of 0.005 on the raw weight, 2% of the largest
# p(1-p)) count as met: a pool that is all never-solved problems stops at --min-samples.
NEGLIGIBLE_LOSS = 0.005**2
PRICE_RANGE = (1e-9, 1.0)
# A problem counts as dropped, for that loss, only once its estimate is below this share of
# --min-weight, so the final refit of the prior, which moves every estimate a little, does not
# lift a whole block of dropped problems (all the 0/6 ones, say) back above it.
DROP_MARGIN = 0.8
BISECTIONS = 40


@dataclass(frozen=True)
class Schedule:
    """Which sample counts a run visits: min_samples, then + round_samples up to max_samples."""

    min_samples: int
    max_samples: int
    round_samples: int

    def step(self, n: int) -> int:
        """Samples the next round adds to a problem at n samples (0 at max_samples)."""
        return max(0, min(self.round_samples, self.max_samples - n))


@dataclass(frozen=True)
class Calibration:
    """The rule at a target error: two prices on either side of a step, and how to mix them."""

    careful: float
    """The price whose rule meets the target (its expected error is at most the target)."""
    frugal: float
    """A price just above, whose rule draws fewer samples and misses the target (or = careful)."""
    share: float
    """The share of problems that follow the careful rule; the rest follow the frugal one."""
    loss: float
    """Expected loss per problem of the mixture, under the prior: squared + the waste cost x waste."""
    samples: float
    """Expected samples per problem of the mixture, under the prior."""
    squared: float
    """Its expected squared error of the written weights."""
    waste: float
    """Its expected share of problems kept (weight > 0) that are never solved."""


def _log_binomial(n: int, k: np.ndarray) -> np.ndarray:
    return special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)


class StoppingModel:
    """Every state (n, c) with n <= max_samples: the written weight's posterior loss, and the
    predictive distribution of the next round's outcome; then the decision for any price.

    Args:
        prior: the fitted `InflatedPrior` (the stopping rule's model of the pool).
        estimated: a function (c, n) -> the run's raw weight estimate at those counts (numpy
            arrays in, array out), before `--min-weight`.
        min_weight: `--min-weight`: estimates below it are written as 0.
        schedule: the run's `Schedule`.
        kernel, alpha, beta, low, high: the weight kernel.
        waste: the loss, in squared raw weight, of keeping (weight > 0) a problem that is never solved.
        floor: `--floor`: written weights below it are raised to it (`kernels.floor_weight`), here
            and in the fixed-K reference.
    """

    def __init__(self, prior: InflatedPrior, estimated, min_weight: float, schedule: Schedule, *, kernel: str, alpha: float,
                 beta: float, low: float | None, high: float | None, waste: float = 0.0, floor: float = 0.0) -> None:
        self.prior, self.schedule, self.waste_cost, self.floor = prior, schedule, waste, floor
        self.kernel = dict(kernel=kernel, alpha=alpha, beta=beta, low=low, high=high)
        self.estimated, self.min_weight = estimated, min_weight
        top = schedule.max_samples
        self.squared: list[np.ndarray] = []
        self.waste: list[np.ndarray] = []
        self.loss: list[np.ndarray] = []
        self.predictive: list[np.ndarray | None] = []
        # P(one given sequence of n samples with c correct) under the prior, for the expectations.
        self.sequence: list[np.ndarray] = []
        for n in range(top + 1):
            c, count = np.arange(n + 1), np.full(n + 1, n)
            mean, sd = inflated_moments(c, count, prior, **self.kernel)
            self.squared.append(sd**2 + (self.written(c, count) - mean) ** 2)
            post = inflated_posterior(c, count, prior)
            kept = self.estimated(c, count) >= DROP_MARGIN * min_weight
            self.waste.append(np.where(kept, post.zero, 0.0) if min_weight > 0 else np.zeros(n + 1))
            self.loss.append(self.squared[-1] + waste * self.waste[-1])
            step = schedule.step(n)
            self.predictive.append(self._predictive(c, n, step) if step else None)
            self.sequence.append(np.exp(log_sequence_probability(c, count, prior)))

    def written(self, c, n) -> np.ndarray:
        """The raw weight written at counts (c, n): the estimate, 0 below --min-weight, at least --floor."""
        estimated = self.estimated(c, n)
        return floor_weight(np.where(estimated >= self.min_weight, estimated, 0.0), self.floor, np.asarray(n) > 0)

    def _predictive(self, c: np.ndarray, n: int, step: int) -> np.ndarray:
        """P(x of the next `step` samples correct | c of n), shape (n + 1, step + 1)."""
        post = inflated_posterior(c, np.full(len(c), n), self.prior)
        x = np.arange(step + 1)[None, :]
        a, b = post.a[:, None], post.b[:, None]
        beta_binomial = np.exp(_log_binomial(step, x) + special.betaln(a + x, b + step - x) - special.betaln(a, b))
        out = post.interior[:, None] * beta_binomial
        out[:, 0] += post.zero
        out[:, step] += post.one
        return out

    def values(self, price: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Backward induction at `price` per sample: (V[n], go[n]) for n = 0 .. max_samples."""
        top = self.schedule.max_samples
        value: list[np.ndarray] = [np.empty(0)] * (top + 1)
        go: list[np.ndarray] = [np.zeros(0, bool)] * (top + 1)
        for n in range(top, -1, -1):
            step = self.schedule.step(n)
            if not step:
                value[n], go[n] = self.loss[n], np.zeros(n + 1, bool)
                continue
            after = value[n + step]
            # E[V(n + step, c + X)]: row c takes after[c : c + step + 1] weighted by the predictive.
            windows = np.lib.stride_tricks.sliding_window_view(after, step + 1)
            continuation = price * step + np.einsum("cx,cx->c", self.predictive[n], windows)
            go[n] = continuation < self.loss[n]
            value[n] = np.where(go[n], continuation, self.loss[n])
        return value, go

    def continues(self, price: float) -> list[np.ndarray]:
        """go[n][c]: whether a problem at c of n samples is sampled again, at `price`."""
        return self.values(price)[1]

    def expected(self, price: float) -> tuple[float, float, float, float]:
        """(loss, samples, squared error, waste) per problem, expected under the prior, for a run that
        starts every problem at --min-samples and follows the rule at `price`."""
        go = self.continues(price)
        start = self.schedule.min_samples
        paths = {start: np.exp(_log_binomial(start, np.arange(start + 1)))}
        squared = waste = samples = 0.0
        for n in range(start, self.schedule.max_samples + 1):
            if n not in paths:
                continue
            count = paths.pop(n)
            probability = count * self.sequence[n]
            stop = ~go[n]
            squared += float(np.dot(probability[stop], self.squared[n][stop]))
            waste += float(np.dot(probability[stop], self.waste[n][stop]))
            samples += float(probability[stop].sum()) * n
            step = self.schedule.step(n)
            if step and go[n].any():
                moved = np.convolve(np.where(go[n], count, 0.0), np.exp(_log_binomial(step, np.arange(step + 1))))
                paths[n + step] = paths.get(n + step, 0.0) + moved
        return squared + self.waste_cost * waste, samples, squared, waste

    def reference_loss(self, k: int) -> float:
        """Expected squared error under the prior of fixed-K plug-in weights w(c / K) (they keep no
        never-solved problem, so this is their whole loss)."""
        c = np.arange(k + 1)
        n = np.full(k + 1, k)
        mean, sd = inflated_moments(c, n, self.prior, **self.kernel)
        plug_in = estimate(c, n, estimator="empirical", **self.kernel).mean
        probability = np.exp(_log_binomial(k, c) + log_sequence_probability(c, n, self.prior))
        return float(np.dot(probability, sd**2 + (plug_in - mean) ** 2))

    def calibrate(self, target: float) -> Calibration:
        """The rule whose expected squared error is `target`, with as few samples as that allows.

        The expected error is a step function of the price (a block of states switches from stop
        to sample at one price), so the target usually falls inside a step. Bisection on log
        price finds the step's two sides; a share of the problems follows the careful side's
        rule, the rest the frugal side's, so the mixture meets the target exactly (both rules are
        optimal at the step's price, so every mixture is too).

        Returns the `Calibration`. When even stopping every problem at --min-samples meets the
        target, everyone follows that (share 0); when nothing within --max-samples does, everyone
        follows the most careful rule (share 1).
        """
        low, high = (math.log(x) for x in PRICE_RANGE)
        frugal = self.expected(PRICE_RANGE[1])
        if frugal[0] <= target:
            return Calibration(PRICE_RANGE[1], PRICE_RANGE[1], 0.0, *frugal)
        careful = self.expected(PRICE_RANGE[0])
        if careful[0] > target:
            return Calibration(PRICE_RANGE[0], PRICE_RANGE[0], 1.0, *careful)
        for _ in range(BISECTIONS):
            middle = (low + high) / 2
            here = self.expected(math.exp(middle))
            if here[0] <= target:
                low, careful = middle, here
            else:
                high, frugal = middle, here
        share = (frugal[0] - target) / (frugal[0] - careful[0])
        mixed = [share * a + (1 - share) * b for a, b in zip(careful, frugal)]
        return Calibration(math.exp(low), math.exp(high), share, *mixed)

    def target_loss(self, match_k: int, margin: float) -> float:
        """margin x the expected loss of fixed K = match_k plug-in weights (at least NEGLIGIBLE_LOSS)."""
        return max(margin * self.reference_loss(match_k), NEGLIGIBLE_LOSS)
