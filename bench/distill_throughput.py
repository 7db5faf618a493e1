"""Distillation throughput: `paced distill --loss fkl` against TRL's GKDTrainer (forward KL, no sampling).

CPU mode (default): the same tiny student/teacher pair (Qwen2 architecture, character
tokenizer; see CPU_STUDENT, CPU_TEACHER and CPU_VOCAB for the shapes and why the output layer
has 4,096 rows), the same export (made by `paced export`), batch, steps, learning rate and max
length go through
- paced: `python -m paced_curate distill SHARDS --loss fkl --micro-batch-size M ...` (the CLI);
- TRL 1.16: `trl.experimental.gkd.GKDTrainer` with GKDConfig(lmbda=0.0, beta=0.0). In TRL's
  generalized JSD, beta=0 is `F.kl_div(student_log_probs, teacher_log_probs, log_target=True)`
  = KL(teacher || student), i.e. forward KL (gkd_trainer.py, `generalized_jsd_loss`); lmbda=0
  means never on-policy (`random.random() <= lmbda` is false), and seq_kd stays off. Its
  examples are chat `messages` (user: the same rendered template; assistant: the reference),
  the format its default collator expects. It runs twice: the whole batch per forward pass, and
  paced's micro-batch size with gradient accumulation; paced is compared with the faster.
Every setup runs in its own fresh subprocess (so its peak RSS, ru_maxrss from wait4, is its
own) with the same number of torch threads (--threads, default 1: this machine's 2 cores are
shared, and a second thread fighting other processes makes timings erratic). The setups are
interleaved for --rounds rounds and each setup's best round counts.

Tokens/s is counted the same way for both: response tokens (the positions in each side's loss:
paced's `tokens`, TRL's labels != -100, counted in its collator, which runs one micro-batch
ahead but in order) over the wall time from the end of step W to the end of the last step, where
W = --warmup steps left out (start-up, first-call allocation). paced's step end times come from
metrics.jsonl (`elapsed_s`), TRL's from a callback's on_step_end. Passing needs paced >= 1.3x
the faster TRL setup's tokens/s and a peak RSS no higher than the smaller TRL one's.

GPU mode (`--gpu`, needs CUDA; not run on the CPU machines): a randomly initialised student of
Qwen2-0.5B's shape and a teacher of Qwen2-1.5B's shape (vocab 151,936), bf16 autocast, through
`paced distill --loss fkl`, every sequence --prompt-chars + --response-chars tokens; reports
tokens/s and MFU. Model FLOPs per step (no recomputation counted):
    student  3 x (2 * N_s * T + 4 * L_s * d_s * P + 2 * d_s * V * R)   (forward + backward)
    teacher       2 * N_t * T + 4 * L_t * d_t * P + 2 * d_t * V * R    (forward)
with N the parameters outside the embedding and the output layer, T the tokens in the batch,
P the causal attention pairs (sum over sequences of length * (length + 1) / 2; QK^T and AV
each take 2 * d FLOPs per pair), R the response tokens (the output layer runs on those only),
and d, L, V the width, depth and vocabulary. MFU = FLOPs / s / peak dense bf16 FLOPs
(H100 SXM and H200: 989 TFLOPS; --peak-tflops for others).

Real vocabulary (`--tokenizer qwen`, #13): the same CPU shapes with the Qwen2.5 tokenizer
(`paced_curate.toy.qwen_vocab`) and 151,936 embedding rows, so the output layer dominates each
step as in real models; paced must reach 1.5x TRL's tokens/s there. `--long-response N` makes
every response N tokens (digits, one token each) to compare peak memory where TRL holds whole
[batch, length, vocab] logits and paced one `--chunk-size` chunk at a time.

Every setup runs under a memory cap (--memory-cap-gib, default 10): a child past it is killed
(and RLIMIT_AS stops larger allocations at once), recorded as "out of memory" in the JSON, and
the other setups go on; a setup that ran out of memory is not retried in later rounds.

    python bench/distill_throughput.py            # full CPU run (several minutes)
    python bench/distill_throughput.py --quick    # small, to check that it runs
    python bench/distill_throughput.py --tokenizer qwen --problems 256 --steps 8 --warmup 2 --rounds 1 --memory-cap-gib 8
    python bench/distill_throughput.py --tokenizer qwen --long-response 2048 --prompt-chars 64 --problems 16 --steps 2 \
        --warmup 1 --batch-size 2 --micro-batch-size 1 --rounds 1 --chunk-size 512 --memory-cap-gib 8
    python bench/distill_throughput.py --gpu      # on a CUDA machine

Prints a table, then one JSON line last; writes bench/results/distill_throughput.json
(distill_throughput_qwen.json / distill_long_response_qwen.json with --tokenizer qwen;
bench/results/distill_gpu.json with --gpu; bench/work/<name>_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
REQUIRED_SPEEDUP = 1.3
REQUIRED_SPEEDUP_REAL_VOCAB = 1.5
"""With --tokenizer qwen (vocabulary 151,936), where the output layer dominates as in real models (#13)."""
MAX_LENGTH = 512
PEAK_BF16_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0}
QWEN2_SHAPES = {
    # hidden, intermediate, layers, heads, kv heads (Qwen2-0.5B and Qwen2-1.5B config.json)
    "qwen2-0.5b": (896, 4864, 24, 14, 2),
    "qwen2-1.5b": (1536, 8960, 28, 12, 2),
}
QWEN2_VOCAB = 151_936
CPU_STUDENT = (128, 256, 2, 2, 1)
CPU_TEACHER = (256, 512, 4, 4, 1)
"""hidden, intermediate, layers, heads, kv heads of the CPU pair (head dim 64)."""
CPU_VOCAB = 4096
"""Rows of the CPU pair's embedding and output layer (the character tokenizer uses the first 260).

With only the tokenizer's 260 rows the output layer would be nearly free, as it is in no real
LM; 4,096 rows (the vocabulary of llama2.c's small TinyStories models) keep the models tiny
while the output layer costs about what the body does (student: 0.5M vs 0.3M multiply-adds
per position; teacher 1.0M vs 2.2M), as for small students of large-vocabulary teachers
(Qwen2-0.5B: 136M vs 358M). `--vocab 260` measures the character-vocabulary case.
"""


# ---- inputs: models and a real export ----------------------------------------------------------


def build_models(folder: Path, args) -> tuple[Path, Path]:
    """A student and a teacher: tiny for CPU, Qwen2-sized for --gpu; the Qwen2.5 tokenizer with --tokenizer qwen."""
    if args.tokenizer == "qwen":
        vocab = QWEN2_VOCAB
        shapes = (QWEN2_SHAPES["qwen2-0.5b"], QWEN2_SHAPES["qwen2-1.5b"]) if args.gpu and not args.quick else (CPU_STUDENT, CPU_TEACHER)
    elif args.gpu and not args.quick:
        shapes, vocab = (QWEN2_SHAPES["qwen2-0.5b"], QWEN2_SHAPES["qwen2-1.5b"]), QWEN2_VOCAB
    else:
        shapes, vocab = (CPU_STUDENT, CPU_TEACHER), args.vocab
    return tuple(
        build_qwen2(folder / role, shape, seed, vocab, args.tokenizer) for seed, (role, shape) in enumerate(zip(("student", "teacher"), shapes))
    )


def build_qwen2(path: Path, shape: tuple, seed: int, vocab: int, tokenizer_kind: str = "char") -> Path:
    """A randomly initialised Qwen2 of a given shape and vocabulary size, saved with the character or the Qwen2.5 tokenizer.

    The character tokenizer has 260 tokens, the Qwen2.5 one (`paced_curate.toy.qwen_vocab`)
    151,646; the embedding and output layer have `vocab` rows, the way real checkpoints pad
    theirs (Qwen2: 151,665 tokens, 151,936 rows). Both sides compute the KL over all `vocab` rows.
    """
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from paced_curate.toy.models import save_model
    from paced_curate.toy.tokenizer import build_char_tokenizer

    hidden, intermediate, layers, heads, kv_heads = shape
    if tokenizer_kind == "qwen":
        from paced_curate.toy.qwen_vocab import SPECIAL_IDS, qwen_tokenizer

        tokenizer = qwen_tokenizer()
        eos, bos = [SPECIAL_IDS["<|im_end|>"], SPECIAL_IDS["<|endoftext|>"]], SPECIAL_IDS["<|endoftext|>"]
    else:
        tokenizer = build_char_tokenizer()
        eos, bos = [0, 3], 0
    config = Qwen2Config(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=4096, tie_word_embeddings=True,
        eos_token_id=eos, bos_token_id=bos, pad_token_id=tokenizer.pad_token_id, rope_theta=1_000_000.0,
    )
    torch.manual_seed(seed)
    save_model(Qwen2ForCausalLM(config), tokenizer, path)
    return path


def build_export(folder: Path, num_problems: int, prompt_chars: int | None, response_chars: int | None, seed: int) -> Path:
    """A native export made by `paced export`: arithmetic problems, weights in (0, 2], teacher references.

    With prompt_chars/response_chars set (GPU mode) every prompt and reference has exactly that
    many characters (one token each), so every sequence has the same length.
    """
    from paced_curate.export import ExportConfig, run_export
    from paced_curate.io import write_table
    from paced_curate.schema import GRADES, WEIGHTS, build_table

    rng = random.Random(seed)
    problems, weights, references = [], [], []
    for i in range(num_problems):
        a, b = rng.randint(1, 999), rng.randint(1, 999)
        question = f"What is {a} + {b}?"
        steps = " ".join(f"{rng.randint(1, 9)} + {rng.randint(1, 9)} = {rng.randint(2, 18)}, carry." for _ in range(rng.randint(1, 6)))
        reference = f"{steps} So the answer is \\boxed{{{a + b}}}."
        if prompt_chars is not None:
            # Digits only: one token each in the character tokenizer and in Qwen2's (which splits digits).
            question = "".join(str(rng.randint(0, 9)) for _ in range(prompt_chars))
            reference = "".join(str(rng.randint(0, 9)) for _ in range(response_chars))
        problems.append({"id": f"p{i:05d}", "question": question, "answer": str(a + b)})
        weight = round(rng.uniform(0.05, 2.0), 4)
        weights.append({
            "problem_id": f"p{i:05d}", "n_samples": 8, "n_correct": 4, "n_excluded": 0, "n_scored": 8, "pass_rate": 0.5,
            "ci_low": 0.2, "ci_high": 0.8, "weight_raw": weight, "weight": weight,
        })
        references.append({
            "problem_id": f"p{i:05d}", "sample_index": 0, "prompt": question, "answer": str(a + b), "completion": reference,
            "finish_reason": "stop", "completion_tokens": len(reference), "prompt_tokens": len(question), "error": None,
            "extracted_answer": str(a + b), "verdict": "correct", "grader": "math", "scored": True,
        })
    (folder / "problems.jsonl").write_text("".join(json.dumps(p) + "\n" for p in problems))
    write_table(build_table(weights, WEIGHTS), str(folder / "weights.parquet"), WEIGHTS)
    write_table(build_table(references, GRADES), str(folder / "teacher.parquet"), GRADES)
    output = folder / "data"
    run_export(ExportConfig(
        problems=str(folder / "problems.jsonl"), weights=str(folder / "weights.parquet"),
        references=str(folder / "teacher.parquet"), output=str(output),
    ))
    return output


# ---- the two sides, each in its own process ----------------------------------------------------


OUT_OF_MEMORY = "out of memory"
MEMORY_ERRORS = ("MemoryError", "DefaultCPUAllocator: can't allocate memory", "std::bad_alloc", "Cannot allocate memory", "out of memory")


def run_child(command: list[str], log: Path, env: dict, memory_cap_mib: int | None = None) -> tuple[int, int, float, str | None]:
    """Run a command to completion under a memory cap; returns (exit status, peak RSS MiB, wall seconds, failure).

    The cap is enforced twice, so that a setup that needs more memory than the machine can
    spare is recorded as out of memory instead of taking the machine down: the parent kills the
    child when its resident memory passes the cap (polled every 50 ms), and RLIMIT_AS (address
    space, at 2x the cap plus 4 GiB, since torch reserves far more address space than it touches)
    makes any larger allocation fail at once. `failure` is None, "out of memory" or "exit N".
    """
    import resource
    import threading

    def limit_address_space():
        if memory_cap_mib:
            cap = (2 * memory_cap_mib + 4096) * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    started = time.perf_counter()
    killed = threading.Event()
    with open(log, "wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=ROOT, preexec_fn=limit_address_space)
        done = threading.Event()

        def watch():
            while not done.wait(0.05):
                if memory_cap_mib and _rss_mib(process.pid) > memory_cap_mib:
                    killed.set()
                    process.kill()
                    return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(process.pid, 0)
        done.set()
        watcher.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    failure = None
    if killed.is_set() or (process.returncode != 0 and any(text in log.read_text(errors="replace") for text in MEMORY_ERRORS)):
        failure = OUT_OF_MEMORY
    elif process.returncode != 0:
        failure = f"exit {process.returncode}"
    # ru_maxrss is in KiB on Linux.
    return process.returncode, usage.ru_maxrss // 1024, time.perf_counter() - started, failure


def _rss_mib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def paced_command(args, shards: Path, student: Path, teacher: Path, run_dir: Path) -> list[str]:
    command = [
        sys.executable, "-m", "paced_curate", "distill", str(shards), "--student", str(student), "--teacher", str(teacher),
        "-o", str(run_dir), "--loss", "fkl", "--max-steps", str(args.steps), "--batch-size", str(args.batch_size),
        "--lr", str(args.lr), "--warmup-steps", "0", "--max-length", str(args.max_length), "--checkpoint-every", "0",
        "--log-every", str(max(1, args.steps // 5)), "--seed", "0",
    ]
    command += ["--micro-batch-size", str(args.micro_batch_size)]
    if args.long_response and not args.gpu:
        command += ["--chunk-size", str(args.chunk_size), "--template", "{prompt}", "--chat-template", "off"]
    if args.gpu:
        # Plain prompts, so that every prompt is exactly --prompt-chars tokens.
        command += ["--chunk-size", str(args.chunk_size), "--template", "{prompt}", "--chat-template", "off"]
        command += [] if args.quick else ["--device", "cuda"]
    return command


def paced_steps(run_dir: Path) -> list[dict]:
    """(tokens, input tokens, end time) of each step, from the run's metrics.jsonl."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{"tokens": r["tokens"], "input_tokens": r["input_tokens"], "end": r["elapsed_s"]} for r in records if r["kind"] == "train"]


def trl_side(args) -> None:
    """Train with TRL's GKDTrainer (runs in the child process) and write its per-step record."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl.experimental.gkd import GKDConfig, GKDTrainer
    from trl.experimental.utils import DataCollatorForChatML

    from paced_curate.export import read_export
    from paced_curate.rollout.prompts import DEFAULT_TEMPLATE

    torch.manual_seed(0)
    table = read_export(args.shards)
    template = "{prompt}" if args.fixed_length else DEFAULT_TEMPLATE
    rows = [
        {"messages": [{"role": "user", "content": template.replace("{prompt}", prompt)}, {"role": "assistant", "content": reference}]}
        for prompt, reference in zip(table.column("prompt").to_pylist(), table.column("reference").to_pylist())
    ]
    tokenizer = AutoTokenizer.from_pretrained(args.student)
    student = AutoModelForCausalLM.from_pretrained(args.student, dtype=torch.float32)
    teacher = AutoModelForCausalLM.from_pretrained(args.teacher, dtype=torch.float32)
    counted: list[int] = []  # response tokens of each micro-batch, in the order the trainer collates them
    collator = DataCollatorForChatML(tokenizer=tokenizer, max_length=args.max_length)

    def counting_collator(examples):
        batch = collator(examples)
        counted.append(int((batch["labels"] != -100).sum()))
        return batch

    ends: list[float] = []

    class StepClock(TrainerCallback):
        def on_step_end(self, *_, **__):
            ends.append(time.perf_counter())

    config = GKDConfig(
        output_dir=str(Path(args.record).parent / "trl_out"), lmbda=0.0, beta=0.0, max_steps=args.steps,
        per_device_train_batch_size=args.trl_micro_batch_size, gradient_accumulation_steps=args.batch_size // args.trl_micro_batch_size,
        learning_rate=args.lr,
        lr_scheduler_type="cosine", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, max_length=args.max_length,
        save_strategy="no", eval_strategy="no", report_to="none", use_cpu=True, seed=0, data_seed=0, disable_tqdm=True,
        logging_steps=max(1, args.steps // 5), dataloader_num_workers=0, bf16=False,
    )
    trainer = GKDTrainer(
        model=student, teacher_model=teacher, args=config, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
        data_collator=counting_collator, callbacks=[StepClock()],
    )
    started = time.perf_counter()
    trainer.train()
    accumulation = args.batch_size // args.trl_micro_batch_size
    per_step = [sum(counted[i : i + accumulation]) for i in range(0, accumulation * len(ends), accumulation)]
    steps = [{"tokens": tokens, "end": end - started} for tokens, end in zip(per_step, ends)]
    Path(args.record).write_text(json.dumps({"steps": steps, "collated_micro_batches": len(counted), "steps_done": len(ends)}))


def rate(steps: list[dict], warmup: int, key: str = "tokens") -> tuple[float, float, int]:
    """(tokens per second, timed seconds, timed tokens) over steps warmup+1 .. last."""
    timed = steps[warmup:]
    seconds = steps[-1]["end"] - steps[warmup - 1]["end"] if warmup else steps[-1]["end"]
    tokens = sum(step[key] for step in timed)
    return tokens / seconds, seconds, tokens


# ---- GPU: MFU ----------------------------------------------------------------------------------


def model_flops(shape: tuple, vocab: int, tokens: int, attention_pairs: float, response_tokens: int, train: bool) -> float:
    """Model FLOPs of one pass (see the module docstring); `train` adds the backward pass (2x forward)."""
    hidden, intermediate, layers, heads, kv_heads = shape
    head_dim = hidden // heads
    attention_params = hidden * (heads * head_dim) + 2 * hidden * (kv_heads * head_dim) + (heads * head_dim) * hidden
    mlp_params = 3 * hidden * intermediate
    body = layers * (attention_params + mlp_params)
    forward = 2 * body * tokens + 2 * 2 * layers * hidden * attention_pairs + 2 * hidden * vocab * response_tokens
    return 3 * forward if train else forward


def gpu_report(args, steps: list[dict]) -> dict:
    import torch

    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    peak = args.peak_tflops or next((value for key, value in PEAK_BF16_TFLOPS.items() if key in name), None)
    student, teacher = (QWEN2_SHAPES["qwen2-0.5b"], QWEN2_SHAPES["qwen2-1.5b"]) if not args.quick else (CPU_STUDENT, CPU_TEACHER)
    vocab = QWEN2_VOCAB if not args.quick else args.vocab
    timed = steps[args.warmup:]
    seconds = steps[-1]["end"] - steps[args.warmup - 1]["end"]
    flops = 0.0
    for step in timed:
        # Every sequence has the same length here, so the batch is batch_size sequences of this length.
        length = step["input_tokens"] / args.batch_size
        pairs = args.batch_size * length * (length + 1) / 2
        flops += model_flops(student, vocab, step["input_tokens"], pairs, step["tokens"], train=True)
        flops += model_flops(teacher, vocab, step["input_tokens"], pairs, step["tokens"], train=False)
    achieved = flops / seconds / 1e12
    return {
        "device": name, "vocab": vocab,
        "sequence_tokens": args.prompt_chars + args.response_chars, "response_tokens_per_sequence": args.response_chars,
        "response_tokens_per_s": sum(s["tokens"] for s in timed) / seconds,
        "tokens_per_s": sum(s["input_tokens"] for s in timed) / seconds,
        "achieved_tflops": achieved, "peak_bf16_tflops": peak, "mfu": achieved / peak if peak else None,
        "mfu_goal": 0.35,
    }


# ---- main --------------------------------------------------------------------------------------


def trl_command(args, shards: Path, student: Path, teacher: Path, record: Path, micro: int) -> list[str]:
    return [
        sys.executable, str(Path(__file__).resolve()), "--side", "trl", "--shards", str(shards), "--student", str(student),
        "--teacher", str(teacher), "--record", str(record), "--steps", str(args.steps), "--batch-size", str(args.batch_size),
        "--micro-batch-size", str(args.micro_batch_size), "--trl-micro-batch-size", str(micro), "--lr", str(args.lr),
        "--max-length", str(args.max_length),
    ] + (["--fixed-length"] if args.long_response else [])


def cpu_benchmark(args, folder: Path, env: dict, report: dict) -> tuple[list[str], list[list[str]]]:
    """paced and TRL's two setups, interleaved for --rounds rounds; each setup's best round counts."""
    student, teacher = build_models(folder, args)
    if args.long_response:
        shards = build_export(folder, args.problems, args.prompt_chars, args.long_response - 1, seed=0)
    else:
        shards = build_export(folder, args.problems, None, None, seed=0)
    cap = int(args.memory_cap_gib * 1024)
    setups = {"paced": None}
    # TRL runs the whole batch per forward, and paced's micro-batches with gradient accumulation;
    # paced is compared with the faster of the two and the smaller peak RSS.
    for micro in sorted({args.batch_size, args.micro_batch_size}, reverse=True):
        setups[f"trl_per_device_{micro}_accumulate_{args.batch_size // micro}"] = micro
    runs: dict[str, list[dict]] = {name: [] for name in setups}
    failures: dict[str, dict] = {}
    for round_index in range(args.rounds):
        for name, micro in setups.items():
            if name in failures:
                continue  # a setup that ran out of memory (or failed) once is not tried again
            log = folder / f"{name}_{round_index}.log"
            if micro is None:
                run_dir = folder / f"run_{round_index}"
                status, rss, wall, failure = run_child(paced_command(args, shards, student, teacher, run_dir), log, env, cap)
                steps = paced_steps(run_dir) if status == 0 else []
            else:
                record = folder / f"{name}_{round_index}.json"
                status, rss, wall, failure = run_child(trl_command(args, shards, student, teacher, record, micro), log, env, cap)
                steps = json.loads(record.read_text())["steps"] if status == 0 else []
            if failure is not None:
                failures[name] = {"status": failure, "peak_rss_mib": rss, "wall_seconds": wall, "log_tail": log.read_text(errors="replace")[-1500:]}
                print(f"{name}: {failure} (peak RSS {rss:,} MiB, cap {cap:,} MiB); going on", file=sys.stderr)
                continue
            tokens_per_s, seconds, tokens = rate(steps, args.warmup)
            runs[name].append({"response_tokens_per_s": tokens_per_s, "timed_seconds": seconds, "timed_response_tokens": tokens,
                               "peak_rss_mib": rss, "wall_seconds": wall})
    sides = {}
    for name, rounds in runs.items():
        if name in failures:
            sides[name] = failures[name]
            continue
        best = max(rounds, key=lambda run: run["response_tokens_per_s"])
        sides[name] = best | {"status": "ok", "peak_rss_mib": max(run["peak_rss_mib"] for run in rounds),
                              "rounds_tokens_per_s": [round(run["response_tokens_per_s"], 1) for run in rounds]}
    paced = sides.pop("paced")
    report["paced"], report["trl"] = paced, sides
    report["memory_cap_mib"] = cap
    finished = [side for side in sides.values() if side["status"] == "ok"]
    required = REQUIRED_SPEEDUP_REAL_VOCAB if args.tokenizer == "qwen" else REQUIRED_SPEEDUP
    report["required_speedup"] = required
    if paced["status"] != "ok":
        report["speedup"] = report["rss_ratio"] = None
        report["pass"] = False
    elif finished:
        report["speedup"] = paced["response_tokens_per_s"] / max(side["response_tokens_per_s"] for side in finished)
        report["rss_ratio"] = paced["peak_rss_mib"] / min(side["peak_rss_mib"] for side in finished)
        report["pass"] = report["speedup"] >= required and report["rss_ratio"] <= 1
    else:
        # Every TRL setup ran out of memory under the cap that paced trained within.
        report["speedup"] = report["rss_ratio"] = None
        report["pass"] = True
    header = ["setup", "resp tok/s (best)", "all rounds", "timed tokens", "peak RSS MiB"]
    rows = []
    for label, side in [(f"paced distill --loss fkl (micro-batch {args.micro_batch_size})", paced)] + [
        (f"TRL GKDTrainer beta=0 lmbda=0 ({name[4:].replace('_', ' ')})", side) for name, side in sides.items()
    ]:
        if side["status"] != "ok":
            rows.append([label, side["status"], "", "", f">{cap:,} (killed)" if side["status"] == OUT_OF_MEMORY else f"{side['peak_rss_mib']:,}"])
        else:
            rows.append([label, f"{side['response_tokens_per_s']:,.0f}", " ".join(f"{v:,.0f}" for v in side["rounds_tokens_per_s"]),
                         f"{side['timed_response_tokens']:,}", f"{side['peak_rss_mib']:,}"])
    return header, rows


def gpu_benchmark(args, folder: Path, env: dict, report: dict) -> tuple[list[str], list[list[str]]]:
    """paced on Qwen2-sized models: tokens/s and MFU."""
    student, teacher = build_models(folder, args)
    # Every reference has response_chars - 1 characters; the eos token completes it.
    shards = build_export(folder, args.problems, args.prompt_chars, args.response_chars - 1, seed=0)
    status, rss, wall, _ = run_child(paced_command(args, shards, student, teacher, folder / "run"), folder / "paced.log", env)
    if status != 0:
        sys.exit(f"paced distill failed:\n{(folder / 'paced.log').read_text()[-3000:]}")
    steps = paced_steps(folder / "run")
    report["paced"] = {"peak_rss_mib": rss, "wall_seconds": wall}
    report["gpu"] = gpu_report(args, steps)
    report["pass"] = report["gpu"]["mfu"] is not None and report["gpu"]["mfu"] >= report["gpu"]["mfu_goal"]
    header = ["setup", "tok/s", "resp tok/s", "TFLOPS", "MFU", "peak RSS MiB"]
    rows = [["paced distill --loss fkl (bf16)", f"{report['gpu']['tokens_per_s']:,.0f}", f"{report['gpu']['response_tokens_per_s']:,.0f}",
             f"{report['gpu']['achieved_tflops']:.3g}", _percent(report["gpu"]["mfu"]), f"{rss:,}"]]
    return header, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run to check that the script works")
    parser.add_argument("--gpu", action="store_true", help="Qwen2-0.5B/1.5B-sized models in bf16 on CUDA: tokens/s and MFU")
    parser.add_argument("--problems", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3, help="first steps left out of the timing")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--micro-batch-size", type=int, default=8, help="paced --micro-batch-size, and TRL's second setup")
    parser.add_argument("--rounds", type=int, default=2, help="CPU: runs of each setup, interleaved; the best counts")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each side (OMP_NUM_THREADS)")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--max-length", type=int, default=MAX_LENGTH)
    parser.add_argument("--vocab", type=int, default=CPU_VOCAB, help="CPU: rows of the embedding and output layer (260: none beyond the tokenizer's)")
    parser.add_argument("--chunk-size", type=int, default=1024, help="--gpu: paced --chunk-size")
    parser.add_argument("--prompt-chars", type=int, default=256, help="--gpu: tokens per prompt")
    parser.add_argument("--response-chars", type=int, default=768, help="--gpu: tokens per response (eos included)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="--gpu: peak bf16 TFLOPS (default by device name)")
    parser.add_argument("--tokenizer", choices=["char", "qwen"], default="char",
                        help="char: the 260-token character tokenizer (--vocab rows); qwen: the Qwen2.5 tokenizer, vocabulary 151,936")
    parser.add_argument("--long-response", type=int, default=0,
                        help="CPU: every response this many tokens (prompt --prompt-chars); peak memory of both sides")
    parser.add_argument("--memory-cap-gib", type=float, default=10.0, help="a setup past this resident memory is killed and recorded as out of memory")
    parser.add_argument("--output", type=Path, default=None, help="where to write the JSON results")
    # Internal: the TRL side, run in a child process.
    parser.add_argument("--side", choices=["trl"], help=argparse.SUPPRESS)
    parser.add_argument("--shards", help=argparse.SUPPRESS)
    parser.add_argument("--student", help=argparse.SUPPRESS)
    parser.add_argument("--teacher", help=argparse.SUPPRESS)
    parser.add_argument("--record", help=argparse.SUPPRESS)
    parser.add_argument("--trl-micro-batch-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--fixed-length", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # Read by transformers when it is first imported: no per-file progress bars in the table.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if args.side == "trl":
        trl_side(args)
        return
    if args.quick:
        args.problems, args.steps, args.warmup, args.batch_size, args.micro_batch_size, args.rounds = 64, 8, 2, 8, 4, 1
        if args.gpu:
            args.prompt_chars, args.response_chars, args.chunk_size = 32, 64, 64
    if args.batch_size % args.micro_batch_size:
        parser.error("--batch-size must be a multiple of --micro-batch-size")
    if args.gpu:
        args.max_length = max(args.max_length, args.prompt_chars + args.response_chars)
    if args.long_response:
        # TRL's messages go through the chat template: room for its few extra tokens.
        args.max_length = max(args.max_length, args.prompt_chars + args.long_response + 64)
    name = "distill_gpu" if args.gpu else "distill_throughput"
    if args.tokenizer == "qwen" and not args.gpu:
        name = "distill_long_response_qwen" if args.long_response else "distill_throughput_qwen"
    output = args.output or (ROOT / "bench" / "work" / f"{name}_quick.json" if args.quick else RESULTS / f"{name}.json")

    from paced_curate.io import write_json
    from paced_curate.partdir import package_versions

    threads = str(args.threads)
    env = dict(os.environ, TRANSFORMERS_VERBOSITY="error", HF_HUB_DISABLE_PROGRESS_BARS="1", TOKENIZERS_PARALLELISM="false",
               OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    report: dict = {
        "benchmark": "distill_gpu" if args.gpu else "distill_throughput",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": ["python", *sys.argv], "quick": args.quick, "cpu_count": os.cpu_count(),
        # Other processes on the machine take cores: record how busy it was.
        "load_average_before": os.getloadavg(), "machine": platform.machine(), "platform": platform.platform(),
        "python": platform.python_version(), "versions": package_versions() | {"trl": _version("trl"), "accelerate": _version("accelerate")},
        "settings": {
            "problems": args.problems, "steps": args.steps, "warmup_steps_excluded": args.warmup, "batch_size": args.batch_size,
            "micro_batch_size": args.micro_batch_size, "rounds": args.rounds, "threads_per_side": args.threads, "lr": args.lr,
            "max_length": args.max_length, "vocab": QWEN2_VOCAB if (args.gpu and not args.quick) or args.tokenizer == "qwen" else args.vocab,
            "tokenizer": args.tokenizer, "long_response_tokens": args.long_response or None, "memory_cap_gib": args.memory_cap_gib,
            "student_shape": "qwen2-0.5b" if args.gpu and not args.quick else CPU_STUDENT,
            "teacher_shape": "qwen2-1.5b" if args.gpu and not args.quick else CPU_TEACHER,
        },
    }
    with tempfile.TemporaryDirectory(prefix="paced-bench-") as folder:
        benchmark = gpu_benchmark if args.gpu else cpu_benchmark
        header, rows = benchmark(args, Path(folder), env, report)
    report["load_average_after"] = os.getloadavg()
    # Plain text: rich would squeeze the columns to 80 characters when stdout is not a terminal.
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    print(f"{report['benchmark']}: {args.steps} steps of {args.batch_size}, first {args.warmup} untimed, {args.threads} thread(s) "
          f"per side; {os.cpu_count()} CPUs, load average {report['load_average_before'][0]:.2f} before")
    for row in [header, *rows]:
        print("  ".join(str(cell).rjust(width) for cell, width in zip(row, widths)))
    if report.get("speedup") is not None:
        print(f"speedup {report['speedup']:.2f}x over TRL's faster setup that finished (needed >= {report['required_speedup']}x), "
              f"peak RSS {report['rss_ratio']:.2f}x TRL's smaller one (needed <= 1): " + ("pass" if report["pass"] else "FAIL"))
    elif "speedup" in report:
        print("no TRL setup finished under the memory cap" if report["pass"] else "paced did not finish: FAIL")
    output.parent.mkdir(parents=True, exist_ok=True)
    write_json(report, output)
    print(json.dumps(report))


def _version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


if __name__ == "__main__":
    main()
