"""The transformers engine: batched `generate` with left padding, for machines without vLLM.

Sampling happens in a logits processor that draws each row's token from that row's own
`torch.Generator` (seeded with the sample's seed) and masks every other token, so `generate`
then picks it greedily. A row's draws therefore depend only on its seed and its logits, not
on which other rows share the batch or how many there are.

The checkpoint's generation_config.json is not consulted (see `rollout.generation`): only the
run's `Sampling` shapes the samples. Rows whose budget the position limit cuts are generated
only with rows of the same budget, so no row runs past the model's position table.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from paced_curate.rollout.generation import budget_groups, max_positions, own_generation_config
from paced_curate.rollout.requests import FINISH_LENGTH, FINISH_STOP, Request, Sample, Sampling, error_samples


class SeededSampler:
    """A logits processor that samples each row with its own seeded generator.

    Args:
        seeds: one seed per batch row.
        temperature: sampling temperature; 0 leaves the scores alone (greedy).
        top_p: nucleus threshold.
        top_k: keep only the k likeliest tokens (0: all).
    """

    def __init__(self, seeds: list[int], temperature: float, top_p: float, top_k: int = 0) -> None:
        import torch

        self.temperature = temperature
        self.top_p = top_p
        self.top_k = top_k
        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]

    def __call__(self, input_ids, scores):
        import torch

        if self.temperature == 0:
            return scores
        scores = scores.float()
        if 0 < self.top_k < scores.shape[-1]:
            kth = scores.topk(self.top_k, dim=-1).values[:, -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        probs = torch.softmax(scores / self.temperature, dim=-1)
        if self.top_p < 1:
            sorted_probs, order = probs.sort(dim=-1, descending=True)
            # Keep the smallest prefix whose mass reaches top_p (the first token always stays).
            outside = sorted_probs.cumsum(-1) - sorted_probs >= self.top_p
            sorted_probs = sorted_probs.masked_fill(outside, 0.0)
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
            probs = probs / probs.sum(-1, keepdim=True)
        # The generators live on the CPU; the draws move to the scores' device (CUDA when the model is there).
        uniforms = torch.stack([torch.rand((), generator=g, dtype=torch.float64) for g in self.generators]).to(probs.device)
        cdf = probs.double().cumsum(-1)
        tokens = torch.searchsorted(cdf, (uniforms * cdf[:, -1]).unsqueeze(-1)).clamp(max=probs.shape[-1] - 1)
        masked = torch.full_like(scores, float("-inf"))
        return masked.scatter(-1, tokens, 0.0)


class HfEngine:
    """A transformers causal LM and tokenizer, on CUDA when available."""

    def __init__(self, model, tokenizer, *, max_model_len: int | None = None, batch_size: int = 64) -> None:
        """Wrap a loaded model and tokenizer (see `load` to read them from a folder).

        The model is used as it is (device, dtype, weights), so a trainer can evaluate the
        student it holds in memory.
        """
        self.model = model
        self.device = next(model.parameters()).device
        self.tokenizer = tokenizer
        eos = self.model.generation_config.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in eos:
            eos.append(self.tokenizer.eos_token_id)
        self.eos_ids = eos
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos[0]
        self.max_model_len = max_model_len or max_positions(self.model.config) or 2048
        self.batch_size = batch_size

    @classmethod
    def load(cls, model: str, *, dtype: str = "auto", max_model_len: int | None = None, batch_size: int = 64) -> "HfEngine":
        """Load a model folder on CUDA when available, else CPU."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = "cuda" if torch.cuda.is_available() else "cpu"
        torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
        loaded = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype).to(device).eval()
        return cls(loaded, AutoTokenizer.from_pretrained(model), max_model_len=max_model_len, batch_size=batch_size)

    def generate(self, requests: Iterable[Request], sampling: Sampling) -> Iterator[tuple[Request, list[Sample]]]:
        """Generate K samples per request, `batch_size` rows per `generate` call, in order."""
        rows: list[tuple[Request, int]] = []
        done: dict[int, list[Sample]] = {}
        for request in requests:
            if len(request.prompt_ids) >= self.max_model_len:
                message = f"prompt has {len(request.prompt_ids)} tokens; the model takes at most {self.max_model_len}"
                yield request, error_samples(request, sampling.num_samples, message)
                continue
            rows.extend((request, i) for i in range(sampling.num_samples))
            while len(rows) >= self.batch_size:
                batch, rows = rows[: self.batch_size], rows[self.batch_size :]
                yield from self._run(batch, sampling, done)
        if rows:
            yield from self._run(rows, sampling, done)

    def _run(self, rows, sampling: Sampling, done: dict) -> Iterator[tuple[Request, list[Sample]]]:
        samples = self._generate_rows(rows, sampling)
        for (request, index), sample in zip(rows, samples):
            done.setdefault(request.index, []).append(sample)
            if index == sampling.num_samples - 1:
                yield request, done.pop(request.index)

    def _generate_rows(self, rows, sampling: Sampling) -> list[Sample]:
        budgets = [min(sampling.max_tokens, self.max_model_len - len(request.prompt_ids)) for request, _ in rows]
        samples: list[Sample | None] = [None] * len(rows)
        for group in budget_groups(budgets):
            for row, sample in zip(group, self._generate_group([rows[i] for i in group], sampling, budgets[group[0]])):
                samples[row] = sample
        return samples

    def _generate_group(self, rows, sampling: Sampling, budget: int) -> list[Sample]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        width = max(len(request.prompt_ids) for request, _ in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for row, (request, _) in enumerate(rows):
            ids = request.prompt_ids
            input_ids[row, width - len(ids) :] = torch.tensor(ids)
            attention[row, width - len(ids) :] = 1
        config = GenerationConfig(
            do_sample=False, max_new_tokens=budget, eos_token_id=self.eos_ids, pad_token_id=self.pad_id,
            repetition_penalty=sampling.repetition_penalty, min_new_tokens=min(sampling.min_tokens, budget) or None,
        )
        sampler = SeededSampler([request.seed + index for request, index in rows], sampling.temperature, sampling.top_p, sampling.top_k)
        with torch.inference_mode(), own_generation_config(self.model, self.eos_ids, self.pad_id):
            out = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=attention.to(self.device),
                generation_config=config,
                logits_processor=LogitsProcessorList([sampler]),
            )
        generated = out[:, width:].tolist()
        samples = []
        for (request, _), tokens in zip(rows, generated):
            stop = next((i for i, token in enumerate(tokens) if token in self.eos_ids), None)
            kept = tokens if stop is None else tokens[: stop + 1]
            text = self.tokenizer.decode(kept, skip_special_tokens=True)
            reason = FINISH_LENGTH if stop is None else FINISH_STOP
            samples.append(Sample(text, reason, len(kept), len(request.prompt_ids)))
        return samples

    def close(self) -> None:
        """Nothing to shut down; the model is freed with the engine."""
