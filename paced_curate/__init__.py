"""paced: turn a problem set into PACED-weighted distillation data.

Stages (each a `run_<stage>(config)` function and a `paced <stage>` command): rollout, grade,
weight, export, distill; `paced inspect` summarises any stage's output.
"""

__version__ = "0.1.0"
