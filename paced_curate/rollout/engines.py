"""Starting engines, and keeping them: one engine per (kind, model, options) per process.

A vLLM engine takes tens of seconds to start, so repeated rollouts in one process (the
distill evaluation hook, the demo, a test session) reuse it instead of starting another.
At most one vLLM engine is kept: each reserves its own share of memory for the KV cache
(`--gpu-memory-utilization`, of RAM on CPU), so a second one beside it could not start.
"""

from __future__ import annotations

import atexit

from paced_curate.rollout.config import RolloutConfig

_engines: dict[tuple, object] = {}


def engine_key(config: RolloutConfig) -> tuple:
    """What identifies an engine: things that need a new engine when they change."""
    if config.engine == "vllm":
        return ("vllm", config.model, config.dtype, config.max_model_len, config.tensor_parallel_size, config.gpu_memory_utilization)
    if config.engine == "hf":
        return ("hf", config.model, config.dtype, config.max_model_len, config.batch_size)
    return ("openai", config.base_url, config.model, config.api_key, config.tokenizer, config.concurrency, config.request_timeout, config.max_retries)


def get_engine(config: RolloutConfig):
    """The engine for `config`, started on first use and cached for the life of the process."""
    key = engine_key(config)
    if key not in _engines:
        if config.engine == "vllm":
            for other in [k for k in _engines if k[0] == "vllm"]:
                _engines.pop(other).close()  # frees its KV-cache reservation before the next one takes its own
        _engines[key] = _start(config)
    return _engines[key]


def _start(config: RolloutConfig):
    if config.engine == "vllm":
        from paced_curate.rollout.vllm_engine import VllmEngine

        return VllmEngine(
            config.model,
            dtype=config.dtype,
            max_model_len=config.max_model_len,
            tensor_parallel_size=config.tensor_parallel_size,
            gpu_memory_utilization=config.gpu_memory_utilization,
        )
    if config.engine == "hf":
        from paced_curate.rollout.hf_engine import HfEngine

        return HfEngine.load(config.model, dtype=config.dtype, max_model_len=config.max_model_len, batch_size=config.batch_size)
    from paced_curate.rollout.openai_engine import OpenAIEngine

    engine = OpenAIEngine(
        config.base_url,
        config.model,
        api_key=config.api_key,
        tokenizer_path=config.tokenizer,
        concurrency=config.concurrency,
        request_timeout=config.request_timeout,
        max_retries=config.max_retries,
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
