"""Which prompt `paced distill` trains on: the one the export records, or the flags (#26).

PACED weights are pass rates measured on the prompt the student's rollout rendered (template,
system prompt, chat template). `paced rollout` records that format, and grade, weight and export
carry it on (`rollout.prompt_record`; the export manifest's `prompt_format`). So by default
`paced distill` renders its prompts from the record, and the trainer sees the prompt the weights
were measured on:

- `--prompt-format record` (the default): the record. A `--template`, `--system-prompt` or
  `--chat-template` that contradicts it is refused in one line; one that agrees is accepted.
- `--prompt-format flags`: the flags (their defaults where not given), whatever the record
  says; a difference from the record is noted, and run.json records the prompt used and the record.
- An export without a record (made by an older paced, or from weights that came through a
  pipe): one NOTE line, then the flags.

The `--eval` problems are rendered with the same format.

    plan = prompt_plan(config, read_prompt_record("data/"), tokenizer)
    text, ids, _ = render(plan.format_for(messages), tokenizer, prompt, messages)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from paced_curate.errors import ConfigError
from paced_curate.rollout.prompt_record import contradicted_record
from paced_curate.rollout.prompts import DEFAULT_TEMPLATE, PromptFormat

PROMPT_SOURCES = ("record", "flags")


@dataclass(frozen=True)
class PromptPlan:
    """How distill renders prompts, and where that came from."""

    format: PromptFormat
    """The format of every row (and of the --eval problems), except as `chat_rows_only` says."""
    source: str = "flags"
    """export (the export's record) or flags."""
    record: dict | None = None
    """The export's prompt record, if it has one."""
    chat_rows_only: bool = False
    """The record says the rollout had no local tokenizer and sent only problems with chat messages as
    chat turns (`chat` "messages"): those rows get the chat template, the others plain text."""

    def format_for(self, messages: list[dict] | None) -> PromptFormat:
        """The format of one row, given the problem's chat messages (None for a plain prompt)."""
        if self.chat_rows_only and messages:
            return replace(self.format, chat_template="on")
        return self.format

    def as_dict(self) -> dict:
        """What run.json records: the source, the format used, and the export's record."""
        chat = "rows with chat messages" if self.chat_rows_only else self.format.chat_template
        return {"source": self.source, "template": self.format.template, "system_prompt": self.format.system_prompt,
                "chat_template": chat, "recorded": self.record}


def read_prompt_record(shards: str) -> dict | None:
    """The prompt record of a native export: its manifest's `prompt_format`, else its shards' provenance."""
    from paced_curate.export.layout import export_manifest
    from paced_curate.rollout.prompt_record import inherited_prompt_record

    manifest = export_manifest(shards) or {}
    if manifest.get("prompt_format") is not None:
        return manifest["prompt_format"]
    return inherited_prompt_record(shards)


def flags_format(config) -> PromptFormat:
    """The format the flags give, with the rollout's defaults for those not given."""
    return PromptFormat(
        template=DEFAULT_TEMPLATE if config.template is None else config.template,
        system_prompt=config.system_prompt or None,
        chat_template="auto" if config.chat_template is None else config.chat_template,
    )


def recorded_format(record: dict) -> tuple[PromptFormat, bool]:
    """The format a prompt record describes, and whether only rows with chat messages use chat turns.

    A record's `chat` is what the rollout did (on: the chat template applied; off: plain text;
    messages: no local tokenizer, so problems with chat messages, or every problem under
    `--chat-template on`, went to the server as chat turns and the others as plain text).
    """
    chat = record.get("chat")
    if chat == "messages":
        chat = "on" if record.get("chat_template") == "on" else "off"
        rows_only = chat == "off"
    else:
        rows_only = False
    fmt = PromptFormat(template=record["template"], system_prompt=record.get("system_prompt") or None, chat_template=chat)
    return fmt, rows_only


def prompt_plan(config, record: dict | None, tokenizer) -> tuple[PromptPlan, str | None]:
    """Decide how to render the prompts (see the module docstring).

    Args:
        config: the `DistillConfig` (template, system_prompt, chat_template: None when not given;
            prompt_format: record or flags).
        record: the export's prompt record (`read_prompt_record`), or None.
        tokenizer: the student's tokenizer (whether it has a chat template decides `auto`).

    Returns:
        (plan, note): note is one line to print, or None.

    Raises:
        ConfigError: under `--prompt-format record`, a flag contradicts the record (naming each
            flag, the recorded value and the way out), or the record says a chat template was
            applied and the student's tokenizer has none.
    """
    where = config.shards
    if record is None:
        fmt = flags_format(config)
        note = (
            f"NOTE: {where} records no prompt format (an older paced, or weights that came through a pipe), "
            f"so prompts are rendered from the flags: {_describe(fmt, False)}"
        )
        return PromptPlan(fmt, "flags", None), note
    recorded, rows_only = recorded_format(record)
    has_chat = bool(getattr(tokenizer, "chat_template", None))
    if config.prompt_format == "flags":
        fmt = flags_format(config)
        plan = PromptPlan(fmt, "flags", record)
        same = (fmt.template, fmt.system_prompt) == (recorded.template, recorded.system_prompt) and not rows_only and (
            _uses_chat(fmt.chat_template, has_chat) == (recorded.chat_template == "on")
        )
        if same:
            return plan, None
        return plan, (
            f"NOTE: --prompt-format flags: prompts are rendered from the flags ({_describe(fmt, False)}), not as {where} "
            f"records the weights were measured ({_describe(recorded, rows_only)}); run.json records both"
        )
    conflicts = _conflicts(config, record, recorded, rows_only, has_chat)
    if conflicts:
        raise contradicted_record(where, conflicts, "train on")
    if recorded.chat_template == "on" and not rows_only and not has_chat:
        raise ConfigError(
            f"{where} records prompts rendered with a chat template, but the tokenizer of --student {config.student} has none; "
            "train the model that was rolled out, or pass --prompt-format flags --chat-template off to train on plain prompts"
        )
    return PromptPlan(recorded, "record", record, rows_only), None


def _conflicts(config, record: dict, recorded: PromptFormat, rows_only: bool, has_chat: bool) -> list[tuple[str, str]]:
    conflicts = []
    if config.template is not None and config.template != recorded.template:
        conflicts.append(("--template", f"--template {config.template!r} contradicts the recorded template {recorded.template!r}"))
    if config.system_prompt is not None and (config.system_prompt or None) != recorded.system_prompt:
        conflicts.append((
            "--system-prompt",
            f"--system-prompt {config.system_prompt!r} contradicts the recorded system prompt "
            + ("(none)" if recorded.system_prompt is None else repr(recorded.system_prompt)),
        ))
    if config.chat_template is not None:
        if record.get("chat") == "messages":
            agrees = (config.chat_template == "on") == (record.get("chat_template") == "on")
        else:
            agrees = _uses_chat(config.chat_template, has_chat) == (recorded.chat_template == "on")
        if not agrees:
            done = {"on": "applied the chat template", "off": "used no chat template",
                    "messages": "sent chat turns only for problems with chat messages"}[record.get("chat", "off")]
            conflicts.append((
                "--chat-template",
                f"--chat-template {config.chat_template} contradicts the record (the rollout {done}, "
                f"with --chat-template {record.get('chat_template')})",
            ))
    return conflicts


def _uses_chat(mode: str, has_chat: bool) -> bool:
    return mode == "on" or (mode == "auto" and has_chat)


def _describe(fmt: PromptFormat, rows_only: bool) -> str:
    chat = "chat template on rows with chat messages" if rows_only else f"chat template {fmt.chat_template}"
    system = "no system prompt" if not fmt.system_prompt else f"system prompt {fmt.system_prompt!r}"
    return f"template {fmt.template!r}, {system}, {chat}"
