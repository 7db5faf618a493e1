"""What a weights table says: the numbers `paced weight` and `paced inspect weights.parquet` show.

    stats = weight_statistics(pq.read_table("weights.parquet"))   # JSON-ready dict
    render_weight_statistics(stats)                               # rich tables and histograms on stderr
    save_weight_plot(stats, "weights.png")                        # the two histograms as an image

The zero-weight share is the compute PACED saves (problems the student always or never solves
get no teacher time), and the effective sample size (sum w)^2 / sum w^2 is how many equally
weighted problems the weighted set is worth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from paced_curate.report import bar_chart, count_bin_labels, count_bins, equal_bins, key_value_table, rows_table, save_histograms_png, say, show

QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
QUANTILE_NAMES = ("min", "10%", "25%", "median", "75%", "90%", "max")
WEIGHT_BINS = 10
CHART_WIDTH = 40


def weight_statistics(table: pa.Table) -> dict:
    """Summarise a WEIGHTS table as a JSON-ready dict.

    Args:
        table: a WEIGHTS table (from `run_weight` or read back with `read_table`).

    Returns:
        problems, samples, excluded_samples, samples_per_problem (min/mean/max), mean_pass_rate
        (over problems with scored samples), unscored_problems, zero_weight_problems,
        zero_weight_share, effective_sample_size (of `weight`), effective_sample_share,
        weight_mean, weight_sum, weight_quantiles ({"0": min, "0.1": ..., "1": max}),
        pass_rate_histogram ({labels, counts, note}: K+1 bars "0/K" ... "K/K" for K scored
        samples, up to K = 20; for larger K, 0/K and K/K alone and the counts between grouped
        into at most 19 bars of equal width such as "1-4/72"; when problems have different K, pass rates are rounded to the nearest i/K of
        the largest K and `note` says so) and weight_histogram ({labels, counts}: 10 equal bins
        from 0 to the largest weight).
    """
    n_samples = table.column("n_samples").to_numpy().astype(np.int64)
    n_scored = table.column("n_scored").to_numpy().astype(np.int64)
    n_correct = table.column("n_correct").to_numpy().astype(np.int64)
    weight = table.column("weight").to_numpy()
    problems = len(weight)
    scored = n_scored > 0
    square_sum = float(np.square(weight).sum())
    ess = float(weight.sum()) ** 2 / square_sum if square_sum > 0 else 0.0
    zero = int((weight == 0).sum())
    return {
        "problems": problems,
        "samples": int(n_samples.sum()),
        "excluded_samples": int((n_samples - n_scored).sum()),
        "samples_per_problem": _min_mean_max(n_samples),
        "mean_pass_rate": float((n_correct[scored] / n_scored[scored]).mean()) if scored.any() else None,
        "unscored_problems": int((~scored).sum()),
        "zero_weight_problems": zero,
        "zero_weight_share": zero / problems if problems else None,
        "effective_sample_size": ess,
        "effective_sample_share": ess / problems if problems else None,
        "weight_mean": float(weight.mean()) if problems else None,
        "weight_sum": float(weight.sum()),
        "weight_quantiles": (
            {f"{q:g}": float(v) for q, v in zip(QUANTILES, np.quantile(weight, QUANTILES))} if problems else {}
        ),
        "pass_rate_histogram": _pass_rate_histogram(n_correct[scored], n_scored[scored], int((~scored).sum())),
        "weight_histogram": dict(zip(("labels", "counts"), equal_bins(weight.tolist(), WEIGHT_BINS, low=0.0))),
    }


def _min_mean_max(values: np.ndarray) -> dict:
    if not len(values):
        return {"min": None, "mean": None, "max": None}
    return {"min": int(values.min()), "mean": float(values.mean()), "max": int(values.max())}


def _pass_rate_histogram(n_correct: np.ndarray, n_scored: np.ndarray, num_unscored: int) -> dict:
    """Bars of exact correct counts for K scored samples per problem (problems without scored
    samples left out): one per i/K up to K = 20, at most 21 bars beyond (`report.count_bins`)."""
    if not len(n_scored):
        return {"labels": [], "counts": [], "note": "no problem has scored samples"}
    k = int(n_scored.max())
    notes = []
    if (n_scored == k).all():
        bins = n_correct
    else:
        # Round half up, so that with K = 8 a 2/4 problem lands on 4/8 and 1/3 on 3/8.
        bins = np.floor(n_correct / n_scored * k + 0.5).astype(np.int64)
        notes.append(
            f"problems have {int(n_scored.min())} to {k} scored samples: "
            f"pass rates are rounded to the nearest i/{k}"
        )
    if num_unscored:
        notes.append(f"{num_unscored:,} problem{'s' if num_unscored > 1 else ''} without scored samples not shown")
    per_count = np.bincount(bins, minlength=k + 1)
    # Large K (72 samples a problem) would print K+1 bars: group counts, each bar still exact.
    ranges = count_bins(k)
    counts = [int(per_count[lo : hi + 1].sum()) for lo, hi in ranges]
    return {"labels": count_bin_labels(ranges, k), "counts": counts, "note": "; ".join(notes) or None}


def pass_rate_chart(stats: dict) -> str:
    """The pass-rate histogram as terminal text (bars of i/K or ranges of it, then the note if any)."""
    histogram = stats["pass_rate_histogram"]
    text = bar_chart(histogram["labels"], histogram["counts"], CHART_WIDTH, title="problems by pass rate (correct/scored)")
    return text + (f"\n({histogram['note']})" if histogram.get("note") else "")


def weight_chart(stats: dict) -> str:
    """The weight histogram as terminal text (10 equal bins from 0 to the largest weight)."""
    histogram = stats["weight_histogram"]
    return bar_chart(histogram["labels"], histogram["counts"], CHART_WIDTH, title="problems by weight")


def render_weight_statistics(stats: dict) -> None:
    """Print the statistics with rich (tables and the two histograms) on stderr."""
    spread = stats["samples_per_problem"]
    per_problem = (
        spread["min"]
        if spread["min"] == spread["max"]
        else f"{spread['min']} to {spread['max']} (mean {spread['mean']:.4g})"
    )
    share = stats["zero_weight_share"]
    ess_share = stats["effective_sample_share"]
    rows = [
        ("problems", stats["problems"]),
        ("samples per problem", per_problem),
        ("excluded samples", stats["excluded_samples"]),
        ("mean pass rate", stats["mean_pass_rate"]),
        ("problems without scored samples", stats["unscored_problems"]),
        ("zero-weight problems (compute saved)", f"{stats['zero_weight_problems']:,} ({share:.1%})" if share is not None else "-"),
        ("effective sample size", f"{stats['effective_sample_size']:,.1f} ({ess_share:.1%} of problems)" if ess_share is not None else "-"),
        ("mean weight", stats["weight_mean"]),
    ]
    show(key_value_table("weights", rows))
    quantiles = stats["weight_quantiles"]
    if quantiles:
        show(rows_table("weight quantiles", ["", *QUANTILE_NAMES], [["weight", *quantiles.values()]]))
    say(pass_rate_chart(stats))
    say(weight_chart(stats))


def save_weight_plot(stats: dict, path: str | Path) -> Path:
    """Save the pass-rate and weight histograms side by side as a PNG image (written atomically)."""
    pass_rates, weights = stats["pass_rate_histogram"], stats["weight_histogram"]
    return save_histograms_png(
        path,
        [
            ("problems by pass rate", pass_rates["labels"], pass_rates["counts"]),
            ("problems by weight", weights["labels"], weights["counts"]),
        ],
    )
