"""Check a model folder before any work: a folder paced cannot use gets one line naming it and what is wrong.

Without this, a folder with no tokenizer files loads an empty tokenizer, every prompt encodes to
nothing and the run ends minutes later in an engine's traceback (`IndexError` in transformers,
"The decoder prompt cannot be empty" in vLLM); a truncated `model.safetensors` ends in
`SafetensorError`; a `config.json` from another architecture loads with random weights where
the names differ. Every command that takes a model folder (`rollout`, `estimate`,
`distill --student/--teacher`) or a tokenizer folder (`--tokenizer`) calls these checks first,
before an output folder is created or an engine started:

    check_model_folder("--model", "models/student")      # config, weights, tensors, tokenizer, vocabulary
    check_tokenizer_folder("--tokenizer", "models/tok")  # a tokenizer that loads and encodes text

What is checked, in order (each failure a `ConfigError` naming the flag and the folder):
1. the folder exists and its config.json is JSON naming a causal LM architecture;
2. weight files exist (`*.safetensors` or `*.bin`, or the shards a `*.index.json` names) and open:
   a safetensors header must cover its file, a zip checkpoint must have its central directory;
3. the weights' tensor names and shapes are those the config's model has: transformers builds
   the model on the meta device and matches the checkpoint against it, reading headers only
   (skipped for architectures transformers does not know, remote code and quantised models,
   which vLLM may still load);
4. the tokenizer loads and encodes a test string to at least one token;
5. the tokenizer belongs to the model: its largest token id fits the embedding (config's
   `vocab_size` rows), and each end token id the model's config names is a special token of it.

A folder is checked once per process while its files are unchanged (`estimate` runs a rollout
per round). Weights are never read: only headers, so the check costs about a second.
"""

from __future__ import annotations

import contextlib
import functools
import json
import zipfile
from pathlib import Path

from paced_curate.errors import ConfigError

CAUSAL_LM_SUFFIXES = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")
TEST_TEXT = "What is 1 + 2? The answer is \\boxed{3}."
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model", "tekken.json")
WEIGHT_SUFFIXES = (".safetensors", ".bin")
SHOWN = 3
"""Tensor names quoted in a message."""


class _Unusable(Exception):
    """What is wrong with a folder, in words that follow "FLAG FOLDER: "."""


def check_model_folder(flag: str, path: str, suffixes: tuple[str, ...] = CAUSAL_LM_SUFFIXES, *, transformers_only: bool = False) -> None:
    """Refuse a model folder paced cannot use (see the module docstring for what is checked).

    Args:
        flag: the option that named the folder, for the message (`--model`, `--student`, ...).
        path: the folder.
        suffixes: architecture name endings accepted in config.json.
        transformers_only: the folder must load with `AutoModelForCausalLM` (the hf engine,
            distill); else an architecture only vLLM knows is accepted unchecked at step 3.

    Raises:
        ConfigError: one line naming `flag`, the folder and what is missing or wrong.
    """
    problem = _model_problem(path, suffixes, transformers_only, _signature(path))
    if problem is not None:
        raise ConfigError(f"{flag} {path}: {problem}")


def check_tokenizer_folder(flag: str, path: str) -> None:
    """Refuse a tokenizer folder unless its tokenizer loads and encodes text to at least one token.

    Raises:
        ConfigError: the folder is missing, holds no tokenizer files, or its tokenizer does not load
            or encodes text to nothing.
    """
    try:
        _tokenizer(path, _signature(path))
    except _Unusable as problem:
        raise ConfigError(f"{flag} {path}: {problem}") from None


def _signature(path: str) -> tuple:
    """What identifies a folder's state: its files' names, sizes and modification times."""
    folder = Path(path)
    if not folder.is_dir():
        return ()
    return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()))


@functools.lru_cache(maxsize=32)
def _model_problem(path: str, suffixes: tuple[str, ...], transformers_only: bool, signature: tuple) -> str | None:
    """What is wrong with the model folder in this state, or None (cached: `estimate` checks once per round)."""
    try:
        config = _read_config(path, suffixes)
        files = _weight_files(path)
        embedding_rows = _check_tensors(path, config, files, transformers_only)
        _check_vocabulary(path, config, _tokenizer(path, signature), embedding_rows)
    except _Unusable as problem:
        return str(problem)
    return None


def _read_config(path: str, suffixes: tuple[str, ...] = CAUSAL_LM_SUFFIXES) -> dict:
    """config.json of a model folder, refused unless it names an architecture ending in one of `suffixes`.

    Reads the file only, so a bad path fails before torch or vLLM is imported.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise _Unusable("no such folder (models load from local folders; nothing is downloaded)")
    config_file = folder / "config.json"
    if not config_file.exists():
        raise _Unusable("has no config.json, so it is not a Hugging Face model folder")
    try:
        config = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _Unusable(f"config.json is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise _Unusable("config.json is not a JSON object")
    architectures = config.get("architectures") or []
    if not any(name.endswith(suffixes) for name in architectures):
        raise _Unusable(f"is not a causal LM (architectures: {architectures or 'none'})")
    return config


def _weight_files(path: str) -> list[Path]:
    """The folder's weight files, each checked to open; refused when there are none or one is broken.

    A `*.index.json` names the shards: each must exist. Safetensors headers are parsed (a
    truncated file fails there); a zip-format PyTorch checkpoint must have its central directory
    (it sits at the end, so a truncated file has none).
    """
    folder = Path(path)
    indexes = sorted(p for p in folder.glob("*.index.json") if p.name.endswith(tuple(s + ".index.json" for s in WEIGHT_SUFFIXES)))
    if indexes:
        index = indexes[0]
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as error:
            raise _Unusable(f"{index.name} is not a weight index ({type(error).__name__}: {error})") from None
        missing = [name for name in shards if not (folder / name).is_file()]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise _Unusable(f"{index.name} names {missing[0]}{more}, which is not in the folder (an incomplete download or copy?)")
        files = [folder / name for name in shards]
    else:
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES and p.name != "training_args.bin")
        safetensors = [p for p in files if p.suffix == ".safetensors"]
        files = safetensors or files  # loaders take safetensors when there are both
    if not files:
        raise _Unusable("has no weights (model.safetensors, pytorch_model.bin, or a sharded *.index.json)")
    for file in files:
        _check_weight_file(file)
    return files


def _check_weight_file(file: Path) -> None:
    if file.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(file), framework="numpy"):
                pass
        except (SafetensorError, OSError) as error:
            raise _Unusable(f"{file.name} is truncated or not a safetensors file ({error})") from None
        return
    with file.open("rb") as handle:
        zip_format = handle.read(4) == b"PK\x03\x04"
    # PyTorch writes zip archives since 1.6; an older pickle checkpoint is left to the loader.
    if zip_format and not zipfile.is_zipfile(file):
        raise _Unusable(f"{file.name} is truncated or corrupt (its zip directory is missing)")


def _check_tensors(path: str, config: dict, files: list[Path], transformers_only: bool) -> int | None:
    """Match the checkpoint's tensors against the model config.json describes; returns its embedding rows.

    transformers builds the model on the meta device and matches the checkpoint's tensor names
    and shapes against it, with its own renaming, tied weights and ignore lists; no tensor data
    is read. Returns None where the match is skipped.
    """
    if config.get("quantization_config") or config.get("auto_map") or not all(f.suffix == ".safetensors" for f in files):
        return None  # quantised, remote code, or .bin (whose loading would read every tensor)
    from transformers import AutoConfig, AutoModelForCausalLM

    architecture = next(iter(config.get("architectures")))
    with _quiet_transformers():  # its warnings and progress bars: the mismatch report is ours to give, in one line
        try:
            known = type(AutoConfig.from_pretrained(path)) in AutoModelForCausalLM._model_mapping
        except (ValueError, KeyError):
            known = False
        if not known:
            if transformers_only:
                raise _Unusable(f"transformers cannot load {architecture} as a causal LM (AutoModelForCausalLM)")
            return None
        try:
            model, info = AutoModelForCausalLM.from_pretrained(path, device_map="meta", output_loading_info=True, ignore_mismatched_sizes=True)
        except Exception as error:  # transformers raises many types for a checkpoint it cannot read
            raise _Unusable(f"transformers cannot read the weights ({type(error).__name__}: {_first_line(error)})") from None
    name = type(model).__name__
    missing, unexpected, mismatched = sorted(info["missing_keys"]), sorted(info["unexpected_keys"]), sorted(info["mismatched_keys"])
    if missing:
        raise _Unusable(
            f"the weights lack {len(missing)} tensors that config.json's {name} needs ({_names(missing)}): "
            "config.json and the weights come from different models"
        )
    if mismatched:
        key, stored, expected = mismatched[0]
        raise _Unusable(
            f"{len(mismatched)} tensors do not have the shapes config.json gives ({key} is {list(stored)} in the "
            f"weights, {list(expected)} for config.json's {name}): config.json and the weights come from different models"
        )
    if unexpected:
        raise _Unusable(
            f"the weights hold {len(unexpected)} tensors that config.json's {name} does not use ({_names(unexpected)}): "
            "config.json is from another architecture than the weights"
        )
    return model.get_input_embeddings().weight.shape[0]


@contextlib.contextmanager
def _quiet_transformers():
    """transformers at error level and without progress bars, as before on leaving."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _names(keys: list[str]) -> str:
    return ", ".join(keys[:SHOWN]) + (", ..." if len(keys) > SHOWN else "")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


@functools.lru_cache(maxsize=32)
def _tokenizer(path: str, signature: tuple):
    """The folder's tokenizer, once it is known to load and encode text (cached per folder state)."""
    folder = Path(path)
    if not folder.is_dir():
        raise _Unusable("no such folder (tokenizers load from local folders; nothing is downloaded)")
    if not any((folder / name).is_file() for name in TOKENIZER_FILES) and not any(folder.glob("*.tiktoken")):
        raise _Unusable(f"has no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, ...): copy the model's tokenizer into it")
    from transformers import AutoTokenizer

    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(path)
    except Exception as error:  # tokenizers and transformers raise many types for broken files
        raise _Unusable(f"its tokenizer does not load ({type(error).__name__}: {_first_line(error)})") from None
    try:
        ids = tokenizer(TEST_TEXT, add_special_tokens=False)["input_ids"]
    except Exception as error:  # a tokenizer that loads but cannot encode: the same problem for the user
        raise _Unusable(f"its tokenizer cannot encode text ({type(error).__name__}: {_first_line(error)})") from None
    if not ids:
        raise _Unusable("its tokenizer encodes text to no tokens (are its tokenizer files empty?)")
    return tokenizer


def _check_vocabulary(path: str, config: dict, tokenizer, embedding_rows: int | None) -> None:
    """Refuse a tokenizer whose ids do not fit the model or whose end tokens are not the model's."""
    text_config = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
    rows = embedding_rows or config.get("vocab_size") or text_config.get("vocab_size")
    vocabulary = tokenizer.get_vocab()
    largest = max(vocabulary.values())
    if rows and largest >= rows:
        raise _Unusable(
            f"its tokenizer has token ids up to {largest:,} but the model's embedding has {rows:,} rows: "
            "the tokenizer belongs to another model"
        )
    special = set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder)
    for token_id in _end_token_ids(Path(path), config, text_config):
        if token_id not in special:
            token = tokenizer.convert_ids_to_tokens(token_id) if token_id <= largest else None
            seen = f"{token!r}, an ordinary token" if token is not None else "no token at all"
            raise _Unusable(
                f"the model ends text with token id {token_id}, which its tokenizer reads as {seen}: "
                "the tokenizer belongs to another model"
            )


def _end_token_ids(folder: Path, config: dict, text_config: dict) -> list[int]:
    """The end token ids config.json and generation_config.json name."""
    found = [config.get("eos_token_id"), text_config.get("eos_token_id")]
    generation = folder / "generation_config.json"
    if generation.is_file():
        try:
            found.append(json.loads(generation.read_text()).get("eos_token_id"))
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            pass  # rollout.generation reports a broken generation_config.json where it reads it
    ids: list[int] = []
    for value in found:
        for token_id in value if isinstance(value, list) else [value]:
            if isinstance(token_id, int) and token_id not in ids:
                ids.append(token_id)
    return ids
