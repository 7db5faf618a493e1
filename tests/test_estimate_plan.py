"""The adaptive stopping rule of `paced estimate` (pure functions of counts; no engine)."""

from __future__ import annotations

import numpy as np
import pytest

from paced_curate.errors import ConfigError
from paced_curate.estimate import EstimateConfig, Policy, assess, first_round, next_round, projected_total
from paced_curate.grade import GradeConfig
from paced_curate.rollout import RolloutConfig
from paced_curate.weight import WeightConfig

POLICY = Policy(min_samples=4, max_samples=16, round_samples=4, tolerance=0.04)
EB = dict(kernel="beta", estimator="eb", alpha=1.0, beta=1.0, low=None, high=None, prior_a=0.5, prior_b=0.5)


def u_shaped_pool(extra_c, extra_n, extra_samples):
    """200 problems at 0/4 or 4/4 (a typical pool), then the problems under test."""
    c = np.concatenate([np.zeros(100, int), np.full(100, 4), extra_c])
    n = np.concatenate([np.full(200, 4), extra_n])
    samples = np.concatenate([np.full(200, 4), extra_samples])
    return samples, c, n


# (c, n, samples drawn, open?, reason)
OPEN_CASES = [
    (0, 4, 4, False, "0/4 in a pool of all-or-nothing problems: w is near 0 with small sd"),
    (4, 4, 4, False, "4/4 likewise, at the other end"),
    (2, 4, 4, True, "2/4: p anywhere in the middle, w uncertain"),
    (1, 4, 4, True, "1/4: uncertain"),
    (8, 16, 16, False, "8/16 is still uncertain, but max_samples is reached"),
    (0, 0, 4, True, "all 4 samples excluded by grading: no evidence yet, keep sampling"),
    (0, 0, 16, False, "no evidence, but max_samples is reached"),
]


@pytest.mark.parametrize("c,n,samples,expected,reason", OPEN_CASES, ids=[case[4].split(":")[0] for case in OPEN_CASES])
def test_which_problems_stay_open(c, n, samples, expected, reason):
    n_samples, n_correct, n_scored = u_shaped_pool(np.array([c]), np.array([n]), np.array([samples]))
    state = assess(POLICY, n_samples, n_correct, n_scored, **EB)
    assert bool(state.open[-1]) is expected, (reason, state.sd[-1], state.prior)
    assert state.prior.fitted and state.prior.a < 0.5 and state.prior.b < 0.5, "the pool's prior is U-shaped"


def test_rounds_sample_every_problem_then_only_open_ones_up_to_max():
    plan = first_round(POLICY, 5)
    assert (plan.first_sample, plan.count, plan.problems.tolist()) == (0, 4, [0, 1, 2, 3, 4])
    n_samples = np.array([4, 4, 4, 4, 4])
    plan = next_round(POLICY, n_samples, np.array([False, True, False, True, False]))
    assert (plan.first_sample, plan.count, plan.problems.tolist()) == (4, 4, [1, 3])
    capped = next_round(Policy(4, 10, 4, 0.04), np.array([8, 8]), np.array([True, True]))
    assert (capped.first_sample, capped.count) == (8, 2), "the last round stops at max_samples"
    assert next_round(POLICY, n_samples, np.zeros(5, bool)) is None


def test_projected_total_assumes_the_last_rounds_share_stays_open():
    # 100 problems, 4 samples each spent; half stay open, each later round keeps half again.
    assert projected_total(POLICY, 400, 50, 100, 4) == 400 + 50 * 4 + 25 * 4 + round(12.5 * 4)
    assert projected_total(POLICY, 400, 0, 100, 4) == 400


def test_replaying_the_policy_matches_fixed_k8_plug_in_with_40_percent_fewer_samples():
    """On a simulated pool of spread pass rates, the issue's goal holds; every problem stops for a reason."""
    policy = Policy(min_samples=2, max_samples=16, round_samples=2, tolerance=0.07)
    rng = np.random.default_rng(0)
    p = rng.beta(0.8, 0.8, 1000)
    truth = p * (1 - p)
    draws = rng.random((1000, policy.max_samples)) < p[:, None]
    n_samples = np.zeros(1000, int)
    plan = first_round(policy, 1000)
    while plan is not None:
        n_samples[plan.problems] += plan.count
        correct = np.array([draws[i, :k].sum() for i, k in enumerate(n_samples)])
        state = assess(policy, n_samples, correct, n_samples, **EB)
        plan = next_round(policy, n_samples, state.open)
    plug_in = draws[:, :8].mean(1) * (1 - draws[:, :8].mean(1))
    rmse = lambda w: float(np.sqrt(np.mean((w - truth) ** 2)))  # noqa: E731
    assert rmse(state.mean) <= rmse(plug_in)
    assert n_samples.mean() <= 0.6 * 8
    assert ((state.sd <= policy.tolerance) | (n_samples == policy.max_samples)).all()
    assert set(np.unique(n_samples)) <= set(range(2, 17, 2))


def config(**overrides):
    rollout = RolloutConfig(problems="p.jsonl", model="m", output="run")
    weight = WeightConfig(graded="run", estimator=overrides.pop("estimator", "eb"), kernel=overrides.pop("kernel", "beta"))
    return EstimateConfig(output=overrides.pop("output", "run"), rollout=rollout, grade=GradeConfig(rollouts="r", output="g"), weight=weight, **overrides)


BAD_CONFIGS = [
    (dict(adaptive=True, kernel="uniform"), "--adaptive with --kernel uniform has nothing to estimate"),
    (dict(adaptive=True, min_samples=8, max_samples=4), "--max-samples (4) must be at least --min-samples (8)"),
    (dict(adaptive=True, min_samples=0), "--min-samples must be at least 1"),
    (dict(adaptive=True, round_samples=0), "--round-samples must be at least 1"),
    (dict(adaptive=True, tolerance=0.0), "--tolerance must be a number > 0"),
    (dict(adaptive=True, tolerance=float("nan")), "--tolerance must be a number > 0"),
    (dict(samples=0), "-k/--samples must be at least 1"),
    (dict(output="-"), "-o must be a run directory"),
    (dict(output="w.parquet"), "name a run directory, not a .parquet file"),
]


@pytest.mark.parametrize("overrides,message", BAD_CONFIGS, ids=[m for _, m in BAD_CONFIGS])
def test_bad_settings_are_refused_up_front(overrides, message):
    with pytest.raises(ConfigError, match=None) as error:
        config(**overrides)
    assert message in str(error.value)


def test_fixed_k_is_one_round_and_settings_name_what_changes_results():
    fixed = config(samples=6, estimator="empirical")
    assert fixed.policy() == Policy(6, 6, 1, float("inf"))
    assert config(adaptive=True).settings() != config(adaptive=True, tolerance=0.02).settings()
    assert config(adaptive=True).settings() == config(adaptive=True, overwrite=True).settings()


def test_the_command_line_defaults_are_the_configs():
    import inspect

    from paced_curate.cli import estimate_command

    defaults = {name: p.default for name, p in inspect.signature(estimate_command).parameters.items()}
    fields = EstimateConfig.__dataclass_fields__
    for name in ("samples", "min_samples", "max_samples", "round_samples", "tolerance"):
        assert defaults[name] == fields[name].default, name


@pytest.mark.parametrize("estimator, stops_on", [("empirical", "eb"), ("eb", "eb"), ("bayes", "bayes")])
def test_the_adaptive_rule_stops_on_a_posterior_whatever_estimator_writes_the_weights(estimator, stops_on):
    assert config(adaptive=True, estimator=estimator).stopping_estimator() == stops_on


def test_a_closed_problem_is_never_reopened_by_a_refitted_prior():
    """Problem 0 closed after round 0 (4 samples) while the others went on to 8; its posterior sd is
    above the tolerance under today's prior, yet it stays closed, so a round never mixes sample counts."""
    policy = Policy(min_samples=4, max_samples=16, round_samples=4, tolerance=0.01)
    options = dict(kernel="beta", estimator="eb", alpha=1.0, beta=1.0, low=None, high=None, prior_a=0.5, prior_b=0.5)
    state = assess(policy, [4, 8, 8], [2, 4, 1], [4, 8, 8], **options)
    assert state.sd[0] > policy.tolerance
    assert state.open.tolist() == [False, True, True]
    plan = next_round(policy, [4, 8, 8], state.open)
    assert (plan.first_sample, plan.count, plan.problems.tolist()) == (8, 4, [1, 2])


def test_a_prior_worth_more_samples_than_max_samples_is_warned_about():
    from paced_curate.estimate.runner import point_mass_warning
    from paced_curate.weight.estimators import BetaPrior

    policy = Policy(min_samples=4, max_samples=16, round_samples=4, tolerance=0.06)
    assert point_mass_warning(BetaPrior(0.4, 0.8), policy) is None
    assert point_mass_warning(None, policy) is None
    assert point_mass_warning(BetaPrior(20.0, 44.0), policy) is None  # exactly 4 x 16 pseudo-samples
    message = point_mass_warning(BetaPrior(1034.0, 10000.0), policy)
    assert "worth 11,034 samples" in message and "--estimator bayes" in message
