"""The `rollout` stage: K student samples per problem (`paced rollout`).

    from paced_curate.rollout import RolloutConfig, run_rollout
    result = run_rollout(RolloutConfig(problems="math.jsonl", model="models/student", output="rollouts/"))

Modules: config.py (settings and up-front checks), prompts.py (template and chat template),
requests.py (what engines take and give; seeds), runner.py (ordering, resume, parts),
engines.py (start and cache engines), vllm_engine.py, hf_engine.py, openai_engine.py,
launch.py (one shard process per GPU), ray_rollout.py (engines as Ray Data actors), dispatch.py
(`run_rollout`: picks one of the three), summary.py (numbers about a rollouts table).
"""

__all__ = ["RolloutConfig", "RolloutResult", "rollout_table", "run_rollout"]


def __getattr__(name: str):
    # Imported on first use, so `paced --help` and the CLI's option defaults stay light.
    if name == "RolloutConfig":
        from paced_curate.rollout.config import RolloutConfig

        return RolloutConfig
    if name == "run_rollout":  # (#17) the dispatcher: local, --gpus or --ray
        from paced_curate.rollout.dispatch import run_rollout

        return run_rollout
    if name in __all__:
        from paced_curate.rollout import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'paced_curate.rollout' has no attribute {name!r}")
