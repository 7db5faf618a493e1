"""A character-level tokenizer that needs no download.

It is a Qwen2 byte-level BPE tokenizer with an empty merge list: every byte is one token, so
ASCII text is tokenized character by character, and any UTF-8 text still encodes. Special
tokens cover end of text, padding and a ChatML chat template.

Why Qwen2's own class: transformers 5 loads every `model_type: qwen2` folder with
`Qwen2Tokenizer`, which rebuilds the pre-tokenizer whatever `tokenizer.json` says. A tokenizer
built as a `Qwen2Tokenizer` therefore tokenizes identically when saved, reloaded by
`AutoTokenizer`, or loaded by vLLM.

    from paced_curate.toy.tokenizer import build_char_tokenizer
    tok = build_char_tokenizer()
    tok.save_pretrained("my-model")
"""

from __future__ import annotations

END_OF_TEXT = "<|endoftext|>"
PAD = "<|pad|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = [END_OF_TEXT, PAD, IM_START, IM_END]

# ChatML, as Qwen2 uses it; a generation prompt opens the assistant turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def byte_symbols() -> list[str]:
    """The 256 printable stand-ins that byte-level BPE uses for bytes 0..255, in byte order.

    This is GPT-2's `bytes_to_unicode`: printable Latin-1 bytes stand for themselves, the
    others are shifted to code points from 256 up.
    """
    printable = set(range(ord("!"), ord("~") + 1)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
    symbols, shifted = [], 0
    for byte in range(256):
        if byte in printable:
            symbols.append(chr(byte))
        else:
            symbols.append(chr(256 + shifted))
            shifted += 1
    return symbols


def vocabulary() -> dict[str, int]:
    """Token to id: the special tokens first, then one token per byte (id = 4 + byte)."""
    return {token: index for index, token in enumerate(SPECIAL_TOKENS + byte_symbols())}


def build_char_tokenizer():
    """Build the character tokenizer.

    Returns:
        A `Qwen2Tokenizer` with eos `<|endoftext|>`, pad `<|pad|>` and a ChatML chat template.
    """
    from transformers import Qwen2Tokenizer

    tokenizer = Qwen2Tokenizer(
        vocab=vocabulary(),
        merges=[],
        unk_token=END_OF_TEXT,
        eos_token=END_OF_TEXT,
        pad_token=PAD,
        additional_special_tokens=[IM_START, IM_END],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
