"""The tiny-model factory: tokenizer round trips, shapes vLLM accepts, loading in transformers."""

from __future__ import annotations

import pytest

from paced_curate.toy.models import TinyModelSpec
from paced_curate.toy.tokenizer import build_char_tokenizer


def test_tokenizer_is_one_token_per_character_and_survives_reload(tiny_model):
    from transformers import AutoTokenizer

    built = build_char_tokenizer()
    loaded = AutoTokenizer.from_pretrained(tiny_model)
    text = "Compute 12 + 7.\n\\boxed{19} {x} ~"
    assert loaded(text).input_ids == built(text).input_ids
    assert len(loaded(text).input_ids) == len(text)
    assert loaded.decode(loaded(text).input_ids) == text
    assert loaded.decode(loaded("café").input_ids) == "café"


def test_chat_template_renders_chatml(tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "1+1"}], tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\n1+1<|im_end|>\n<|im_start|>assistant\n"
    ids = tokenizer(text).input_ids
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>")


def test_model_loads_and_generates_in_transformers(tiny_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    assert model.config.hidden_size // model.config.num_attention_heads >= 32
    ids = tokenizer("1+1=", return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=5, do_sample=False)
    assert out.shape == (1, 4 + 5) or out[0, -1].item() in model.config.eos_token_id
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, 4, len(tokenizer))


def test_spec_refuses_head_dims_vllm_cannot_run():
    with pytest.raises(ValueError, match=r"head dim 16 < 32"):
        TinyModelSpec(hidden_size=64, num_heads=4)
    assert TinyModelSpec().digest() == TinyModelSpec().digest() != TinyModelSpec(num_layers=3).digest()
