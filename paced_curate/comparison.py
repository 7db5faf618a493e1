"""The pre-registered comparison: methods, paired differences with 95% intervals, learning curves.

Pure bookkeeping over the rows `demo.run_methods` returns (one per student, world and
training seed); `paced demo` and `bench/reproduce.py` both summarise with it, so their tables
mean the same thing. README, "Does PACED help here?", states the design.

    summary = summarise(rows)           # per method: mean and 95% interval; paired vs unweighted
    show_summary(summary, seeds=5, what="worlds")
    plot_curves(rows, "curves.png")
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from paced_curate.report import rows_table, say, show


def _table(title: str, header: list[str], rows: list[list[str]]):
    """`report.rows_table` with the student column kept whole (it would be cut to 'unweigh…' at 80 columns)."""
    table = rows_table(title, header, rows)
    table.columns[0].min_width = max(len(row[0]) for row in rows) if rows else 8
    table.columns[0].no_wrap = True
    return table

METHODS = {
    # name: (weighting of the export, distillation loss); base (no training) is always evaluated too
    "unweighted": ("unweighted", "fkl-then-rkl"),
    "hard filter": ("hard filter", "fkl-then-rkl"),
    "PACED fkl": ("paced", "fkl"),
    "PACED rkl": ("paced", "rkl"),
    "PACED fkl-then-rkl": ("paced", "fkl-then-rkl"),
    "AKL": ("unweighted", "akl"),
}
ALL_METHODS = tuple(METHODS)
REFERENCE = "unweighted"
METRICS = ("heldout", "heldout_add", "heldout_mul", "hard", "probe", "probe_change", "train_tokens", "teacher_tokens")
"""heldout: the pool's distribution (frontier additions and out-of-reach products); hard: the
longest chains; probe: differences (never distilled); probe_change: probe minus the base
student's probe (< 0 is forgetting); tokens: trained response tokens and teacher completion tokens."""


def interval(values: list[float]) -> dict:
    """Mean and two-sided 95% Student-t interval of the mean (None for fewer than two values).

    Returns:
        {"mean", "low", "high", "n"}.
    """
    from scipy import stats

    values = [v for v in values if v is not None]
    n = len(values)
    if n == 0:
        return {"mean": None, "low": None, "high": None, "n": 0}
    mean = statistics.fmean(values)
    if n < 2:
        return {"mean": mean, "low": None, "high": None, "n": n}
    half = stats.t.ppf(0.975, n - 1) * statistics.stdev(values) / math.sqrt(n)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


def steps_to_reach(curve: list[tuple[int, float]], target: float) -> int | None:
    """The first curve step whose pass@1 is >= target (None if none is)."""
    for step, value in curve:
        if value is not None and value >= target:
            return step
    return None


def summarise(rows: list[dict]) -> dict:
    """Per method: each metric's mean and 95% interval over (world, seed) pairs; paired
    differences against unweighted with 95% intervals; steps to reach unweighted's final
    held-out accuracy on the learning curve of the same world and seed.
    """
    by_key = {(row["world"], row["seed"], row["method"]): row for row in rows}
    for row in rows:
        base = by_key[(row["world"], row["seed"], "base")]
        row["probe_change"] = row["probe"] - base["probe"]
    methods = list(dict.fromkeys(row["method"] for row in rows))
    pairs = sorted({(row["world"], row["seed"]) for row in rows})
    summary = {"methods": {}, "paired": {}, "steps_to_reach": {}, "pairs": len(pairs), "reference": REFERENCE}
    for method in methods:
        chosen = [by_key[pair + (method,)] for pair in pairs if pair + (method,) in by_key]
        summary["methods"][method] = {metric: interval([row.get(metric) for row in chosen]) | {"values": [row.get(metric) for row in chosen]} for metric in METRICS}
        if REFERENCE in methods and method != REFERENCE:
            paired = {}
            for metric in METRICS:
                diffs = [by_key[pair + (method,)].get(metric) - by_key[pair + (REFERENCE,)].get(metric)
                         for pair in pairs if pair + (method,) in by_key and pair + (REFERENCE,) in by_key
                         and by_key[pair + (method,)].get(metric) is not None and by_key[pair + (REFERENCE,)].get(metric) is not None]
                paired[metric] = interval(diffs) | {"values": diffs}
            summary["paired"][method] = paired
        if REFERENCE in methods and method != "base":
            steps = []
            for pair in pairs:
                if pair + (method,) in by_key and pair + (REFERENCE,) in by_key:
                    target = by_key[pair + (REFERENCE,)]["curve"][-1][1]
                    steps.append(steps_to_reach(by_key[pair + (method,)]["curve"], target))
            reached = [s for s in steps if s is not None]
            summary["steps_to_reach"][method] = {"values": steps, "reached": len(reached), "n": len(steps),
                                                 "median": statistics.median(reached) if reached else None}
    return summary


def _ci(entry: dict, digits: int = 3, signed: bool = False) -> str:
    if entry["mean"] is None:
        return "n/a"
    mean = f"{entry['mean']:+.{digits}f}" if signed else f"{entry['mean']:.{digits}f}"
    if entry["low"] is None:
        return mean
    return f"{mean} [{entry['low']:+.{digits}f}, {entry['high']:+.{digits}f}]" if signed else f"{mean} [{entry['low']:.{digits}f}, {entry['high']:.{digits}f}]"


def show_summary(summary: dict, seeds: int, what: str) -> None:
    """Print three tables on stderr: accuracy with 95% intervals, costs, and paired differences vs unweighted."""
    accuracy, costs = [], []
    for method, metrics in summary["methods"].items():
        accuracy.append([method, _ci(metrics["heldout"]), _ci(metrics["hard"]), _ci(metrics["probe_change"], signed=True)])
        steps = summary["steps_to_reach"].get(method)
        reach = "" if steps is None else f"{steps['median'] if steps['median'] is not None else '-'} ({steps['reached']}/{steps['n']})"
        costs.append([method, f"{metrics['train_tokens']['mean']:,.0f}", f"{metrics['teacher_tokens']['mean']:,.0f}", reach])
    show(_table(f"accuracy, mean [95% interval] over {seeds} {what}; probe change < 0 is forgetting",
                ["student", "held-out (pool)", "hard", "probe change"], accuracy))
    show(_table(f"cost, mean over {seeds} {what}; steps to reach unweighted's final held-out accuracy: median (reached/runs)",
                ["student", "train tokens", "teacher tokens", "steps to reach"], costs))
    paired = [[method, _ci(m["heldout"], signed=True), _ci(m["hard"], signed=True), _ci(m["probe_change"], signed=True)]
              for method, m in summary["paired"].items()]
    if paired:
        show(_table(f"paired difference vs {summary['reference']}, mean [95% interval] over {seeds} {what}; "
                    "an interval that contains 0 is no evidence of a difference", ["student", "held-out (pool)", "hard", "probe change"], paired))


def plot_curves(rows: list[dict], path: str | Path) -> Path | None:
    """Learning curves (held-out pool pass@1 against step), mean over seeds per method, to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[str, dict[int, list[float]]] = {}
    for row in rows:
        for step, value in row.get("curve") or []:
            if value is not None:
                curves.setdefault(row["method"], {}).setdefault(step, []).append(value)
    if not curves:
        return None
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for method, points in curves.items():
        steps = sorted(points)
        axes.plot(steps, [statistics.fmean(points[s]) for s in steps], marker="o", label=method)
    axes.set_xlabel("training step")
    axes.set_ylabel("held-out pass@1 (pool distribution)")
    axes.set_title(f"learning curves, mean over {max(len(v) for p in curves.values() for v in p.values())} runs")
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    say(f"wrote the learning curves to {path}")
    return path
