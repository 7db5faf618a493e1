"""The comparison's bookkeeping: intervals, paired differences, steps to reach (no models)."""

from __future__ import annotations

import pytest

import itertools
import random

from scipy import stats

from paced_curate.comparison import (
    FAMILY_METRICS,
    FLOOR,
    METHODS,
    REGISTERED_PAIRS,
    WEIGHTINGS,
    holm,
    interval,
    paired_family,
    paired_t,
    plot_curves,
    registered_family,
    show_summary,
    steps_to_reach,
    summarise,
    verdict,
)
from paced_curate.weight.kernels import kernel_weight


def test_interval_is_the_student_t_interval_of_the_mean():
    got = interval([0.1, 0.2, 0.3])
    # mean 0.2, sd 0.1, t(0.975, 2) = 4.302653
    assert got["mean"] == pytest.approx(0.2)
    assert got["high"] - got["mean"] == pytest.approx(4.302653 * 0.1 / 3**0.5, rel=1e-5)
    assert interval([0.5]) == {"mean": 0.5, "low": None, "high": None, "n": 1}
    assert interval([None])["mean"] is None


# (curve, target, expected, why)
REACH = [
    ([(0, 0.1), (20, 0.3), (40, 0.5)], 0.3, 20, "the first step at or above the target"),
    ([(0, 0.1), (20, 0.6), (40, 0.5)], 0.55, 20, "reached once counts, even if it dips after"),
    ([(0, 0.1), (20, 0.2)], 0.3, None, "never reached"),
    ([(0, 0.4), (20, 0.2)], 0.3, 0, "the base model may already be there"),
    ([], 0.3, None, "no curve"),
]


@pytest.mark.parametrize("curve, target, expected, why", REACH, ids=[case[-1] for case in REACH])
def test_steps_to_reach(curve, target, expected, why):
    assert steps_to_reach(curve, target) == expected, why


def _row(method, world, heldout, probe, curve):
    return {"method": method, "world": world, "seed": world, "heldout": heldout, "heldout_add": heldout, "heldout_mul": 0.0,
            "hard": heldout / 2, "probe": probe, "train_tokens": 100, "teacher_tokens": 50, "curve": curve}


def test_summarise_pairs_by_world_and_seed():
    rows = []
    for world, (base, unweighted, paced) in enumerate([(0.2, 0.4, 0.5), (0.3, 0.5, 0.7), (0.1, 0.3, 0.3)]):
        rows += [
            _row("base", world, base, 0.8, []),
            _row("unweighted", world, unweighted, 0.6, [(0, base), (10, unweighted)]),
            _row("PACED fkl-then-rkl", world, paced, 0.7 + world * 0.01, [(0, base), (5, unweighted), (10, paced)]),
        ]
    summary = summarise(rows)
    assert summary["pairs"] == 3
    paired = summary["paired"]["PACED fkl-then-rkl"]
    assert paired["heldout"]["values"] == pytest.approx([0.1, 0.2, 0.0])
    assert paired["heldout"]["mean"] == pytest.approx(0.1)
    # probe change: paced (0.7, 0.71, 0.72) - 0.8 vs unweighted 0.6 - 0.8 -> differences 0.1, 0.11, 0.12
    assert paired["probe_change"]["values"] == pytest.approx([0.1, 0.11, 0.12])
    assert summary["methods"]["base"]["probe_change"]["mean"] == pytest.approx(0.0)
    assert summary["steps_to_reach"]["PACED fkl-then-rkl"] == {"values": [5, 5, 5], "reached": 3, "n": 3, "median": 5}
    assert summary["steps_to_reach"]["unweighted"]["values"] == [10, 10, 10]
    assert "unweighted" not in summary["paired"] and "base" in summary["paired"]


def test_plot_curves_writes_a_png(tmp_path):
    rows = [_row("unweighted", 0, 0.4, 0.6, [(0, 0.2), (10, 0.4)]), _row("base", 0, 0.2, 0.8, [])]
    path = plot_curves(rows, tmp_path / "curves.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_curves([_row("base", 0, 0.2, 0.8, [])], tmp_path / "none.png") is None


# --- the paired t-test and Holm's correction (#21) -------------------------------------------

DIFFS = [
    [0.1, 0.2, 0.0],
    [0.05, 0.07, 0.04, 0.06, 0.08],
    [-0.03, 0.01, -0.02, -0.05, 0.0, -0.01, -0.04],
    [0.5, -0.5],
]


@pytest.mark.parametrize("diffs", DIFFS)
def test_paired_t_is_scipys_one_sample_t_test_and_interval(diffs):
    got = paired_t(diffs)
    reference = stats.ttest_1samp(diffs, 0.0)
    assert got["t"] == pytest.approx(reference.statistic, rel=1e-12)
    assert got["p"] == pytest.approx(reference.pvalue, rel=1e-10)
    low, high = stats.t.interval(0.95, len(diffs) - 1, loc=stats.tmean(diffs), scale=stats.sem(diffs))
    assert (got["low"], got["high"]) == pytest.approx((low, high), rel=1e-10)
    wide = paired_t(diffs, confidence=1 - 0.05 / 6)
    assert (wide["low"], wide["high"]) == pytest.approx(stats.t.interval(1 - 0.05 / 6, len(diffs) - 1, loc=stats.tmean(diffs), scale=stats.sem(diffs)), rel=1e-10)
    assert got["df"] == len(diffs) - 1 and got["n"] == len(diffs)


def test_paired_t_edge_cases():
    assert paired_t([0.2]) == {"mean": 0.2, "sd": None, "n": 1, "df": None, "t": None, "p": None, "low": None, "high": None}
    assert paired_t([])["mean"] is None and paired_t([None, None])["n"] == 0
    same = paired_t([0.1, 0.1, 0.1])
    assert (same["p"], same["low"], same["high"]) == (0.0, pytest.approx(0.1), pytest.approx(0.1))
    assert paired_t([0.0, 0.0])["p"] == 1.0


def holm_by_definition(p_values):
    """The slow, obvious Holm: the adjusted p-value of H_i is the smallest alpha at which the step-down
    procedure (compare p(k) with alpha / (m - k + 1) in ascending order, stop at the first failure) rejects H_i.
    That smallest alpha is one of the values (m - k + 1) p(k), capped at 1: try each, smallest first."""
    present = [(p, i) for i, p in enumerate(p_values) if p is not None]
    m = len(present)
    ordered = sorted(present)

    def rejected(alpha):
        out = set()
        for k, (p, i) in enumerate(ordered, start=1):
            if p > alpha / (m - k + 1):
                break
            out.add(i)
        return out

    candidates = sorted({min(1.0, (m - k + 1) * p) for k, (p, _) in enumerate(ordered, start=1)} | {1.0})
    adjusted = [None] * len(p_values)
    for _, i in present:
        adjusted[i] = next((alpha for alpha in candidates if i in rejected(alpha * (1 + 1e-12))), 1.0)  # 1: not rejected at any alpha <= 1
    return adjusted


def test_holm_worked_example():
    # sorted 0.005 x4 = 0.02, 0.01 x3 = 0.03, 0.03 x2 = 0.06, 0.04 x1 = 0.04 -> max(0.06, 0.04)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.2, None, 0.6]) == pytest.approx([0.4, None, 0.6]) and holm([None]) == [None]
    assert holm([0.5, 0.7]) == [1.0, 1.0]


@pytest.mark.parametrize("seed", range(20))
def test_holm_matches_the_step_down_procedure(seed):
    rng = random.Random(seed)
    m = rng.randint(1, 12)
    p_values = [rng.choice([rng.random() * 0.1, rng.random(), 0.01]) for _ in range(m)]  # ties included
    if seed % 3 == 0:
        p_values[0] = None
    expected = holm_by_definition(p_values)
    got = holm(p_values)
    assert [g is None for g in got] == [e is None for e in expected]
    assert [g for g in got if g is not None] == pytest.approx([e for e in expected if e is not None], rel=1e-9)


def test_paired_family_over_worlds():
    rng = random.Random(5)
    rows = []
    for world in range(6):
        base = 0.1 + rng.random() * 0.05
        scores = {"base": base, "unweighted": base + 0.05, "A": base + 0.15 + rng.random() * 0.01, "B": base + 0.05 + rng.gauss(0, 0.02)}
        for method, value in scores.items():
            rows.append({"method": method, "world": world, "seed": world, "heldout": value, "hard": value / 2, "probe": 0.5 - value})
    comparisons = list(itertools.product(["A", "B"], ["heldout", "hard", "probe_change"]))
    family = paired_family(rows, comparisons)
    assert family["m"] == 6 and family["alpha"] == 0.05
    p = [c["p"] for c in family["comparisons"]]
    assert [c["p_holm"] for c in family["comparisons"]] == pytest.approx(holm_by_definition(p))
    by = {(c["method"], c["metric"]): c for c in family["comparisons"]}
    a = by["A", "heldout"]
    diffs = [r["heldout"] - u["heldout"] for r, u in zip([r for r in rows if r["method"] == "A"], [r for r in rows if r["method"] == "unweighted"])]
    assert a["values"] == pytest.approx(diffs) and a["n"] == 6
    assert a["p"] == pytest.approx(stats.ttest_1samp(diffs, 0.0).pvalue, rel=1e-10)
    assert (a["low"], a["high"]) == pytest.approx(stats.t.interval(1 - 0.05 / 6, 5, loc=stats.tmean(diffs), scale=stats.sem(diffs)), rel=1e-10)
    assert a["finding"] and a["p_holm"] <= 0.05
    ranks = sorted(range(6), key=lambda i: p[i])
    assert [family["comparisons"][i]["holm_alpha"] for i in ranks] == pytest.approx([0.05 / (6 - k) for k in range(6)])
    for c in family["comparisons"]:
        assert c["finding"] == (c["p_holm"] <= 0.05)
        if c["low"] > 0 or c["high"] < 0:  # a simultaneous interval that excludes 0 is a Holm finding
            assert c["finding"], c
    # probe change is computed from the base row of the same world
    assert by["A", "probe_change"]["values"] == pytest.approx([-d for d in diffs])
    missing = paired_family(rows, [("C", "heldout"), ("A", "heldout")])
    assert missing["m"] == 1 and missing["comparisons"][0]["p_holm"] is None and not missing["comparisons"][0]["finding"]


def test_summarise_corrects_the_registered_comparisons_as_one_family(capsys):
    rows = []
    for world, (base, unweighted, paced) in enumerate([(0.2, 0.4, 0.5), (0.3, 0.5, 0.7), (0.1, 0.3, 0.35)]):
        rows += [_row("base", world, base, 0.8, []), _row("unweighted", world, unweighted, 0.6, [(0, base)]),
                 _row("PACED fkl-then-rkl", world, paced, 0.7, [(0, base)]), _row("PACED floor", world, paced + 0.01, 0.65, [(0, base)])]
    holm_family = summarise(rows)["holm"]
    # of the registered pairs, those whose two methods ran: H1 (PACED vs unweighted) and H2 (floor vs PACED)
    assert [(c["method"], c["reference"], c["metric"]) for c in holm_family["comparisons"]] == [
        (method, against, metric) for method, against in (("PACED fkl-then-rkl", "unweighted"), ("PACED floor", "PACED fkl-then-rkl"))
        for metric in FAMILY_METRICS
    ]
    assert holm_family["m"] == 6
    floor_heldout = holm_family["comparisons"][3]
    assert floor_heldout["values"] == pytest.approx([0.01, 0.01, 0.01])  # against PACED, not against unweighted
    show_summary(summarise(rows), seeds=3, what="worlds")
    printed = capsys.readouterr().err
    assert "Holm-corrected over 6 comparisons" in printed and "99.17% simultaneous interval" in printed, printed
    assert "PACED floor vs PACED" in printed and "no difference shown" in printed, printed


def test_the_registered_family_is_six_pairs_on_three_metrics():
    assert len(REGISTERED_PAIRS) == 6 and len(set(REGISTERED_PAIRS)) == 6
    assert {name for pair in REGISTERED_PAIRS for name in pair} <= set(METHODS)
    everything = registered_family(["base", *METHODS])
    assert len(everything) == 18 and len(set(everything)) == 18
    assert everything[:3] == [("PACED fkl-then-rkl", metric, "unweighted") for metric in ("heldout", "hard", "probe_change")]
    # the demo trains unweighted and PACED fkl-then-rkl only: H1's three comparisons
    assert registered_family(["base", "unweighted", "PACED fkl-then-rkl"]) == everything[:3]
    assert registered_family(["base", "unweighted"]) == []


def _verdict_case(mean, p, alpha=0.05):
    return {"mean": mean, "p": p, "finding": p is not None and p <= alpha}


# (mean difference, Holm p, verdict, why)
VERDICTS = [
    (+0.05, 0.001, "better", "rejected, positive"),
    (-0.05, 0.001, "worse", "rejected, negative"),
    (+0.05, 0.05, "better", "Holm p equal to alpha rejects"),
    (+0.05, 0.0501, "no difference shown", "not rejected: no claim, however large the mean"),
    (-0.20, 0.2, "no difference shown", "not rejected, negative"),
    (0.0, 0.0, "no difference shown", "a zero mean is never better or worse"),
    (0.1, None, "not tested", "fewer than two paired values"),
]


@pytest.mark.parametrize("mean, p_holm, expected, why", VERDICTS, ids=[case[-1] for case in VERDICTS])
def test_verdict_follows_the_registered_decision_rule(mean, p_holm, expected, why):
    assert verdict(_verdict_case(mean, p_holm)) == expected, why


def test_paired_family_takes_a_reference_per_comparison_and_gives_verdicts():
    rows = []
    for world in range(8):
        scores = {"base": 0.1, "unweighted": 0.2 + world * 0.01, "A": 0.3 + world * 0.01 + (world % 2) * 0.001, "B": 0.3 + world * 0.01 - (world % 3) * 0.002}
        rows += [{"method": method, "world": world, "seed": world, "heldout": value, "hard": value, "probe": 0.5} for method, value in scores.items()]
    family = paired_family(rows, [("A", "heldout"), ("A", "heldout", "B"), ("unweighted", "heldout", "A"), ("A", "probe_change", "B")])
    got = {(c["method"], c["reference"], c["metric"]): c for c in family["comparisons"]}
    assert got["A", "unweighted", "heldout"]["verdict"] == "better"
    assert got["unweighted", "A", "heldout"]["verdict"] == "worse"
    assert got["A", "unweighted", "heldout"]["values"] == pytest.approx([0.1 + (w % 2) * 0.001 for w in range(8)])
    a_vs_b = got["A", "B", "heldout"]
    assert a_vs_b["values"] == pytest.approx([(w % 2) * 0.001 + (w % 3) * 0.002 for w in range(8)])
    assert a_vs_b["p"] == pytest.approx(stats.ttest_1samp(a_vs_b["values"], 0.0).pvalue, rel=1e-10)
    # equal probes: every difference 0, p = 1, so no claim
    assert got["A", "B", "probe_change"]["verdict"] == "no difference shown" and family["m"] == 4


def test_paced_floor_is_fkl_then_rkl_on_floored_paced_weights():
    assert METHODS["PACED floor"] == ("paced floor", "fkl-then-rkl")
    assert WEIGHTINGS["paced floor"] == WEIGHTINGS["paced"] | {"floor": FLOOR}
    # a tenth of the weight of a problem solved once in K = 8, rounded down
    assert FLOOR <= kernel_weight(1 / 8, 1.0, 1.0) / 10 < FLOOR * 1.1
    assert {weighting for weighting, _ in METHODS.values()} <= set(WEIGHTINGS)
