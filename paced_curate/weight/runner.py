"""`paced weight`: graded samples -> one PACED weight per problem.

Counts each problem's graded samples (n_samples, n_excluded by the truncation policy that
`paced grade` wrote into `scored`, n_correct), estimates the pass rate p = n_correct / n_scored
with a confidence interval, applies the kernel (w(p) = p^alpha (1-p)^beta by default, or the
`uniform` and `band` baselines) with the `empirical`, `bayes` or `eb` estimator (estimators.py),
normalises, and writes the WEIGHTS table sorted by problem_id. Parquet inputs are scanned lazily with polars'
streaming engine (three columns only), so 10 million graded rows fit in a little memory.

    paced weight graded/ -o weights.parquet --estimator bayes --plot weights.png
    result = run_weight(WeightConfig(graded="graded/", output="weights.parquet"))
    result.statistics["effective_sample_size"]
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from paced_curate import __version__
from paced_curate.errors import ConfigError, InputError, SchemaError
from paced_curate.io import (
    STDIO,
    complete_shards,
    input_digest,
    part_files,
    read_manifest,
    read_parquet_schema,
    read_table,
    shard_dirs,
    write_table,
)
from paced_curate.partdir import claim_output, command_line, package_versions
from paced_curate.pipes import stdin_schema
from paced_curate.problems import parquet_folder_files
from paced_curate.report import plural
from paced_curate.samples import paced_stage, read_verdicts, repeated_sample_error
from paced_curate.rollout.prompt_record import KEY as PROMPT_KEY
from paced_curate.rollout.prompt_record import inherited_prompt_record, schema_record
from paced_curate.schema import GRADES, VERDICTS, WEIGHTS, check_schema, stage_metadata
from paced_curate.weight.estimators import ESTIMATORS, BetaPrior, band_probability, bayes_weight, estimate, fit_prior
from paced_curate.weight.inflated import InflatedPrior
from paced_curate.weight.kernels import (
    INTERVALS,
    KERNELS,
    NORMALIZATIONS,
    band_weight,
    floor_weight,
    kernel_weight,
    normalize,
    normalizing_constant,
    pass_rate_interval,
    weighting_flags,
)
from paced_curate.weight.stats import pass_rate_chart, render_weight_statistics, save_weight_plot, weight_chart, weight_statistics

__all__ = [
    "WeightConfig",
    "WeightResult",
    "run_weight",
    "count_samples",
    "weigh_counts",
    "kernel_weight",
    "bayes_weight",
    "band_weight",
    "band_probability",
    "pass_rate_interval",
    "normalize",
    "normalizing_constant",
    "weight_statistics",
    "render_weight_statistics",
    "pass_rate_chart",
    "weight_chart",
]

SAMPLE_COLUMNS = ["problem_id", "sample_index", "verdict", "scored"]
NOT_SETTINGS = ("graded", "output", "plot", "overwrite")
"""WeightConfig fields that do not change the weights (paths, the plot, --overwrite)."""
COUNT_COLUMNS = ["problem_id", "n_samples", "n_correct", "n_excluded", "n_scored"]


@dataclass(frozen=True, kw_only=True)
class WeightConfig:
    """Settings of `paced weight`; each field is the flag of the same name."""

    graded: str
    """The graded samples: a `paced grade` output (folder, .parquet file, shard-* folders), or
    any tool's JSONL/JSON/CSV/Parquet with an id and a `verdict` or `correct` column, or "-"
    for an Arrow stream on stdin."""
    output: str | None = None
    """Where to write the weights: a NAME.parquet file, a folder (one part file), "-" for an
    Arrow stream on stdout, or None to only return the table."""
    kernel: str = "beta"
    """beta: w(p) = p^alpha (1-p)^beta (PACED); uniform: all 1 (the unweighted baseline);
    band: 1 for low <= p <= high, else 0 (the hard-filter baseline)."""
    alpha: float = 1.0
    """Exponent of p in the beta kernel, > 0."""
    beta: float = 1.0
    """Exponent of 1 - p in the beta kernel, > 0."""
    low: float | None = None
    """Lower end of the band kernel's pass-rate band, in [0, 1]."""
    high: float | None = None
    """Upper end of the band kernel's pass-rate band, in [0, 1] and above low."""
    estimator: str = "empirical"
    """empirical: plug in p = n_correct / n_scored (the paper); bayes: the posterior mean of the
    kernel under a Beta(prior_a, prior_b) prior on p; eb (empirical Bayes): the same posterior
    mean with the Beta prior fitted to the pool by maximum marginal likelihood; zoib: the posterior
    mean under a prior with point masses at p = 0 and p = 1 beside a Beta part, fitted to the pool."""
    min_weight: float = 0.0
    """Raw weights below this are written as 0: the problem is dropped (no teacher reference, no
    training). For the bayes, eb and zoib estimators, whose weights are never exactly 0."""
    prior_a: float = 0.5
    """First parameter of the Beta prior used by the bayes estimator (Jeffreys: 0.5), > 0."""
    prior_b: float = 0.5
    """Second parameter of the Beta prior used by the bayes estimator (Jeffreys: 0.5), > 0."""
    interval: str = "jeffreys"
    """Confidence interval for p written to ci_low and ci_high: jeffreys or wilson."""
    confidence: float = 0.95
    """Coverage of that interval, in (0, 1)."""
    normalize: str = "mean"
    """mean: mean weight 1 (the loss scale of unweighted training); sum: weights sum to 1;
    max: largest weight 1; none: the raw kernel value."""
    floor: float = 0.0
    """Raise every raw weight below this to it, before normalisation (`kernels.floor_weight`): problems at
    p = 0 or p = 1 (kernel value 0), outside the band, or with a posterior mean below it get `floor` instead of
    less. In [0, 1); 0 (default) is no floor. Problems without scored samples keep weight 0."""
    plot: str | None = None
    """Also save the pass-rate and weight histograms as this PNG image."""
    overwrite: bool = False
    """Replace an existing output that this command did not write with the same settings (#26)."""

    def __post_init__(self) -> None:
        problems = []

        def choice(flag: str, value: str, allowed: tuple[str, ...]) -> None:
            if value not in allowed:
                problems.append(f"{flag} must be one of {', '.join(allowed)} (got {value!r})")

        def positive(flag: str, value: float) -> None:
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                problems.append(f"{flag} must be a number > 0 (got {value})")

        choice("--kernel", self.kernel, KERNELS)
        choice("--estimator", self.estimator, ESTIMATORS)
        choice("--interval", self.interval, INTERVALS)
        choice("--normalize", self.normalize, NORMALIZATIONS)
        positive("--alpha", self.alpha)
        positive("--beta", self.beta)
        positive("--prior-a", self.prior_a)
        positive("--prior-b", self.prior_b)
        if not (isinstance(self.floor, (int, float)) and 0 <= self.floor < 1):
            problems.append(f"--floor must be in [0, 1) (got {self.floor})")
        if not (math.isfinite(self.min_weight) and 0 <= self.min_weight < 1):
            problems.append(f"--min-weight must be a raw weight in [0, 1) (got {self.min_weight})")
        if self.min_weight > 0 and self.floor > 0:
            problems.append(f"--min-weight ({self.min_weight:g}) drops small weights and --floor ({self.floor:g}) raises them; give one")
        if not 0 < self.confidence < 1:
            problems.append(f"--confidence must be between 0 and 1 (got {self.confidence})")
        for flag, value in (("--low", self.low), ("--high", self.high)):
            if value is not None and not 0 <= value <= 1:
                problems.append(f"{flag} must be a pass rate in [0, 1] (got {value})")
        if self.kernel == "band":
            if self.low is None or self.high is None:
                problems.append("--kernel band needs --low and --high (e.g. --low 0.2 --high 0.8)")
            elif self.low >= self.high:
                problems.append(f"--low must be below --high (got {self.low} and {self.high})")
        if self.plot is not None and not self.plot.lower().endswith(".png"):
            problems.append(f"--plot {self.plot}: name a .png file")
        if problems:
            raise ConfigError("; ".join(problems))

    def ignored_settings(self) -> list[str]:
        """Warnings for settings that have no effect with the chosen kernel and estimator."""
        notes = []
        if self.kernel != "beta" and (self.alpha, self.beta) != (1.0, 1.0):
            notes.append(f"--alpha and --beta have no effect with --kernel {self.kernel}")
        if self.kernel != "band" and (self.low, self.high) != (None, None):
            notes.append(f"--low and --high have no effect with --kernel {self.kernel}")
        if self.estimator in ("empirical", "eb", "zoib") and (self.prior_a, self.prior_b) != (0.5, 0.5):
            notes.append(f"--prior-a and --prior-b have no effect with --estimator {self.estimator}")
        if self.kernel == "uniform" and self.floor > 0:
            notes.append("--floor has no effect with --kernel uniform (every weight is 1)")
        if self.kernel == "uniform" and self.estimator in ("bayes", "eb"):
            notes.append(f"--estimator {self.estimator} has no effect with --kernel uniform (every weight is 1)")
        return notes

    def describe_kernel(self) -> str:
        """The kernel and estimator as flags, for messages."""
        return weighting_flags(self.kernel, self.alpha, self.beta, self.low, self.high, self.estimator, self.floor)


@dataclass(frozen=True)
class WeightResult:
    """What `run_weight` made."""

    table: pa.Table
    """The WEIGHTS table (one row per problem, sorted by problem_id), with its metadata."""
    statistics: dict
    """`weight_statistics(table)`: JSON-ready numbers and histograms."""
    output: str | None
    """Where the table was written (None: not written)."""
    plot: str | None
    """Where the histograms image was written (None: not written)."""
    normalizing_constant: float
    """What the raw weights were divided by."""
    warnings: tuple[str, ...]
    """Lines to show the user: unscored problems, settings that have no effect."""


def run_weight(config: WeightConfig) -> WeightResult:
    """Weight every problem of a graded table and write the WEIGHTS table.

    Args:
        config: a `WeightConfig`.

    Returns:
        A `WeightResult` with the table (its provenance in the schema metadata), statistics and
        warnings.

    Raises:
        InputError: the input is missing, unreadable, unfinished or holds no samples.
        SchemaError: the input is not a valid grades table.
        ConfigError: every problem gets weight 0, so there is nothing to train on.
    """
    settings = {k: v for k, v in asdict(config).items() if k not in NOT_SETTINGS}
    inputs = {"graded": {"path": config.graded, "sha256": input_digest(config.graded)}}
    if config.output is not None:
        # Before any work: never replace the input, a foreign file or other weights unasked (#26).
        # Nothing is deleted yet: --overwrite replaces the old output only once the new one is made.
        claim_output(
            config.output, kind=WEIGHTS.stage, inputs={"graded": config.graded}, overwrite=config.overwrite,
            settings=settings, recorded_inputs=inputs, clear=False,
        )
    counts = count_samples(config.graded)
    prior = weight_prior(counts, config)
    table, constant = weigh_counts(counts, config, prior)
    warnings = config.ignored_settings()
    n_scored = table.column("n_scored").to_numpy()
    unscored = np.flatnonzero(n_scored == 0)
    if len(unscored):
        shown = ", ".join(repr(table.column("problem_id")[int(i)].as_py()) for i in unscored[:5])
        more = f" and {len(unscored) - 5:,} more" if len(unscored) > 5 else ""
        warnings.append(
            f"{len(unscored):,} of {plural(table.num_rows, 'problem')} have no scored samples (all excluded) "
            f"and get weight 0: {shown}{more}"
        )
    provenance = {
        "settings": settings,
        "normalizing_constant": constant,
        "prior": prior.to_dict() if prior is not None else None,
        "inputs": inputs,
        "versions": package_versions(),
        "command": command_line(),
        "paced_version": __version__,
    }
    # The student's prompt format, from the graded input (a pipe's schema metadata), for the export (#14, #26).
    record = schema_record(stdin_schema()) if config.graded == STDIO else inherited_prompt_record(config.graded)
    if record is not None:
        provenance[PROMPT_KEY] = record
    table = table.replace_schema_metadata(stage_metadata(WEIGHTS.stage, provenance))
    statistics = weight_statistics(table)
    if config.output is not None:
        if config.overwrite:
            claim_output(
                config.output, kind=WEIGHTS.stage, inputs={"graded": config.graded}, overwrite=True,
                settings=settings, recorded_inputs=inputs,
            )
        write_table(table, config.output, WEIGHTS, provenance)
    if config.plot is not None:
        save_weight_plot(statistics, config.plot)
    return WeightResult(
        table=table,
        statistics=statistics,
        output=config.output,
        plot=config.plot,
        normalizing_constant=constant,
        warnings=tuple(warnings),
    )


# --- counting samples -----------------------------------------------------------------------


def count_samples(graded: str) -> pa.Table:
    """Count each problem's graded samples.

    Parquet inputs are validated from their footers and scanned lazily (problem_id, verdict
    and scored only) with polars' streaming engine; "-" reads the Arrow stream on stdin.

    Args:
        graded: a .parquet file, a part directory, a directory of shard-* directories, or "-".

    Returns:
        A table of problem_id, n_samples, n_correct, n_excluded, n_scored (int32), sorted by
        problem_id. n_excluded counts samples with scored = False; n_correct counts scored
        samples whose verdict is "correct".

    Raises:
        InputError: the input is missing, unreadable, unfinished, holds no samples, or its
            shards overlap.
        SchemaError: the input is not a valid grades table.
    """
    groups: list[list[Path]] = []
    if graded != STDIO and _is_stage_table(graded):
        groups = _parquet_groups(graded)
        samples = _scan(groups)
    else:
        # stdin, or samples another tool graded (JSONL, CSV, Parquet without paced metadata).
        samples = pl.from_arrow(read_verdicts(graded).select(SAMPLE_COLUMNS)).lazy()
    shard_checks = [pl.col("_shard").min().alias("_first_shard"), pl.col("_shard").max().alias("_last_shard")]
    counts = (
        samples.group_by("problem_id")
        .agg(
            pl.len().alias("n_samples"),
            pl.col("scored").sum().alias("n_scored"),
            (pl.col("scored") & (pl.col("verdict") == "correct")).sum().alias("n_correct"),
            # Nulls and unknown verdicts would silently count as "not correct": count the good ones.
            pl.col("scored").count().alias("_known_scored"),
            pl.col("verdict").is_in(list(VERDICTS)).sum().alias("_known_verdicts"),
            # A repeated sample would count twice: compare distinct indices with rows.
            pl.col("sample_index").n_unique().alias("_distinct_samples"),
            *(shard_checks if len(groups) > 1 else []),
        )
        .sort("problem_id")
        .collect(engine="streaming")
    )
    if counts.height == 0:
        raise InputError(f"{_source(graded)}: holds no graded samples")
    _check_counts(counts, graded, groups)
    _check_unique(counts, samples, graded)
    counts = counts.with_columns((pl.col("n_samples") - pl.col("n_scored")).alias("n_excluded"))
    arrays = [counts.get_column(name).to_arrow() for name in COUNT_COLUMNS]
    schema = WEIGHTS.schema_for(COUNT_COLUMNS)
    return pa.Table.from_arrays([a.cast(f.type) for a, f in zip(arrays, schema)], schema=schema)


def _is_stage_table(graded: str) -> bool:
    """Whether a path is a paced stage table (by its metadata, or by having every grades column).

    Those are scanned lazily and validated against the grades schema; anything else is read by
    its columns as graded samples from another tool.
    """
    if paced_stage(graded) is not None:
        return True
    target = Path(graded)
    first = target if target.suffix.lower() == ".parquet" else None
    if target.is_dir():
        files = parquet_folder_files(target)
        first = files[0] if files else None
    if first is None or not first.is_file():
        return False
    names = set(read_parquet_schema(first).names)
    return all(name in names for name in GRADES.field_names())


def _parquet_groups(graded: str) -> list[list[Path]]:
    """The input's Parquet files, one group per shard, each file's schema checked from its footer."""
    target = Path(graded)
    if not target.exists():
        raise InputError(f"{graded}: no such file or directory")
    if target.is_dir():
        if shard_dirs(target) and read_manifest(target) is None:
            groups = [part_files(shard, GRADES) for shard in complete_shards(target)]
        else:
            groups = [part_files(target, GRADES)]
    else:
        groups = [[target]]
    for file in (file for group in groups for file in group):
        check_schema(read_parquet_schema(file), GRADES, str(file))
    return groups


def _scan(groups: list[list[Path]]) -> pl.LazyFrame:
    frames = []
    for index, files in enumerate(groups):
        # Passthrough columns may differ between parts; only the three read here must agree.
        frame = pl.scan_parquet([str(f) for f in files], extra_columns="ignore").select(SAMPLE_COLUMNS)
        if len(groups) > 1:
            frame = frame.with_columns(pl.lit(index, dtype=pl.Int32).alias("_shard"))
        frames.append(frame)
    return pl.concat(frames)


def _check_counts(counts: pl.DataFrame, graded: str, groups: list[list[Path]]) -> None:
    """Refuse nulls, unknown verdicts and overlapping shards that the lazy scan let through."""
    bad_values = (
        counts.get_column("problem_id").null_count()
        or (counts.get_column("_known_scored") != counts.get_column("n_samples")).any()
        or (counts.get_column("_known_verdicts") != counts.get_column("n_samples")).any()
    )
    if bad_values:
        # Rare and fatal: read the input fully, so the message names the file, row and column.
        # (Stdin was read and checked in full already.)
        if graded != STDIO:
            read_table(graded, GRADES)
        raise SchemaError(f"{graded}: has null or unknown values in problem_id, verdict or scored; re-run 'paced grade'")
    if len(groups) > 1:
        overlap = counts.filter(pl.col("_first_shard") != pl.col("_last_shard"))
        if overlap.height:
            row = overlap.row(0, named=True)
            first, last = groups[row["_first_shard"]][0].parent, groups[row["_last_shard"]][0].parent
            raise InputError(
                f"{graded}: shards {first.name} and {last.name} overlap (both hold problem_id {row['problem_id']!r})"
            )


def _check_unique(counts: pl.DataFrame, samples: pl.LazyFrame, graded: str) -> None:
    """Refuse a repeated (problem_id, sample_index): it would count as extra evidence."""
    repeated = counts.filter(pl.col("_distinct_samples") != pl.col("n_samples"))
    if repeated.height == 0:
        return
    problem_id = repeated.get_column("problem_id")[0]
    rows = samples.with_row_index("_row").filter(pl.col("problem_id") == problem_id).collect()
    index = rows.filter(pl.col("sample_index").is_duplicated()).get_column("sample_index")[0]
    within = rows.filter(pl.col("sample_index") == index).get_column("_row").to_list()
    raise repeated_sample_error(problem_id, index, within, repeated.height, _source(graded))


# --- weights --------------------------------------------------------------------------------


def weight_prior(counts: pa.Table, config: WeightConfig) -> BetaPrior | InflatedPrior | None:
    """The prior on p the estimator uses: fitted to all counts (eb, zoib), fixed (bayes) or None."""
    return fit_prior(config.estimator, counts.column("n_correct").to_numpy(), counts.column("n_scored").to_numpy(), config.prior_a, config.prior_b)


def weigh_counts(counts: pa.Table, config: WeightConfig, prior: BetaPrior | None = None) -> tuple[pa.Table, float]:
    """Turn per-problem counts into the WEIGHTS table.

    The kernel, estimator and interval are computed once per distinct (n_scored, n_correct)
    pair, of which there are few, and spread back to the problems.

    Args:
        counts: `count_samples` output.
        config: the kernel, estimator, interval and normalisation to use.
        prior: the prior of the bayes, eb and zoib estimators (default: `weight_prior(counts,
            config)`, which fits eb's and zoib's priors to all of `counts`, not to the distinct pairs).

    Returns:
        (table, constant): the WEIGHTS table (no metadata) and the normalising constant.

    Raises:
        ConfigError: every problem gets weight 0.
    """
    n = counts.column("n_scored").to_numpy().astype(np.int64)
    c = counts.column("n_correct").to_numpy().astype(np.int64)
    if prior is None:
        prior = weight_prior(counts, config)
    base = int(c.max(initial=0)) + 1
    pairs, inverse = np.unique(n * base + c, return_inverse=True)
    pair_n, pair_c = pairs // base, pairs % base
    scored = pair_n > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(scored, pair_c / np.maximum(pair_n, 1), np.nan)
    raw = estimate(
        pair_c, pair_n, kernel=config.kernel, estimator=config.estimator, alpha=config.alpha, beta=config.beta,
        low=config.low, high=config.high, prior=prior, min_weight=config.min_weight,
    ).mean
    raw = floor_weight(raw, config.floor, scored) if config.floor > 0 else raw
    low, high = pass_rate_interval(pair_c, pair_n, config.interval, config.confidence)
    raw = raw[inverse]
    if not raw.sum() > 0:
        unscored = int((n == 0).sum())
        raise ConfigError(
            f"{_source(config.graded)}: every problem gets weight 0 under {config.describe_kernel()} "
            f"({len(n):,} problems, {unscored:,} without scored samples), so there is nothing to train on; "
            + (f"try a lower --min-weight (now {config.min_weight:g})" if config.min_weight > 0 else "try --estimator bayes or a wider band")
        )
    constant = normalizing_constant(raw, config.normalize)
    columns = {
        **{name: counts.column(name) for name in COUNT_COLUMNS},
        "pass_rate": _nullable(rate[inverse]),
        "ci_low": _nullable(low[inverse]),
        "ci_high": _nullable(high[inverse]),
        "weight_raw": pa.array(raw),
        "weight": pa.array(raw / constant),
    }
    return pa.Table.from_arrays(list(columns.values()), schema=WEIGHTS.schema), constant


def _source(graded: str) -> str:
    """The input as named in messages."""
    return "stdin" if graded == STDIO else graded


def _nullable(values: np.ndarray) -> pa.Array:
    return pa.array(values, mask=np.isnan(values), type=pa.float64())
