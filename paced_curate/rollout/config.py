"""`RolloutConfig`: every setting of `paced rollout`, one field per flag, checked up front.

All checks here are cheap and run before vLLM or torch is imported, so a typo fails in
milliseconds instead of after a minute of engine start-up.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from paced_curate.errors import ConfigError
from paced_curate.problems import FieldMap
from paced_curate.rollout.generation import GENERATION_CONFIG_MODES, checkpoint_sampling
from paced_curate.rollout.prompts import PromptFormat
from paced_curate.rollout.requests import Sampling

ENGINES = ("vllm", "hf", "openai")
# What both vLLM and transformers accept by name (vLLM also knows "half", "float", ...: the
# names below are the ones paced documents).
DTYPES = ("auto", "float32", "float16", "bfloat16")
CAUSAL_LM_SUFFIXES = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")


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
    top_p: float = 1.0
    """Nucleus sampling threshold."""
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
    tensor_parallel_size: int = 1
    """vllm: GPUs per engine."""
    gpu_memory_utilization: float | None = None
    """vllm: memory fraction for weights and KV cache (on CPU, of RAM); default 0.9 on GPU, 0.2 on CPU."""
    max_model_len: int | None = None
    """vllm/hf: longest prompt + completion (default: the model's)."""
    dtype: str = "auto"
    """Model dtype (auto, float32, bfloat16, float16)."""
    batch_size: int = 64
    """hf: sequences per generate call."""
    max_in_flight: int = 1024
    """vllm: problems submitted to the scheduler at a time."""
    base_url: str | None = None
    """openai: server URL, e.g. http://127.0.0.1:8000/v1."""
    api_key: str | None = None
    """openai: API key (default: $OPENAI_API_KEY, else none)."""
    tokenizer: str | None = None
    """openai: local tokenizer folder, to render prompts exactly as the vllm and hf engines do."""
    concurrency: int = 32
    """openai: requests in flight."""
    request_timeout: float = 600.0
    """openai: seconds before a request is retried."""
    max_retries: int = 5
    """openai: retries after a 5xx, 429, timeout or connection error."""
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
        if not 0 < self.top_p <= 1:
            problems.append(f"--top-p must be in (0, 1], not {self.top_p}")
        if self.engine not in ENGINES:
            problems.append(f"--engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        if self.batch_size < 1 or self.max_in_flight < 1:
            problems.append("--batch-size and --max-in-flight must be at least 1")
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
        if self.dtype not in DTYPES:
            problems.append(f"--dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        if self.gpu_memory_utilization is not None and not 0 < self.gpu_memory_utilization <= 1:
            problems.append("--gpu-memory-utilization must be in (0, 1]")
        if problems:
            raise ConfigError("; ".join(problems))

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
            self.samples, float(values.get("temperature", self.temperature)), float(values.get("top_p", self.top_p)),
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
            "top_p": self.top_p,
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
            "dtype": self.dtype,
            "max_model_len": self.max_model_len,
            "generation_config": self.generation_config,
            "checkpoint_sampling": self.checkpoint_sampling(),
        }


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
    """Refuse a model path that is missing or is not a causal LM, before any heavy import."""
    if config.engine == "openai":
        return
    check_model_folder("--model", config.model)


def check_model_folder(flag: str, path: str, suffixes: tuple[str, ...] = CAUSAL_LM_SUFFIXES) -> None:
    """Refuse a model folder that is missing or whose architecture does not end in one of `suffixes`.

    Reads config.json only, so a bad path fails before torch or vLLM is imported.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ConfigError(f"{flag} {path}: no such folder (models load from local folders; nothing is downloaded)")
    config_file = folder / "config.json"
    if not config_file.exists():
        raise ConfigError(f"{flag} {path}: has no config.json, so it is not a Hugging Face model folder")
    try:
        architectures = json.loads(config_file.read_text()).get("architectures") or []
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{flag} {path}: config.json is not valid JSON: {error}") from None
    if not any(name.endswith(suffixes) for name in architectures):
        raise ConfigError(f"{flag} {path}: is not a causal LM (architectures: {architectures or 'none'})")
