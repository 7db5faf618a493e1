"""Starting engines, and keeping them: one engine per (kind, model, options) per process.

A vLLM engine takes tens of seconds to start, so repeated rollouts in one process (the
distill evaluation hook, the demo, a test session) reuse it instead of starting another.
At most one vLLM engine is kept: each reserves its own memory for the KV cache
(`--kv-cache-gib`, or `--gpu-memory-utilization`), so a second one beside it could not start.
"""

from __future__ import annotations

import atexit

from paced_curate.rollout.config import RolloutConfig

_engines: dict[tuple, object] = {}


def engine_key(config: RolloutConfig) -> tuple:
    """What identifies an engine: things that need a new engine when they change."""
    names = {
        "vllm": ("dtype", "max_model_len", "tensor_parallel_size", "gpu_memory_utilization", "kv_cache_gib"),
        "hf": ("dtype", "max_model_len", "batch_size"),
        "openai": ("base_url", "api_key", "tokenizer", "concurrency", "request_timeout", "max_retries"),
    }[config.engine]
    return (config.engine, config.model, *(config.resolved(name) for name in names))


def get_engine(config: RolloutConfig):
    """The engine for `config`, started on first use and cached for the life of the process.

    Raises:
        ConfigError: (vllm on CPU) the KV cache and the weights do not fit in free memory.
        EngineStartError: vLLM did not start.
    """
    key = engine_key(config)
    if key not in _engines:
        if config.engine == "vllm":
            for other in [k for k in _engines if k[0] == "vllm"]:
                _engines.pop(other).close()  # frees its KV-cache reservation before the next one takes its own
        _engines[key] = _start(config)
    engine = _engines[key]
    if config.engine == "vllm":
        engine.max_in_flight = config.resolved("max_in_flight")  # a scheduling window, not part of the engine
    return engine


def _start(config: RolloutConfig):
    if config.engine == "vllm":
        from paced_curate.rollout.vllm_engine import VllmEngine

        return VllmEngine(
            config.model,
            dtype=config.resolved("dtype"),
            max_model_len=config.max_model_len,
            tensor_parallel_size=config.resolved("tensor_parallel_size"),
            gpu_memory_utilization=config.gpu_memory_utilization,
            kv_cache_gib=config.kv_cache_gib,
        )
    if config.engine == "hf":
        from paced_curate.rollout.hf_engine import HfEngine

        return HfEngine.load(
            config.model, dtype=config.resolved("dtype"), max_model_len=config.max_model_len, batch_size=config.resolved("batch_size")
        )
    from paced_curate.rollout.openai_engine import OpenAIEngine

    engine = OpenAIEngine(
        config.base_url,
        config.model,
        api_key=config.api_key,
        tokenizer_path=config.tokenizer,
        concurrency=config.resolved("concurrency"),
        request_timeout=config.resolved("request_timeout"),
        max_retries=config.resolved("max_retries"),
    )
    try:
        engine.check_server()
    except BaseException:
        engine.close()
        raise
    return engine


def close_engines() -> None:
    """Shut every cached engine down (called at exit)."""
    while _engines:
        _, engine = _engines.popitem()
        engine.close()


atexit.register(close_engines)
