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
    adaptive: Annotated[bool, typer.Option("--adaptive", help="Sample in rounds until each weight's posterior sd is below --tolerance.")] = False,
    samples: Annotated[int, typer.Option("--samples", "-k", help="Without --adaptive: samples per problem (K).")] = 8,
    min_samples: Annotated[int, typer.Option("--min-samples", help="--adaptive: samples of every problem in round 0.")] = 4,
    max_samples: Annotated[int, typer.Option("--max-samples", help="--adaptive: most samples of any problem.")] = 16,
    round_samples: Annotated[int, typer.Option("--round-samples", help="--adaptive: samples added to each open problem per round.")] = 4,
    tolerance: Annotated[float, typer.Option("--tolerance", help="--adaptive: stop a problem once the posterior sd of its raw weight is at most this.")] = 0.06,
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
    estimator: Annotated[str, typer.Option(help=(
        "Estimator of the written weights: empirical (plug-in p = correct/scored, the paper's), bayes or eb. --adaptive stops on "
        "the eb posterior sd (bayes's with --estimator bayes) whichever is chosen; eb and bayes weights are never exactly 0."
    ))] = "empirical",
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
    weight = WeightConfig(
        graded=output, kernel=kernel, alpha=alpha, beta=beta, low=low, high=high,
        estimator=estimator, prior_a=prior_a, prior_b=prior_b, normalize=normalize, floor=floor, plot=plot,
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
