"""Model folders paced cannot use get one line before any work, in every command that takes one (#24).

The broken folders are copies of the tiny model with one thing wrong each: the tokenizer
(missing, empty, without a vocabulary, from another model), config.json (another architecture,
other sizes, not a causal LM), the weights (truncated, missing, a shard the index names missing).
Each case names the message the check gives; every command that takes a model or tokenizer
folder is run on each, and must refuse it in that one line before it creates its output.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from paced_curate.errors import ConfigError
from paced_curate.model_check import check_model_folder, check_tokenizer_folder
from tests.conftest import assert_user_error, write_jsonl


def _drop_tokenizer(folder: Path) -> None:
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        (folder / name).unlink()


def _empty_tokenizer_file(folder: Path) -> None:
    (folder / "tokenizer.json").write_text("")


def _tokenizer_without_vocabulary(folder: Path) -> None:
    spec = json.loads((folder / "tokenizer.json").read_text())
    spec["model"]["vocab"], spec["added_tokens"] = {}, []
    (folder / "tokenizer.json").write_text(json.dumps(spec))


def _larger_char_tokenizer(folder: Path) -> None:
    """The character tokenizer of another model: 40 more tokens than the embedding has rows."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.add_tokens([f"<extra_{i}>" for i in range(40)])
    tokenizer.save_pretrained(folder)


def _qwen_vocabulary_tokenizer(folder: Path) -> None:
    """Qwen2.5's 151,646-token vocabulary (paced_curate.toy.qwen_vocab) on a 260-row model."""
    from paced_curate.toy.qwen_vocab import qwen_tokenizer

    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        (folder / name).unlink()
    qwen_tokenizer().save_pretrained(folder)


def _byte_tokenizer_without_specials(folder: Path) -> None:
    """A tokenizer that fits the embedding (256 ids) but has no special tokens: id 0, the model's end token, is a byte."""
    from transformers import Qwen2Tokenizer

    from paced_curate.toy.tokenizer import byte_symbols

    _drop_tokenizer(folder)
    Qwen2Tokenizer(vocab={symbol: i for i, symbol in enumerate(byte_symbols())}, merges=[], unk_token=None).save_pretrained(folder)


def _edit_config(**changes):
    def edit(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps(config | changes))

    return edit


def _gpt2_config(folder: Path) -> None:
    config = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": 260, "n_embd": 128, "n_layer": 2, "n_head": 2,
              "n_positions": 512, "eos_token_id": 0, "bos_token_id": 0}
    (folder / "config.json").write_text(json.dumps(config))


def _truncate_weights(keep: int | None):
    def truncate(folder: Path) -> None:
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[: len(data) // 2 if keep is None else keep])

    return truncate


def _drop_weights(folder: Path) -> None:
    (folder / "model.safetensors").unlink()


def _index_naming_a_missing_shard(folder: Path) -> None:
    from safetensors import safe_open

    first = folder / "model-00001-of-00002.safetensors"
    (folder / "model.safetensors").rename(first)
    with safe_open(str(first), "numpy") as handle:
        names = list(handle.keys())
    shards = ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": {n: shards[i % 2] for i, n in enumerate(names)}}))


def _truncated_torch_checkpoint(folder: Path) -> None:
    import torch
    from safetensors.torch import load_file

    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    data = (folder / "pytorch_model.bin").read_bytes()
    (folder / "pytorch_model.bin").write_bytes(data[: len(data) // 2])


TOKENIZER_CASES = [
    ("no_tokenizer", _drop_tokenizer, "has no tokenizer files (tokenizer.json, tokenizer.model, vocab.json, ...)"),
    ("empty_tokenizer_file", _empty_tokenizer_file, "its tokenizer does not load (JSONDecodeError"),
    ("tokenizer_without_vocabulary", _tokenizer_without_vocabulary, "its tokenizer encodes text to no tokens"),
    ("larger_char_tokenizer", _larger_char_tokenizer, "its tokenizer has token ids up to 299 but the model's embedding has 260 rows"),
    ("qwen_vocabulary_tokenizer", _qwen_vocabulary_tokenizer, "its tokenizer has token ids up to 151,645 but the model's embedding has 260 rows"),
    ("byte_tokenizer", _byte_tokenizer_without_specials, "the model ends text with token id 0, which its tokenizer reads as 'Ā', an ordinary token"),
]
"""(name, how the copy is broken, the message) for tokenizers that do not belong to the model."""
CASES = TOKENIZER_CASES + [
    ("llama_config_on_qwen2_weights", _edit_config(architectures=["LlamaForCausalLM"], model_type="llama"),
     "the weights hold 6 tensors that config.json's LlamaForCausalLM does not use (model.layers.0.self_attn.k_proj.bias"),
    ("gpt2_config_on_qwen2_weights", _gpt2_config, "the weights lack 29 tensors that config.json's GPT2LMHeadModel needs"),
    ("config_of_a_wider_model", _edit_config(intermediate_size=512),
     "6 tensors do not have the shapes config.json gives (model.layers.0.mlp.down_proj.weight is [128, 256] in the weights, [128, 512]"),
    ("not_a_causal_lm", _edit_config(architectures=["BertModel"], model_type="bert"), "is not a causal LM (architectures: ['BertModel'])"),
    ("truncated_weights", _truncate_weights(None), "model.safetensors is truncated or not a safetensors file (Error while deserializing header: incomplete"),
    ("weights_cut_in_the_header", _truncate_weights(100), "model.safetensors is truncated or not a safetensors file (Error while deserializing header"),
    ("no_weights", _drop_weights, "has no weights (model.safetensors, pytorch_model.bin, or a sharded *.index.json)"),
    ("index_naming_a_missing_shard", _index_naming_a_missing_shard,
     "model.safetensors.index.json names model-00002-of-00002.safetensors, which is not in the folder"),
    ("truncated_torch_checkpoint", _truncated_torch_checkpoint, "pytorch_model.bin is truncated or corrupt (its zip directory is missing)"),
    ("no_config", lambda folder: (folder / "config.json").unlink(), "has no config.json, so it is not a Hugging Face model folder"),
]
"""Every kind of broken model folder, with the message each gets."""
NAMES = [name for name, _, _ in CASES]
EXPECTED = {name: message for name, _, message in CASES}


@pytest.fixture(scope="module")
def broken(tiny_model, tmp_path_factory) -> dict[str, Path]:
    """One broken copy of the tiny model per case, by name (and the intact model as 'intact')."""
    root = tmp_path_factory.mktemp("broken_models")
    folders = {"intact": tiny_model}
    for name, breaks, _ in CASES:
        folders[name] = Path(shutil.copytree(tiny_model, root / name))
        breaks(folders[name])
    return folders


@pytest.mark.parametrize("name", NAMES)
def test_each_broken_folder_is_refused_naming_it_and_what_is_wrong(broken, name):
    with pytest.raises(ConfigError) as caught:
        check_model_folder("--model", str(broken[name]))
    message = str(caught.value)
    assert message.startswith(f"--model {broken[name]}: "), message
    assert EXPECTED[name] in message, message
    assert "\n" not in message


def test_the_intact_model_and_its_tokenizer_pass(broken):
    check_model_folder("--model", str(broken["intact"]), transformers_only=True)
    check_tokenizer_folder("--tokenizer", str(broken["intact"]))


def test_a_folder_that_changes_is_checked_again(tiny_model, tmp_path):
    folder = Path(shutil.copytree(tiny_model, tmp_path / "model"))
    check_model_folder("--model", str(folder))
    _truncate_weights(None)(folder)
    with pytest.raises(ConfigError, match="truncated"):
        check_model_folder("--model", str(folder))


def test_an_architecture_transformers_does_not_know_is_left_to_vllm_but_refused_for_hf(tiny_model, tmp_path):
    folder = Path(shutil.copytree(tiny_model, tmp_path / "model"))
    _edit_config(architectures=["NovelForCausalLM"], model_type="novel")(folder)
    check_model_folder("--model", str(folder))  # vLLM may know it (a plugin, a newer release)
    with pytest.raises(ConfigError, match="transformers cannot load NovelForCausalLM as a causal LM"):
        check_model_folder("--student", str(folder), transformers_only=True)


@pytest.fixture(scope="module")
def problems(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("problems") / "problems.jsonl", [{"id": "q0", "question": "1 + 1 =", "answer": "2"}])


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    from tests.test_distill_data import make_export

    return make_export(tmp_path_factory.mktemp("shards"), n=2)


MODEL_COMMANDS = {
    "rollout --engine vllm": lambda p, m, o, s, good: ["rollout", p, "--model", m, "-o", o],
    "rollout --engine hf": lambda p, m, o, s, good: ["rollout", p, "--model", m, "-o", o, "--engine", "hf"],
    "estimate --engine vllm": lambda p, m, o, s, good: ["estimate", p, "--model", m, "-o", o],
    "estimate --engine hf": lambda p, m, o, s, good: ["estimate", p, "--model", m, "-o", o, "--engine", "hf"],
    "distill --student": lambda p, m, o, s, good: ["distill", s, "--student", m, "--teacher", good, "-o", o, "--max-steps", "1"],
    "distill --teacher": lambda p, m, o, s, good: ["distill", s, "--student", good, "--teacher", m, "-o", o, "--max-steps", "1"],
}
"""Every command that takes a model folder, as (problems, model, output, shards, intact model) -> arguments."""
FLAGS = {"distill --student": "--student", "distill --teacher": "--teacher"}


@pytest.mark.parametrize("command", list(MODEL_COMMANDS))
@pytest.mark.parametrize("name", NAMES)
def test_every_command_refuses_every_broken_folder_before_any_work(cli, broken, problems, shards, tmp_path, command, name):
    output = tmp_path / "out"
    result = cli(*MODEL_COMMANDS[command](problems, broken[name], output, shards, broken["intact"]))
    assert_user_error(result, f"{FLAGS.get(command, '--model')} {broken[name]}: {EXPECTED[name]}")
    assert not output.exists()


TOKENIZER_COMMANDS = {
    "rollout --engine openai": lambda p, t, o: ["rollout", p, "--model", "served", "-o", o, "--engine", "openai"],
    "estimate --engine openai": lambda p, t, o: ["estimate", p, "--model", "served", "-o", o, "--engine", "openai"],
}


@pytest.mark.parametrize("command", list(TOKENIZER_COMMANDS))
@pytest.mark.parametrize("name", ["no_tokenizer", "empty_tokenizer_file", "tokenizer_without_vocabulary"])
def test_a_tokenizer_folder_that_cannot_encode_is_refused_before_the_server_is_asked(cli, broken, problems, tmp_path, command, name):
    """The server's address leads nowhere: the tokenizer is refused before it would be tried."""
    output = tmp_path / "out"
    arguments = TOKENIZER_COMMANDS[command](problems, broken[name], output)
    result = cli(*arguments, "--base-url", "http://127.0.0.1:9/v1", "--tokenizer", broken[name])
    assert_user_error(result, f"--tokenizer {broken[name]}: {EXPECTED[name]}")
    assert not output.exists()


def test_a_missing_tokenizer_folder_is_named(tmp_path):
    with pytest.raises(ConfigError, match=f"--tokenizer {tmp_path / 'nowhere'}: no such folder"):
        check_tokenizer_folder("--tokenizer", str(tmp_path / "nowhere"))
