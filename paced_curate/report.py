"""What paced shows people: status lines, tables and histograms on stderr, and `paced inspect`.

stdout carries data only (tables in pipes, JSON with `--json`); everything here goes to
stderr. Rich wraps at 80 columns on a non-terminal and parses `[...]` as markup, so the
console soft-wraps and user text is printed with `markup=False`.

    from paced_curate.report import bar_chart, say
    say("grading 20,000 samples")
    print(bar_chart(["0/8", "1/8"], [12, 30]))
"""

from __future__ import annotations

import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

_console: Console | None = None
BLOCKS = " ▏▎▍▌▋▊▉█"


def console() -> Console:
    """The shared stderr console."""
    global _console
    if _console is None:
        _console = Console(stderr=True, soft_wrap=True, highlight=False)
    return _console


def say(message: str) -> None:
    """Print one status line to stderr (user text is never parsed as markup)."""
    console().print(message, markup=False)


def plural(count: int, noun: str) -> str:
    """`count` and `noun`, the noun in the plural unless the count is 1: "1 problem", "2,048 problems"."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def show(renderable) -> None:
    """Print a rich renderable (a table) to stderr."""
    console().print(renderable)


def bar(value: float, maximum: float, width: int) -> str:
    """A horizontal bar of `value / maximum * width` cells, drawn in eighths of a cell."""
    if maximum <= 0 or value <= 0:
        return ""
    eighths = round(value / maximum * width * 8)
    full, rest = divmod(eighths, 8)
    return "█" * full + (BLOCKS[rest] if rest else "")


def bar_chart(labels: list[str], counts: list[float], width: int = 40, title: str | None = None) -> str:
    """A text histogram, one bar per label, scaled so the largest count fills `width` cells.

    Example:
        >>> print(bar_chart(["a", "bb"], [2, 1], width=4))
        a  ████ 2
        bb ██   1
    """
    label_width = max((len(label) for label in labels), default=0)
    peak = max(counts, default=0)
    lines = [title] if title else []
    for label, count in zip(labels, counts):
        shown = f"{count:,}" if isinstance(count, int) else f"{count:.3g}"
        lines.append(f"{label.ljust(label_width)} {bar(count, peak, width).ljust(width)} {shown}")
    return "\n".join(lines)


def equal_bins(values: list[float], num_bins: int, low: float | None = None, high: float | None = None) -> tuple[list[str], list[int]]:
    """Count `values` in `num_bins` equal-width bins; returns (labels, counts)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    low = min(finite, default=0.0) if low is None else low
    high = max(finite, default=1.0) if high is None else high
    if high <= low:
        high = low + 1.0
    step = (high - low) / num_bins
    counts = [0] * num_bins
    for value in finite:
        counts[min(int((value - low) / step), num_bins - 1)] += 1
    labels = [f"{low + i * step:.3g}–{low + (i + 1) * step:.3g}" for i in range(num_bins)]
    return labels, counts


MAX_BARS = 21
"""Most bars in a pass-rate histogram: one per i/K up to K = 20, grouped counts beyond."""


def count_bins(k: int, max_bars: int = MAX_BARS) -> list[tuple[int, int]]:
    """Bins of correct-sample counts 0..k for a histogram of at most `max_bars` bars.

    Every bin is a range of exact counts (lo, hi), both ends included. Up to `max_bars` values,
    one bin per count. Beyond, 0 and k keep bars of their own (p = 0 and p = 1 get no PACED
    weight, so they matter) and 1..k-1 are split into bins of equal width (the last may be
    narrower).

    Example:
        >>> count_bins(4)
        [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4)]
        >>> len(count_bins(72)), count_bins(72)[:3], count_bins(72)[-2:]
        (20, [(0, 0), (1, 4), (5, 8)], [(69, 71), (72, 72)])
    """
    if k + 1 <= max_bars:
        return [(i, i) for i in range(k + 1)]
    width = math.ceil((k - 1) / (max_bars - 2))
    middle = [(lo, min(lo + width - 1, k - 1)) for lo in range(1, k, width)]
    return [(0, 0), *middle, (k, k)]


def count_bin_labels(bins: list[tuple[int, int]], k: int) -> list[str]:
    """Labels "0/72", "1-4/72", ... for `count_bins`."""
    return [f"{lo}/{k}" if lo == hi else f"{lo}-{hi}/{k}" for lo, hi in bins]


def key_value_table(title: str, rows: list[tuple[str, object]]) -> Table:
    """A two-column rich table of named values."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    for key, value in rows:
        table.add_row(key, format_value(value))
    return table


def rows_table(title: str, header: list[str], rows: list[list[object]]) -> Table:
    """A rich table with a header row."""
    table = Table(title=title, title_justify="left")
    for index, name in enumerate(header):
        table.add_column(name, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*(format_value(v) for v in row))
    return table


def format_value(value: object) -> str:
    """Numbers with separators and 4 significant digits; everything else as text."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def save_histograms_png(path: str | Path, panels: list[tuple[str, list[str], list[float]]]) -> Path:
    """Save bar charts side by side as a PNG image (matplotlib, no display needed).

    Args:
        path: the image file (written atomically).
        panels: (title, labels, counts) for each chart.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from paced_curate.io import atomic_path

    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5), squeeze=False)
    for axis, (title, labels, counts) in zip(axes[0], panels):
        axis.bar(range(len(counts)), counts, color="#4C72B0")
        axis.set_xticks(range(len(labels)), labels, rotation=45 if len(labels) > 9 else 0, ha="right" if len(labels) > 9 else "center", fontsize=8)
        axis.set_title(title)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
    return path


class StageProgress:
    """A progress line on stderr: done of total, throughput counters per second, and ETA.

    Example:
        with StageProgress("rollout", total=1000, unit="problems", rates={"samples": "samples/s"}) as progress:
            progress.advance(8, samples=64)
    """

    def __init__(self, description: str, total: int, unit: str, completed: int = 0, rates: dict[str, str] | None = None) -> None:
        import time

        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.rates = rates or {}
        self.counters = dict.fromkeys(self.rates, 0.0)
        self.started = time.perf_counter()
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(unit),
            TextColumn("{task.fields[rates]}"),
            TimeRemainingColumn(),
            console=console(),
            transient=False,
        )
        self.task = self.progress.add_task(description, total=total, completed=completed, rates="")

    def __enter__(self) -> "StageProgress":
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def advance(self, steps: int, **counters: float) -> None:
        """Mark `steps` more units done and add to the named counters."""
        import time

        for name, value in counters.items():
            self.counters[name] += value
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        rates = " • ".join(f"{self.counters[name] / elapsed:,.0f} {label}" for name, label in self.rates.items())
        self.progress.update(self.task, advance=steps, rates=rates)
