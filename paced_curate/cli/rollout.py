"""paced rollout: K student samples per problem."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from paced_curate.cli.app import app, fails_cleanly, print_json, render_result
from paced_curate.cli.options import (
    AnswerFieldOption,
    AsJsonOption,
    BatchSizeOption,
    ChatTemplateOption,
    DtypeOption,
    EngineOption,
    GpuMemoryOption,
    IdFieldOption,
    KvCacheOption,
    MaxModelLenOption,
    MaxTokensOption,
    OverwriteOption,
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
)
from paced_curate.errors import ConfigError
from paced_curate.rollout.prompts import DEFAULT_TEMPLATE


@app.command("rollout")
@fails_cleanly
def rollout_command(
    problems: Annotated[str, typer.Argument(help="Problem set (.jsonl/.json/.csv/.parquet, HF dataset folder, or -).")],
    model: Annotated[str, typer.Option("--model", "-m", help="Local model folder (or served model name for --engine openai).")],
    output: Annotated[str, typer.Option("--output", "-o", help="Output directory (resumable), or - for an Arrow stream.")],
    samples: Annotated[int, typer.Option("--samples", "-k", help="Samples per problem (K).")] = 8,
    first_sample: Annotated[int, typer.Option("--first-sample", help="Index of the first sample (to extend a run: samples i..i+K-1).")] = 0,
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
    shard: Annotated[Optional[str], typer.Option(help="I/N: generate only every N-th problem, starting at I.")] = None,
    gpus: Annotated[Optional[str], typer.Option(help="Comma-separated GPU ids: one shard process per GPU.")] = None,
    ray: Annotated[Optional[str], typer.Option(help="Run on a Ray cluster: local, auto, or its address; one engine per GPU (#17).")] = None,
    overwrite: OverwriteOption = False,
    tensor_parallel_size: TensorParallelSizeOption = None,
    gpu_memory_utilization: GpuMemoryOption = None,
    kv_cache_gib: KvCacheOption = None,
    max_model_len: MaxModelLenOption = None,
    dtype: DtypeOption = None,
    batch_size: BatchSizeOption = None,
    max_in_flight: Annotated[Optional[int], typer.Option("--max-in-flight", help="vllm: problems in the scheduler at a time (default 1024).")] = None,
    base_url: Annotated[Optional[str], typer.Option("--base-url", help="openai: server URL, e.g. http://127.0.0.1:8000/v1.")] = None,
    api_key: Annotated[Optional[str], typer.Option("--api-key", help="openai: API key (default $OPENAI_API_KEY).")] = None,
    tokenizer: TokenizerOption = None,
    concurrency: Annotated[Optional[int], typer.Option(help="openai: requests in flight (default 32).")] = None,
    request_timeout: Annotated[Optional[float], typer.Option("--request-timeout", help="openai: seconds per request attempt (default 600).")] = None,
    max_retries: Annotated[Optional[int], typer.Option("--max-retries", help="openai: retries on 5xx, 429, timeouts (default 5).")] = None,
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
        overwrite=overwrite, tensor_parallel_size=tensor_parallel_size, gpu_memory_utilization=gpu_memory_utilization, kv_cache_gib=kv_cache_gib,
        max_model_len=max_model_len, dtype=dtype, batch_size=batch_size, max_in_flight=max_in_flight, base_url=base_url, api_key=api_key,
        tokenizer=tokenizer, concurrency=concurrency, request_timeout=request_timeout, max_retries=max_retries,
        generation_config=generation_config,
    )
    result = run_rollout(config)
    render_result("rollout", result.to_dict())
    if as_json:
        print_json(result.to_dict())
