"""`paced estimate`: rollout -> grade -> weight in one command, with a fixed K or adaptively.

Modules: plan (the adaptive stopping rule, pure functions of counts), config (EstimateConfig)
and runner (run_estimate, the rounds, the run directory).
"""

from paced_curate.estimate.config import EstimateConfig
from paced_curate.estimate.plan import Assessment, Policy, RoundPlan, assess, first_round, next_round, projected_total
from paced_curate.estimate.runner import EstimateResult, run_estimate, summary_rows, teacher_saving_line

__all__ = [
    "Assessment",
    "EstimateConfig",
    "EstimateResult",
    "Policy",
    "RoundPlan",
    "assess",
    "first_round",
    "next_round",
    "projected_total",
    "run_estimate",
    "summary_rows",
    "teacher_saving_line",
]
