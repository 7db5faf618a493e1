"""Options that several commands share, declared once so their flags and help stay the same."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

TemperatureOption = Annotated[float, typer.Option(help="Sampling temperature (0 = greedy).")]
TopPOption = Annotated[Optional[float], typer.Option("--top-p", help="Nucleus sampling threshold (default 1).")]
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
OverwriteOption = Annotated[bool, typer.Option(help="Replace an existing output made by another command or with other settings, and start afresh (files paced did not write in a folder are never deleted).")]
TensorParallelSizeOption = Annotated[Optional[int], typer.Option("--tensor-parallel-size", help="vllm: GPUs per engine (default 1).")]
MaxModelLenOption = Annotated[Optional[int], typer.Option("--max-model-len", help="vllm, hf: longest prompt + completion.")]
DtypeOption = Annotated[Optional[str], typer.Option(help="vllm, hf: auto, float32, bfloat16 or float16 (default auto).")]
BatchSizeOption = Annotated[Optional[int], typer.Option("--batch-size", help="hf: sequences per generate call (default 64).")]
GpuMemoryOption = Annotated[Optional[float], typer.Option(
    "--gpu-memory-utilization", help="vllm: memory fraction for weights and KV cache (default 0.9 on GPU); not with --kv-cache-gib."
)]
KvCacheOption = Annotated[Optional[float], typer.Option(
    "--kv-cache-gib", help="vllm: KV cache size in GiB (default 1 on CPU; on GPU what --gpu-memory-utilization leaves)."
)]
TokenizerOption = Annotated[Optional[str], typer.Option(help="openai: local tokenizer folder to render prompts.")]
AsJsonOption = Annotated[bool, typer.Option("--json", help="Print the result as one JSON document on stdout.")]
WorkersOption = Annotated[Optional[int], typer.Option(help="Grading processes (default: number of CPUs).")]
AlphaOption = Annotated[float, typer.Option(help="Beta kernel exponent of p (> 0).")]
BetaOption = Annotated[float, typer.Option(help="Beta kernel exponent of 1 - p (> 0).")]
LowOption = Annotated[Optional[float], typer.Option(help="Band kernel: lowest pass rate kept.")]
HighOption = Annotated[Optional[float], typer.Option(help="Band kernel: highest pass rate kept.")]
FloorOption = Annotated[float, typer.Option(help="Raise raw weights below this to it before normalising (p = 0 or 1 get it instead of 0); in [0, 1), 0: none.")]
PlotOption = Annotated[Optional[str], typer.Option(help="Also save the pass-rate and weight histograms as this PNG.")]
