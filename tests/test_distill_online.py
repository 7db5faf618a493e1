"""Online PACED's posterior (#25, `distill/online.py`) against a slow reference, and the batch walk.

The reference keeps every observation with the step it was drawn at and recomputes each
problem's decayed counts and weight from scratch with the textbook formulas; the posterior must
agree with it for every kernel and estimator, across half-lives, and over horizons long enough
to move its frame many times.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy import special

from paced_curate.distill.online import Posterior, Weighting, frontier_threshold, initial_counts, raw_weights, row_weights, weight_moved
from paced_curate.distill.reweight import walk
from paced_curate.errors import ConfigError

WEIGHTINGS = [
    Weighting(),
    Weighting(alpha=2.0, beta=0.5),
    Weighting(estimator="bayes"),
    Weighting(estimator="bayes", prior_a=2.0, prior_b=3.0, alpha=1.5),
    Weighting(estimator="eb", prior_a=0.41, prior_b=0.62),
    Weighting(kernel="band", low=0.125, high=0.875),
    Weighting(kernel="band", low=0.2, high=0.6, estimator="bayes"),
    Weighting(kernel="uniform"),
    Weighting(floor=0.01),
    Weighting(estimator="bayes", floor=0.05),
]


def reference_weight(observations: list[tuple[int, int, int]], step: int, halflife: int, w: Weighting) -> float:
    """One problem's weight at `step` from its (drawn at step, correct, scored) observations, the slow way."""
    c = n = 0.0
    for drawn, correct, scored in observations:
        factor = 1.0 if halflife == 0 else 2.0 ** (-(step - drawn) / halflife)
        c += correct * factor
        n += scored * factor
    if n == 0:
        return 0.0
    if w.kernel == "uniform":
        raw = 1.0
    elif w.estimator == "empirical":
        p = c / n
        raw = float(w.low <= p <= w.high) if w.kernel == "band" else p**w.alpha * (1 - p) ** w.beta
    else:
        a, b = w.prior_a + c, w.prior_b + n - c
        if w.kernel == "band":
            raw = special.betainc(a, b, w.high) - special.betainc(a, b, w.low)
        else:
            raw = special.beta(a + w.alpha, b + w.beta) / special.beta(a, b)
    return max(raw, w.floor)


@pytest.mark.parametrize("weighting", WEIGHTINGS, ids=lambda w: w.describe())
@pytest.mark.parametrize("halflife", [0, 1, 3, 7])
def test_the_posterior_matches_a_slow_reference_over_long_runs(weighting, halflife):
    rng = random.Random(halflife * 100 + WEIGHTINGS.index(weighting))
    problems = 12
    history = {p: [] for p in range(problems)}
    initial = [(rng.randint(0, 8), 8) for _ in range(problems - 2)] + [(0, 0), (0, 8)]
    for p, (c, n) in enumerate(initial):
        history[p] += [(0, 1, 1)] * c + [(0, 0, 1)] * (n - c)
    posterior = Posterior([c for c, _ in initial], [n for _, n in initial], weighting, halflife)
    start = [reference_weight(history[p], 0, halflife, weighting) for p in range(problems)]
    tau = min(w for w in start if w > 0)
    assert posterior.threshold == pytest.approx(tau, rel=1e-12)
    step = 0
    # Long enough for 64 half-lives to pass many times (the frame moves every 64 half-lives).
    horizon = 400 * max(halflife, 1)
    checks = sorted(rng.sample(range(1, horizon), 25) + [horizon])
    for check in checks:
        while step < check:
            step += rng.randint(1, max(1, horizon // 40))
            drawn = step - rng.randint(0, 2)  # samples join one or two steps after they were drawn
            correct, scored = np.zeros(problems), np.zeros(problems)
            for p in rng.sample([q for q in range(problems) if q != problems - 2], 3):  # problem -2 is never observed
                is_scored = rng.random() < 0.9
                is_correct = is_scored and rng.random() < 0.4 + 0.05 * p
                correct[p], scored[p] = is_correct, is_scored
                history[p].append((drawn, int(is_correct), int(is_scored)))
            posterior.add(correct, scored, drawn)
        expected = [reference_weight(history[p], step, halflife, weighting) for p in range(problems)]
        # abs 1e-7: where old failures have decayed below 1e-10 of the rest, 1 - c/n is all rounding in both
        # computations (one may even be 0) and so is their w(p), itself below 1e-7; elsewhere they agree to 1e-9.
        assert posterior.raw_weights(step) == pytest.approx(expected, rel=1e-9, abs=1e-7), (step, halflife)
        assert posterior.weights(step).tolist() == posterior.raw_weights(step).tolist()
        c, n = posterior.counts(step)
        assert n[-2] == 0 and posterior.raw_weights(step)[-2] == 0  # no scored sample, no weight


@pytest.mark.parametrize("weighting", [w for w in WEIGHTINGS if w.estimator == "empirical"], ids=lambda w: w.describe())
def test_decay_alone_leaves_the_plug_in_weights_bit_for_bit_the_static_ones(weighting):
    counts = [(1, 8), (7, 8), (4, 8), (0, 8), (8, 8), (3, 5)]
    posterior = Posterior([c for c, _ in counts], [n for _, n in counts], weighting, halflife=3)
    static = raw_weights(np.array([c for c, _ in counts]), np.array([n for _, n in counts]), weighting)
    # Up to ~1000 half-lives: older evidence underflows float64 (2^-1022) and is gone.
    for step in (0, 1, 2, 191, 192, 193, 2900):
        posterior.add(np.zeros(len(counts)), np.zeros(len(counts)), step)  # nothing observed, time passes
        assert posterior.raw_weights(step).tolist() == static.tolist()


# What a problem's weight does as the student changes: (weighting, initial (c, n), observations as
# (correct, scored) per step, expected direction). Observations are drawn one per step from step 1.
DIRECTIONS = [
    ("learned: a frontier problem now solved loses its weight", Weighting(), (4, 8), [(1, 1)] * 30, "falls to near 0"),
    # The posterior mean keeps the prior's doubt: with 5-step memory, about 7 recent successes say p is high, not 1.
    ("learned, bayes", Weighting(estimator="bayes"), (4, 8), [(1, 1)] * 30, "falls"),
    ("learned, band: leaves the band", Weighting(kernel="band", low=0.125, high=0.875), (4, 8), [(1, 1)] * 30, "falls to 0"),
    ("starts to solve: an unsolved problem enters", Weighting(), (0, 8), [(1, 1)], "rises from 0"),
    ("starts to solve, band", Weighting(kernel="band", low=0.1, high=0.9), (0, 8), [(1, 1)] * 3, "rises from 0"),
    ("starts to solve, bayes", Weighting(estimator="bayes"), (0, 8), [(1, 1)] * 3, "rises"),
    ("forgets: a solved problem failed again re-enters", Weighting(), (8, 8), [(0, 1)], "rises from 0"),
    ("still unsolved: stays at 0", Weighting(), (0, 8), [(0, 1)] * 10, "stays 0"),
    ("unscored samples change nothing", Weighting(), (2, 8), [(0, 0)] * 10, "stays"),
]


FRONTIER = [
    # (problem 0's initial counts, its observations as (drawn at step, correct), expected (on the frontier, faded) after each).
    # Problem 1 sits at 1/8, so tau = w(1/8) = 7/64: below it an estimate has left [1/8, 7/8].
    ("a learned problem's weight fades but it stays on the frontier", (4, 8), [(s, 1) for s in range(1, 13)],
     [(True, False)] * 9 + [(True, True)] * 3),
    ("one success among eight failures enters, faded", (0, 8), [(0, 1)], [(True, True)]),
    ("one success drawn later counts more than the faded failures: enters within the band", (0, 8), [(1, 1)], [(True, False)]),
    ("a solved problem that fails again re-enters", (8, 8), [(1, 0)], [(True, False)]),
    ("an unsolved problem that keeps failing stays out", (0, 8), [(s, 0) for s in range(1, 6)], [(False, False)] * 5),
]


@pytest.mark.parametrize("case", FRONTIER, ids=[case[0] for case in FRONTIER])
def test_the_frontier_is_every_problem_with_mixed_evidence(case):
    _, initial, observations, expected = case
    posterior = Posterior([initial[0], 1], [initial[1], 8], Weighting(), halflife=4)
    assert posterior.threshold == pytest.approx(7 / 64)
    seen = []
    for drawn, correct in observations:
        posterior.add([correct, 0], [1, 0], drawn)
        weight = posterior.weights(drawn + 1)[0]
        seen.append((bool(weight > 0), bool(0 < weight < posterior.threshold)))
    assert seen == expected


@pytest.mark.parametrize("case", DIRECTIONS, ids=[case[0] for case in DIRECTIONS])
def test_weights_follow_the_student(case):
    _, weighting, (c, n), observations, direction = case
    posterior = Posterior([c], [n], weighting, halflife=5)
    before = posterior.raw_weights(0)[0]
    for step, (correct, scored) in enumerate(observations, start=1):
        posterior.add([correct], [scored], step)
    after = posterior.raw_weights(len(observations) + 1)[0]
    if direction == "falls to near 0":
        assert after < 0.1 * before, (before, after)
    elif direction == "falls":
        assert after < 0.5 * before, (before, after)
    elif direction == "falls to 0":
        assert before > 0 and after == 0
    elif direction == "rises from 0":
        assert before == 0 and after > 0
    elif direction == "rises":
        assert after > 2 * before
    elif direction == "stays 0":
        assert before == after == 0
    else:
        assert after == before


def test_older_evidence_counts_less_the_shorter_the_halflife():
    # A problem at 1/8 that now succeeds 4 times in a row: the shorter the memory, the higher its estimate.
    estimates = []
    for halflife in (0, 20, 5, 1):
        posterior = Posterior([1], [8], Weighting(), halflife=halflife)
        for step in range(1, 5):
            posterior.add([1], [1], step)
        c, n = posterior.counts(5)
        estimates.append(c[0] / n[0])
    assert estimates[0] == pytest.approx(5 / 12)
    assert estimates == sorted(estimates) and estimates[-1] > 0.8, estimates


def test_a_posterior_restores_exactly_from_its_state():
    posterior = Posterior([1, 3, 0], [8, 8, 8], Weighting(estimator="bayes"), halflife=2)
    for step in range(1, 300, 7):
        posterior.add([1, 0, step % 2], [1, 1, 1], step)
    copy = Posterior([1, 3, 0], [8, 8, 8], Weighting(estimator="bayes"), halflife=2)
    copy.load_state_dict(posterior.state_dict())
    assert copy.raw_weights(301).tolist() == posterior.raw_weights(301).tolist()
    with pytest.raises(ValueError, match="another half-life"):
        Posterior([1, 3, 0], [8, 8, 8], Weighting(), halflife=3).load_state_dict(posterior.state_dict())


@pytest.mark.parametrize(
    "raw,problem_of_row,expected",
    [
        ([0.25, 0.0, 0.125], [0, 1, 2], [4 / 3, 0.0, 2 / 3]),  # mean 1 over the two rows with weight > 0
        ([0.25, 0.125], [0, 0, 1], [1.0, 1.0, 1.0]),  # R = 2 rows share 0.25: 0.125 each, as much as problem 1's one row
        ([0.5, 0.125], [0, 0, 1], [1.2, 1.2, 0.6]),  # shares 0.25, 0.25, 0.125, scaled by 3 / 0.625
        ([0.0, 0.0], [0, 1], [0.0, 0.0]),
        ([1.0, 1.0, 1.0], [0, 1, 2], [1.0, 1.0, 1.0]),
    ],
)
def test_row_weights_share_a_problem_among_its_rows_and_have_mean_one_over_trained_rows(raw, problem_of_row, expected):
    weights = row_weights(np.array(raw), np.array(problem_of_row))
    assert weights.tolist() == pytest.approx(expected)
    if weights.any():
        assert weights[weights > 0].mean() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "n_correct,n_samples,pass_rate,expected",
    [
        (3, 8, 3 / 8, (3, 8)),
        (3, 8, 3 / 7, (3, 7)),  # one sample excluded from the pass rate
        (8, 8, 1.0, (8, 8)),
        (0, 8, 0.0, (0, 8)),  # n_scored is not in the export: n_samples
        (0, 8, math.nan, (0, 0)),  # nothing scored
        (1, 1000, 1 / 999, (1, 999)),
    ],
)
def test_initial_counts_come_from_the_export_columns(n_correct, n_samples, pass_rate, expected):
    c, n = initial_counts(np.array([n_correct]), np.array([n_samples]), np.array([pass_rate]))
    assert (c[0], n[0]) == expected


def test_the_weighting_comes_from_the_export_record():
    record = {"kernel": "beta", "alpha": 2.0, "beta": 1.0, "estimator": "eb", "prior_a": 0.5, "prior_b": 0.5, "floor": 0.01,
              "prior": {"a": 0.41, "b": 0.62, "fitted": True}, "normalize": "mean", "interval": "jeffreys"}
    assert Weighting.from_record(record) == Weighting(alpha=2.0, estimator="eb", prior_a=0.41, prior_b=0.62, floor=0.01)
    assert Weighting.from_record({}) == Weighting() == Weighting.from_record(None)
    with pytest.raises(ConfigError, match="band kernel but the record lacks its low and high"):
        Weighting.from_record({"kernel": "band"})
    with pytest.raises(ConfigError, match="kernel 'cosine'"):
        Weighting.from_record({"kernel": "cosine"})


def test_the_frontier_threshold_is_the_least_static_weight_and_moved_mass_is_a_share():
    raw = raw_weights(np.array([0, 1, 4, 7, 8]), np.array([8, 8, 8, 8, 8]), Weighting())
    assert frontier_threshold(raw) == pytest.approx(7 / 64)
    assert weight_moved(raw, raw) == 0.0
    assert weight_moved(np.array([1.0, 0.0]), np.array([0.0, 2.0])) == pytest.approx(1.0)
    assert weight_moved(np.array([1.0, 1.0]), np.array([1.0, 3.0])) == pytest.approx(0.25)


def test_the_walk_takes_active_rows_in_stream_order_and_probes_inactive_ones_at_the_rate():
    from paced_curate.distill.data import epoch_order

    active = np.array([i % 3 != 0 for i in range(30)])
    rows, probes, cursor = walk(0, active, batch_size=8, seed=4, explore=0.0)
    stream = [int(i) for i in epoch_order(30, 4, 0)]
    expected = [r for r in stream if active[r]][:8]
    assert rows == expected and probes == [] and cursor == stream.index(expected[-1]) + 1
    # The next batch starts where this one stopped, and crosses into the next epoch's permutation.
    rows2, _, cursor2 = walk(cursor, active, batch_size=20, seed=4, explore=0.0)
    stream2 = stream + [int(i) for i in epoch_order(30, 4, 1)]
    assert rows2 == [r for r in stream2[cursor:] if active[r]][:20]
    # Probing: a seeded draw per stream position, so the same walk probes the same rows; about `explore` of the passes.
    again = walk(0, active, batch_size=200, seed=4, explore=0.3)
    assert walk(0, active, batch_size=200, seed=4, explore=0.3) == again
    passed_inactive = sum(1 for j in range(again[2]) if not active[int(epoch_order(30, 4, j // 30)[j % 30])])
    assert 0.2 < len(again[1]) / passed_inactive < 0.4
    rows, probes, cursor = walk(0, np.zeros(5, dtype=bool), batch_size=2, seed=0, explore=1.0)
    assert rows == [] and sorted(probes) == [0, 1, 2, 3, 4] and cursor == 5  # one pass, every row probed
