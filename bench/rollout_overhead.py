"""Rollout overhead: `paced rollout` (vllm engine) against bare `vllm.LLM.generate`, in one process.

Both sides share one started vLLM engine (same model, dtype, KV cache, scheduler settings) and
the same prompts, sampling parameters and per-problem seeds. Bare vLLM gets every prompt's
token ids in one `generate` call; paced reads the problem file, renders prompts, streams them
through the scheduler and writes Parquet parts. Runs alternate (bare, paced, bare, paced, ...)
and the medians are compared. The hf engine is timed too, against bare transformers
`generate` with sampling (its usual baseline) and against vLLM.

    .venv/bin/python bench/rollout_overhead.py            # full: 512 problems x 8 samples x 64 tokens
    .venv/bin/python bench/rollout_overhead.py --quick    # 64 problems, one repeat
    .venv/bin/python bench/rollout_overhead.py --real-vocab   # the Qwen2.5 tokenizer, vocab 151,936, chat prompts

Prints a table, then one JSON line, and writes bench/results/rollout_overhead.json
(rollout_overhead_qwen.json with --real-vocab). With --real-vocab the model is
`paced_curate.toy.qwen_vocab`'s briefly trained 2-layer Qwen2 (vocabulary 151,936, so the
output layer dominates each step as in real models), prompted with the ChatML template and a
system prompt; its answers stop at `<|im_end|>` or `<|endoftext|>` after about ten tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=512)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hf-problems", type=int, default=64, help="problems for the (slower) hf engine comparison")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--real-vocab", action="store_true", help="the Qwen2.5 tokenizer and a vocab-151,936 model, chat prompts")
    parser.add_argument("--output", default=None, help="default bench/results/rollout_overhead[_qwen].json")
    args = parser.parse_args()
    args.output = args.output or str(ROOT / "bench" / "results" / ("rollout_overhead_qwen.json" if args.real_vocab else "rollout_overhead.json"))
    if args.quick:
        args.problems, args.repeats, args.hf_problems = 64, 1, 16

    from paced_curate.problems import read_problems
    from paced_curate.rollout import RolloutConfig, run_rollout
    from paced_curate.rollout.engines import get_engine
    from paced_curate.rollout.prompts import PromptFormat, render
    from paced_curate.rollout.requests import problem_seed
    from paced_curate.toy.models import TinyModelSpec, build_tiny_model
    from paced_curate.toy.world import make_problems

    work = Path(tempfile.mkdtemp(prefix="paced-bench-rollout-"))
    problems_file = work / "problems.jsonl"
    if args.real_vocab:
        from paced_curate.toy.qwen_vocab import SYSTEM_PROMPT, addition_problems, trained_qwen_model

        model = trained_qwen_model()
        problems_file.write_text("".join(json.dumps(row) + "\n" for row in addition_problems(seed=0, count=args.problems)))
        fmt = PromptFormat(template="{prompt}", system_prompt=SYSTEM_PROMPT, chat_template="on")
        model_note = "qwen_vocab: briefly trained 2-layer Qwen2, width 64, vocab 151,936, Qwen2.5 tokenizer, ChatML prompts with a system prompt"
    else:
        model = build_tiny_model(work / "model", TinyModelSpec(hidden_size=128, num_layers=4, num_heads=2, intermediate_size=512))
        problems_file.write_text("".join(json.dumps(p.row()) + "\n" for p in make_problems(0, args.problems, (2, 8))))
        fmt = PromptFormat(template="{prompt}\n", chat_template="off")
        model_note = "random tiny Qwen2 (hidden 128, 4 layers, 2 heads), character tokenizer"

    def config(output: Path, engine: str = "vllm", source: Path = problems_file) -> RolloutConfig:
        return RolloutConfig(
            problems=str(source), model=str(model), output=str(output), engine=engine, samples=args.samples,
            temperature=1.0, max_tokens=args.max_tokens, prompt_format=fmt, overwrite=True, batch_size=64 if engine == "hf" else None,
        )

    engine = get_engine(config(work / "warm"))
    llm = engine.llm
    table = read_problems(str(problems_file))
    prompts = [
        {"prompt_token_ids": render(fmt, engine.tokenizer, text, None)[1]} for text in table.column("prompt").to_pylist()
    ]
    seeds = [problem_seed(0, pid) for pid in table.column("problem_id").to_pylist()]

    def bare_vllm() -> tuple[float, int]:
        from vllm import SamplingParams

        params = [SamplingParams(n=args.samples, temperature=1.0, max_tokens=args.max_tokens, seed=s) for s in seeds]
        started = time.perf_counter()
        outputs = llm.generate(prompts, params, use_tqdm=False)
        seconds = time.perf_counter() - started
        return seconds, sum(len(c.token_ids) for o in outputs for c in o.outputs)

    def paced(engine_name: str = "vllm", source: Path = problems_file) -> tuple[float, int]:
        started = time.perf_counter()
        result = run_rollout(config(work / f"out-{engine_name}", engine_name, source))
        return time.perf_counter() - started, result.completion_tokens

    bare_vllm(), paced()  # warm both paths (compiled graphs, caches, imports)
    runs = {"bare_vllm": [], "paced_vllm": []}
    for _ in range(args.repeats):
        for name, run in (("bare_vllm", bare_vllm), ("paced_vllm", paced)):
            seconds, tokens = run()
            runs[name].append(tokens / seconds)
            print(f"  {name:11s} {tokens:>9,} tokens in {seconds:6.2f} s = {tokens / seconds:9,.0f} tok/s", file=sys.stderr)

    # hf engine: a smaller problem set (it is much slower), against bare transformers generate.
    small = work / "small.jsonl"
    small.write_text("".join(problems_file.read_text().splitlines(keepends=True)[: args.hf_problems]))
    hf_seconds, hf_tokens = paced("hf", small)
    bare_hf_seconds, bare_hf_tokens = bare_transformers(model, prompts[: args.hf_problems], args)
    vllm_small_seconds, vllm_small_tokens = paced("vllm", small)

    paced_tps, bare_tps = statistics.median(runs["paced_vllm"]), statistics.median(runs["bare_vllm"])
    result = {
        "benchmark": "rollout_overhead_qwen" if args.real_vocab else "rollout_overhead",
        "ratio_paced_vs_bare_vllm": paced_tps / bare_tps,
        "target_ratio": 0.95,
        "passed": paced_tps / bare_tps >= 0.95,
        "paced_vllm_tokens_per_s": paced_tps,
        "bare_vllm_tokens_per_s": bare_tps,
        "runs_tokens_per_s": runs,
        "hf_engine_tokens_per_s": hf_tokens / hf_seconds,
        "bare_transformers_generate_tokens_per_s": bare_hf_tokens / bare_hf_seconds,
        "ratio_hf_engine_vs_bare_transformers": (hf_tokens / hf_seconds) / (bare_hf_tokens / bare_hf_seconds),
        "ratio_hf_engine_vs_paced_vllm": (hf_tokens / hf_seconds) / (vllm_small_tokens / vllm_small_seconds),
        "setup": {
            "problems": args.problems, "samples": args.samples, "max_tokens": args.max_tokens, "repeats": args.repeats,
            "hf_problems": args.hf_problems, "model": model_note,
            "note": "one shared vLLM engine for both sides; paced timing includes reading the problem file, rendering prompts and writing Parquet parts",
        },
        "command": " ".join(sys.argv),
        "versions": versions(),
        "hardware": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d"),
    }
    print_table(result)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


def bare_transformers(model: Path, prompts: list[dict], args) -> tuple[float, int]:
    """The usual transformers baseline: batched `generate(do_sample=True)`, left padded, K copies per prompt."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    lm = AutoModelForCausalLM.from_pretrained(model).eval()
    tokenizer = AutoTokenizer.from_pretrained(model)
    rows = [p["prompt_token_ids"] for p in prompts for _ in range(args.samples)]
    config = GenerationConfig(do_sample=True, temperature=1.0, max_new_tokens=args.max_tokens, eos_token_id=lm.generation_config.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    tokens, started = 0, time.perf_counter()
    for start in range(0, len(rows), 64):
        batch = rows[start : start + 64]
        width = max(map(len, batch))
        ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(r)) + r for r in batch])
        mask = (torch.arange(width)[None, :] >= torch.tensor([width - len(r) for r in batch])[:, None]).long()
        with torch.inference_mode():
            out = lm.generate(input_ids=ids, attention_mask=mask, generation_config=config)
        tokens += int((out[:, width:] != tokenizer.pad_token_id).sum())
    return time.perf_counter() - started, tokens


def versions() -> dict:
    from paced_curate.partdir import package_versions

    return package_versions()


def print_table(result: dict) -> None:
    rows = [
        ("bare vLLM (LLM.generate)", f"{result['bare_vllm_tokens_per_s']:,.0f} tok/s"),
        ("paced rollout --engine vllm", f"{result['paced_vllm_tokens_per_s']:,.0f} tok/s"),
        ("ratio (target >= 0.95)", f"{result['ratio_paced_vs_bare_vllm']:.3f}  {'PASS' if result['passed'] else 'FAIL'}"),
        ("paced rollout --engine hf", f"{result['hf_engine_tokens_per_s']:,.0f} tok/s"),
        ("bare transformers generate", f"{result['bare_transformers_generate_tokens_per_s']:,.0f} tok/s"),
        ("hf engine / bare transformers", f"{result['ratio_hf_engine_vs_bare_transformers']:.3f}"),
        ("hf engine / paced vllm", f"{result['ratio_hf_engine_vs_paced_vllm']:.3f}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}", file=sys.stderr)


if __name__ == "__main__":
    main()
