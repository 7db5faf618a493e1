"""vLLM's KV cache on CPU: an explicit size, checked against free memory, and one line when vLLM cannot start (#24).

vLLM CPU otherwise sizes the cache as a fraction of the memory node minus the worker's RSS at
that moment, which went negative on a busy machine. paced gives it a fixed size instead
(`--kv-cache-gib`, default 1 GiB on CPU, or VLLM_CPU_KVCACHE_SPACE), refuses a size that does
not fit in free memory before starting anything, and turns a failed start into one line naming
vLLM's root cause and the memory asked for and free, with the engine's processes and sockets closed.
"""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from paced_curate.rollout import vllm_engine
from paced_curate.rollout.vllm_engine import CPU_KV_CACHE_BYTES, GIB, KV_ENV, kv_cache_bytes
from tests.conftest import assert_user_error, write_jsonl


@pytest.mark.parametrize(
    "flag,fraction,on_gpu,env,expected",
    [
        (None, None, False, None, CPU_KV_CACHE_BYTES),  # CPU: paced's fixed default, never vLLM's arithmetic
        (0.5, None, False, None, GIB // 2),
        (0.5, None, True, None, GIB // 2),  # on GPU too, an explicit size is passed on
        (None, 0.3, False, None, None),  # a memory fraction asked for: vLLM sizes the cache from it
        (None, None, True, None, None),  # GPU default: what --gpu-memory-utilization leaves
        (None, None, False, "3", 3 * GIB),  # vLLM's own knob, honoured when no flag is given
        (2.0, None, False, "3", 2 * GIB),  # the flag wins over it
    ],
)
def test_the_kv_cache_size_given_to_vllm(monkeypatch, flag, fraction, on_gpu, env, expected):
    monkeypatch.delenv(KV_ENV, raising=False)
    if env is not None:
        monkeypatch.setenv(KV_ENV, env)
    assert kv_cache_bytes(flag, fraction, on_gpu) == expected


def test_the_flag_drops_vllms_environment_knob_and_says_so(monkeypatch, capsys):
    """VLLM_CPU_KVCACHE_SPACE overrides the engine argument inside vLLM, so it must not reach the engine."""
    monkeypatch.setenv(KV_ENV, "3")
    kv_cache_bytes(2.0, None, False)
    assert KV_ENV not in __import__("os").environ
    assert "NOTE: --kv-cache-gib 2 overrides VLLM_CPU_KVCACHE_SPACE=3" in capsys.readouterr().err


def test_a_kv_cache_larger_than_free_memory_is_refused_in_one_line_before_vllm_starts(cli, tiny_model, tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr("vllm.LLM", lambda *a, **k: started.append(k), raising=True)
    problems = write_jsonl(tmp_path / "p.jsonl", [{"id": "q0", "question": "1 + 1 =", "answer": "2"}])
    result = cli("rollout", problems, "--model", tiny_model, "-o", tmp_path / "out", "--kv-cache-gib", "100000")
    assert_user_error(result, "not enough free memory for vLLM: the KV cache (100000.00 GiB) and the weights (0.00 GiB) need 100000.00 GiB, but ")
    assert "GiB is free (of " in result.stderr and "lower --kv-cache-gib or free memory" in result.stderr
    assert started == [], "the engine must not be started"


def test_the_memory_check_counts_the_weights(tiny_model, monkeypatch):
    weights = (tiny_model / "model.safetensors").stat().st_size
    monkeypatch.setattr(vllm_engine, "free_memory", lambda: (GIB + weights, 2 * GIB, 0))
    vllm_engine.check_memory(str(tiny_model), GIB)  # exactly fits
    monkeypatch.setattr(vllm_engine, "free_memory", lambda: (GIB + weights - 1, 2 * GIB, 0))
    with pytest.raises(Exception, match="need 1.00 GiB, but 1.00 GiB is free"):
        vllm_engine.check_memory(str(tiny_model), GIB)


@pytest.mark.slow
def test_a_failed_vllm_start_is_one_line_with_its_root_cause_and_leaves_nothing_open(tiny_model):
    """A KV cache too small for one block: vLLM's engine process fails; the parent says why in one line."""
    from paced_curate.rollout.vllm_engine import EngineStartError, VllmEngine

    with pytest.raises(EngineStartError) as caught:
        VllmEngine(str(tiny_model), dtype="float32", kv_cache_gib=1e-5)
    message = str(caught.value)
    assert message.startswith(f"vLLM could not start {tiny_model}: ValueError: No available memory for the cache blocks"), message
    assert "asked for a 0.00 GiB KV cache with " in message and " GiB free (rerun with --verbose for vLLM's log)" in message
    assert "\n" not in message
    gc.collect()  # an unclosed ZeroMQ context would warn here, and warnings are errors in this suite


@pytest.mark.slow
def test_a_closed_engine_leaves_no_shared_memory_behind(tiny_model, tmp_path):
    """vLLM's engine process must stop before it is killed, or its message queue stays for the resource tracker to report."""
    code = (
        "from paced_curate.rollout.vllm_engine import VllmEngine\n"
        "if __name__ == '__main__':\n"
        f"    VllmEngine({str(tiny_model)!r}, dtype='float32', kv_cache_gib=0.25).close()\n"
    )
    script = tmp_path / "start_and_close.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=900, env={**__import__("os").environ, "VLLM_LOGGING_LEVEL": "ERROR"})
    assert done.returncode == 0, done.stderr
    assert "leaked shared_memory" not in done.stderr, done.stderr
