"""The comparison's bookkeeping: intervals, paired differences, steps to reach (no models)."""

from __future__ import annotations

import pytest

from paced_curate.comparison import interval, plot_curves, steps_to_reach, summarise


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
