"""paced weight: pass rates and PACED weights."""

from __future__ import annotations

from typing import Annotated

import typer

from paced_curate.cli.app import app, fails_cleanly, print_json
from paced_curate.cli.options import AlphaOption, BetaOption, FloorOption, HighOption, LowOption, OverwriteOption, PlotOption
from paced_curate.errors import ConfigError


@app.command("weight")
@fails_cleanly
def weight_command(
    graded: Annotated[str, typer.Argument(help="Graded samples: .parquet file, paced grade output directory, or - for a pipe.")],
    output: Annotated[str, typer.Option("--output", "-o", help="Weights table: a .parquet file, or - for an Arrow stream.")],
    kernel: Annotated[str, typer.Option(help="beta: p^alpha (1-p)^beta (PACED); uniform: all 1; band: 1 for low <= p <= high.")] = "beta",
    alpha: AlphaOption = 1.0,
    beta: BetaOption = 1.0,
    low: LowOption = None,
    high: HighOption = None,
    estimator: Annotated[str, typer.Option(help=(
        "empirical: plug in p = correct/scored; bayes: posterior mean of the kernel; eb: same, prior fitted to the pool; "
        "zoib: same, the prior with point masses at p = 0 and 1."
    ))] = "empirical",
    min_weight: Annotated[float, typer.Option("--min-weight", help="Raw weights below this are written as 0 (the problem is dropped).")] = 0.0,
    prior_a: Annotated[float, typer.Option("--prior-a", help="bayes: Beta prior parameter a (Jeffreys 0.5).")] = 0.5,
    prior_b: Annotated[float, typer.Option("--prior-b", help="bayes: Beta prior parameter b (Jeffreys 0.5).")] = 0.5,
    interval: Annotated[str, typer.Option(help="Confidence interval for p in ci_low/ci_high: jeffreys or wilson.")] = "jeffreys",
    confidence: Annotated[float, typer.Option(help="Coverage of that interval.")] = 0.95,
    normalize: Annotated[str, typer.Option(help="mean (mean weight 1), sum (sum 1), max (max 1) or none (raw kernel).")] = "mean",
    floor: FloorOption = 0.0,
    plot: PlotOption = None,
    overwrite: OverwriteOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the statistics as one JSON document on stdout.")] = False,
) -> None:
    """Weight each problem by its pass rate p: w(p) = p^alpha (1-p)^beta, normalised to mean 1.

    Example: paced weight graded/ -o weights.parquet --estimator bayes --plot weights.png
    """
    from paced_curate.report import say
    from paced_curate.weight import WeightConfig, render_weight_statistics, run_weight

    if as_json and output == "-":
        raise ConfigError("--json and -o - both write to stdout; choose one")
    config = WeightConfig(
        graded=graded, output=output, kernel=kernel, alpha=alpha, beta=beta, low=low, high=high, estimator=estimator,
        min_weight=min_weight, prior_a=prior_a, prior_b=prior_b, interval=interval, confidence=confidence, normalize=normalize,
        floor=floor, plot=plot, overwrite=overwrite,
    )
    result = run_weight(config)
    for warning in result.warnings:
        say(f"warning: {warning}")
    render_weight_statistics(result.statistics)
    written = "stdout" if output == "-" else output
    say(f"wrote {result.table.num_rows:,} problem weights to {written}" + (f" and histograms to {plot}" if plot else ""))
    if as_json:
        print_json(result.statistics)
