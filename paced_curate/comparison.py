"""The pre-registered comparison: methods, paired differences with 95% intervals, Holm's correction, learning curves.

Pure bookkeeping over the rows `demo.run_methods` returns (one per student, world and
training seed); `paced demo` and `bench/reproduce.py` both summarise with it, so their tables
mean the same thing. bench/reproduce_prereg.md states the design (the registered family
`REGISTERED_PAIRS` x `FAMILY_METRICS`, Holm at `ALPHA`, the decision rule `verdict`).

    summary = summarise(rows)           # per method: mean and 95% interval; paired vs unweighted; Holm over the registered family
    show_summary(summary, seeds=12, what="worlds")
    plot_curves(rows, "curves.png")
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from paced_curate.report import rows_table, say, show


def _table(title: str, header: list[str], rows: list[list[str]]):
    """`report.rows_table` with the student column kept whole (it would be cut to 'unweigh...' at 80 columns)."""
    table = rows_table(title, header, rows)
    table.columns[0].min_width = max(len(row[0]) for row in rows) if rows else 8
    table.columns[0].no_wrap = True
    return table

FLOOR = 0.01
"""The weight floor of "PACED floor" (`paced weight --floor`), chosen before any run: about a tenth of
the weight a problem solved once in K = 8 samples gets, w(1/8) = 7/64 = 0.109 (0.0109, rounded
down). So a problem the student never (or always) solves stays in training, as Uni-OPD (arXiv
2605.03677) found better than dropping it, yet weighs about 11 times less than the least of the
frontier problems, which keep the paper's ordering among themselves."""
PLUG_IN = {"estimator": "empirical", "normalize": "mean"}
"""Pinned, not left to `paced weight`'s defaults: the registered comparison's weights are plug-in
p = correct / K, normalised to mean 1 (the export then normalises over the trained rows)."""
WEIGHTINGS = {
    # name: `WeightConfig` settings of the export's weights
    "paced": {"kernel": "beta", "alpha": 1.0, "beta": 1.0} | PLUG_IN,
    "paced floor": {"kernel": "beta", "alpha": 1.0, "beta": 1.0} | PLUG_IN | {"floor": FLOOR},
    "unweighted": {"kernel": "uniform"} | PLUG_IN,
    "hard filter": {"kernel": "band", "low": 0.125, "high": 0.875} | PLUG_IN,
}
METHODS = {
    # name: (weighting of the export, distillation loss); base (no training) is always evaluated too
    "unweighted": ("unweighted", "fkl-then-rkl"),
    "hard filter": ("hard filter", "fkl-then-rkl"),
    "PACED fkl": ("paced", "fkl"),
    "PACED rkl": ("paced", "rkl"),
    "PACED fkl-then-rkl": ("paced", "fkl-then-rkl"),
    "PACED floor": ("paced floor", "fkl-then-rkl"),
    "AKL": ("unweighted", "akl"),
}
ALL_METHODS = tuple(METHODS)
REFERENCE = "unweighted"
ALPHA = 0.05
"""Family-wise error rate of the Holm-corrected paired comparisons."""
FAMILY_METRICS = ("heldout", "hard", "probe_change")
"""The metrics of the registered family: each pair of `REGISTERED_PAIRS` is compared on each of them."""
REGISTERED_PAIRS = (
    # (method, reference): a positive difference means `method` did better (bench/reproduce_prereg.md, H1-H6)
    ("PACED fkl-then-rkl", "unweighted"),   # H1: does PACED beat uniform weights (and forget less)?
    ("PACED floor", "PACED fkl-then-rkl"),  # H2: does keeping p = 0 and p = 1 problems at a small weight beat dropping them?
    ("PACED fkl-then-rkl", "hard filter"),  # H3: does the beta kernel's shape add to leaving out p = 0 and p = 1?
    ("PACED fkl-then-rkl", "AKL"),          # H4: does PACED beat the paper's baseline?
    ("PACED fkl-then-rkl", "PACED fkl"),    # H5: is fkl-then-rkl better than fkl alone?
    ("PACED fkl-then-rkl", "PACED rkl"),    # H6: ... than rkl alone?
)
"""The pre-registered family's pairs (bench/reproduce_prereg.md): with `FAMILY_METRICS`, 18 comparisons Holm-corrected as one family."""
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


def paired_t(diffs: list[float], confidence: float = 0.95) -> dict:
    """Two-sided one-sample Student-t test of mean 0 for paired differences, and the interval of their mean.

    t = mean / (sd / sqrt(n)) with n - 1 degrees of freedom (sd with n - 1 in the denominator);
    p = 2 P(T > |t|). When every difference is equal (sd = 0), p is 0 if their mean is not 0
    and 1 if it is, and the interval is [mean, mean].

    Args:
        diffs: paired differences (None entries are left out).
        confidence: coverage of the interval (0.95; a family uses 1 - alpha / m).

    Returns:
        {"mean", "sd", "n", "df", "t", "p", "low", "high"}; all but "n" (and "mean" for n = 1) are
        None for fewer than two differences.
    """
    from scipy import stats

    values = [d for d in diffs if d is not None]
    n = len(values)
    out = {"mean": statistics.fmean(values) if values else None, "sd": None, "n": n, "df": None, "t": None, "p": None, "low": None, "high": None}
    if n < 2:
        return out
    mean, sd = out["mean"], statistics.stdev(values)
    out |= {"sd": sd, "df": n - 1}
    if sd == 0:
        return out | {"t": math.copysign(math.inf, mean) if mean else 0.0, "p": 0.0 if mean else 1.0, "low": mean, "high": mean}
    error = sd / math.sqrt(n)
    t = mean / error
    half = stats.t.ppf(1 - (1 - confidence) / 2, n - 1) * error
    return out | {"t": t, "p": float(2 * stats.t.sf(abs(t), n - 1)), "low": mean - half, "high": mean + half}


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (Holm 1979, "A simple sequentially rejective multiple test procedure").

    With the m given p-values sorted ascending, p(1) <= ... <= p(m), the adjusted value of the
    i-th is max over j <= i of min(1, (m - j + 1) p(j)). Rejecting every hypothesis whose
    adjusted value is <= alpha keeps the family-wise error rate at alpha under any dependence.

    Args:
        p_values: one per comparison; None (no test) is left out of the family and stays None.

    Returns:
        Adjusted p-values in the input's order.
    """
    present = sorted((p, index) for index, p in enumerate(p_values) if p is not None)
    m = len(present)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[index] = running
    return adjusted


def paired_family(rows: list[dict], comparisons: list[tuple], reference: str = REFERENCE, alpha: float = ALPHA) -> dict:
    """Paired comparisons, Holm-corrected as one family.

    For each (method, metric) or (method, metric, against): the differences method - against
    (`reference` when not given) over the (world, seed) pairs both have, their paired t-test
    (`paired_t`) and the Holm-adjusted p-value over the m comparisons that have one (`holm`).
    A comparison is a finding when p_holm <= alpha; its verdict (`verdict`) is then "better"
    or "worse" by the sign of the mean difference, else "no difference shown". Each also gets
    the level Holm's step-down tests it at, alpha / (m - rank + 1) (rank 1 = smallest p), and an
    interval at confidence 1 - alpha / m: these Bonferroni intervals hold for the whole family
    at once (coverage >= 1 - alpha); one that excludes 0 implies a Holm finding, not the other
    way round.

    Args:
        rows: one per (method, world, seed), as `demo.run_methods` returns them (probe_change
            is computed here when missing).
        comparisons: (method, metric) or (method, metric, against) tuples; methods or metrics
            absent from the rows give n = 0.
        reference: the method a difference is taken against when a comparison names none.
        alpha: the family-wise error rate.

    Returns:
        {"alpha", "m", "reference", "comparisons": [{"method", "reference", "metric", "values",
        "mean", "n", "t", "p", "p_holm", "holm_alpha", "finding", "verdict", "low", "high",
        "low_95", "high_95"}]}.
    """
    _add_probe_change(rows)
    by_key, pairs = _index(rows)
    tests = []
    for comparison in comparisons:
        method, metric, against = (*comparison, reference) if len(comparison) == 2 else comparison
        diffs = _paired_values(by_key, pairs, method, against, metric)
        tests.append((method, against, metric, diffs, paired_t(diffs)))
    m = sum(1 for *_, test in tests if test["p"] is not None)
    adjusted = holm([test["p"] for *_, test in tests])
    order = sorted((test["p"], i) for i, (*_, test) in enumerate(tests) if test["p"] is not None)
    rank = {i: position + 1 for position, (_, i) in enumerate(order)}
    out = []
    for i, (method, against, metric, diffs, test) in enumerate(tests):
        wide = paired_t(diffs, confidence=1 - alpha / m) if m else test
        entry = {
            "method": method, "reference": against, "metric": metric, "values": diffs, "mean": test["mean"], "n": test["n"],
            "t": test["t"], "p": test["p"], "p_holm": adjusted[i], "holm_alpha": alpha / (m - rank[i] + 1) if i in rank else None,
            "finding": adjusted[i] is not None and adjusted[i] <= alpha,
            "low": wide["low"], "high": wide["high"], "low_95": test["low"], "high_95": test["high"],
        }
        out.append(entry | {"verdict": verdict(entry)})
    return {"alpha": alpha, "m": m, "reference": reference, "comparisons": out}


def verdict(comparison: dict) -> str:
    """The registered decision rule (bench/reproduce_prereg.md) for one comparison of `paired_family`.

    Returns:
        "better" (Holm-adjusted p <= alpha and a positive mean difference: the method did
        better than its reference; on probe change, it forgot less), "worse" (the same with a
        negative mean), "no difference shown" (not rejected: no claim either way, not
        equivalence), or "not tested" (fewer than two paired values).
    """
    if comparison["p"] is None:
        return "not tested"
    if not comparison["finding"] or not comparison["mean"]:
        return "no difference shown"
    return "better" if comparison["mean"] > 0 else "worse"


def registered_family(methods) -> list[tuple[str, str, str]]:
    """The registered comparisons (`REGISTERED_PAIRS` x `FAMILY_METRICS`) whose two methods are both in `methods`.

    Returns:
        (method, metric, reference) tuples for `paired_family`, pair by pair.
    """
    present = set(methods)
    return [(method, metric, against) for method, against in REGISTERED_PAIRS if {method, against} <= present for metric in FAMILY_METRICS]


def _add_probe_change(rows: list[dict]) -> None:
    """probe_change = probe minus the base student's probe in the same (world, seed), where both exist."""
    by_key = {(row["world"], row["seed"], row["method"]): row for row in rows}
    for row in rows:
        base = by_key.get((row["world"], row["seed"], "base"))
        if base is not None and row.get("probe") is not None and base.get("probe") is not None:
            row["probe_change"] = row["probe"] - base["probe"]


def _index(rows: list[dict]):
    by_key = {(row["world"], row["seed"], row["method"]): row for row in rows}
    return by_key, sorted({(row["world"], row["seed"]) for row in rows})


def _paired_values(by_key: dict, pairs: list, method: str, reference: str, metric: str) -> list[float]:
    """method - reference on `metric` for every (world, seed) where both have a value."""
    diffs = []
    for pair in pairs:
        ours, theirs = by_key.get(pair + (method,)), by_key.get(pair + (reference,))
        if ours is not None and theirs is not None and ours.get(metric) is not None and theirs.get(metric) is not None:
            diffs.append(ours[metric] - theirs[metric])
    return diffs


def steps_to_reach(curve: list[tuple[int, float]], target: float) -> int | None:
    """The first curve step whose pass@1 is >= target (None if none is)."""
    for step, value in curve:
        if value is not None and value >= target:
            return step
    return None


def summarise(rows: list[dict], family_metrics: tuple[str, ...] = FAMILY_METRICS, alpha: float = ALPHA) -> dict:
    """Per method: each metric's mean and 95% interval over (world, seed) pairs; paired
    differences against unweighted with 95% intervals; steps to reach unweighted's final
    held-out accuracy on the learning curve of the same world and seed; and "holm": the
    registered comparisons among the methods present (`registered_family`) on
    `family_metrics`, Holm-corrected as one family with verdicts (`paired_family`).
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
                diffs = _paired_values(by_key, pairs, method, REFERENCE, metric)
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
    family = [c for c in registered_family(methods) if c[1] in family_metrics]
    if family:
        summary["holm"] = paired_family(rows, family, REFERENCE, alpha)
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
    if summary.get("holm"):
        show_holm(summary["holm"], seeds, what)


LABELS = {"heldout": "held-out (pool)", "hard": "hard", "probe_change": "probe change"}
VERDICT_WORDS = {("probe_change", "better"): "forgets less", ("probe_change", "worse"): "forgets more"}


def verdict_words(comparison: dict) -> str:
    """`comparison["verdict"]` as the tables print it: on probe change, "forgets less" / "forgets more"."""
    return VERDICT_WORDS.get((comparison["metric"], comparison["verdict"]), comparison["verdict"])


def show_holm(family: dict, seeds: int, what: str) -> None:
    """Print the Holm-corrected family on stderr: per comparison the mean difference, its
    simultaneous interval, the Holm-adjusted p and the verdict of the registered decision rule."""
    rows = []
    for c in family["comparisons"]:
        interval_text = _ci({"mean": c["mean"], "low": c["low"], "high": c["high"]}, signed=True)
        p_holm = "n/a" if c["p_holm"] is None else f"{c['p_holm']:.4f}"
        rows.append([f"{c['method']} vs {c['reference']}", LABELS.get(c["metric"], c["metric"]), interval_text, p_holm, verdict_words(c)])
    if rows and family["m"]:  # no comparison has two paired values (one world, one seed): nothing to test
        m, alpha = family["m"], family["alpha"]
        show(_table(f"is the first method better? paired difference over {seeds} {what}, Holm-corrected over {m} comparisons: "
                    f"mean [{1 - alpha / max(m, 1):.2%} simultaneous interval], Holm p; better / worse only where Holm p <= {alpha:g}, "
                    "else no difference shown (which is not evidence that there is none)",
                    ["comparison", "metric", "difference", "Holm p", "verdict"], rows))


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
