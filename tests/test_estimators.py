"""The weight estimators (plug-in, Bayes, empirical Bayes, zero-one-inflated empirical Bayes): properties, closed forms,
the prior fits, `--estimator eb/zoib` and `--min-weight`."""

from __future__ import annotations

import math

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, special, stats

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
from paced_curate.weight.inflated import InflatedPrior, fit_inflated_prior, inflated_moments, inflated_posterior
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


# --- the zero-and-one-inflated Beta prior (zoib) ------------------------------------------------

# (zero, one, a, b, reason): mixtures like real pools, and the edges of the family.
MIXTURES = [
    (0.40, 0.05, 1.2, 4.0, "u-shaped: many never solved, a frontier tail, a few always solved"),
    (0.10, 0.10, 2.0, 2.0, "a few of each point mass around a middling Beta"),
    (0.00, 0.00, 1.0, 1.0, "no point masses: uniform pass rates"),
    (0.30, 0.30, 3.0, 3.0, "as many at each end as in between"),
    (0.00, 0.20, 5.0, 1.5, "an easy pool: always-solved problems and a Beta near 1"),
    (0.40, 0.05, 0.7, 3.0, "a frontier tail whose density rises towards 0 (a < 1) beside never-solved problems"),
]


def simulate_mixture(zero, one, a, b, problems: int, samples, seed: int):
    rng = np.random.default_rng(seed)
    kind = rng.choice(3, problems, p=[zero, one, 1 - zero - one])
    p = np.where(kind == 0, 0.0, np.where(kind == 1, 1.0, rng.beta(a, b, problems)))
    n = np.asarray(samples)[rng.integers(0, len(samples), problems)] if not np.isscalar(samples) else np.full(problems, samples)
    return rng.binomial(n, p), n, p


@pytest.mark.parametrize("zero,one,a,b,reason", MIXTURES, ids=[m[4].split(":")[0] for m in MIXTURES])
@pytest.mark.parametrize("samples", [8, 16, [4, 8, 16]], ids=["n=8", "n=16", "n mixed"])
def test_zoib_fit_recovers_known_mixtures(zero, one, a, b, reason, samples):
    c, n, _ = simulate_mixture(zero, one, a, b, 20_000, samples, seed=11)
    prior = fit_inflated_prior(c, n)
    assert prior.fitted
    assert (prior.zero, prior.one) == pytest.approx((zero, one), abs=0.02), (prior, reason)
    assert (prior.a, prior.b) == pytest.approx((a, b), rel=0.15), (prior, reason)


def test_zoib_fit_is_the_maximum_of_its_objective_and_deterministic():
    from paced_curate.weight.inflated import _objective, _pack

    c, n, _ = simulate_mixture(0.3, 0.1, 1.5, 3.0, 3_000, 8, seed=12)
    prior = fit_inflated_prior(c, n)
    assert fit_inflated_prior(c, n) == prior
    base = 9
    pairs, counts = np.unique(n * base + c, return_counts=True)
    args = ((pairs % base).astype(float), (pairs // base).astype(float), counts.astype(float))
    best = _objective(_pack(prior.zero, prior.one, prior.a, prior.b), *args)[0]
    for change in np.eye(4) * 0.05:
        for sign in (1, -1):
            assert _objective(_pack(prior.zero, prior.one, prior.a, prior.b) + sign * change, *args)[0] > best


def test_zoib_posterior_says_how_likely_a_0_of_n_problem_is_never_solved():
    prior = InflatedPrior(zero=0.4, one=0.05, a=1.2, b=4.0)
    never = [float(inflated_posterior(0, n, prior).zero) for n in (1, 2, 4, 8, 16, 32)]
    assert all(later > earlier for earlier, later in zip(never, never[1:])) and never[-1] > 0.9, never
    # By Bayes' rule: pi0 / (pi0 + pi_B B(a, n + b) / B(a, b)).
    beta_part = (1 - 0.4 - 0.05) * math.exp(special.betaln(1.2, 4.0 + 4) - special.betaln(1.2, 4.0))
    assert never[2] == pytest.approx(0.4 / (0.4 + beta_part), rel=1e-12)
    one_correct = inflated_posterior(1, 4, prior)
    assert float(one_correct.zero) == 0 and float(one_correct.one) == 0, "one success rules out p = 0 and p = 1"


@pytest.mark.parametrize("c,n,kernel", [(0, 4, "beta"), (3, 8, "beta"), (8, 8, "beta"), (0, 0, "beta"), (2, 4, "band"), (4, 4, "band")])
def test_zoib_moments_equal_numerical_integration(c, n, kernel):
    prior = InflatedPrior(zero=0.3, one=0.1, a=1.5, b=3.0)
    w = (lambda p: p * (1 - p)) if kernel == "beta" else (lambda p: float(0.0 <= p <= 0.5))
    post = inflated_posterior(c, n, prior)
    density = stats.beta(c + 1.5, n - c + 3.0).pdf
    points = [0.5] if kernel == "band" else None
    first = float(post.zero) * w(0.0) + float(post.one) * w(1.0) + float(post.interior) * integrate.quad(lambda p: w(p) * density(p), 0, 1, points=points)[0]
    second = float(post.zero) * w(0.0) ** 2 + float(post.one) * w(1.0) ** 2 + float(post.interior) * integrate.quad(lambda p: w(p) ** 2 * density(p), 0, 1, points=points)[0]
    mean, sd = inflated_moments(c, n, prior, kernel=kernel, alpha=1.0, beta=1.0, low=0.0, high=0.5)
    assert float(mean) == pytest.approx(first, rel=1e-6, abs=1e-12)
    assert float(sd) == pytest.approx(math.sqrt(max(second - first**2, 0.0)), rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("estimator", ["empirical", "eb", "zoib"])
def test_the_written_weights_error_shrinks_with_n(estimator):
    """On a u-shaped simulated pool, more samples per problem give written weights closer to the truth."""
    rmse = []
    for samples in (2, 4, 8, 16, 64):
        c, n, p = simulate_mixture(0.4, 0.05, 1.2, 4.0, 4_000, samples, seed=13)
        written = estimate(c, n, estimator=estimator).mean
        rmse.append(float(np.sqrt(np.mean((written - p * (1 - p)) ** 2))))
    assert all(later < earlier for earlier, later in zip(rmse, rmse[1:])), rmse
    assert rmse[-1] < 0.35 * rmse[0], rmse


def test_zoib_is_closer_to_the_truth_than_plug_in_and_eb_on_a_u_shaped_pool():
    c, n, p = simulate_mixture(0.4, 0.05, 1.2, 4.0, 5_000, 8, seed=14)
    truth = p * (1 - p)
    rmse = {name: float(np.sqrt(np.mean((estimate(c, n, estimator=name).mean - truth) ** 2))) for name in ("empirical", "eb", "zoib")}
    assert rmse["zoib"] < rmse["eb"] < rmse["empirical"], rmse


def test_min_weight_drops_small_estimates_and_keeps_the_rest():
    c, n = np.array([0, 0, 1, 4, 8]), np.array([4, 16, 4, 8, 8])
    prior = InflatedPrior(zero=0.4, one=0.05, a=1.2, b=4.0)
    kept = estimate(c, n, estimator="zoib", prior=prior).mean
    dropped = estimate(c, n, estimator="zoib", prior=prior, min_weight=0.03).mean
    assert (kept > 0).all()
    assert dropped.tolist() == [w if w >= 0.03 else 0.0 for w in kept.tolist()]
    assert dropped[1] == 0 and dropped[3] > 0, "0/16 falls below 0.03; 4/8 does not"


def test_weight_estimator_zoib_with_min_weight_records_its_prior(tmp_path):
    counts = {f"q{i:02d}": ((0, 8) if i < 16 else (i % 8, 8)) for i in range(40)}
    graded = graded_file(tmp_path / "graded.parquet", counts)
    result = run_weight(WeightConfig(graded=graded, output=str(tmp_path / "w.parquet"), estimator="zoib", min_weight=0.02, normalize="none"))
    c = np.array([v[0] for v in counts.values()])
    prior = fit_inflated_prior(c, np.full(40, 8))
    expected = estimate(c, np.full(40, 8), estimator="zoib", prior=prior, min_weight=0.02).mean
    assert result.table.column("weight").to_numpy() == pytest.approx(expected, rel=1e-12)
    assert result.statistics["zero_weight_problems"] == int((expected == 0).sum()) > 0
    recorded = read_metadata(pq.read_schema(tmp_path / "w.parquet"))["provenance"]
    assert recorded["prior"]["zero"] == pytest.approx(prior.zero) and recorded["settings"]["min_weight"] == 0.02


@pytest.mark.parametrize("value", [-0.1, 1.0, float("nan")])
def test_min_weight_out_of_range_is_refused(value):
    from paced_curate.errors import ConfigError

    with pytest.raises(ConfigError, match="--min-weight must be a raw weight in"):
        WeightConfig(graded="g", min_weight=value)
