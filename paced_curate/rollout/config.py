"""`RolloutConfig`: every setting of `paced rollout`, one field per flag, checked up front.

All checks here are cheap and run before vLLM or torch is imported, so a typo fails in
milliseconds instead of after a minute of engine start-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from paced_curate.errors import ConfigError, PacedError
from paced_curate.model_check import check_model_folder, check_tokenizer_folder
from paced_curate.problems import FieldMap
from paced_curate.rollout.generation import GENERATION_CONFIG_MODES, checkpoint_sampling
from paced_curate.rollout.prompts import PromptFormat
from paced_curate.rollout.requests import Sampling

ENGINES = ("vllm", "hf", "openai")
# What both vLLM and transformers accept by name (vLLM also knows "half", "float", ...: the
# names below are the ones paced documents).
DTYPES = ("auto", "float32", "float16", "bfloat16")
DEFAULTS = {
    "top_p": 1.0, "tensor_parallel_size": 1, "dtype": "auto", "batch_size": 64, "max_in_flight": 1024,
    "concurrency": 32, "request_timeout": 600.0, "max_retries": 5,
}
"""What a field left at None (flag not given) means; `RolloutConfig.resolved` applies it."""
ENGINE_FLAGS = {
    "tensor_parallel_size": ("vllm",), "gpu_memory_utilization": ("vllm",), "kv_cache_gib": ("vllm",), "max_in_flight": ("vllm",),
    "batch_size": ("hf",), "max_model_len": ("vllm", "hf"), "dtype": ("vllm", "hf"),
    "base_url": ("openai",), "api_key": ("openai",), "tokenizer": ("openai",), "concurrency": ("openai",),
    "request_timeout": ("openai",), "max_retries": ("openai",),
}
"""Field -> the engines it does something for; given with another engine, it is refused."""


@dataclass(frozen=True, kw_only=True)
class RolloutConfig:
    """Settings of one rollout run."""

    problems: str
    """Problem set: .jsonl, .json, .csv, .parquet, a local HF dataset folder, or - (Arrow stream)."""
    model: str
    """Local model folder (vllm, hf), or the served model name (openai)."""
    output: str
    """Output folder (resumable part files), a NAME.parquet file, or - for an Arrow stream on stdout."""
    samples: int = 8
    """K: samples per problem."""
    first_sample: int = 0
    """Index of the first sample: each problem gets samples first_sample .. first_sample + K - 1,
    the same samples a run with more samples would draw there (to extend an earlier run)."""
    temperature: float = 1.0
    """Sampling temperature (0 = greedy)."""
    top_p: float | None = None
    """Nucleus sampling threshold (default 1; does nothing at temperature 0)."""
    max_tokens: int = 1024
    """Most tokens generated per sample."""
    seed: int = 0
    """Run seed; sample i of problem P uses a seed derived from (seed, P, i) only."""
    engine: str = "vllm"
    """vllm (offline LLM), hf (transformers generate) or openai (any OpenAI-compatible server)."""
    prompt_format: PromptFormat = field(default_factory=PromptFormat)
    """Template, system prompt and chat-template mode."""
    fields: FieldMap = field(default_factory=FieldMap)
    """Which problem columns hold id, prompt and answer."""
    problems_per_part: int = 256
    """Problems per part file; a crash loses at most this many problems' work."""
    shard: str | None = None
    """I/N: generate only problems with index % N == I (written to OUTPUT/shard-I-of-N)."""
    gpus: tuple[str, ...] = ()
    """Launch one shard per listed GPU (CUDA_VISIBLE_DEVICES) and wait for all."""
    ray: str | None = None
    """Run the generation on a Ray cluster: local, auto, or an address; one engine replica per GPU (per
    --tensor-parallel-size GPUs), one on a CPU-only cluster (#17)."""
    overwrite: bool = False
    """Delete an existing output and start afresh."""
    tensor_parallel_size: int | None = None
    """vllm: GPUs per engine (default 1)."""
    gpu_memory_utilization: float | None = None
    """vllm on GPU: memory fraction for weights and KV cache (default 0.9); on CPU, the fraction of RAM vLLM sizes
    the KV cache from (instead of --kv-cache-gib)."""
    kv_cache_gib: float | None = None
    """vllm: KV cache size in GiB (default on CPU 1 GiB, or VLLM_CPU_KVCACHE_SPACE when set; on GPU, what
    --gpu-memory-utilization leaves). Checked against free memory before the engine starts."""
    max_model_len: int | None = None
    """vllm/hf: longest prompt + completion (default: the model's)."""
    dtype: str | None = None
    """vllm/hf: model dtype (auto, float32, bfloat16, float16; default auto)."""
    batch_size: int | None = None
    """hf: sequences per generate call (default 64)."""
    max_in_flight: int | None = None
    """vllm: problems submitted to the scheduler at a time (default 1024)."""
    base_url: str | None = None
    """openai: server URL, e.g. http://127.0.0.1:8000/v1."""
    api_key: str | None = None
    """openai: API key (default: $OPENAI_API_KEY, else none)."""
    tokenizer: str | None = None
    """openai: local tokenizer folder, to render prompts exactly as the vllm and hf engines do."""
    concurrency: int | None = None
    """openai: requests in flight (default 32)."""
    request_timeout: float | None = None
    """openai: seconds before a request is retried (default 600)."""
    max_retries: int | None = None
    """openai: retries after a 5xx, 429, timeout or connection error (default 5)."""
    generation_config: str = "ignore"
    """ignore: sample with paced's settings only; model: take temperature, top_p, top_k, repetition_penalty and
    min_new_tokens from the checkpoint's generation_config.json where it sets them (recorded in provenance)."""

    def __post_init__(self) -> None:
        problems = []
        if self.samples < 1:
            problems.append(f"-k/--samples must be at least 1, not {self.samples}")
        if self.first_sample < 0:
            problems.append(f"--first-sample must be at least 0, not {self.first_sample}")
        if self.max_tokens < 1:
            problems.append(f"--max-tokens must be at least 1, not {self.max_tokens}")
        if self.temperature < 0:
            problems.append(f"--temperature must be >= 0, not {self.temperature}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            problems.append(f"--top-p must be in (0, 1], not {self.top_p}")
        if self.engine not in ENGINES:
            problems.append(f"--engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        for name in ("batch_size", "max_in_flight", "tensor_parallel_size", "concurrency"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                problems.append(f"--{name.replace('_', '-')} must be at least 1, not {getattr(self, name)}")
        if self.max_retries is not None and self.max_retries < 0:
            problems.append(f"--max-retries must be at least 0, not {self.max_retries}")
        if self.request_timeout is not None and not self.request_timeout > 0:
            problems.append(f"--request-timeout must be > 0, not {self.request_timeout}")
        if self.kv_cache_gib is not None and not self.kv_cache_gib > 0:
            problems.append(f"--kv-cache-gib must be > 0, not {self.kv_cache_gib}")
        if self.problems_per_part < 1:
            problems.append("--problems-per-part must be at least 1")
        if self.shard is not None and not re.fullmatch(r"\d+/\d+", self.shard):
            problems.append(f"--shard must look like I/N (e.g. 0/4), not {self.shard!r}")
        elif self.shard is not None and not self.shard_index < self.shard_count:
            problems.append(f"--shard {self.shard}: I must be below N")
        if self.gpus and self.shard is not None:
            problems.append("--gpus launches its own shards; drop --shard")
        if self.gpus and self.output == "-":
            problems.append("--gpus writes one directory per shard; -o - is not possible")
        if (self.gpus or self.shard is not None) and self.output.lower().endswith(".parquet"):
            problems.append(f"-o {self.output}: shards are written as folders inside one output folder; name a folder")
        if self.ray is not None:  # (#17)
            problems.extend(_ray_problems(self))
        if self.engine == "openai" and not self.base_url:
            problems.append("--engine openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        if self.generation_config not in GENERATION_CONFIG_MODES:
            problems.append(f"--generation-config must be ignore or model, not {self.generation_config!r}")
        elif self.generation_config == "model" and self.engine == "openai" and not self.tokenizer:
            problems.append("--generation-config model with --engine openai reads generation_config.json from --tokenizer; give it")
        if self.dtype is not None and self.dtype not in DTYPES:
            problems.append(f"--dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        if self.gpu_memory_utilization is not None and not 0 < self.gpu_memory_utilization <= 1:
            problems.append("--gpu-memory-utilization must be in (0, 1]")
        if self.engine in ENGINES:
            problems.extend(unused_flags(self))
        if problems:
            raise ConfigError("; ".join(problems))

    def resolved(self, name: str):
        """The value of field `name`, with its default where the flag was not given (None)."""
        value = getattr(self, name)
        return DEFAULTS.get(name) if value is None else value

    @property
    def shard_index(self) -> int:
        return int(self.shard.split("/")[0]) if self.shard else 0

    @property
    def shard_count(self) -> int:
        return int(self.shard.split("/")[1]) if self.shard else 1

    def checkpoint_sampling(self) -> dict:
        """The checkpoint's sampling values this run uses: {} unless --generation-config model."""
        if self.generation_config != "model":
            return {}
        return checkpoint_sampling(self.tokenizer if self.engine == "openai" else self.model)

    def sampling(self) -> Sampling:
        """What each request samples with: the flags, overridden by `checkpoint_sampling()`."""
        values = self.checkpoint_sampling()
        return Sampling(
            self.samples, float(values.get("temperature", self.temperature)), float(values.get("top_p", self.resolved("top_p"))),
            self.max_tokens, top_k=int(values.get("top_k", 0)), repetition_penalty=float(values.get("repetition_penalty", 1.0)),
            min_tokens=int(values.get("min_new_tokens", 0)),
        )

    def settings(self) -> dict:
        """Everything that changes the generated rows; a resume must match it exactly."""
        return {
            "model": self.model,
            "engine": self.engine,
            "samples": self.samples,
            "first_sample": self.first_sample,
            "temperature": self.temperature,
            "top_p": self.resolved("top_p"),
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "template": self.prompt_format.template,
            "system_prompt": self.prompt_format.system_prompt,
            "chat_template": self.prompt_format.chat_template,
            "id_field": self.fields.id_field,
            "prompt_field": self.fields.prompt_field,
            "answer_field": self.fields.answer_field,
            "split": self.fields.split,
            "shard": self.shard,
            "dtype": self.resolved("dtype"),
            "max_model_len": self.max_model_len,
            "generation_config": self.generation_config,
            "checkpoint_sampling": self.checkpoint_sampling(),
        }


def unused_flags(config: RolloutConfig) -> list[str]:
    """Flags given that would do nothing with the chosen engine, input and sampling: each is refused, so a
    setting the user believes in cannot be silently ignored (#24)."""
    found = []
    for name, engines in ENGINE_FLAGS.items():
        if getattr(config, name) is not None and config.engine not in engines:
            found.append(f"{flag_name(name)} does nothing with --engine {config.engine} (it is for {' and '.join(engines)})")
    if config.kv_cache_gib is not None and config.gpu_memory_utilization is not None:
        found.append("--kv-cache-gib sets the KV cache size, so --gpu-memory-utilization would do nothing: give one of them")
    if config.top_p is not None and config.temperature == 0:
        found.append("--top-p does nothing at --temperature 0 (greedy decoding)")
    if config.fields.split is not None and not is_dataset_folder(config.problems):
        found.append(f"--split picks a split of a Hugging Face dataset folder; {config.problems} is not one")
    if config.overwrite and config.output == "-":
        found.append("--overwrite does nothing with -o - (a stream has no earlier output)")
    if config.gpus and config.engine == "openai":
        found.append("--gpus does nothing with --engine openai (the server owns the GPUs)")
    return found


def flag_name(field_name: str) -> str:
    """The command-line flag of a config field."""
    return "--" + field_name.replace("_", "-")


def is_dataset_folder(path: str) -> bool:
    """Whether `path` is a folder other than a folder of Parquet files (which has no splits)."""
    from paced_curate.problems import parquet_folder_files

    folder = Path(path)
    if path == "-" or not folder.is_dir():
        return False
    try:
        return parquet_folder_files(folder) is None
    except PacedError:
        return False  # an unfinished paced output: the reader says so


def _ray_problems(config: RolloutConfig) -> list[str]:
    """What `--ray` cannot be combined with (#17)."""
    found = []
    if not config.ray.strip():
        found.append("--ray needs an address: local, auto, or HOST:PORT / ray://HOST:PORT")
    if config.gpus:
        found.append("--ray places one engine per GPU itself; drop --gpus")
    if config.shard is not None:
        found.append("--ray spreads the problems over the cluster itself; drop --shard")
    if config.output == "-":
        found.append("--ray writes part files to a directory; -o - is not possible")
    if config.engine == "openai":
        found.append("--ray runs engine replicas on the cluster; --engine openai talks to a server instead (use vllm or hf)")
    return found


def check_model(config: RolloutConfig) -> None:
    """Refuse a model (vllm, hf) or tokenizer (openai) folder paced cannot use, before any work (#24).

    See `paced_curate.model_check`: config, weights, tensor names and shapes, tokenizer, vocabulary.
    """
    if config.engine == "openai":
        if config.tokenizer is not None:
            check_tokenizer_folder("--tokenizer", config.tokenizer)
        return
    check_model_folder("--model", config.model, transformers_only=config.engine == "hf")
