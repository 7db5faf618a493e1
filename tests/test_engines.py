"""The per-process engine cache: engines are reused, and at most one vLLM engine is alive."""

from __future__ import annotations

import pytest

from paced_curate.rollout import engines
from paced_curate.rollout.config import RolloutConfig


class FakeEngine:
    """Stands in for a started engine: the cache policy is what is tested here, and a real vLLM
    engine costs about 30 s per start (real engines run through the rest of the suite)."""

    def __init__(self, config: RolloutConfig) -> None:
        self.model = config.model
        self.closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_start(monkeypatch, tiny_model, tmp_path):
    monkeypatch.setattr(engines, "_engines", {})
    monkeypatch.setattr(engines, "_start", FakeEngine)
    other = tmp_path / "other"
    other.symlink_to(tiny_model, target_is_directory=True)
    return str(tiny_model), str(other)


def config(model: str, engine: str = "vllm") -> RolloutConfig:
    return RolloutConfig(problems="p.jsonl", model=model, output="out", engine=engine)


def test_the_same_settings_reuse_one_engine(fake_start):
    first, _ = fake_start
    assert engines.get_engine(config(first)) is engines.get_engine(config(first))


def test_a_second_vllm_engine_closes_the_first_so_their_memory_reservations_never_add_up(fake_start):
    first, second = fake_start
    a = engines.get_engine(config(first))
    hf = engines.get_engine(config(first, engine="hf"))
    b = engines.get_engine(config(second))
    assert a.closed and not b.closed, "the first vLLM engine must be shut down before the second starts"
    assert not hf.closed, "other kinds of engine reserve no memory up front and stay cached"
    assert engines.get_engine(config(second)) is b
    again = engines.get_engine(config(first))
    assert again is not a and b.closed
