"""`EstimateConfig`: the settings of `paced estimate`, checked up front.

`paced estimate` runs the rollout, grade and weight stages, so it takes their settings as
three stage configs (`rollout`, `grade`, `weight`) built from the same flags as the stage
commands; their input and output fields are set by `paced estimate` per round (whatever they
hold is ignored). Its own flags are the fields here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from paced_curate.errors import ConfigError
from paced_curate.estimate.plan import Policy
from paced_curate.grade import GradeConfig
from paced_curate.rollout.config import RolloutConfig
from paced_curate.weight import WeightConfig

# Chosen on the simulated student's seeds 0-4 (bench/simulated_student.py, bench/adaptive_prereg.md);
# docs/stages/estimate.md and docs/performance.md quote the report on seeds 5-9.
DEFAULT_K = 8
DEFAULT_MIN_SAMPLES = 4
DEFAULT_MAX_SAMPLES = 16
DEFAULT_ROUND_SAMPLES = 2
DEFAULT_MATCH_K = 8
DEFAULT_ADAPTIVE_ESTIMATOR = "zoib"
DEFAULT_ADAPTIVE_MIN_WEIGHT = 0.03
ADAPTIVE_FLAGS = {"min_samples": "--min-samples", "max_samples": "--max-samples", "round_samples": "--round-samples", "match_k": "--match-k"}


def weight_defaults(adaptive: bool, estimator: str | None, min_weight: float | None, floor: float = 0.0) -> tuple[str, float]:
    """The written weights' estimator and --min-weight when not given: zoib and
    DEFAULT_ADAPTIVE_MIN_WEIGHT with --adaptive (docs/stages/estimate.md, "--adaptive"), else the paper's
    plug-in estimator and no minimum. With --floor, which keeps small weights, no minimum."""
    if min_weight is None:
        min_weight = DEFAULT_ADAPTIVE_MIN_WEIGHT if adaptive and not floor > 0 else 0.0
    return estimator or (DEFAULT_ADAPTIVE_ESTIMATOR if adaptive else "empirical"), min_weight


@dataclass(frozen=True, kw_only=True)
class EstimateConfig:
    """Settings of one `paced estimate` run (see the module docstring for the three stage configs).

    The sampling fields are None when not given; each mode refuses the other mode's fields.
    """

    output: str
    """Run directory: rollouts/, graded/, weights.parquet and estimate.json are written there."""
    rollout: RolloutConfig
    """Rollout settings (problems, model, engine, sampling, prompt); samples and output are set per round."""
    grade: GradeConfig
    """Grade settings (grader, workers, timeout, policies); rollouts and output are set per round."""
    weight: WeightConfig
    """Weight settings (kernel, estimator, --min-weight, normalisation, plot); graded and output are set by estimate."""
    adaptive: bool = False
    """Sample in rounds, each problem until its weight is known as well as fixed K = --match-k would know it."""
    samples: int | None = None
    """Fixed K without --adaptive: samples per problem (default 8)."""
    min_samples: int | None = None
    """--adaptive: samples of every problem in the first round (default 4)."""
    max_samples: int | None = None
    """--adaptive: most samples of any problem (default 16)."""
    round_samples: int | None = None
    """--adaptive: samples added to each open problem per later round (default 2)."""
    match_k: int | None = None
    """--adaptive: the written weights' expected error (under the fitted prior) must be no higher
    than fixed K = this many samples' plug-in weights' (default 8, the paper's K)."""
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
        given = [flag for name, flag in ADAPTIVE_FLAGS.items() if getattr(self, name) is not None]
        if self.adaptive:
            if self.samples is not None:
                problems.append("-k/--samples sets a fixed K and does nothing with --adaptive (which takes --min-samples, --max-samples, --round-samples, --match-k)")
            policy = self.policy()
            # --min-samples 1 is allowed: one sample per problem cannot identify the pool's prior,
            # but the fit's hyperprior keeps it from certainty, so round 0 closes no problem on it
            # (tests/test_estimate_plan.py); the rule decides from the next round on.
            if policy.min_samples < 1:
                problems.append(f"--min-samples must be at least 1, not {policy.min_samples}")
            if policy.max_samples < policy.min_samples:
                problems.append(f"--max-samples ({policy.max_samples}) must be at least --min-samples ({policy.min_samples})")
            if policy.round_samples < 1:
                problems.append(f"--round-samples must be at least 1, not {policy.round_samples}")
            if policy.match_k < 1:
                problems.append(f"--match-k must be at least 1, not {policy.match_k}")
            if self.weight.kernel == "uniform":
                problems.append("--adaptive with --kernel uniform has nothing to estimate (every weight is 1); use a fixed -k")
        else:
            if given:
                problems.append(f"{', '.join(given)} only apply with --adaptive (a fixed K takes -k)")
            if self.k < 1:
                problems.append(f"-k/--samples must be at least 1, not {self.k}")
        if problems:
            raise ConfigError("; ".join(problems))

    @property
    def k(self) -> int:
        """Fixed K (without --adaptive)."""
        return DEFAULT_K if self.samples is None else self.samples

    def policy(self) -> Policy:
        """The stopping rule (a fixed K is one round of K samples and no more)."""
        if not self.adaptive:
            return Policy(min_samples=self.k, max_samples=self.k, round_samples=1, match_k=self.k)

        def pick(value: int | None, default: int) -> int:
            return default if value is None else value

        return Policy(
            min_samples=pick(self.min_samples, DEFAULT_MIN_SAMPLES), max_samples=pick(self.max_samples, DEFAULT_MAX_SAMPLES),
            round_samples=pick(self.round_samples, DEFAULT_ROUND_SAMPLES), match_k=pick(self.match_k, DEFAULT_MATCH_K),
        )

    def settings(self) -> dict:
        """Everything that changes the results; a resumed run must match it exactly."""
        policy = self.policy()
        own = {
            "adaptive": self.adaptive,
            "samples": None if self.adaptive else self.k,
            "min_samples": policy.min_samples if self.adaptive else None,
            "max_samples": policy.max_samples if self.adaptive else None,
            "round_samples": policy.round_samples if self.adaptive else None,
            "match_k": policy.match_k if self.adaptive else None,
            "margin": policy.margin if self.adaptive else None,
            "waste": policy.waste if self.adaptive else None,
        }
        rollout = {k: v for k, v in self.rollout.settings().items() if k not in ("samples", "first_sample", "shard")}
        weight = {k: v for k, v in asdict(self.weight).items() if k not in ("graded", "output", "plot", "overwrite")}
        return own | {"rollout": rollout, "grade": self.grade.settings(), "weight": weight}
