"""The `paced` command line: flags -> config -> `run_<stage>(config)` -> rendered result.

Nothing else lives here. A `PacedError`, or an OS error about a path the user gave (-o under a
file, no permission), becomes one line on stderr and exit code 2 (`--debug` shows the
traceback); any other exception is a bug and keeps its traceback.

    paced --help
"""

from __future__ import annotations

import functools
import json
import logging
import os
from typing import Annotated, Optional

import typer
import typer.core

from paced_curate import __version__
from paced_curate.errors import ConfigError, PacedError
from paced_curate.report import console, key_value_table, show
from paced_curate.rollout.prompts import DEFAULT_TEMPLATE

class OneLineUsageErrors(typer.core.TyperGroup):
    """Typer's command group, but a wrong flag or a missing option is one line on stderr
    (`error: paced rollout: No such option: --foo (see --help)`) and exit code 2, like every
    other bad input, instead of a usage box."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        import sys

        # Typer 0.29 carries its own copy of click (pinned in requirements/cpu.lock); its
        # exceptions are these, not the `click` package's.
        from typer._click import exceptions as click_errors

        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except click_errors.NoArgsIsHelpError as error:
            error.show()  # `paced` alone: the help, as no_args_is_help promises
            sys.exit(error.exit_code)
        except click_errors.UsageError as error:
            where = error.ctx.command_path if error.ctx is not None else "paced"
            message = " ".join(error.format_message().split())
            console().print(f"error: {where}: {message} (see {where} --help)", markup=False, soft_wrap=True)
            sys.exit(2)
        except click_errors.ClickException as error:
            error.show()
            sys.exit(error.exit_code)
        except typer.Abort:
            sys.exit(130)
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    cls=OneLineUsageErrors,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Turn a problem set into PACED-weighted distillation data: rollout -> grade -> weight -> export -> distill.",
)

_debug = False


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"paced {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show library logs (vLLM, transformers).")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for user errors too.")] = False,
) -> None:
    """paced: PACED-weighted distillation data from your problems."""
    global _debug
    _debug = debug
    quiet = not (verbose or debug)
    # vLLM and transformers read these when first imported, which happens later.
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR" if quiet else "INFO")
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")  # stdout carries data only
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error" if quiet else "info")
    if quiet:
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO)


def fails_cleanly(command):
    """Turn a `PacedError` raised by `command` into one line on stderr and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except PacedError as error:
            if _debug:
                raise
            console().print(f"error: {error}", markup=False)
            raise typer.Exit(code=2) from None
        except PATH_ERRORS as error:
            # A path the user gave that cannot be made or written (-o under a file, a folder
            # without permission): bad input, not a bug.
            if _debug or error.filename is None:
                raise
            console().print(f"error: {error.filename}: {error.strerror.lower()}", markup=False)
            raise typer.Exit(code=2) from None

    return wrapper


PATH_ERRORS = (NotADirectoryError, IsADirectoryError, FileExistsError, PermissionError, FileNotFoundError)


def print_json(obj) -> None:
    """Print exactly one JSON document on stdout."""
    typer.echo(json.dumps(obj, default=str))


def render_result(title: str, result: dict) -> None:
    """Print a stage's result as a two-column table on stderr."""
    show(key_value_table(title, list(result.items())))


# Options that several commands share, declared once so their flags and help stay the same.
TemperatureOption = Annotated[float, typer.Option(help="Sampling temperature (0 = greedy).")]
TopPOption = Annotated[float, typer.Option("--top-p", help="Nucleus sampling threshold.")]
MaxTokensOption = Annotated[int, typer.Option("--max-tokens", help="Most tokens generated per sample.")]
SeedOption = Annotated[int, typer.Option(help="Run seed; each sample's seed derives from (seed, problem_id, sample index).")]
EngineOption = Annotated[str, typer.Option(help="vllm, hf (transformers) or openai (OpenAI-compatible server).")]
TemplateOption = Annotated[str, typer.Option(help="Prompt template; {prompt} is replaced by the problem.")]
SystemPromptOption = Annotated[Optional[str], typer.Option("--system-prompt", help="Optional system prompt.")]
ChatTemplateOption = Annotated[str, typer.Option("--chat-template", help="auto, on or off: apply the tokenizer's chat template.")]
IdFieldOption = Annotated[Optional[str], typer.Option("--id-field", help="Column holding problem ids.")]
PromptFieldOption = Annotated[Optional[str], typer.Option("--prompt-field", help="Column holding the prompt.")]
AnswerFieldOption = Annotated[Optional[str], typer.Option("--answer-field", help="Column holding the gold answer.")]
SplitOption = Annotated[Optional[str], typer.Option(help="Split of a Hugging Face dataset folder.")]
ProblemsPerPartOption = Annotated[int, typer.Option("--problems-per-part", help="Problems per part file.")]
OverwriteOption = Annotated[bool, typer.Option(help="Delete an existing output and start afresh.")]
TensorParallelSizeOption = Annotated[int, typer.Option("--tensor-parallel-size", help="vllm: GPUs per engine.")]
MaxModelLenOption = Annotated[Optional[int], typer.Option("--max-model-len", help="Longest prompt + completion.")]
DtypeOption = Annotated[str, typer.Option(help="auto, float32, bfloat16 or float16.")]
BatchSizeOption = Annotated[int, typer.Option("--batch-size", help="hf: sequences per generate call.")]
TokenizerOption = Annotated[Optional[str], typer.Option(help="openai: local tokenizer folder to render prompts.")]
AsJsonOption = Annotated[bool, typer.Option("--json", help="Print the result as one JSON document on stdout.")]
WorkersOption = Annotated[Optional[int], typer.Option(help="Grading processes (default: number of CPUs).")]
AlphaOption = Annotated[float, typer.Option(help="Beta kernel exponent of p (> 0).")]
BetaOption = Annotated[float, typer.Option(help="Beta kernel exponent of 1 - p (> 0).")]
LowOption = Annotated[Optional[float], typer.Option(help="Band kernel: lowest pass rate kept.")]
HighOption = Annotated[Optional[float], typer.Option(help="Band kernel: highest pass rate kept.")]
PlotOption = Annotated[Optional[str], typer.Option(help="Also save the pass-rate and weight histograms as this PNG.")]


@app.command("rollout")
@fails_cleanly
def rollout_command(
    problems: Annotated[str, typer.Argument(help="Problem set (.jsonl/.json/.csv/.parquet, HF dataset folder, or -).")],
    model: Annotated[str, typer.Option("--model", "-m", help="Local model folder (or served model name for --engine openai).")],
    output: Annotated[str, typer.Option("--output", "-o", help="Output directory (resumable), or - for an Arrow stream.")],
    samples: Annotated[int, typer.Option("--samples", "-k", help="Samples per problem (K).")] = 8,
    first_sample: Annotated[int, typer.Option("--first-sample", help="Index of the first sample (to extend a run: samples i..i+K-1).")] = 0,
    temperature: TemperatureOption = 1.0,
    top_p: TopPOption = 1.0,
    max_tokens: MaxTokensOption = 1024,
    seed: SeedOption = 0,
    engine: EngineOption = "vllm",
    template: TemplateOption = DEFAULT_TEMPLATE,
    system_prompt: SystemPromptOption = None,
    chat_template: ChatTemplateOption = "auto",
    id_field: IdFieldOption = None,
    prompt_field: PromptFieldOption = None,
    answer_field: AnswerFieldOption = None,
    split: SplitOption = None,
    problems_per_part: ProblemsPerPartOption = 256,
    shard: Annotated[Optional[str], typer.Option(help="I/N: generate only every N-th problem, starting at I.")] = None,
    gpus: Annotated[Optional[str], typer.Option(help="Comma-separated GPU ids: one shard process per GPU.")] = None,
    ray: Annotated[Optional[str], typer.Option(help="Run on a Ray cluster: local, auto, or its address; one engine per GPU (#17).")] = None,
    overwrite: OverwriteOption = False,
    tensor_parallel_size: TensorParallelSizeOption = 1,
    gpu_memory_utilization: Annotated[
        Optional[float], typer.Option("--gpu-memory-utilization", help="vllm: memory fraction (default 0.9 GPU, 0.2 CPU).")
    ] = None,
    max_model_len: MaxModelLenOption = None,
    dtype: DtypeOption = "auto",
    batch_size: BatchSizeOption = 64,
    max_in_flight: Annotated[int, typer.Option("--max-in-flight", help="vllm: problems in the scheduler at a time.")] = 1024,
    base_url: Annotated[Optional[str], typer.Option("--base-url", help="openai: server URL, e.g. http://127.0.0.1:8000/v1.")] = None,
    api_key: Annotated[Optional[str], typer.Option("--api-key", help="openai: API key (default $OPENAI_API_KEY).")] = None,
    tokenizer: TokenizerOption = None,
    concurrency: Annotated[int, typer.Option(help="openai: requests in flight.")] = 32,
    request_timeout: Annotated[float, typer.Option("--request-timeout", help="openai: seconds per request attempt.")] = 600.0,
    max_retries: Annotated[int, typer.Option("--max-retries", help="openai: retries on 5xx, 429, timeouts.")] = 5,
    generation_config: Annotated[str, typer.Option(
        "--generation-config",
        help="ignore: sample with these flags only; model: take temperature, top_p, top_k, repetition_penalty and "
        "min_new_tokens from the checkpoint's generation_config.json (recorded in provenance).",
    )] = "ignore",
    as_json: AsJsonOption = False,
) -> None:
    """Generate K student samples per problem (vLLM by default), resumable after a crash.

    Example: paced rollout problems.jsonl --model models/student -k 8 -o rollouts/
    """
    from paced_curate.problems import FieldMap
    from paced_curate.rollout import RolloutConfig, run_rollout
    from paced_curate.rollout.prompts import PromptFormat

    if as_json and output == "-":
        raise ConfigError("--json and -o - both write to stdout; choose one")
    config = RolloutConfig(
        problems=problems, model=model, output=output, samples=samples, first_sample=first_sample, temperature=temperature, top_p=top_p,
        max_tokens=max_tokens, seed=seed, engine=engine,
        prompt_format=PromptFormat(template=template, system_prompt=system_prompt, chat_template=chat_template),
        fields=FieldMap(id_field=id_field, prompt_field=prompt_field, answer_field=answer_field, split=split),
        problems_per_part=problems_per_part, shard=shard, gpus=tuple(g.strip() for g in gpus.split(",")) if gpus else (), ray=ray,
        overwrite=overwrite, tensor_parallel_size=tensor_parallel_size, gpu_memory_utilization=gpu_memory_utilization,
        max_model_len=max_model_len, dtype=dtype, batch_size=batch_size, max_in_flight=max_in_flight, base_url=base_url, api_key=api_key,
        tokenizer=tokenizer, concurrency=concurrency, request_timeout=request_timeout, max_retries=max_retries,
        generation_config=generation_config,
    )
    result = run_rollout(config)
    render_result("rollout", result.to_dict())
    if as_json:
        print_json(result.to_dict())

@app.command("grade")
@fails_cleanly
def grade_command(
    rollouts: Annotated[str, typer.Argument(help="Generations: paced rollouts, any tool's .jsonl/.json/.csv/.parquet, a folder, or - for a pipe.")],
    output: Annotated[str, typer.Option("--output", "-o", help="Output folder (resumable), NAME.parquet (one file), or - for an Arrow stream.")],
    grader: Annotated[str, typer.Option(help="math, exact, numeric, choice, or module:function for your own grader.")] = "math",
    workers: WorkersOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds per sample; past it the worker is killed and the verdict is 'timeout'.")] = 5.0,
    truncated: Annotated[str, typer.Option(help="Truncated samples (finish_reason=length): wrong (count as failures) or exclude.")] = "wrong",
    errors: Annotated[str, typer.Option(help="Grading failures (timeout, error): exclude (from the pass rate) or wrong.")] = "exclude",
    tolerance: Annotated[Optional[float], typer.Option(help="numeric grader: absolute or relative tolerance (default 1e-6).")] = None,
    audit: Annotated[Optional[str], typer.Option(help="Grade with this second grader too and report the disagreement.")] = None,
    reasoning_tags: Annotated[
        Optional[list[str]],
        typer.Option(
            "--reasoning-tags",
            help="Reasoning-trace tags OPEN,CLOSE (repeat for several pairs; 'none' turns it off): only the text after the "
            "last closing tag is graded; an unclosed trace is no_answer. Default: <think>,</think> and "
            "<|begin_of_thought|>,<|end_of_thought|>.",
        ),
    ] = None,
    answer_format: Annotated[
        str, typer.Option("--answer-format", help="any: last box, else 'answer is ...', else the grader's fallback; boxed: the last \\boxed{} only.")
    ] = "any",
    rows_per_part: Annotated[int, typer.Option("--rows-per-part", help="Rows per part file of the output directory.")] = 20000,
    overwrite: OverwriteOption = False,
    problems: Annotated[Optional[str], typer.Option("--problems", help="Problem set to join gold answers from, by id.")] = None,
    id_field: IdFieldOption = None,
    completion_field: Annotated[Optional[str], typer.Option("--completion-field", help="Column holding the completion(s).")] = None,
    answer_field: AnswerFieldOption = None,
    sample_index_field: Annotated[
        Optional[str], typer.Option("--sample-index-field", help="Column holding the sample index (default: row order per problem).")
    ] = None,
    ray: Annotated[Optional[str], typer.Option(help="Grade as Ray CPU tasks: local, auto, or a cluster address (#17).")] = None,
    as_json: AsJsonOption = False,
) -> None:
    """Give every sample a verdict (math-verify by default) with a hard timeout per sample.

    Example: paced grade rollouts/ -o graded/ --grader math --workers 4 --timeout 5
    """
    from paced_curate.grade import GradeConfig, run_grade
    from paced_curate.grade.metrics import render_grade_summary
    from paced_curate.samples import SampleFields

    if as_json and output == "-":
        raise ConfigError("--json and -o - both write to stdout; choose one")
    config = GradeConfig(
        rollouts=rollouts, output=output, grader=grader, timeout=timeout, truncated=truncated, errors=errors,
        tolerance=tolerance, audit=audit, rows_per_part=rows_per_part, overwrite=overwrite, answer_format=answer_format,
        fields=SampleFields(
            id_field=id_field, completion_field=completion_field, answer_field=answer_field, sample_index_field=sample_index_field, problems=problems,
        ),
        ray=ray,
        **({} if workers is None else {"workers": workers}),
        **({} if reasoning_tags is None else {"reasoning_tags": tuple(reasoning_tags)}),
    )
    result = run_grade(config)
    render_grade_summary(result.to_dict())
    if as_json:
        print_json(result.to_dict())


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
    estimator: Annotated[str, typer.Option(help="empirical: plug in p = correct/scored; bayes: posterior mean of the kernel; eb: same, prior fitted to the pool.")] = "empirical",
    prior_a: Annotated[float, typer.Option("--prior-a", help="bayes: Beta prior parameter a (Jeffreys 0.5).")] = 0.5,
    prior_b: Annotated[float, typer.Option("--prior-b", help="bayes: Beta prior parameter b (Jeffreys 0.5).")] = 0.5,
    interval: Annotated[str, typer.Option(help="Confidence interval for p in ci_low/ci_high: jeffreys or wilson.")] = "jeffreys",
    confidence: Annotated[float, typer.Option(help="Coverage of that interval.")] = 0.95,
    normalize: Annotated[str, typer.Option(help="mean (mean weight 1), sum (sum 1), max (max 1) or none (raw kernel).")] = "mean",
    plot: PlotOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the statistics as one JSON document on stdout.")] = False,
) -> None:
    """Weight each problem by its pass rate p: w(p) = p^alpha (1-p)^beta, normalised to mean 1.

    Example: paced weight graded/ -o weights.parquet --estimator bayes --plot weights.png
    """
    from paced_curate.errors import ConfigError
    from paced_curate.report import say
    from paced_curate.weight import WeightConfig, render_weight_statistics, run_weight

    if as_json and output == "-":
        raise ConfigError("--json and -o - both write to stdout; choose one")
    config = WeightConfig(
        graded=graded, output=output, kernel=kernel, alpha=alpha, beta=beta, low=low, high=high, estimator=estimator,
        prior_a=prior_a, prior_b=prior_b, interval=interval, confidence=confidence, normalize=normalize, plot=plot,
    )
    result = run_weight(config)
    for warning in result.warnings:
        say(f"warning: {warning}")
    render_weight_statistics(result.statistics)
    written = "stdout" if output == "-" else output
    say(f"wrote {result.table.num_rows:,} problem weights to {written}" + (f" and histograms to {plot}" if plot else ""))
    if as_json:
        print_json(result.statistics)

@app.command("estimate")
@fails_cleanly
def estimate_command(
    problems: Annotated[str, typer.Argument(help="Problem set (.jsonl/.json/.csv/.parquet, HF dataset folder).")],
    model: Annotated[str, typer.Option("--model", "-m", help="Local model folder (or served model name for --engine openai).")],
    output: Annotated[str, typer.Option("--output", "-o", help="Run directory: rollouts/, graded/, weights.parquet (resumable).")],
    adaptive: Annotated[bool, typer.Option("--adaptive", help="Sample in rounds until each weight's posterior sd is below --tolerance.")] = False,
    samples: Annotated[int, typer.Option("--samples", "-k", help="Without --adaptive: samples per problem (K).")] = 8,
    min_samples: Annotated[int, typer.Option("--min-samples", help="--adaptive: samples of every problem in round 0.")] = 4,
    max_samples: Annotated[int, typer.Option("--max-samples", help="--adaptive: most samples of any problem.")] = 16,
    round_samples: Annotated[int, typer.Option("--round-samples", help="--adaptive: samples added to each open problem per round.")] = 4,
    tolerance: Annotated[float, typer.Option("--tolerance", help="--adaptive: stop a problem once the posterior sd of its raw weight is at most this.")] = 0.06,
    temperature: TemperatureOption = 1.0,
    top_p: TopPOption = 1.0,
    max_tokens: MaxTokensOption = 1024,
    seed: SeedOption = 0,
    engine: EngineOption = "vllm",
    template: TemplateOption = DEFAULT_TEMPLATE,
    system_prompt: SystemPromptOption = None,
    chat_template: ChatTemplateOption = "auto",
    id_field: IdFieldOption = None,
    prompt_field: PromptFieldOption = None,
    answer_field: AnswerFieldOption = None,
    split: SplitOption = None,
    problems_per_part: ProblemsPerPartOption = 256,
    tensor_parallel_size: TensorParallelSizeOption = 1,
    gpu_memory_utilization: Annotated[Optional[float], typer.Option("--gpu-memory-utilization", help="vllm: memory fraction.")] = None,
    max_model_len: MaxModelLenOption = None,
    dtype: DtypeOption = "auto",
    batch_size: BatchSizeOption = 64,
    base_url: Annotated[Optional[str], typer.Option("--base-url", help="openai: server URL.")] = None,
    tokenizer: TokenizerOption = None,
    grader: Annotated[str, typer.Option(help="math, exact, numeric, choice, or module:function.")] = "math",
    workers: WorkersOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds per sample for grading.")] = 5.0,
    truncated: Annotated[str, typer.Option(help="Truncated samples: wrong or exclude.")] = "wrong",
    kernel: Annotated[str, typer.Option(help="beta, uniform or band (as paced weight).")] = "beta",
    alpha: AlphaOption = 1.0,
    beta: BetaOption = 1.0,
    low: LowOption = None,
    high: HighOption = None,
    estimator: Annotated[str, typer.Option(help=(
        "Estimator of the written weights: empirical (plug-in p = correct/scored, the paper's), bayes or eb. --adaptive stops on "
        "the eb posterior sd (bayes's with --estimator bayes) whichever is chosen; eb and bayes weights are never exactly 0."
    ))] = "empirical",
    prior_a: Annotated[float, typer.Option("--prior-a", help="bayes: Beta prior parameter a.")] = 0.5,
    prior_b: Annotated[float, typer.Option("--prior-b", help="bayes: Beta prior parameter b.")] = 0.5,
    normalize: Annotated[str, typer.Option(help="mean, sum, max or none.")] = "mean",
    plot: PlotOption = None,
    overwrite: Annotated[bool, typer.Option(help="Delete an earlier run in the directory and start afresh.")] = False,
    as_json: AsJsonOption = False,
) -> None:
    """Rollout -> grade -> weight in one command; --adaptive spends samples where the weights are uncertain.

    Example: paced estimate problems.jsonl --model models/student -o run/ --adaptive
    """
    from paced_curate.estimate import EstimateConfig, run_estimate, summary_rows, teacher_saving_line
    from paced_curate.grade import GradeConfig
    from paced_curate.problems import FieldMap
    from paced_curate.report import say
    from paced_curate.rollout import RolloutConfig
    from paced_curate.rollout.prompts import PromptFormat
    from paced_curate.weight import WeightConfig, render_weight_statistics

    rollout = RolloutConfig(
        problems=problems, model=model, output=output, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed,
        engine=engine, prompt_format=PromptFormat(template=template, system_prompt=system_prompt, chat_template=chat_template),
        fields=FieldMap(id_field=id_field, prompt_field=prompt_field, answer_field=answer_field, split=split),
        problems_per_part=problems_per_part, tensor_parallel_size=tensor_parallel_size, gpu_memory_utilization=gpu_memory_utilization,
        max_model_len=max_model_len, dtype=dtype, batch_size=batch_size, base_url=base_url, tokenizer=tokenizer,
    )
    grade = GradeConfig(rollouts=output, output=output, grader=grader, timeout=timeout, truncated=truncated, **({} if workers is None else {"workers": workers}))
    weight = WeightConfig(
        graded=output, kernel=kernel, alpha=alpha, beta=beta, low=low, high=high,
        estimator=estimator, prior_a=prior_a, prior_b=prior_b, normalize=normalize, plot=plot,
    )
    config = EstimateConfig(
        output=output, rollout=rollout, grade=grade, weight=weight, adaptive=adaptive, samples=samples,
        min_samples=min_samples, max_samples=max_samples, round_samples=round_samples, tolerance=tolerance, overwrite=overwrite,
    )
    result = run_estimate(config)
    render_weight_statistics(result.weight_statistics)
    show(key_value_table("estimate", summary_rows(result)))
    say(teacher_saving_line(result))
    if as_json:
        print_json(result.to_dict())


@app.command("export")
@fails_cleanly
def export_command(
    problems: Annotated[str, typer.Argument(help="The problem set the weights were computed for (file, dataset folder or -).")],
    weights: Annotated[str, typer.Argument(help="The weights from 'paced weight'.")],
    output: Annotated[
        str, typer.Option("--output", "-o", help="Export folder (train/, val/) or NAME.parquet to write; an earlier export there is replaced.")
    ],
    references: Annotated[
        Optional[str], typer.Option("--references", help="Teacher rollouts graded with 'paced grade': correct ones become references.")
    ] = None,
    refs_per_problem: Annotated[int, typer.Option("--refs-per-problem", help="Correct references per problem (one row each).")] = 1,
    format: Annotated[str, typer.Option("--format", help="Row layout: native, trl or verl.")] = "native",
    drop_zero: Annotated[bool, typer.Option("--drop-zero/--keep-zero", help="Leave out problems whose weight is 0.")] = True,
    rows_per_shard: Annotated[int, typer.Option("--rows-per-shard", help="Rows per Parquet file.")] = 50_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the shuffle and the train/val split.")] = 0,
    val_fraction: Annotated[float, typer.Option("--val-fraction", help="Share of problems held out in val/.")] = 0.0,
    missing: Annotated[str, typer.Option("--missing", help="Problems without a weight: drop or error.")] = "drop",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an output folder that is not a paced export (deletes its contents).")
    ] = False,
    id_field: Annotated[Optional[str], typer.Option("--id-field", help="Problem-set column with the ids.")] = None,
    prompt_field: Annotated[Optional[str], typer.Option("--prompt-field", help="Problem-set column with the prompt.")] = None,
    answer_field: Annotated[Optional[str], typer.Option("--answer-field", help="Problem-set column with the gold answer.")] = None,
    split: Annotated[Optional[str], typer.Option("--split", help="Split of a Hugging Face dataset folder.")] = None,
    weights_as: Annotated[
        str, typer.Option("--weights-as", help="column: a weight per row; copies: each problem repeated in proportion to its weight.")
    ] = "column",
    copies: Annotated[Optional[int], typer.Option("--copies", help="With --weights-as copies: train rows (default: its problems).")] = None,
    normalize: Annotated[str, typer.Option("--normalize", help="rows: row weights average 1 over the train rows; none: as weighed.")] = "rows",
    data_source: Annotated[
        str, typer.Option("--data-source", help="verl's data_source (default lighteval/MATH: verl's built-in boxed-answer reward).")
    ] = "lighteval/MATH",
    as_json: AsJsonOption = False,
) -> None:
    """Write the weighted dataset: shards with a weight per example, a manifest and a dataset card.

    Example: paced export problems.jsonl weights.parquet -o data/ --references teacher_graded/ --val-fraction 0.05
    """
    from paced_curate.export import ExportConfig, render_export_result, run_export

    config = ExportConfig(
        problems=problems,
        weights=weights,
        output=output,
        references=references,
        refs_per_problem=refs_per_problem,
        format=format,
        drop_zero=drop_zero,
        rows_per_shard=rows_per_shard,
        seed=seed,
        val_fraction=val_fraction,
        missing=missing,
        overwrite=overwrite,
        id_field=id_field,
        prompt_field=prompt_field,
        answer_field=answer_field,
        split=split,
        weights_as=weights_as,
        copies=copies,
        normalize=normalize,
        data_source=data_source,
    )
    result = run_export(config)
    render_export_result(result)
    if as_json:
        print_json(result.as_dict())

@app.command("distill")
@fails_cleanly
def distill_command(
    shards: Annotated[str, typer.Argument(help="Export folder from 'paced export --format native' (its train split).")],
    student: Annotated[str, typer.Option("--student", help="Local folder of the student model (trained).")],
    teacher: Annotated[str, typer.Option("--teacher", help="Local folder of the teacher model (same tokenizer vocabulary).")],
    output: Annotated[str, typer.Option("--output", "-o", help="Run directory: metrics.jsonl, checkpoints/, final/.")],
    loss: Annotated[str, typer.Option(help="fkl (on the references), rkl (on student samples), fkl-then-rkl, or akl (adaptive fkl/rkl mix per token, on the references).")] = "fkl",
    switch_at: Annotated[float, typer.Option("--switch-at", help="fkl-then-rkl: fraction of the steps trained with fkl (floor; at least one step of each stage).")] = 0.5,
    weights: Annotated[str, typer.Option(help="on: scale each problem's loss by its PACED weight; off: unweighted baseline.")] = "on",
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", help="Optimizer steps (or give --epochs; default 1 epoch).")] = None,
    epochs: Annotated[Optional[float], typer.Option(help="Passes over the examples (may be fractional).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Examples per optimizer step.")] = 32,
    micro_batch_size: Annotated[Optional[int], typer.Option("--micro-batch-size", help="Examples per forward pass (gradient accumulation).")] = None,
    lr: Annotated[float, typer.Option(help="Peak AdamW learning rate.")] = 1e-5,
    min_lr: Annotated[Optional[float], typer.Option("--min-lr", help="Learning rate at the end of the cosine (default lr/10).")] = None,
    warmup_steps: Annotated[int, typer.Option("--warmup-steps", help="Linear warm-up steps.")] = 10,
    weight_decay: Annotated[float, typer.Option("--weight-decay", help="AdamW weight decay (matrices only).")] = 0.0,
    grad_clip: Annotated[float, typer.Option("--grad-clip", help="Clip the gradient norm to this (0: off).")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the data order, rkl samples and evaluation samples.")] = 0,
    max_length: Annotated[Optional[int], typer.Option("--max-length", help="Longest prompt + response in tokens (default: the model's).")] = None,
    chunk_size: Annotated[int, typer.Option("--chunk-size", help="Response positions whose logits are computed at a time.")] = 1024,
    gradient_checkpointing: Annotated[bool, typer.Option("--gradient-checkpointing", help="Recompute the student's activations in backward.")] = False,
    rkl_max_tokens: Annotated[int, typer.Option("--rkl-max-tokens", help="rkl: most tokens sampled per prompt.")] = 512,
    rkl_temperature: Annotated[float, typer.Option(
        "--rkl-temperature",
        help="rkl: sampling temperature. Only 1 is on-policy: the KL is against the student's temperature-1 distribution, "
        "so other values train on samples from a sharper (<1) or flatter (>1) distribution than the one the KL uses.",
    )] = 1.0,
    template: Annotated[str, typer.Option(help="Prompt template; {prompt} is replaced by the problem (as for rollout).")] = DEFAULT_TEMPLATE,
    system_prompt: Annotated[Optional[str], typer.Option("--system-prompt", help="Optional system prompt (as for rollout).")] = None,
    chat_template: ChatTemplateOption = "auto",
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", help="Write a checkpoint every N steps (0: none).")] = 200,
    keep_checkpoints: Annotated[int, typer.Option("--keep-checkpoints", help="Keep the newest N checkpoints (0: all).")] = 2,
    eval_problems: Annotated[Optional[str], typer.Option("--eval", help="Held-out problems: sample + grade the student on them.")] = None,
    eval_every: Annotated[int, typer.Option("--eval-every", help="Evaluate every N steps (and before and after training).")] = 100,
    eval_samples: Annotated[int, typer.Option("--eval-samples", help="k samples per held-out problem; pass@1 averages them.")] = 4,
    eval_max_tokens: Annotated[int, typer.Option("--eval-max-tokens", help="Most tokens per evaluation sample.")] = 512,
    eval_temperature: Annotated[float, typer.Option("--eval-temperature", help="Evaluation sampling temperature.")] = 1.0,
    eval_batch_size: Annotated[int, typer.Option("--eval-batch-size", help="Sequences per generate call when evaluating.")] = 64,
    eval_workers: Annotated[Optional[int], typer.Option("--eval-workers", help="Grading processes (default: number of CPUs).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda (bf16 autocast on CUDA).")] = "auto",
    log_every: Annotated[int, typer.Option("--log-every", help="Print the log line every N steps.")] = 10,
    resume: Annotated[bool, typer.Option(help="Continue from the newest checkpoint in the run directory.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Delete an earlier run in the run directory and start afresh.")] = False,
    as_json: AsJsonOption = False,
) -> None:
    """Distill the teacher into the student on PACED-weighted data (forward KL, reverse KL, or both).

    Example: paced distill data/ --student models/student --teacher models/teacher -o runs/paced --loss fkl-then-rkl
    """
    from paced_curate.distill import DistillConfig, render_distill_result, run_distill

    config = DistillConfig(
        shards=shards, student=student, teacher=teacher, output=output, loss=loss, switch_at=switch_at, weights=weights,
        max_steps=max_steps, epochs=epochs, batch_size=batch_size, micro_batch_size=micro_batch_size, lr=lr, min_lr=min_lr,
        warmup_steps=warmup_steps, weight_decay=weight_decay, grad_clip=grad_clip, seed=seed, max_length=max_length,
        chunk_size=chunk_size, gradient_checkpointing=gradient_checkpointing, rkl_max_tokens=rkl_max_tokens,
        rkl_temperature=rkl_temperature, template=template, system_prompt=system_prompt, chat_template=chat_template,
        checkpoint_every=checkpoint_every, keep_checkpoints=keep_checkpoints, eval_problems=eval_problems,
        eval_every=eval_every, eval_samples=eval_samples, eval_max_tokens=eval_max_tokens, eval_temperature=eval_temperature,
        eval_batch_size=eval_batch_size, eval_workers=eval_workers, device=device, log_every=log_every, resume=resume,
        overwrite=overwrite,
    )
    result = run_distill(config)
    render_distill_result(result)
    if as_json and os.environ.get("RANK", "0") == "0":  # (#17) under torchrun, one result: rank 0's
        print_json(result.as_dict())


@app.command("demo")
@fails_cleanly
def demo_command(
    workdir: Annotated[str, typer.Option("--workdir", help="Folder for every artifact of the demo.")] = "demo-work",
    fast: Annotated[bool, typer.Option("--fast", help="A smaller, quicker version (about 3 minutes with a cold cache).")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the world: problem sets and rollouts.")] = 0,
    seeds: Annotated[Optional[int], typer.Option(help="Training seeds per method (default 3; 1 with --fast).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result table as one JSON document on stdout.")] = False,
) -> None:
    """Run the whole pipeline on the built-in world (rollout, grade, weight, export, distill, evaluate) and compare methods.

    Example: paced demo --workdir demo-work
    """
    from dataclasses import replace

    from paced_curate.demo import DemoConfig, run_demo

    config = DemoConfig.small(workdir, seed) if fast else DemoConfig(workdir=workdir, seed=seed)
    if seeds is not None:
        if seeds < 1:
            raise ConfigError(f"--seeds must be at least 1, not {seeds}")
        config = replace(config, seeds=seeds)
    result = run_demo(config)
    if as_json:
        print_json(result.to_dict())


@app.command("inspect")
@fails_cleanly
def inspect_command(
    path: Annotated[str, typer.Argument(help="A stage output: file, directory, or - for a pipe.")],
    group_by: Annotated[
        Optional[str], typer.Option("--group-by", help="Graded output: evaluation numbers per value of this column (one value per problem; a problem whose rows differ is an error).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON document on stdout.")] = False,
) -> None:
    """Summarise any stage's output: rows, schema, provenance and the stage's own tables.

    Example: paced inspect graded/ --group-by difficulty
    """
    from paced_curate.describe import InspectConfig, render_inspect, run_inspect

    report = run_inspect(InspectConfig(path=path, group_by=group_by))
    if as_json:
        print_json(report)
    else:
        render_inspect(report)


def main() -> None:
    """Entry point of the `paced` console script."""
    app()
