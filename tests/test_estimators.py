"""The weight estimators (plug-in, Bayes, empirical Bayes): properties, closed forms, the prior fit, `--estimator eb`."""

from __future__ import annotations

import math

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from paced_curate.io import write_table
from paced_curate.schema import GRADES, build_table, read_metadata
from paced_curate.weight import (
    BetaPrior,
    WeightConfig,
    bayes_weight,
    estimate,
    fit_beta_prior,
    kernel_weight,
    posterior_moments,
    run_weight,
)
from paced_curate.weight.estimators import marginal_log_likelihood
from tests.test_schema import GRADE_ROW

# (a, b, reason): the shapes a real pool's pass rates take.
PRIOR_CASES = [
    (0.3, 0.5, "U-shaped: most problems always failed or always solved (a typical pool)"),
    (1.0, 1.0, "uniform pass rates"),
    (2.0, 5.0, "a hard pool, mass around p = 0.3"),
    (6.0, 2.0, "an easy pool, mass around p = 0.75"),
    (20.0, 20.0, "every problem near p = 0.5 (a concentrated prior)"),
]


def simulate_counts(a: float, b: float, problems: int, samples, seed: int):
    rng = np.random.default_rng(seed)
    p = rng.beta(a, b, problems)
    n = np.asarray(samples)[rng.integers(0, len(samples), problems)] if not np.isscalar(samples) else np.full(problems, samples)
    return rng.binomial(n, p), n


@pytest.mark.parametrize("a,b,reason", PRIOR_CASES, ids=[c[2].split(":")[0] for c in PRIOR_CASES])
def test_prior_fit_recovers_known_beta_parameters(a, b, reason):
    c, n = simulate_counts(a, b, 20_000, 16, seed=1)
    prior = fit_beta_prior(c, n)
    assert prior.fitted
    # The prior mean is pinned down well; the strength a + b less so when it is large.
    assert prior.mean == pytest.approx(a / (a + b), abs=0.01), reason
    assert prior.a == pytest.approx(a, rel=0.12) and prior.b == pytest.approx(b, rel=0.12), (prior, reason)


def test_prior_fit_with_unequal_sample_counts_recovers_the_prior():
    """Adaptive runs leave problems with different n; the beta-binomial likelihood still applies."""
    c, n = simulate_counts(0.4, 0.6, 20_000, [4, 8, 16], seed=2)
    prior = fit_beta_prior(c, n)
    assert (prior.a, prior.b) == pytest.approx((0.4, 0.6), rel=0.12)


def test_prior_fit_is_the_maximum_of_the_marginal_likelihood():
    c, n = simulate_counts(0.7, 1.3, 2_000, 8, seed=3)
    prior = fit_beta_prior(c, n)
    best = marginal_log_likelihood(c, n, prior.a, prior.b)
    assert prior.log_likelihood == pytest.approx(best)
    for da, db in [(1.05, 1), (0.95, 1), (1, 1.05), (1, 0.95), (1.05, 1.05), (0.95, 0.95)]:
        assert marginal_log_likelihood(c, n, prior.a * da, prior.b * db) < best


def test_prior_fit_ignores_unscored_problems_and_falls_back_to_jeffreys_without_any():
    c, n = simulate_counts(1.0, 2.0, 3_000, 8, seed=4)
    with_unscored = fit_beta_prior(np.concatenate([c, np.zeros(500, int)]), np.concatenate([n, np.zeros(500, int)]))
    assert (with_unscored.a, with_unscored.b) == pytest.approx((fit_beta_prior(c, n).a, fit_beta_prior(c, n).b))
    empty = fit_beta_prior(np.zeros(3, int), np.zeros(3, int))
    assert (empty.a, empty.b, empty.fitted) == (0.5, 0.5, False)


def test_prior_fit_of_an_all_or_nothing_pool_stays_in_bounds():
    """Only 0/n and n/n counts push a and b to 0; the fit stops at the bound instead of failing."""
    prior = fit_beta_prior(np.array([0, 0, 8, 8, 0]), np.full(5, 8))
    assert 1e-2 <= prior.a < 0.2 and 1e-2 <= prior.b < 0.2


@settings(max_examples=200)
@given(k=st.integers(0, 8), alpha=st.floats(0.5, 3.0), beta=st.floats(0.5, 3.0), a=st.floats(0.1, 5.0), b=st.floats(0.1, 5.0))
def test_posterior_sd_shrinks_with_n(k, alpha, beta, a, b):
    """Same observed pass rate k/8, 16 times more samples each step: the posterior of w(p) narrows, towards 0.

    (Not strictly from n to n + 1: as the posterior mean of p leaves the prior's region, it can
    move to where w is steeper, and the sd of w can grow a little before it shrinks.)
    """
    sds = [posterior_moments(k * m, 8 * m, alpha, beta, a, b)[1] for m in (1, 16, 256, 4096)]
    assert all(later < earlier for earlier, later in zip(sds[1:], sds[2:])), sds
    assert sds[-1] < 0.25 * sds[0], sds
    # And at the 1/sqrt(n) rate: 16 times the samples, at most about a quarter of the sd.
    assert sds[3] < 0.3 * sds[2] + 1e-12, sds


@pytest.mark.parametrize(
    "c,n,alpha,beta,a,b",
    [(0, 4, 1, 1, 0.5, 0.5), (3, 8, 1, 1, 0.3, 0.7), (8, 8, 2, 1, 1, 1), (5, 16, 0.5, 2, 2, 3), (1, 2, 1, 1, 0.05, 0.05)],
)
def test_posterior_moments_equal_numerical_integration(c, n, alpha, beta, a, b):
    posterior = stats.beta(c + a, n - c + b)
    first = integrate.quad(lambda p: p**alpha * (1 - p) ** beta * posterior.pdf(p), 0, 1, limit=200)[0]
    second = integrate.quad(lambda p: (p**alpha * (1 - p) ** beta) ** 2 * posterior.pdf(p), 0, 1, limit=200)[0]
    mean, sd = posterior_moments(c, n, alpha, beta, a, b)
    assert mean == pytest.approx(first, rel=1e-6)
    assert sd == pytest.approx(math.sqrt(second - first**2), rel=1e-5)
    assert mean == pytest.approx(bayes_weight(c, n, alpha, beta, a, b), rel=1e-12)


def test_estimate_for_each_kernel_and_estimator():
    c, n = np.array([0, 2, 4, 3]), np.array([4, 4, 4, 0])
    plug = estimate(c, n, estimator="empirical")
    assert plug.mean.tolist() == [0.0, 0.25, 0.0, 0.0] and plug.prior is None and np.isnan(plug.sd[:3]).all()
    jeffreys = estimate(c, n, estimator="bayes")
    assert jeffreys.prior == BetaPrior(0.5, 0.5)
    assert jeffreys.mean[:3] == pytest.approx([bayes_weight(x, 4, 1, 1) for x in (0, 2, 4)])
    assert jeffreys.mean[3] == 0 and jeffreys.sd[3] == 0, "a problem without scored samples gets weight 0"
    band = estimate(c, n, kernel="band", estimator="bayes", low=0.2, high=0.8)
    assert band.sd[:3] == pytest.approx(np.sqrt(band.mean[:3] * (1 - band.mean[:3])))
    uniform = estimate(c, n, kernel="uniform", estimator="eb")
    assert uniform.mean.tolist() == [1, 1, 1, 0] and uniform.sd.tolist() == [0, 0, 0, 0]


def test_eb_follows_the_pool_where_a_fixed_prior_cannot():
    """0/4 in a pool of mostly all-or-nothing problems is near-certainly p = 0; in a mid-range pool it is not."""
    extreme_c, extreme_n = simulate_counts(0.2, 0.3, 5_000, 4, seed=5)
    middle_c, middle_n = simulate_counts(5.0, 5.0, 5_000, 4, seed=6)
    zero = np.array([0]), np.array([4])
    in_extreme = estimate(*zero, estimator="eb", prior=fit_beta_prior(extreme_c, extreme_n))
    in_middle = estimate(*zero, estimator="eb", prior=fit_beta_prior(middle_c, middle_n))
    jeffreys = estimate(*zero, estimator="bayes")
    assert in_extreme.mean[0] < jeffreys.mean[0] < in_middle.mean[0]
    assert in_middle.mean[0] > 0.15, "in a pool of p ~ 0.5 problems, 0/4 is mostly bad luck"


def test_eb_is_closer_to_the_truth_than_plug_in_on_a_simulated_pool():
    rng = np.random.default_rng(7)
    p = rng.beta(0.4, 0.6, 5_000)
    c = rng.binomial(8, p)
    n = np.full_like(c, 8)
    truth = kernel_weight(p, 1.0, 1.0)
    rmse = {name: float(np.sqrt(np.mean((estimate(c, n, estimator=name).mean - truth) ** 2))) for name in ("empirical", "eb")}
    # The posterior mean under the true prior is the least-squares estimator; fitted, it comes close.
    assert rmse["eb"] < 0.9 * rmse["empirical"], rmse


def graded_file(path, counts: dict[str, tuple[int, int]]):
    rows = []
    for problem_id, (correct, total) in counts.items():
        for index in range(total):
            rows.append(GRADE_ROW | {"problem_id": problem_id, "sample_index": index, "verdict": "correct" if index < correct else "incorrect"})
    table = build_table(rows, GRADES)
    write_table(table, str(path), GRADES, {})
    return str(path)


def test_weight_estimator_eb_fits_the_prior_to_the_file_and_records_it(tmp_path):
    counts = {f"q{i:02d}": (i % 5, 4) for i in range(40)}
    graded = graded_file(tmp_path / "graded.parquet", counts)
    result = run_weight(WeightConfig(graded=graded, output=str(tmp_path / "w.parquet"), estimator="eb", normalize="none"))
    c = np.array([v[0] for v in counts.values()])
    prior = fit_beta_prior(c, np.full(40, 4))
    expected = estimate(c, np.full(40, 4), estimator="eb", prior=prior).mean
    assert result.table.column("weight").to_numpy() == pytest.approx(expected, rel=1e-12)
    recorded = read_metadata(pq.read_schema(tmp_path / "w.parquet"))["provenance"]["prior"]
    assert (recorded["a"], recorded["b"], recorded["fitted"]) == pytest.approx((prior.a, prior.b, True))
    assert "--prior-a and --prior-b have no effect with --estimator eb" in WeightConfig(graded=graded, estimator="eb", prior_a=2.0).ignored_settings()
