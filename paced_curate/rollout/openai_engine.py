"""The OpenAI-compatible engine: any completions or chat server (vLLM, SGLang, ...).

One HTTP request per sample, `n=1` with the sample's own seed, so the seeds match the other
engines (vLLM serves child i of `n=K, seed=s` with seed s + i, which is what sample i asks
for here). At most `concurrency` requests are in flight. A 5xx or 429 answer, a timeout or a
connection error is retried with exponential backoff; a request that still fails gives that
sample `finish_reason=error` and the message, and the run goes on.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from paced_curate.errors import ConfigError
from paced_curate.rollout.requests import FINISH_ERROR, FINISH_LENGTH, FINISH_STOP, Request, Sample, Sampling

BACKOFF_START = 0.5
BACKOFF_CAP = 8.0


class RetriesExhausted(Exception):
    """A request failed on every attempt; the message says how."""


class OpenAIEngine:
    """A client for an OpenAI-compatible server."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        tokenizer_path: str | None = None,
        concurrency: int = 32,
        request_timeout: float = 600.0,
        max_retries: int = 5,
    ) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self.model = model
        self.concurrency = concurrency
        self.max_retries = max_retries
        key = api_key or os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.client = httpx.Client(headers=headers, timeout=request_timeout, limits=limits)
        self.tokenizer = None
        if tokenizer_path is not None:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)

    def check_server(self) -> None:
        """Fail fast, in one line, when the server is unreachable or does not serve the model."""
        import httpx

        try:
            response = self.client.get(f"{self.base_url}/models", timeout=30)
        except httpx.HTTPError as error:
            raise ConfigError(f"--base-url {self.base_url}: server unreachable ({type(error).__name__}: {error})") from None
        if response.status_code == 200:
            served = [entry.get("id") for entry in response.json().get("data", [])]
            if served and self.model not in served:
                raise ConfigError(f"--model {self.model}: not served at {self.base_url} (it serves {', '.join(served)})")

    def generate(self, requests: Iterable[Request], sampling: Sampling) -> Iterator[tuple[Request, list[Sample]]]:
        """Send every sample; yield (request, samples) once all K samples of a problem are back."""
        results: dict[int, dict[int, Sample]] = {}
        pending = ((request, i) for request in requests for i in range(sampling.num_samples))
        futures: dict[Future, tuple[Request, int]] = {}
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            while True:
                for request, index in pending:
                    futures[pool.submit(self._sample, request, index, sampling)] = (request, index)
                    if len(futures) >= 2 * self.concurrency:
                        break
                if not futures:
                    return
                finished, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in finished:
                    request, index = futures.pop(future)
                    got = results.setdefault(request.index, {})
                    got[index] = future.result()
                    if len(got) == sampling.num_samples:
                        del results[request.index]
                        yield request, [got[i] for i in range(sampling.num_samples)]

    def _sample(self, request: Request, index: int, sampling: Sampling) -> Sample:
        body = {
            "model": self.model,
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "seed": request.seed + index,
            "n": 1,
        }
        # Sent only when `--generation-config model` set them: a server that is not vLLM may refuse these names.
        # (A vLLM server fills unsent values from the model's generation_config.json unless started
        # with `--generation-config vllm`; README says so.)
        extras = {"top_k": (sampling.top_k, 0), "repetition_penalty": (sampling.repetition_penalty, 1.0), "min_tokens": (sampling.min_tokens, 0)}
        body |= {key: value for key, (value, neutral) in extras.items() if value != neutral}
        chat = request.messages is not None
        if chat:
            body["messages"] = request.messages
        else:
            body["prompt"] = request.prompt_text
        prompt_tokens = len(request.prompt_ids) if request.prompt_ids is not None else 0
        try:
            answer = self._post("/chat/completions" if chat else "/completions", body)
        except RetriesExhausted as error:
            return Sample("", FINISH_ERROR, 0, prompt_tokens, str(error))
        choice = answer["choices"][0]
        text = choice["message"]["content"] if chat else choice["text"]
        usage = answer.get("usage") or {}
        reason = {"stop": FINISH_STOP, "length": FINISH_LENGTH}.get(choice.get("finish_reason"), FINISH_ERROR)
        error = None if reason != FINISH_ERROR else f"server finish_reason {choice.get('finish_reason')!r}"
        return Sample(text or "", reason, int(usage.get("completion_tokens", 0)), int(usage.get("prompt_tokens", prompt_tokens)), error)

    def _post(self, path: str, body: dict) -> dict:
        import httpx

        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                delay = min(BACKOFF_CAP, BACKOFF_START * 2 ** (attempt - 1))
                time.sleep(delay * (0.5 + random.random() / 2))
            try:
                response = self.client.post(self.base_url + path, json=body)
            except httpx.TimeoutException as error:
                last = f"timeout ({type(error).__name__})"
                continue
            except httpx.TransportError as error:
                last = f"connection error ({type(error).__name__}: {error})"
                continue
            if response.status_code == 200:
                return response.json()
            last = f"HTTP {response.status_code}: {response.text[:200]}"
            if response.status_code < 500 and response.status_code != 429:
                break
        raise RetriesExhausted(f"{path} failed after {attempt + 1} attempts: {last}")

    def close(self) -> None:
        self.client.close()
