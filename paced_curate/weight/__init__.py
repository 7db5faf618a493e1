"""`paced weight`: pass rates and PACED weights per problem from graded samples.

Modules: kernels (w(p) kernels, intervals, normalisation), estimators (plug-in, Bayes and
empirical-Bayes estimates of w(p) with posterior sd), stats (weight statistics and histograms)
and runner (WeightConfig, run_weight).
"""

from paced_curate.weight.estimators import (
    BetaPrior,
    Estimate,
    band_probability,
    bayes_weight,
    estimate,
    fit_beta_prior,
    posterior_moments,
)
from paced_curate.weight.kernels import (
    band_weight,
    kernel_weight,
    normalize,
    pass_rate_interval,
)
from paced_curate.weight.runner import WeightConfig, WeightResult, count_samples, run_weight, weigh_counts
from paced_curate.weight.stats import pass_rate_chart, render_weight_statistics, weight_chart, weight_statistics

__all__ = [
    "BetaPrior",
    "Estimate",
    "WeightConfig",
    "WeightResult",
    "band_probability",
    "band_weight",
    "bayes_weight",
    "count_samples",
    "estimate",
    "fit_beta_prior",
    "kernel_weight",
    "normalize",
    "pass_rate_chart",
    "pass_rate_interval",
    "posterior_moments",
    "render_weight_statistics",
    "run_weight",
    "weigh_counts",
    "weight_chart",
    "weight_statistics",
]
