"""paced estimate: rollout, grade and weight in one command, adaptively."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from paced_curate.cli.app import app, fails_cleanly, print_json
from paced_curate.cli.options import (
    AlphaOption,
    AnswerFieldOption,
    AsJsonOption,
    BatchSizeOption,
    BetaOption,
    ChatTemplateOption,
    DtypeOption,
    EngineOption,
    FloorOption,
    GpuMemoryOption,
    HighOption,
    IdFieldOption,
    KvCacheOption,
    LowOption,
    MaxModelLenOption,
    MaxTokensOption,
    PlotOption,
    ProblemsPerPartOption,
    PromptFieldOption,
    SeedOption,
    SplitOption,
    SystemPromptOption,
    TemperatureOption,
    TemplateOption,
    TensorParallelSizeOption,
    TokenizerOption,
    TopPOption,
    WorkersOption,
)
from paced_curate.report import key_value_table, show
from paced_curate.rollout.prompts import DEFAULT_TEMPLATE


@app.command("estimate")
@fails_cleanly
def estimate_command(
    problems: Annotated[str, typer.Argument(help="Problem set (.jsonl/.json/.csv/.parquet, HF dataset folder).")],
    model: Annotated[str, typer.Option("--model", "-m", help="Local model folder (or served model name for --engine openai).")],
    output: Annotated[str, typer.Option("--output", "-o", help="Run directory: rollouts/, graded/, weights.parquet (resumable).")],
    adaptive: Annotated[bool, typer.Option("--adaptive", help=(
        "Sample in rounds, each problem until its written weight is known as well as fixed K = --match-k would know it "
        "(expected error under the pool's fitted prior)."
    ))] = False,
    samples: Annotated[Optional[int], typer.Option("--samples", "-k", help="Without --adaptive: samples per problem (K). (default 8)")] = None,
    min_samples: Annotated[Optional[int], typer.Option("--min-samples", help="--adaptive: samples of every problem in round 0. (default 4)")] = None,
    max_samples: Annotated[Optional[int], typer.Option("--max-samples", help="--adaptive: most samples of any problem. (default 16)")] = None,
    round_samples: Annotated[Optional[int], typer.Option("--round-samples", help="--adaptive: samples added to each open problem per round. (default 2)")] = None,
    match_k: Annotated[Optional[int], typer.Option("--match-k", help=(
        "--adaptive: the written weights must be expected to be as close to the truth as fixed K = this many samples' plug-in weights. (default 8)"
    ))] = None,
    temperature: TemperatureOption = 1.0,
    top_p: TopPOption = None,
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
    tensor_parallel_size: TensorParallelSizeOption = None,
    gpu_memory_utilization: GpuMemoryOption = None,
    kv_cache_gib: KvCacheOption = None,
    max_model_len: MaxModelLenOption = None,
    dtype: DtypeOption = None,
    batch_size: BatchSizeOption = None,
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
    estimator: Annotated[Optional[str], typer.Option(help=(
        "Estimator of the written weights: empirical (plug-in p = correct/scored, the paper's), bayes, eb or zoib (posterior mean "
        "under a prior with point masses at p = 0 and 1, fitted to the pool). (default zoib with --adaptive, else empirical)"
    ))] = None,
    min_weight: Annotated[Optional[float], typer.Option("--min-weight", help=(
        "Raw weights below this are written as 0 (dropped: no teacher reference, no training). (default 0.03 with --adaptive, else 0)"
    ))] = None,
    prior_a: Annotated[float, typer.Option("--prior-a", help="bayes: Beta prior parameter a.")] = 0.5,
    prior_b: Annotated[float, typer.Option("--prior-b", help="bayes: Beta prior parameter b.")] = 0.5,
    normalize: Annotated[str, typer.Option(help="mean, sum, max or none.")] = "mean",
    floor: FloorOption = 0.0,
    plot: PlotOption = None,
    overwrite: Annotated[bool, typer.Option(help="Delete an earlier run in the directory and start afresh.")] = False,
    as_json: AsJsonOption = False,
) -> None:
    """Rollout -> grade -> weight in one command; --adaptive spends samples where the weights are uncertain.

    Example: paced estimate problems.jsonl --model models/student -o run/ --adaptive
    """
    from paced_curate.estimate import EstimateConfig, run_estimate, summary_rows, teacher_saving_line
    from paced_curate.estimate.config import weight_defaults
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
        kv_cache_gib=kv_cache_gib,
        max_model_len=max_model_len, dtype=dtype, batch_size=batch_size, base_url=base_url, tokenizer=tokenizer,
    )
    grade = GradeConfig(rollouts=output, output=output, grader=grader, timeout=timeout, truncated=truncated, **({} if workers is None else {"workers": workers}))
    estimator, min_weight = weight_defaults(adaptive, estimator, min_weight, floor)
    weight = WeightConfig(
        graded=output, kernel=kernel, alpha=alpha, beta=beta, low=low, high=high, estimator=estimator, min_weight=min_weight,
        prior_a=prior_a, prior_b=prior_b, normalize=normalize, floor=floor, plot=plot,
    )
    config = EstimateConfig(
        output=output, rollout=rollout, grade=grade, weight=weight, adaptive=adaptive, samples=samples,
        min_samples=min_samples, max_samples=max_samples, round_samples=round_samples, match_k=match_k, overwrite=overwrite,
    )
    result = run_estimate(config)
    render_weight_statistics(result.weight_statistics)
    show(key_value_table("estimate", summary_rows(result)))
    say(teacher_saving_line(result))
    if as_json:
        print_json(result.to_dict())
