"""The prompt record: how `paced rollout` rendered its prompts, carried to the export.

PACED weights are pass rates measured on the prompt the student saw (template, system prompt,
chat turns), so trainers must see that same prompt. The rollout records it in its parts'
provenance as `prompt_format`; grade and weight copy it from their input into their own
provenance; the export rebuilds each problem's prompt from it with the same code rollout uses.

    record = prompt_record(config.prompt_format, tokenizer)   # at rollout, once the engine is up
    record = inherited_prompt_record("graded/")               # at grade / weight / export
    kind, prompt = rendered_prompt(record, "What is 2+2?", None)   # ("chat", [...]) or ("text", "...")
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from paced_curate.errors import ConfigError
from paced_curate.rollout.prompts import PromptFormat

KEY = "prompt_format"
"""The provenance key that holds the record."""


def contradicted_record(where: str, conflicts: list[tuple[str, str]], use: str) -> ConfigError:
    """The one-line refusal of flags that contradict a prompt record (export and distill share it).

    Args:
        where: the table or folder holding the record.
        conflicts: (flag, what it contradicts) pairs, in flag order.
        use: what the command does with the prompt ("export", "train on").
    """
    flags = " and ".join(flag for flag, _ in conflicts)
    return ConfigError(
        f"{where} records the prompt its weights were measured on, and "
        + "; ".join(text for _, text in conflicts)
        + f"; drop {flags} to {use} the recorded prompt, or pass --prompt-format flags to {use} yours"
    )


def prompt_record(fmt: PromptFormat, tokenizer) -> dict:
    """What a rollout's prompts were made of: template, system prompt, and whether chat turns were used.

    Args:
        fmt: the rollout's prompt format.
        tokenizer: the engine's tokenizer, or None (a server without a local tokenizer).

    Returns:
        {"template", "system_prompt", "chat_template" (the flag), "chat"}: `chat` is "on" when
        the chat template applied, "off" when plain text was sent, and "messages" when no
        local tokenizer was known (problems with chat messages, or every problem under
        `--chat-template on`, went to the server as messages; the others as plain text).
    """
    if tokenizer is None:
        chat = "on" if fmt.chat_template == "on" else "messages"
    else:
        chat = "on" if fmt.uses_chat(tokenizer) else "off"
    return {"template": fmt.template, "system_prompt": fmt.system_prompt, "chat_template": fmt.chat_template, "chat": chat}


def rendered_prompt(record: dict, prompt: str, messages: list[dict] | None) -> tuple[str, str | list[dict]]:
    """One problem's prompt as the rollout sent it, before any tokenizer's chat template.

    Mirrors `rollout.prompts.render`: the same `PromptFormat.messages` / `plain` calls.

    Returns:
        ("chat", messages: the system and user turns) or ("text", the filled template).
    """
    fmt = PromptFormat(template=record["template"], system_prompt=record.get("system_prompt"), chat_template="auto")
    chat = record.get("chat")
    if chat == "on" or (chat == "messages" and messages):
        return "chat", fmt.messages(prompt, messages)
    return "text", fmt.plain(prompt)


def schema_record(schema: pa.Schema | None) -> dict | None:
    """The prompt record in a table's paced provenance, or None."""
    raw = (schema.metadata or {}) if schema is not None else {}
    provenance = raw.get(b"paced.provenance")
    if provenance is None:
        return None
    return json.loads(provenance).get(KEY)


def inherited_prompt_record(path: str | Path) -> dict | None:
    """The prompt record of a stage output on disk (its first Parquet file's footer), or None.

    Args:
        path: a Parquet file, or a folder of them (part files, shard folders); any other file
            (generations from another tool as JSONL, CSV, ...) has no record.
    """
    target = Path(path)
    if target.is_file():
        return schema_record(pq.read_schema(target)) if target.suffix.lower() == ".parquet" else None
    if target.is_dir():
        files = sorted(p for p in target.rglob("*.parquet") if not any(part.startswith(".") for part in p.parts[-2:]))
        if files:
            return schema_record(pq.read_schema(files[0]))
    return None
