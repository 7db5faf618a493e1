"""`EstimateConfig`: the settings of `paced estimate`, checked up front.

`paced estimate` runs the rollout, grade and weight stages, so it takes their settings as
three stage configs (`rollout`, `grade`, `weight`) built from the same flags as the stage
commands; their input and output fields are set by `paced estimate` per round (whatever they
hold is ignored). Its own flags are the fields here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from paced_curate.errors import ConfigError
from paced_curate.estimate.plan import Policy
from paced_curate.grade import GradeConfig
from paced_curate.rollout.config import RolloutConfig
from paced_curate.weight import WeightConfig

# Chosen from bench/adaptive.py (README, "Adaptive rollouts"): see there for the measurements.
DEFAULT_MIN_SAMPLES = 4
DEFAULT_MAX_SAMPLES = 16
DEFAULT_ROUND_SAMPLES = 4
DEFAULT_TOLERANCE = 0.06


@dataclass(frozen=True, kw_only=True)
class EstimateConfig:
    """Settings of one `paced estimate` run (see the module docstring for the three stage configs)."""

    output: str
    """Run directory: rollouts/, graded/, weights.parquet and estimate.json are written there."""
    rollout: RolloutConfig
    """Rollout settings (problems, model, engine, sampling, prompt); samples and output are set per round."""
    grade: GradeConfig
    """Grade settings (grader, workers, timeout, policies); rollouts and output are set per round."""
    weight: WeightConfig
    """Weight settings (kernel, estimator, normalisation, plot); graded and output are set by estimate."""
    adaptive: bool = False
    """Sample adaptively (rounds until every weight's posterior sd is below --tolerance); else a fixed K."""
    samples: int = 8
    """Fixed K without --adaptive: samples per problem."""
    min_samples: int = DEFAULT_MIN_SAMPLES
    """--adaptive: samples of every problem in the first round."""
    max_samples: int = DEFAULT_MAX_SAMPLES
    """--adaptive: most samples of any problem."""
    round_samples: int = DEFAULT_ROUND_SAMPLES
    """--adaptive: samples added to each open problem per later round."""
    tolerance: float = DEFAULT_TOLERANCE
    """--adaptive: a problem stops once the posterior sd of its raw weight w(p) is at most this
    (p(1-p) lies in [0, 0.25])."""
    overwrite: bool = False
    """Delete an earlier run in the directory and start afresh."""

    def __post_init__(self) -> None:
        problems = []
        if self.output == "-":
            problems.append("-o must be a run directory (paced estimate writes several tables)")
        if self.output.endswith(".parquet"):
            problems.append(f"-o {self.output}: name a run directory, not a .parquet file")
        if self.rollout.gpus or self.rollout.shard:
            problems.append("--gpus and --shard are not supported by paced estimate; run the stages separately")
        if self.samples < 1:
            problems.append(f"-k/--samples must be at least 1, not {self.samples}")
        if self.adaptive:
            if self.min_samples < 1:
                problems.append(f"--min-samples must be at least 1, not {self.min_samples}")
            if self.max_samples < self.min_samples:
                problems.append(f"--max-samples ({self.max_samples}) must be at least --min-samples ({self.min_samples})")
            if self.round_samples < 1:
                problems.append(f"--round-samples must be at least 1, not {self.round_samples}")
            if not (math.isfinite(self.tolerance) and self.tolerance > 0):
                problems.append(f"--tolerance must be a number > 0, not {self.tolerance}")
            if self.weight.kernel == "uniform":
                problems.append("--adaptive with --kernel uniform has nothing to estimate (every weight is 1); use a fixed -k")
        if problems:
            raise ConfigError("; ".join(problems))

    def stopping_estimator(self) -> str:
        """The estimator whose posterior sd the adaptive rule stops on: `bayes` (fixed prior) when
        the weights use it, else `eb`. The written weights use `weight.estimator` whatever it is:
        the plug-in estimator has no posterior sd, and eb's weights are never exactly 0."""
        return "bayes" if self.weight.estimator == "bayes" else "eb"

    def policy(self) -> Policy:
        """The stopping rule (a fixed K is one round of K samples and no more)."""
        if not self.adaptive:
            return Policy(min_samples=self.samples, max_samples=self.samples, round_samples=1, tolerance=math.inf)
        return Policy(self.min_samples, self.max_samples, self.round_samples, self.tolerance)

    def settings(self) -> dict:
        """Everything that changes the results; a resumed run must match it exactly."""
        own = {
            "adaptive": self.adaptive,
            "samples": None if self.adaptive else self.samples,
            "min_samples": self.min_samples if self.adaptive else None,
            "max_samples": self.max_samples if self.adaptive else None,
            "round_samples": self.round_samples if self.adaptive else None,
            "tolerance": self.tolerance if self.adaptive else None,
        }
        rollout = {k: v for k, v in self.rollout.settings().items() if k not in ("samples", "first_sample", "shard")}
        weight = {k: v for k, v in asdict(self.weight).items() if k not in ("graded", "output", "plot", "overwrite")}
        return own | {"rollout": rollout, "grade": self.grade.settings(), "weight": weight}
