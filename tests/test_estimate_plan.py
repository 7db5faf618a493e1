"""The adaptive stopping rule of `paced estimate` (pure functions of counts; no engine)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from paced_curate.errors import ConfigError
from paced_curate.estimate import EstimateConfig, Policy, assess, first_round, next_round, projected_total
from paced_curate.estimate.plan import WASTE
from paced_curate.estimate.stopping import NEGLIGIBLE_LOSS, Schedule, StoppingModel
from paced_curate.grade import GradeConfig
from paced_curate.rollout import RolloutConfig
from paced_curate.weight import WeightConfig, estimate
from paced_curate.weight.inflated import InflatedPrior, inflated_moments, inflated_posterior

POLICY = Policy(min_samples=4, max_samples=16, round_samples=2)
ZOIB = WeightConfig(graded="-", estimator="zoib", min_weight=0.03)
U_SHAPED = InflatedPrior(zero=0.4, one=0.05, a=1.2, b=4.0)
KERNEL = dict(kernel="beta", alpha=1.0, beta=1.0, low=None, high=None)


def model(prior=U_SHAPED, weight=ZOIB, schedule=Schedule(4, 16, 2)) -> StoppingModel:
    def estimated(c, n):
        return estimate(c, n, estimator=weight.estimator, prior=prior if weight.estimator == "zoib" else None).mean

    return StoppingModel(prior, estimated, weight.min_weight, schedule, **KERNEL, waste=WASTE)


def simulate(prior: InflatedPrior, problems: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    kind = rng.choice(3, problems, p=[prior.zero, prior.one, 1 - prior.zero - prior.one])
    return np.where(kind == 0, 0.0, np.where(kind == 1, 1.0, rng.beta(prior.a, prior.b, problems)))


def run_policy(policy: Policy, weight, draws: np.ndarray):
    """The policy replayed on pre-drawn samples (problems x max_samples booleans)."""
    n_samples = np.zeros(draws.shape[0], dtype=np.int64)
    plan = first_round(policy, len(n_samples))
    while plan is not None:
        n_samples[plan.problems] += plan.count
        correct = (draws & (np.arange(draws.shape[1])[None, :] < n_samples[:, None])).sum(1)
        state = assess(policy, n_samples, correct, n_samples, weight)
        plan = next_round(policy, n_samples, state.open)
    return n_samples, state


# --- the stopping model: exact expectations, backward induction, calibration -------------------


def test_expected_error_waste_and_samples_are_what_the_rule_does_on_problems_drawn_from_the_prior():
    m = model()
    price = 3e-4
    go = m.continues(price)
    rng = np.random.default_rng(0)
    p = simulate(U_SHAPED, 40_000, seed=1)
    draws = rng.random((len(p), 16)) < p[:, None]
    n = np.full(len(p), 4)
    active = np.ones(len(p), dtype=bool)
    while active.any():
        c = (draws & (np.arange(16)[None, :] < n[:, None])).sum(1)
        active = np.array([go[ni][ci] for ni, ci in zip(n, c)]) & active
        n = np.where(active, n + np.array([m.schedule.step(ni) for ni in n]), n)
    c = (draws & (np.arange(16)[None, :] < n[:, None])).sum(1)
    estimated = estimate(c, n, estimator="zoib", prior=U_SHAPED).mean
    written = np.where(estimated >= 0.03, estimated, 0.0)
    loss, samples, squared, waste = m.expected(price)
    assert samples == pytest.approx(n.mean(), rel=0.01)
    assert squared == pytest.approx(np.mean((written - p * (1 - p)) ** 2), rel=0.05)
    # Waste: kept (by the rule's cautious count, estimate >= 0.8 x --min-weight) yet never solved.
    assert waste == pytest.approx(np.mean((estimated >= 0.8 * 0.03) & (p == 0)), abs=0.003)
    assert loss == pytest.approx(squared + WASTE * waste)


def test_reference_loss_is_fixed_k_plug_in_error_on_problems_drawn_from_the_prior():
    rng = np.random.default_rng(2)
    p = simulate(U_SHAPED, 100_000, seed=3)
    for k in (4, 8, 16):
        rate = rng.binomial(k, p) / k
        assert model().reference_loss(k) == pytest.approx(np.mean((rate * (1 - rate) - p * (1 - p)) ** 2), rel=0.03), k


def test_backward_induction_is_no_worse_than_always_stopping_or_always_sampling():
    """At any price, the rule's expected cost (error + price x samples) is at most that of the two simple rules."""
    m = model()
    for price in (1e-5, 1e-4, 3e-4, 1e-3):
        loss, samples = m.expected(price)[:2]
        stop_all = m.expected(1e9)
        always = m.expected(0.0)
        mine = loss + price * samples
        assert mine <= stop_all[0] + price * stop_all[1] + 1e-15
        assert mine <= always[0] + price * always[1] + 1e-15


def test_error_rises_and_samples_fall_with_the_price():
    m = model()
    points = [m.expected(price)[:2] for price in np.geomspace(1e-7, 1e-1, 40)]
    losses, samples = zip(*points)
    assert all(b >= a - 1e-15 for a, b in zip(losses, losses[1:]))
    assert all(b <= a + 1e-12 for a, b in zip(samples, samples[1:]))
    assert samples[0] > 10 and samples[-1] == pytest.approx(4)
    assert not any(go.any() for go in m.continues(1e9))


def test_the_calibrated_rule_meets_the_target_exactly_with_fewer_samples_than_either_side_alone_would_need():
    """The expected error jumps at some prices (a block of states switches at once); a share of
    problems follows each side of the jump, so the target is met exactly, not overshot."""
    m = model()
    target = m.target_loss(8, 0.9)
    assert target == pytest.approx(0.9 * m.reference_loss(8))
    rule = m.calibrate(target)
    careful, frugal = m.expected(rule.careful), m.expected(rule.frugal)
    assert careful[0] <= target < frugal[0] and rule.frugal / rule.careful - 1 < 1e-6
    assert 0 < rule.share < 1 and rule.loss == pytest.approx(target, rel=1e-9)
    assert rule.samples == pytest.approx(rule.share * careful[1] + (1 - rule.share) * frugal[1])
    assert rule.samples < careful[1]
    # Out of reach both ways: everyone on one side.
    assert m.calibrate(1.0).share == 0 and m.calibrate(1.0).samples == pytest.approx(m.expected(1.0)[1])
    assert m.calibrate(0.0).share == 1


def test_the_rule_controls_the_error_of_the_weights_that_are_written():
    """Plug-in weights write 0 at 0/n, so their posterior error at 0/4 holds the whole mean as bias;
    zoib writes the mean (kept, above --min-weight) and is charged for keeping a probably
    never-solved problem instead."""
    zoib, plug_in = model(), model(weight=WeightConfig(graded="-", estimator="empirical"))
    mean, sd = (float(x[0]) for x in inflated_moments(np.array([0]), np.array([4]), U_SHAPED))
    assert mean >= 0.03, "0/4 is kept by zoib here"
    assert plug_in.squared[4][0] == pytest.approx(sd**2 + mean**2, rel=1e-9)
    assert zoib.squared[4][0] == pytest.approx(sd**2, rel=1e-9)
    never = float(inflated_posterior(0, 4, U_SHAPED).zero)
    assert plug_in.waste[4][0] == 0 and zoib.waste[4][0] == pytest.approx(never)
    assert zoib.loss[4][0] == pytest.approx(sd**2 + WASTE * never)
    # Without --min-weight nothing can be dropped, and keeping is no choice: no waste is charged.
    assert not model(weight=WeightConfig(graded="-", estimator="zoib")).waste[4].any()


# --- assess: which problems stay open --------------------------------------------------------


def pool_counts(prior: InflatedPrior, problems: int, samples: int, seed: int):
    rng = np.random.default_rng(seed)
    c = rng.binomial(samples, simulate(prior, problems, seed))
    return np.full(problems, samples), c, np.full(problems, samples)


def test_assess_opens_the_problems_the_rule_samples_again_and_records_its_numbers():
    n_samples, c, n = pool_counts(U_SHAPED, 2_000, 4, seed=4)
    state = assess(POLICY, n_samples, c, n, ZOIB)
    assert state.prior.fitted and state.prior.zero > 0.2, state.prior
    assert 0 < state.open.mean() < 1
    assert state.expected_rmse <= math.sqrt(0.9) * state.reference_rmse + 1e-12
    # Each problem follows its side of the calibration step (`problem_uniforms`; by position here).
    m = model(state.prior)
    rule = m.calibrate(m.target_loss(8, 0.9))
    careful, frugal = m.continues(rule.careful), m.continues(rule.frugal)
    assert state.share == pytest.approx(rule.share) and 0 < rule.share < 1
    side = (np.arange(len(c)) * 0.6180339887498949) % 1.0 < rule.share
    assert state.open.tolist() == [bool((careful if s else frugal)[4][k]) for s, k in zip(side, c)]
    # 2/4 and 3/4 are middling, where w = p(1-p) is flat: known well enough on both sides. 1/4 sits
    # where w is steep, and 4/4 may be an always-solved problem or an easy one: sampled again.
    for go in (careful, frugal):
        assert go[4][[1, 4]].all() and not go[4][[2, 3]].any()
    # 0/n is sampled on (by the careful side) until enough failures in a row settle it at weight 0.
    settled = next(k for k in range(4, 17, 2) if not careful[k][0])
    assert 6 <= settled <= 12, settled
    assert estimate(np.array([0]), np.array([settled]), estimator="zoib", prior=state.prior, min_weight=0.03).mean[0] == 0


def test_a_closed_problem_is_never_reopened_and_rounds_share_one_sample_count():
    n_samples, c, n = pool_counts(U_SHAPED, 500, 8, seed=5)
    n_samples[:3], c[:3], n[:3] = 4, 2, 4  # closed after round 0 with 2/4, which is open at n = 8
    state = assess(POLICY, n_samples, c, n, ZOIB)
    assert not state.open[:3].any()
    plan = next_round(POLICY, n_samples, state.open)
    assert plan is None or (plan.first_sample == 8 and (n_samples[plan.problems] == 8).all())


def test_problems_at_max_samples_are_closed_and_excluded_samples_are_judged_at_their_counts():
    n_samples, c, n = pool_counts(U_SHAPED, 500, 16, seed=6)
    assert not assess(POLICY, n_samples, c, n, ZOIB).open.any()
    n_samples, c, n = pool_counts(U_SHAPED, 500, 4, seed=7)
    n[0], c[0] = 0, 0  # all four samples excluded by grading: no evidence yet
    assert assess(POLICY, n_samples, c, n, ZOIB).open[0]


# (counts of the pool, what must happen): degenerate pools give sensible results.
def test_degenerate_pools():
    def judge(c, n):
        c, n = np.asarray(c), np.asarray(n)
        return assess(POLICY, n, c, n, ZOIB)

    never = judge(np.zeros(480, int), np.full(480, 4))
    assert not never.open.any() and (never.written == 0).all(), "all never solved: everything stops at --min-samples, at weight 0"
    always = judge(np.full(480, 4), np.full(480, 4))
    assert not always.open.any() and (always.written == 0).all(), "all always solved: likewise"
    # One problem says nothing about a pool: its own samples decide, and 0/4 may be a hard problem.
    assert judge([0], [4]).open.all() and judge([4], [4]).open.all()
    assert judge([2], [4]).written[0] == pytest.approx(0.214, abs=0.01)
    rng = np.random.default_rng(8)
    same = judge(rng.binomial(4, 0.5, 480), np.full(480, 4))
    assert not same.open.any(), "480 problems alike: the pool pins p down; nobody needs more samples"
    assert np.abs(same.written - 0.25).max() < 0.05


@pytest.mark.parametrize("p", [0.5, 0.1, 0.9])
def test_min_samples_1_closes_nothing_on_one_sample_per_problem(p):
    """One sample per problem cannot identify the prior (0/1 and 1/1 fit a point mass as well as any
    spread); the fit's hyperprior keeps it from certainty, so nothing closes at weight 0 after one
    sample (before #22, 400 of 400 problems at p = 0.5 did)."""
    policy = Policy(min_samples=1, max_samples=16, round_samples=2)
    c = np.random.default_rng(9).binomial(1, p, 400)
    state = assess(policy, np.ones(400, int), c, np.ones(400, int), ZOIB)
    assert state.open.all(), state.prior


def test_rounds_sample_every_problem_then_only_open_ones_up_to_max():
    plan = first_round(POLICY, 5)
    assert (plan.first_sample, plan.count, plan.problems.tolist()) == (0, 4, [0, 1, 2, 3, 4])
    n_samples = np.array([4, 4, 4, 4, 4])
    plan = next_round(POLICY, n_samples, np.array([False, True, False, True, False]))
    assert (plan.first_sample, plan.count, plan.problems.tolist()) == (4, 2, [1, 3])
    capped = next_round(Policy(4, 9, 4), np.array([8, 8]), np.array([True, True]))
    assert (capped.first_sample, capped.count) == (8, 1), "the last round stops at max_samples"
    assert next_round(POLICY, n_samples, np.zeros(5, bool)) is None


def test_projected_total_assumes_the_last_rounds_share_stays_open():
    # 100 problems, 4 samples each spent; half stay open, each later round keeps half again.
    policy = Policy(4, 16, 4)
    assert projected_total(policy, 400, 50, 100, 4) == 400 + 50 * 4 + 25 * 4 + round(12.5 * 4)
    assert projected_total(policy, 400, 0, 100, 4) == 400


# --- the target on simulated pools (#22), with numpy draws --------------------------


def k8_numbers(p, draws):
    rate = draws[:, :8].mean(1)
    return rate * (1 - rate)


def compare(p, written, n, k8):
    truth = p * (1 - p)
    middle = (p > 0.1) & (p < 0.9)

    def rmse(w, mask=slice(None)):
        return float(np.sqrt(np.mean((w[mask] - truth[mask]) ** 2)))

    return {
        "samples": float(n.mean()), "rmse": rmse(written), "k8_rmse": rmse(k8), "middle_rmse": rmse(written, middle),
        "k8_middle_rmse": rmse(k8, middle), "middle_zero": float(np.mean(written[middle] == 0)), "k8_middle_zero": float(np.mean(k8[middle] == 0)),
        "never_solved_dropped": float(np.mean(written[p == 0] == 0)) if (p == 0).any() else 1.0,
    }


def test_on_uniform_pass_rates_the_defaults_save_30_percent_with_weights_no_worse_than_fixed_k8():
    rng = np.random.default_rng(10)
    p = rng.random(1500)
    draws = rng.random((1500, 16)) < p[:, None]
    n, state = run_policy(EstimateConfig(output="r", rollout=RolloutConfig(problems="p", model="m", output="r"), grade=GradeConfig(rollouts="r", output="g"),
                                         weight=ZOIB, adaptive=True).policy(), ZOIB, draws)
    got = compare(p, state.written, n, k8_numbers(p, draws))
    assert got["samples"] <= 0.7 * 8, got
    assert got["rmse"] <= got["k8_rmse"] and got["middle_rmse"] <= got["k8_middle_rmse"] and got["middle_zero"] <= got["k8_middle_zero"], got


def test_on_a_u_shaped_pool_the_weights_are_no_worse_than_fixed_k8_and_never_solved_problems_are_dropped():
    """Where the rule before #22 wrote frontier problems at weight 0 twice as often as fixed K = 8 and
    had 25% more RMSE: now the written weights are about as close to the truth (the pool allows few
    savings: telling never-solved problems from hard ones takes samples; docs/stages/estimate.md)."""
    rng = np.random.default_rng(11)
    p = simulate(U_SHAPED, 2000, seed=12)
    draws = rng.random((2000, 16)) < p[:, None]
    n, state = run_policy(Policy(4, 16, 2), ZOIB, draws)
    got = compare(p, state.written, n, k8_numbers(p, draws))
    assert got["rmse"] <= 1.05 * got["k8_rmse"] and got["middle_rmse"] <= got["k8_middle_rmse"], got
    assert got["middle_zero"] <= got["k8_middle_zero"] and got["never_solved_dropped"] >= 0.95, got
    assert got["samples"] <= 8.5, got


# --- the config --------------------------------------------------------------------------------


def config(**overrides):
    rollout = RolloutConfig(problems="p.jsonl", model="m", output="run")
    weight = WeightConfig(graded="run", estimator=overrides.pop("estimator", "zoib"), kernel=overrides.pop("kernel", "beta"))
    return EstimateConfig(output=overrides.pop("output", "run"), rollout=rollout, grade=GradeConfig(rollouts="r", output="g"), weight=weight, **overrides)


BAD_CONFIGS = [
    (dict(adaptive=True, kernel="uniform"), "--adaptive with --kernel uniform has nothing to estimate"),
    (dict(adaptive=True, min_samples=8, max_samples=4), "--max-samples (4) must be at least --min-samples (8)"),
    (dict(adaptive=True, min_samples=0), "--min-samples must be at least 1"),
    (dict(adaptive=True, round_samples=0), "--round-samples must be at least 1"),
    (dict(adaptive=True, match_k=0), "--match-k must be at least 1"),
    (dict(samples=0), "-k/--samples must be at least 1"),
    (dict(output="-"), "-o must be a run directory"),
    (dict(output="w.parquet"), "name a run directory, not a .parquet file"),
    # #24: a flag that does nothing in the chosen mode is refused.
    (dict(adaptive=True, samples=8), "-k/--samples sets a fixed K and does nothing with --adaptive"),
    (dict(min_samples=2), "--min-samples only apply with --adaptive"),
    (dict(max_samples=8, round_samples=2), "--max-samples, --round-samples only apply with --adaptive"),
    (dict(match_k=16), "--match-k only apply with --adaptive"),
]


@pytest.mark.parametrize("overrides,message", BAD_CONFIGS, ids=[m for _, m in BAD_CONFIGS])
def test_bad_settings_are_refused_up_front(overrides, message):
    with pytest.raises(ConfigError) as error:
        config(**overrides)
    assert message in str(error.value)


def test_fixed_k_is_one_round_and_settings_name_what_changes_results():
    assert config(samples=6, estimator="empirical").policy() == Policy(6, 6, 1, match_k=6)
    assert config().policy() == Policy(8, 8, 1, match_k=8), "fixed K defaults to 8"
    assert config(adaptive=True).settings() != config(adaptive=True, match_k=16).settings()
    assert config(adaptive=True).settings() == config(adaptive=True, overwrite=True).settings()
    assert config(adaptive=True).settings() == config(adaptive=True, min_samples=4, max_samples=16, round_samples=2, match_k=8).settings()


def test_the_command_line_defaults_are_the_configs():
    import typing

    from paced_curate.cli.estimate import estimate_command
    from paced_curate.estimate.config import (
        DEFAULT_ADAPTIVE_MIN_WEIGHT,
        DEFAULT_K,
        DEFAULT_MATCH_K,
        DEFAULT_MAX_SAMPLES,
        DEFAULT_MIN_SAMPLES,
        DEFAULT_ROUND_SAMPLES,
        weight_defaults,
    )

    hints = typing.get_type_hints(estimate_command, include_extras=True)
    helps = {name: hint.__metadata__[0].help for name, hint in hints.items() if hasattr(hint, "__metadata__")}
    for name, value in [("samples", DEFAULT_K), ("min_samples", DEFAULT_MIN_SAMPLES), ("max_samples", DEFAULT_MAX_SAMPLES),
                        ("round_samples", DEFAULT_ROUND_SAMPLES), ("match_k", DEFAULT_MATCH_K)]:
        assert helps[name].endswith(f"(default {value})"), name
    assert f"(default {DEFAULT_ADAPTIVE_MIN_WEIGHT:g} with --adaptive, else 0)" in helps["min_weight"]
    assert weight_defaults(True, None, None) == ("zoib", DEFAULT_ADAPTIVE_MIN_WEIGHT)
    assert weight_defaults(False, None, None) == ("empirical", 0.0)
    assert weight_defaults(True, "empirical", 0.0) == ("empirical", 0.0)


def test_negligible_error_is_below_any_reference_a_real_pool_has():
    assert NEGLIGIBLE_LOSS < model().reference_loss(8) / 10
