"""Flags given on the command line that would do nothing in the chosen mode, refused in one line (#24).

`paced weight --kernel band --alpha 2` used to train on band weights while the user believed alpha
shaped them. Each rule below names a parameter, the mode in which it has no effect (a test on the
command's parameter values) and why; a rule applies only when the flag was given (click records
where each value came from, so a default never counts). `fails_cleanly` checks the rules before a
command does any work. `paced rollout` and the rollout flags of `paced estimate` are checked in
`RolloutConfig` itself, so library callers get the same refusals there.
"""

from __future__ import annotations

from collections.abc import Callable

from paced_curate.errors import ConfigError

Rule = tuple[str, Callable[[dict], bool], Callable[[dict], str]]
"""(parameter name, does it do nothing with these values?, the mode it was given in, for the message)."""


def _kernel_not(kind: str) -> Callable[[dict], bool]:
    return lambda values: values["kernel"] != kind


def _estimator(values: dict) -> str:
    """The estimator in force: paced estimate's default depends on --adaptive (estimate/config.py)."""
    if values["estimator"] is not None:
        return values["estimator"]
    from paced_curate.estimate.config import weight_defaults

    return weight_defaults(bool(values.get("adaptive")), None, values.get("min_weight"), values.get("floor") or 0.0)[0]


WEIGHT_RULES: list[Rule] = [
    ("alpha", _kernel_not("beta"), lambda v: f"with --kernel {v['kernel']} (it is an exponent of --kernel beta)"),
    ("beta", _kernel_not("beta"), lambda v: f"with --kernel {v['kernel']} (it is an exponent of --kernel beta)"),
    ("low", _kernel_not("band"), lambda v: f"with --kernel {v['kernel']} (it bounds --kernel band)"),
    ("high", _kernel_not("band"), lambda v: f"with --kernel {v['kernel']} (it bounds --kernel band)"),
    ("prior_a", lambda v: _estimator(v) != "bayes", lambda v: f"with --estimator {_estimator(v)} (it is the prior of --estimator bayes)"),
    ("prior_b", lambda v: _estimator(v) != "bayes", lambda v: f"with --estimator {_estimator(v)} (it is the prior of --estimator bayes)"),
]
RKL = ("rkl", "fkl-then-rkl")

RULES: dict[str, list[Rule]] = {
    "weight": WEIGHT_RULES,
    "estimate": WEIGHT_RULES,
    "grade": [
        ("tolerance", lambda v: "numeric" not in (v["grader"], v["audit"]), lambda v: f"with --grader {v['grader']} (it is for the numeric grader)"),
        ("workers", lambda v: v["ray"] is not None, lambda v: "with --ray (each Ray task grades in a process of its own)"),
        ("overwrite", lambda v: v["output"] == "-", lambda v: "with -o - (a stream has no earlier output)"),
    ],
    "export": [
        ("refs_per_problem", lambda v: v["references"] is None, lambda v: "without --references"),
        ("references", lambda v: v["format"] == "verl", lambda v: "with --format verl (verl rows carry no completion)"),
        ("data_source", lambda v: v["format"] != "verl", lambda v: f"with --format {v['format']} (it is verl's data_source column)"),
    ],
    "distill": [
        ("switch_at", lambda v: v["loss"] != "fkl-then-rkl", lambda v: f"with --loss {v['loss']} (it is for --loss fkl-then-rkl)"),
        ("rkl_max_tokens", lambda v: v["loss"] not in RKL, lambda v: f"with --loss {v['loss']} (no stage samples from the student)"),
        ("rkl_temperature", lambda v: v["loss"] not in RKL, lambda v: f"with --loss {v['loss']} (no stage samples from the student)"),
        # --eval-every also sets how often an online run records its frontier (#25)
        ("eval_every", lambda v: v["eval_problems"] is None and v.get("reweight") != "online", lambda v: "without --eval or --reweight online"),
        *[
            (name, lambda v: v["eval_problems"] is None, lambda v: "without --eval")
            for name in ("eval_samples", "eval_max_tokens", "eval_temperature", "eval_batch_size", "eval_workers")
        ],
        ("keep_checkpoints", lambda v: v["checkpoint_every"] == 0, lambda v: "with --checkpoint-every 0 (no checkpoints are written)"),
    ],
}
"""Per command: the flags that do nothing in some mode."""


def refuse_unused_flags(values: dict) -> None:
    """Refuse, in one line naming each, the flags of the running command that do nothing with `values`.

    Args:
        values: the command's parameter values, by parameter name.

    Raises:
        ConfigError: at least one rule of the command applies to a flag given on the command line.
    """
    from typer._click.core import ParameterSource  # Typer 0.29 carries its own click (see cli/app.py)
    from typer._click.globals import get_current_context

    context = get_current_context(silent=True)
    if context is None:  # called as a function, not from the command line
        return
    given = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    problems = [
        f"{_flag(context, name)} does nothing {why(values)}"
        for name, applies, why in RULES.get(context.info_name, [])
        if context.get_parameter_source(name) in given and applies(values)
    ]
    if problems:
        raise ConfigError("; ".join(problems))


def _flag(context, name: str) -> str:
    """The long option of parameter `name`, as the user typed it."""
    parameter = next(p for p in context.command.params if p.name == name)
    return max(parameter.opts, key=len)
