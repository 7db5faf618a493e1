"""`paced weight`: kernel properties, the closed form against integration, counts, tables, errors."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from paced_curate.errors import ConfigError, InputError
from paced_curate.io import file_sha256, read_table, write_ipc, write_table
from paced_curate.partdir import PartDirectory
from paced_curate.schema import GRADES, WEIGHTS, build_table, read_metadata
from paced_curate.weight import (
    WeightConfig,
    band_probability,
    band_weight,
    bayes_weight,
    kernel_weight,
    normalize,
    pass_rate_chart,
    pass_rate_interval,
    run_weight,
    weight_chart,
    weight_statistics,
)
from tests.conftest import assert_user_error
from tests.test_schema import GRADE_ROW, WEIGHT_ROW

exponents = st.floats(0.05, 20.0)
priors = st.floats(0.05, 5.0)
# Dyadic pass rates, so that 1 - (1 - p) == p exactly and symmetry can be checked exactly.
dyadic = st.integers(0, 2**20).map(lambda k: k / 2**20)


# --- kernels and estimators -------------------------------------------------------------------


@given(alpha=exponents, beta=exponents)
def test_empirical_kernel_is_zero_at_both_ends(alpha, beta):
    assert kernel_weight(0.0, alpha, beta) == 0.0
    assert kernel_weight(1.0, alpha, beta) == 0.0


@given(alpha=st.floats(0.1, 10.0), beta=st.floats(0.1, 10.0), p=st.floats(0.0, 1.0))
def test_kernel_peaks_at_alpha_over_alpha_plus_beta(alpha, beta, p):
    peak = kernel_weight(alpha / (alpha + beta), alpha, beta)
    assert kernel_weight(p, alpha, beta) <= peak * (1 + 1e-12)
    assert peak > 0


@given(alpha=exponents, p=dyadic)
def test_kernel_is_symmetric_when_alpha_equals_beta(alpha, p):
    assert kernel_weight(p, alpha, alpha) == pytest.approx(kernel_weight(1.0 - p, alpha, alpha), rel=1e-12, abs=0)


@settings(max_examples=300)
@given(data=st.data(), alpha=exponents, beta=exponents, prior_a=priors, prior_b=priors)
def test_bayes_weight_is_positive_for_every_count(data, alpha, beta, prior_a, prior_b):
    n = data.draw(st.integers(0, 1000), label="n")
    c = data.draw(st.integers(0, n), label="c")
    value = bayes_weight(c, n, alpha, beta, prior_a, prior_b)
    assert 0 < value < math.inf


@given(k=st.integers(1, 19), alpha=st.floats(0.5, 4.0), beta=st.floats(0.5, 4.0))
def test_bayes_weight_converges_to_the_empirical_weight(k, alpha, beta):
    p = k / 20
    error = [abs(bayes_weight(k * m, 20 * m, alpha, beta) - kernel_weight(p, alpha, beta)) for m in (1, 100, 100_000)]
    assert error[2] < 1e-4 * max(1.0, kernel_weight(p, alpha, beta))
    assert error[2] < error[1] or error[1] < 1e-12


def test_bayes_weight_of_all_wrong_or_all_right_is_small_but_not_zero():
    # Beta(0.5, 8.5) posterior: E[p] - E[p^2] = 0.5/9 - 0.5*1.5/90 = 17/360.
    assert bayes_weight(0, 8, 1.0, 1.0) == pytest.approx(17 / 360, rel=1e-12)
    assert bayes_weight(8, 8, 1.0, 1.0) == pytest.approx(17 / 360, rel=1e-12)
    assert bayes_weight(4, 8, 1.0, 1.0) > 4 * bayes_weight(0, 8, 1.0, 1.0)
    # More evidence that p = 0 gives a smaller weight.
    assert bayes_weight(0, 64, 1.0, 1.0) < bayes_weight(0, 8, 1.0, 1.0)


CLOSED_FORM_CASES = [
    # (n, c, alpha, beta, prior_a, prior_b)
    (8, 0, 1.0, 1.0, 0.5, 0.5),
    (8, 8, 1.0, 1.0, 0.5, 0.5),
    (8, 3, 1.0, 1.0, 0.5, 0.5),
    (16, 5, 2.0, 0.5, 0.5, 0.5),
    (4, 1, 0.3, 3.0, 1.0, 1.0),
    (32, 30, 1.5, 1.5, 2.0, 0.7),
    (1, 0, 4.0, 0.2, 0.5, 0.5),
    (0, 0, 1.0, 1.0, 0.5, 0.5),
]


@pytest.mark.parametrize("n,c,alpha,beta,prior_a,prior_b", CLOSED_FORM_CASES)
def test_closed_form_equals_numerical_integration(n, c, alpha, beta, prior_a, prior_b):
    posterior = stats.beta(c + prior_a, n - c + prior_b)
    expected, _ = integrate.quad(
        lambda p: p**alpha * (1 - p) ** beta * posterior.pdf(p), 0, 1, epsabs=1e-14, epsrel=1e-13, limit=500
    )
    assert bayes_weight(c, n, alpha, beta, prior_a, prior_b) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("n,c,low,high", [(8, 0, 0.2, 0.8), (8, 4, 0.2, 0.8), (16, 15, 0.5, 1.0), (3, 1, 0.0, 0.1)])
def test_band_under_bayes_is_the_posterior_probability_of_the_band(n, c, low, high):
    posterior = stats.beta(c + 0.5, n - c + 0.5)
    expected, _ = integrate.quad(posterior.pdf, low, high, epsabs=1e-14, epsrel=1e-13, limit=500)
    assert band_probability(c, n, low, high) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_band_kernel_includes_both_ends():
    assert band_weight(np.array([0.0, 0.2, 0.5, 0.8, 0.81, 1.0]), 0.2, 0.8).tolist() == [0, 1, 1, 1, 0, 0]
    assert band_weight(3 / 10, 0.1, 0.3) == 1.0


@given(data=st.data(), method=st.sampled_from(["jeffreys", "wilson"]), confidence=st.floats(0.5, 0.999))
def test_interval_contains_the_pass_rate_and_pins_the_ends_at_zero_and_n(data, method, confidence):
    n = data.draw(st.integers(1, 500), label="n")
    c = data.draw(st.integers(0, n), label="c")
    low, high = pass_rate_interval(c, n, method, confidence)
    assert 0 <= low <= c / n <= high <= 1
    assert (low == 0) == (c == 0) and (high == 1) == (c == n)


@pytest.mark.parametrize("n,c", [(8, 1), (8, 3), (16, 15), (100, 37)])
def test_intervals_match_their_definitions(n, c):
    low, high = pass_rate_interval(c, n, "jeffreys", 0.9)
    jeffreys = stats.beta(c + 0.5, n - c + 0.5)
    assert jeffreys.cdf(low) == pytest.approx(0.05, rel=1e-9) and jeffreys.cdf(high) == pytest.approx(0.95, rel=1e-9)
    # Wilson's ends are where the score statistic |c/n - p| / sqrt(p (1 - p) / n) equals z.
    low, high = pass_rate_interval(c, n, "wilson", 0.9)
    z = stats.norm.ppf(0.95)
    for end in (low, high):
        assert abs(c / n - end) / math.sqrt(end * (1 - end) / n) == pytest.approx(z, rel=1e-9)


def test_interval_without_scored_samples_is_empty():
    low, high = pass_rate_interval(np.array([0, 2]), np.array([0, 4]))
    assert math.isnan(low[0]) and math.isnan(high[0]) and 0 < low[1] < 0.5 < high[1] < 1


# --- normalisation ------------------------------------------------------------------------------

# Far from underflow: a ratio of 1e300 between weights would lose the small ones to subnormals.
raw_weights = st.lists(st.just(0.0) | st.floats(1e-100, 1e6), min_size=1, max_size=200).filter(lambda w: sum(w) > 0)


@given(raw=raw_weights)
def test_normalisation_invariants(raw):
    raw = np.array(raw)
    assert normalize(raw, "mean").mean() == pytest.approx(1.0, rel=1e-9)
    assert normalize(raw, "sum").sum() == pytest.approx(1.0, rel=1e-9)
    assert normalize(raw, "max").max() == 1.0
    assert normalize(raw, "none").tolist() == raw.tolist()
    for how in ("mean", "sum", "max"):
        scaled = normalize(raw, how)
        # A single scale factor: ratios and zeros are kept.
        assert np.allclose(scaled * raw.max(), raw * scaled.max(), rtol=1e-12, atol=0)
        assert ((scaled == 0) == (raw == 0)).all()


def test_normalising_all_zero_weights_is_refused():
    with pytest.raises(ConfigError, match="every weight is 0, so --normalize mean has nothing to scale by"):
        normalize(np.zeros(3), "mean")


# --- the stage ----------------------------------------------------------------------------------


def samples(problem_id: str, correct: int = 0, incorrect: int = 0, excluded: int = 0, **extra) -> list[dict]:
    """Graded rows of one problem: correct, incorrect, then truncated (excluded) samples."""
    kinds = ["correct"] * correct + ["incorrect"] * incorrect + ["truncated"] * excluded
    return [
        GRADE_ROW
        | extra
        | {
            "problem_id": problem_id,
            "sample_index": index,
            "verdict": kind,
            "scored": kind != "truncated",
            "finish_reason": "length" if kind == "truncated" else "stop",
        }
        for index, kind in enumerate(kinds)
    ]


# a: 2/4, b: 1/4 with one sample excluded, c: 0/4, d: every sample excluded, e: 4/4.
PROBLEMS = {"a": (2, 2, 0), "b": (1, 3, 1), "c": (0, 4, 0), "d": (0, 0, 3), "e": (4, 0, 0)}


def graded_rows(problems=PROBLEMS, seed=0) -> list[dict]:
    rows = [row for pid, counts in problems.items() for row in samples(pid, *counts)]
    random.Random(seed).shuffle(rows)
    return rows


@pytest.fixture
def graded(tmp_path) -> str:
    path = tmp_path / "graded.parquet"
    write_table(build_table(graded_rows(), GRADES), str(path), GRADES)
    return str(path)


def column(table: pa.Table, name: str) -> list:
    return table.column(name).to_pylist()


def test_counts_pass_rates_and_paper_weights(graded, tmp_path):
    out = tmp_path / "weights.parquet"
    result = run_weight(WeightConfig(graded=graded, output=str(out)))
    table = read_table(str(out), WEIGHTS)
    assert column(table, "problem_id") == ["a", "b", "c", "d", "e"]
    assert column(table, "n_samples") == [4, 5, 4, 3, 4]
    assert column(table, "n_correct") == [2, 1, 0, 0, 4]
    assert column(table, "n_excluded") == [0, 1, 0, 3, 0]
    assert column(table, "n_scored") == [4, 4, 4, 0, 4]
    assert column(table, "pass_rate") == [0.5, 0.25, 0.0, None, 1.0]
    assert column(table, "weight_raw") == [0.25, 0.1875, 0.0, 0.0, 0.0]
    mean = (0.25 + 0.1875) / 5
    assert column(table, "weight") == pytest.approx([0.25 / mean, 0.1875 / mean, 0, 0, 0], rel=1e-12)
    assert column(table, "ci_low")[3] is None and column(table, "ci_high")[3] is None
    assert column(table, "ci_low")[2] == 0.0 and column(table, "ci_high")[4] == 1.0
    assert result.normalizing_constant == pytest.approx(mean, rel=1e-12)
    assert table.to_pylist() == result.table.to_pylist()
    assert result.warnings == ("1 of 5 problems have no scored samples (all excluded) and get weight 0: 'd'",)


def test_output_records_settings_constant_and_input_hash(graded, tmp_path):
    out = tmp_path / "w.parquet"
    run_weight(WeightConfig(graded=graded, output=str(out), estimator="bayes", prior_a=1.0, normalize="max"))
    meta = read_metadata(pq.read_schema(out))
    assert meta["stage"] == "weights"
    provenance = meta["provenance"]
    assert provenance["settings"] == {
        "kernel": "beta", "alpha": 1.0, "beta": 1.0, "low": None, "high": None, "estimator": "bayes", "min_weight": 0.0,
        "prior_a": 1.0, "prior_b": 0.5, "interval": "jeffreys", "confidence": 0.95, "normalize": "max", "floor": 0.0,
    }
    assert provenance["normalizing_constant"] == max(column(pq.read_table(out), "weight_raw"))
    assert provenance["inputs"]["graded"] == {"path": graded, "sha256": file_sha256(graded)}
    assert "polars" in provenance["versions"]


def test_bayes_estimator_gives_all_right_and_all_wrong_problems_a_small_weight(graded):
    table = run_weight(WeightConfig(graded=graded, estimator="bayes", normalize="none")).table
    raw = dict(zip(column(table, "problem_id"), column(table, "weight")))
    assert raw["c"] == pytest.approx(bayes_weight(0, 4, 1.0, 1.0)) and raw["e"] == pytest.approx(raw["c"])
    assert 0 < raw["c"] < raw["b"] < raw["a"]
    assert raw["d"] == 0.0


def test_uniform_and_band_baselines(graded):
    uniform = run_weight(WeightConfig(graded=graded, kernel="uniform")).table
    assert column(uniform, "weight_raw") == [1, 1, 1, 0, 1]
    assert column(uniform, "weight") == [1.25, 1.25, 1.25, 0, 1.25]
    band = run_weight(WeightConfig(graded=graded, kernel="band", low=0.25, high=0.5, normalize="none")).table
    assert column(band, "weight") == [1, 1, 0, 0, 0]
    bayes_band = run_weight(WeightConfig(graded=graded, kernel="band", low=0.25, high=0.5, estimator="bayes", normalize="none")).table
    assert column(bayes_band, "weight")[:3] == pytest.approx([band_probability(c, 4, 0.25, 0.5) for c in (2, 1, 0)], rel=1e-12)


def test_settings_without_effect_are_named():
    config = WeightConfig(graded="g.parquet", kernel="uniform", alpha=2.0, low=0.1, prior_b=1.0)
    assert config.ignored_settings() == [
        "--alpha and --beta have no effect with --kernel uniform",
        "--low and --high have no effect with --kernel uniform",
        "--prior-a and --prior-b have no effect with --estimator empirical",
    ]
    assert WeightConfig(graded="g.parquet").ignored_settings() == []


# --- the weight floor (--floor) ---------------------------------------------------------------

# The `graded` fixture: a 2/4, b 1/4, c 0/4, d no scored samples, e 4/4.
# (settings, floor, expected raw weights of a..e, why)
FLOORS = [
    ({}, 0.01, [0.25, 0.1875, 0.01, 0.0, 0.01], "plug-in beta: p = 0 and p = 1 get the floor; no scored samples stays 0"),
    ({}, 0.2, [0.25, 0.2, 0.2, 0.0, 0.2], "a kernel value below the floor is raised too, so the weight stays monotone in w(p)"),
    ({}, 0.0, [0.25, 0.1875, 0.0, 0.0, 0.0], "floor 0 is no floor"),
    ({"alpha": 2.0}, 0.05, [0.125, 0.05, 0.05, 0.0, 0.05], "other exponents: w(1/4) = 0.046875 < 0.05"),
    ({"kernel": "band", "low": 0.25, "high": 0.5}, 0.05, [1.0, 1.0, 0.05, 0.0, 0.05], "band: outside the band gets the floor (a soft filter)"),
    ({"kernel": "uniform"}, 0.3, [1.0, 1.0, 1.0, 0.0, 1.0], "uniform: every scored weight is 1 already"),
    # Jeffreys posterior means of p(1-p) at 2, 1, 0, 4 of 4: 0.2083, 0.175, 0.075, 0.075
    ({"estimator": "bayes"}, 0.1, [bayes_weight(2, 4, 1.0, 1.0), bayes_weight(1, 4, 1.0, 1.0), 0.1, 0.0, 0.1],
     "bayes: posterior means below the floor are raised"),
]


@pytest.mark.parametrize("settings, floor, expected, why", FLOORS, ids=[case[-1] for case in FLOORS])
def test_the_floor_applies_to_the_raw_weight_before_normalisation(graded, settings, floor, expected, why):
    table = run_weight(WeightConfig(graded=graded, floor=floor, **settings)).table
    assert column(table, "weight_raw") == pytest.approx(expected, rel=1e-12), why
    mean = sum(expected) / 5
    assert column(table, "weight") == pytest.approx([w / mean for w in expected], rel=1e-12), why


def test_the_floor_keeps_all_right_and_all_wrong_problems_in_the_export_and_is_recorded(graded, tmp_path, cli):
    out = tmp_path / "w.parquet"
    result = cli("weight", graded, "-o", out, "--floor", "0.01", "--normalize", "none")
    assert result.exit_code == 0, result.output
    table = read_table(str(out), WEIGHTS)
    assert column(table, "weight") == [0.25, 0.1875, 0.01, 0.0, 0.01]
    assert read_metadata(pq.read_schema(out))["provenance"]["settings"]["floor"] == 0.01
    assert WeightConfig(graded="g.parquet", kernel="uniform", floor=0.1).ignored_settings() == ["--floor has no effect with --kernel uniform (every weight is 1)"]
    assert WeightConfig(graded="g.parquet", floor=0.1).describe_kernel() == "--kernel beta --alpha 1 --beta 1 --estimator empirical --floor 0.1"
    with pytest.raises(ConfigError, match=r"--floor must be in \[0, 1\) \(got nan\)"):
        WeightConfig(graded="g.parquet", floor=float("nan"))
    assert "--floor" in cli("estimate", "--help").stdout  # paced estimate passes it to the same WeightConfig


def test_a_floor_rescues_a_pool_where_every_problem_is_at_zero_or_one(tmp_path):
    path = tmp_path / "g.parquet"
    write_table(build_table(samples("a", 4, 0) + samples("b", 0, 4), GRADES), str(path), GRADES)
    with pytest.raises(ConfigError, match="every problem gets weight 0"):
        run_weight(WeightConfig(graded=str(path)))
    assert column(run_weight(WeightConfig(graded=str(path), floor=0.01)).table, "weight") == [1.0, 1.0]


def write_grades_dir(directory, groups: list[list[dict]]) -> None:
    """A finished `paced grade`-style output directory with one part per group of rows."""
    out = PartDirectory.open(directory, spec=GRADES, settings={}, inputs={})
    for index, rows in enumerate(groups):
        table = build_table(rows, GRADES)
        # Passthrough columns may differ from part to part.
        out.write_part(table.append_column(f"extra{index}", pa.array(["x"] * table.num_rows)))
    out.finish()


def test_part_and_shard_directories_give_the_same_table_as_one_file(graded, tmp_path):
    expected = run_weight(WeightConfig(graded=graded)).table.to_pylist()
    rows = sorted(graded_rows(), key=lambda row: row["problem_id"])
    write_grades_dir(tmp_path / "parts", [rows[:7], rows[7:]])
    for index, ids in enumerate(("ace", "bd")):
        write_grades_dir(tmp_path / "shards" / f"shard-{index:05d}-of-00002", [[r for r in rows if r["problem_id"] in ids]])
    for name in ("parts", "shards"):
        assert run_weight(WeightConfig(graded=str(tmp_path / name))).table.to_pylist() == expected, name


def test_overlapping_shards_are_refused(tmp_path):
    for index, ids in enumerate(("ab", "bc")):
        write_grades_dir(tmp_path / f"shard-{index:05d}-of-00002", [[row for pid in ids for row in samples(pid, 1, 1)]])
    with pytest.raises(InputError, match="shards shard-00000-of-00002 and shard-00001-of-00002 overlap \\(both hold problem_id 'b'\\)"):
        run_weight(WeightConfig(graded=str(tmp_path)))


def test_unfinished_directory_is_refused(tmp_path):
    out = PartDirectory.open(tmp_path / "g", spec=GRADES, settings={}, inputs={})
    out.write_part(build_table(samples("a", 1, 1), GRADES))
    with pytest.raises(InputError, match="is unfinished; rerun the command that wrote it"):
        run_weight(WeightConfig(graded=str(tmp_path / "g")))


# --- statistics -------------------------------------------------------------------------------


def test_statistics_numbers(graded):
    stats = run_weight(WeightConfig(graded=graded)).statistics
    weights = np.array([0.25, 0.1875, 0, 0, 0]) / ((0.25 + 0.1875) / 5)
    assert stats["problems"] == 5 and stats["samples"] == 20 and stats["excluded_samples"] == 4
    assert stats["samples_per_problem"] == {"min": 3, "mean": 4.0, "max": 5}
    assert stats["mean_pass_rate"] == pytest.approx((0.5 + 0.25 + 0 + 1) / 4)
    assert stats["unscored_problems"] == 1 and stats["zero_weight_problems"] == 3 and stats["zero_weight_share"] == 0.6
    assert stats["effective_sample_size"] == pytest.approx(weights.sum() ** 2 / (weights**2).sum())
    assert stats["weight_mean"] == pytest.approx(1.0)
    assert list(stats["weight_quantiles"]) == ["0", "0.1", "0.25", "0.5", "0.75", "0.9", "1"]
    assert stats["weight_quantiles"]["1"] == pytest.approx(weights.max())
    assert stats["pass_rate_histogram"] == {
        "labels": ["0/4", "1/4", "2/4", "3/4", "4/4"],
        "counts": [1, 1, 1, 0, 1],
        "note": "1 problem without scored samples not shown",
    }
    json.dumps(stats, allow_nan=False)


def _weights_table(rows: list[tuple[int, int, float]]) -> pa.Table:
    """WEIGHTS rows from (n_correct, n_scored, weight)."""
    return build_table(
        [
            WEIGHT_ROW
            | {"problem_id": f"p{i}", "n_correct": c, "n_scored": n, "n_samples": n, "pass_rate": c / n, "weight": w, "weight_raw": w}
            for i, (c, n, w) in enumerate(rows)
        ],
        WEIGHTS,
    )


def test_histogram_text():
    stats = weight_statistics(_weights_table([(0, 4, 0.0), (0, 4, 0.5), (1, 4, 0.5), (2, 4, 1.1), (2, 4, 2.0), (2, 4, 1.0), (2, 4, 1.0), (4, 4, 0.0)]))
    full = "█" * 40
    assert pass_rate_chart(stats).splitlines() == [
        "problems by pass rate (correct/scored)",
        "0/4 " + "█" * 20 + " " * 20 + " 2",
        "1/4 " + "█" * 10 + " " * 30 + " 1",
        "2/4 " + full + " 4",
        "3/4 " + " " * 40 + " 0",
        "4/4 " + "█" * 10 + " " * 30 + " 1",
    ]
    bins = ["0–0.2", "0.2–0.4", "0.4–0.6", "0.6–0.8", "0.8–1", "1–1.2", "1.2–1.4", "1.4–1.6", "1.6–1.8", "1.8–2"]
    counts = [2, 0, 2, 0, 0, 3, 0, 0, 0, 1]
    bars = {0: "", 1: "█" * 13 + "▍", 2: "█" * 26 + "▋", 3: full}
    assert weight_chart(stats).splitlines() == ["problems by weight"] + [
        f"{label.ljust(7)} {bars[count].ljust(40)} {count}" for label, count in zip(bins, counts)
    ]


def test_pass_rate_histogram_with_different_sample_counts_rounds_to_the_largest():
    # 1/2 -> 2/4, 1/3 -> 1/4 (0.33 is nearer 0.25 than 0.5), 3/4 and 0/4 stay.
    stats = weight_statistics(_weights_table([(1, 2, 1.0), (1, 3, 1.0), (3, 4, 1.0), (0, 4, 0.0)]))
    assert stats["pass_rate_histogram"] == {
        "labels": ["0/4", "1/4", "2/4", "3/4", "4/4"],
        "counts": [1, 1, 1, 1, 0],
        "note": "problems have 2 to 4 scored samples: pass rates are rounded to the nearest i/4",
    }


# --- command line -------------------------------------------------------------------------------


def test_cli_writes_weights_prints_statistics_and_json(cli, graded, tmp_path):
    out, plot = tmp_path / "w.parquet", tmp_path / "w.png"
    result = cli("weight", graded, "-o", out, "--json", "--plot", plot)
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats == weight_statistics(read_table(str(out), WEIGHTS))
    assert "warning: 1 of 5 problems have no scored samples (all excluded) and get weight 0: 'd'" in result.stderr
    assert pass_rate_chart(stats) in result.stderr and "effective sample size" in result.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    inspected = cli("inspect", out, "--json")
    assert inspected.exit_code == 0, inspected.output
    assert json.loads(inspected.stdout)["statistics"] == stats


def test_cli_pipes_in_and_out(cli, graded, tmp_path):
    sink = pa.BufferOutputStream()
    write_ipc(read_table(graded, GRADES), sink)
    result = cli("weight", "-", "-o", "-", input=sink.getvalue().to_pybytes())
    assert result.exit_code == 0, result.output
    piped = pa.ipc.open_stream(result.stdout_bytes).read_all()
    assert read_metadata(piped.schema)["stage"] == "weights"
    assert piped.to_pylist() == run_weight(WeightConfig(graded=graded)).table.to_pylist()


BAD_FLAGS = [
    (["--alpha", "0"], "error: --alpha must be a number > 0 (got 0.0)"),
    (["--beta", "-1"], "error: --beta must be a number > 0 (got -1.0)"),
    (["--estimator", "mle"], "error: --estimator must be one of empirical, bayes, eb, zoib (got 'mle')"),
    (["--kernel", "band"], "error: --kernel band needs --low and --high (e.g. --low 0.2 --high 0.8)"),
    (["--kernel", "band", "--low", "0.8", "--high", "0.2"], "error: --low must be below --high (got 0.8 and 0.2)"),
    (["--normalize", "l2"], "error: --normalize must be one of mean, sum, max, none (got 'l2')"),
    (["--confidence", "95"], "error: --confidence must be between 0 and 1 (got 95.0)"),
    (["--plot", "w.jpg"], "error: --plot w.jpg: name a .png file"),
    (["--floor", "1"], "error: --floor must be in [0, 1) (got 1.0)"),
    (["--floor", "-0.01"], "error: --floor must be in [0, 1) (got -0.01)"),
    (["--json", "-o", "-"], "error: --json and -o - both write to stdout; choose one"),
]


@pytest.mark.parametrize("flags,message", BAD_FLAGS, ids=[" ".join(f[0]) for f in BAD_FLAGS])
def test_bad_flags_are_one_line_errors(cli, graded, tmp_path, flags, message):
    assert_user_error(cli("weight", graded, "-o", tmp_path / "w.parquet", *flags), message)


def test_all_bad_values_are_reported_together():
    with pytest.raises(ConfigError) as error:
        WeightConfig(graded="g.parquet", alpha=float("nan"), prior_a=0, interval="exact")
    assert str(error.value) == (
        "--interval must be one of jeffreys, wilson (got 'exact'); --alpha must be a number > 0 (got nan); "
        "--prior-a must be a number > 0 (got 0)"
    )


def test_bad_inputs_are_one_line_errors(cli, graded, tmp_path):
    weights = tmp_path / "w.parquet"
    run_weight(WeightConfig(graded=graded, output=str(weights)))
    assert_user_error(cli("weight", weights, "-o", tmp_path / "x.parquet"), f"{weights}: is a 'weights' table, expected a 'grades' table (make one with 'paced grade')")
    fresh = tmp_path / "fresh.parquet"  # -o is checked first: an output made from other inputs would be refused (#26)
    assert_user_error(cli("weight", tmp_path / "nope.parquet", "-o", fresh), f"{tmp_path / 'nope.parquet'}: no such file or directory")
    # Written without paced's checks: an unknown verdict and a null `scored` are caught, with the row.
    bad = tmp_path / "bad.parquet"
    rows = samples("a", 1, 1) + samples("b", 1, 1)
    for changes, expected in (({"verdict": "maybe"}, "row 2: column 'verdict' has value 'maybe'"), ({"scored": None}, "row 2: column 'scored' is null")):
        pq.write_table(pa.Table.from_pylist(rows[:2] + [rows[2] | changes] + rows[3:]), bad)
        assert_user_error(cli("weight", bad, "-o", fresh), f"{bad} {expected}")
    empty = tmp_path / "empty.parquet"
    write_table(build_table([], GRADES), str(empty), GRADES)
    assert_user_error(cli("weight", empty, "-o", fresh), f"{empty}: holds no graded samples")


def test_nothing_to_train_on_is_a_clear_error(cli, tmp_path):
    path = tmp_path / "easy.parquet"
    write_table(build_table(samples("a", 4) + samples("b", 0, 4) + samples("c", 0, 0, 2), GRADES), str(path), GRADES)
    assert_user_error(
        cli("weight", path, "-o", tmp_path / "w.parquet"),
        f"{path}: every problem gets weight 0 under --kernel beta --alpha 1 --beta 1 --estimator empirical "
        "(3 problems, 1 without scored samples), so there is nothing to train on; try --estimator bayes or a wider band",
    )
    assert not (tmp_path / "w.parquet").exists()
