"""The pass-rate histogram stays readable for large K (#12): at most 21 bars, each an exact
range of correct counts, with p = 0 and p = 1 always on bars of their own."""

from __future__ import annotations

import pytest

from paced_curate.report import MAX_BARS, count_bin_labels, count_bins
from paced_curate.schema import WEIGHTS, build_table
from paced_curate.weight.stats import pass_rate_chart, weight_statistics
from tests.test_schema import WEIGHT_ROW

# (K, bars, first labels, last labels, why)
BINS = [
    (1, 2, ["0/1", "1/1"], ["0/1", "1/1"], "K = 1"),
    (8, 9, ["0/8", "1/8"], ["7/8", "8/8"], "small K: one bar per i/K"),
    (20, 21, ["0/20", "1/20"], ["19/20", "20/20"], "K = 20 still one bar per i/K"),
    (21, 12, ["0/21", "1-2/21"], ["19-20/21", "21/21"], "just past the limit: pairs"),
    (64, 18, ["0/64", "1-4/64"], ["61-63/64", "64/64"], "K = 64"),
    (72, 20, ["0/72", "1-4/72", "5-8/72"], ["69-71/72", "72/72"], "the issue's K = 72 (73 bars before)"),
    (128, 21, ["0/128", "1-7/128"], ["127/128", "128/128"], "K = 128: a last single-count bar"),
    (1000, 21, ["0/1000", "1-53/1000"], ["955-999/1000", "1000/1000"], "K = 1000"),
]


@pytest.mark.parametrize("k,bars,first,last,why", BINS, ids=[case[4] for case in BINS])
def test_count_bins_partition_the_counts_into_few_exact_bars(k, bars, first, last, why):
    bins = count_bins(k)
    labels = count_bin_labels(bins, k)
    assert len(bins) == bars <= MAX_BARS, why
    assert labels[: len(first)] == first and labels[-len(last) :] == last, why
    covered = [count for lo, hi in bins for count in range(lo, hi + 1)]
    assert covered == list(range(k + 1)), "every count exactly once, in order"
    assert bins[0] == (0, 0) and bins[-1] == (k, k), "p = 0 and p = 1 alone"


def test_weight_statistics_group_a_large_k_histogram_with_exact_counts():
    # 72 samples a problem: one problem at each correct count 0..72, plus two more at 3 and 72.
    counts = [*range(73), 3, 72]
    rows = [WEIGHT_ROW | {"problem_id": f"p{i}", "n_samples": 72, "n_scored": 72, "n_correct": c, "pass_rate": c / 72} for i, c in enumerate(counts)]
    histogram = weight_statistics(build_table(rows, WEIGHTS))["pass_rate_histogram"]
    assert len(histogram["labels"]) == 20
    assert histogram["labels"][:3] == ["0/72", "1-4/72", "5-8/72"] and histogram["labels"][-2:] == ["69-71/72", "72/72"]
    assert histogram["counts"][:3] == [1, 5, 4]  # 1..4 holds 1, 2, 3, 3 and 4
    assert histogram["counts"][-2:] == [3, 2]
    assert sum(histogram["counts"]) == len(counts)
    assert len(pass_rate_chart({"pass_rate_histogram": histogram}).splitlines()) == 1 + 20
