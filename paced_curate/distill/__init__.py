"""The `distill` stage: train a student on a PACED-weighted export (`paced distill`).

    from paced_curate.distill import DistillConfig, run_distill
    result = run_distill(DistillConfig(shards="data/", student="models/student", teacher="models/teacher", output="runs/paced"))

Modules: config.py (settings, one per flag), data.py (export rows -> tokens -> micro-batches),
losses.py (per-token KL, chunked, PACED weighting; pure functions), models.py (loading the pair,
hidden states, rkl sampling), checkpoint.py (atomic checkpoints, final student), evaluate.py
(rollout + grade of the student in memory), train.py (the loop, top to bottom).
"""

__all__ = ["DistillConfig", "DistillResult", "render_distill_result", "run_distill"]


def __getattr__(name: str):
    # Imported on first use, so `paced --help` does not import torch.
    if name == "DistillConfig":
        from paced_curate.distill.config import DistillConfig

        return DistillConfig
    if name in __all__:
        from paced_curate.distill import train

        return getattr(train, name)
    raise AttributeError(f"module 'paced_curate.distill' has no attribute {name!r}")
