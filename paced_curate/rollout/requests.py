"""What an engine is asked for and what it gives back, and where each sample's seed comes from.

A sample's seed depends only on (run seed, problem_id, sample_index): sample i of a problem
uses `problem_seed(run_seed, problem_id) + i`. That is exactly how vLLM seeds the i-th child
of a request with `n=K` and `seed=problem_seed`, so all three engines agree on which seed
belongs to which sample, and no batch size, order or interruption changes it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

FINISH_STOP, FINISH_LENGTH, FINISH_ERROR = "stop", "length", "error"


def problem_seed(run_seed: int, problem_id: str) -> int:
    """A 62-bit seed for a problem; sample i uses this plus i (62 bits leave room for that)."""
    digest = hashlib.sha256(f"paced:{run_seed}:{problem_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 2


def sample_seed(run_seed: int, problem_id: str, sample_index: int) -> int:
    """The seed of one sample."""
    return problem_seed(run_seed, problem_id) + sample_index


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters shared by every request of a run."""

    num_samples: int
    temperature: float
    top_p: float
    max_tokens: int
    top_k: int = 0
    """Sample from the k likeliest tokens only (0: all); set only by `--generation-config model`."""
    repetition_penalty: float = 1.0
    """CTRL-style penalty on tokens already in the sequence (1: none); only by `--generation-config model`."""
    min_tokens: int = 0
    """End tokens are masked until this many tokens are generated; only by `--generation-config model`."""


@dataclass(frozen=True)
class Request:
    """K samples of one problem."""

    index: int
    """Position of the problem in the (sharded) problem set; outputs keep this order."""
    problem_id: str
    prompt_text: str
    """The rendered prompt (template and chat template applied)."""
    prompt_ids: list[int] | None
    """The prompt's token ids, when a local tokenizer is known."""
    messages: list[dict] | None
    """Chat messages, for servers that apply their own chat template."""
    seed: int
    """The seed of the request's first sample: `problem_seed(run_seed, problem_id) + first_sample`;
    the request's sample j uses seed + j."""


@dataclass(frozen=True)
class Sample:
    """One generated sample."""

    text: str
    finish_reason: str
    """stop | length | error."""
    completion_tokens: int
    prompt_tokens: int
    error: str | None = None


def error_samples(request: Request, num_samples: int, message: str) -> list[Sample]:
    """K error samples for a request that could not be generated (the run goes on)."""
    prompt_tokens = len(request.prompt_ids) if request.prompt_ids is not None else 0
    return [Sample("", FINISH_ERROR, 0, prompt_tokens, message) for _ in range(num_samples)]
