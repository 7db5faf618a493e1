"""Which prompt `paced export` writes: the weights' prompt record, or the prompt flags (#24).

PACED weights are pass rates measured on the prompt the student was shown, so the trl, verl and
llamafactory rows must carry that prompt. `paced rollout` records how it rendered its prompts
(`rollout.prompt_record`) and grade and weight carry the record on; weights from samples another
tool generated carry none. The choice mirrors `paced distill --prompt-format`:

- `--prompt-format record` (the default): the weights' record. A `--template`, `--system-prompt`
  or `--chat-template` that contradicts it is refused in one line; one that agrees is accepted.
  Without a record, the flags say how the student's prompts were rendered; with no flag either,
  the rows carry the problems' own prompts, and one line (and the dataset card) says so.
- `--prompt-format flags`: the flags (the rollout's defaults where not given), whatever the
  record says; a difference from the record is noted, and the manifest keeps both.

`--chat-template auto` (the rollout's default) means "the chat template if the tokenizer has
one", so deciding it needs the student's tokenizer: `--tokenizer DIR`.

    choice = choose_prompt(config, record)       # config: an ExportConfig
    choice.record                                 # what the rows are rendered with, or None
"""

from __future__ import annotations

from dataclasses import dataclass

from paced_curate.errors import ConfigError, InputError
from paced_curate.rollout.prompt_record import contradicted_record
from paced_curate.rollout.prompts import DEFAULT_TEMPLATE

PROMPT_SOURCES = ("record", "flags")


@dataclass(frozen=True)
class PromptChoice:
    """How the export renders prompts, and where that came from."""

    record: dict | None
    """The prompt record the rows are rendered with (`rollout.prompt_record` layout), or None: the problems' own prompts."""
    source: str
    """record (the weights'), flags, or none."""
    recorded: dict | None = None
    """The weights' own record, if they have one (kept in the manifest when the flags override it)."""
    note: str | None = None
    """One line to print, or None."""


def flags_given(config) -> bool:
    """Whether any prompt flag was given (`--tokenizer` alone means the defaults, decided with that tokenizer)."""
    return any(getattr(config, name) is not None for name in ("template", "system_prompt", "chat_template", "tokenizer"))


def choose_prompt(config, recorded: dict | None) -> PromptChoice:
    """Decide how the export renders its prompts (see the module docstring).

    Args:
        config: the `ExportConfig` (template, system_prompt, chat_template: None when not given;
            tokenizer: a local tokenizer folder or None; prompt_format: record or flags).
        recorded: the weights' prompt record, or None.

    Returns:
        The choice; its `note` is a line for stderr (no record and no flag, or flags overriding a record).

    Raises:
        ConfigError: under `--prompt-format record` a flag contradicts the record (naming each
            flag, the recorded value and the way out); `--prompt-format record` without a record
            while flags are given is fine (the flags are used), but `--chat-template auto`
            without `--tokenizer` cannot be decided.
        InputError: `--tokenizer` is not a readable tokenizer folder.
    """
    if config.prompt_format == "flags" or (recorded is None and flags_given(config)):
        record = flags_record(config)
        if recorded is None or same_prompt(record, recorded):
            return PromptChoice(record, "flags", recorded)
        return PromptChoice(record, "flags", recorded, (
            f"NOTE: --prompt-format flags: the rows carry prompts rendered from the flags ({describe(record)}), not as "
            f"{config.weights} records the weights were measured ({describe(recorded)}); the manifest keeps both"
        ))
    if recorded is None:
        return PromptChoice(None, "none", None, (
            f"NOTE: {config.weights} records no prompt format (samples another tool generated, or an older paced) and no "
            "--template/--system-prompt/--chat-template says how the student's prompts were rendered: the rows carry the "
            "problems' own prompts, which may differ from the prompt the pass rates were measured on"
        ))
    conflicts = _conflicts(config, recorded)
    if conflicts:
        raise contradicted_record(config.weights, conflicts, "export")
    return PromptChoice(recorded, "record", recorded)


def flags_record(config) -> dict:
    """A prompt record built from the flags (the rollout's defaults where not given).

    Raises:
        ConfigError: `--chat-template auto` without `--tokenizer`, or `on` with a tokenizer that has no chat template.
        InputError: the tokenizer folder cannot be read.
    """
    mode = config.chat_template or "auto"
    if mode == "auto":
        if config.tokenizer is None:
            raise ConfigError(
                "--chat-template auto (the default) applies the tokenizer's chat template if it has one: pass --tokenizer "
                "(the student's tokenizer folder) to decide, or --chat-template on or off"
            )
        chat = "on" if tokenizer_has_chat_template(config.tokenizer) else "off"
    else:
        if mode == "on" and config.tokenizer is not None and not tokenizer_has_chat_template(config.tokenizer):
            raise ConfigError(f"--chat-template on, but the tokenizer in {config.tokenizer} has no chat template")
        chat = mode
    return {
        "template": DEFAULT_TEMPLATE if config.template is None else config.template,
        "system_prompt": config.system_prompt or None,
        "chat_template": mode,
        "chat": chat,
    }


def tokenizer_has_chat_template(folder: str) -> bool:
    """Whether the tokenizer saved in `folder` has a chat template (read with transformers).

    Raises:
        InputError: the folder is missing or holds no tokenizer transformers can load.
    """
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"--tokenizer {folder}: not a tokenizer folder transformers can load ({first})") from None
    return bool(getattr(tokenizer, "chat_template", None))


def describe(record: dict) -> str:
    """A prompt record in words, for notes and the dataset card."""
    chat = {"on": "chat template applied", "off": "no chat template",
            "messages": "chat turns only for problems with messages"}.get(record.get("chat"), "chat unknown")
    system = "no system prompt" if not record.get("system_prompt") else f"system prompt {record['system_prompt']!r}"
    return f"template {record['template']!r}, {system}, {chat}"


def same_prompt(ours: dict, recorded: dict) -> bool:
    """Whether two prompt records render the same prompts (template, system prompt, chat)."""
    keys = ("template", "system_prompt", "chat")
    return all((ours.get(k) or None) == (recorded.get(k) or None) for k in keys)


def _conflicts(config, recorded: dict) -> list[tuple[str, str]]:
    conflicts = []
    if config.template is not None and config.template != recorded["template"]:
        conflicts.append(("--template", f"--template {config.template!r} contradicts the recorded template {recorded['template']!r}"))
    if config.system_prompt is not None and (config.system_prompt or None) != (recorded.get("system_prompt") or None):
        theirs = recorded.get("system_prompt")
        conflicts.append((
            "--system-prompt",
            f"--system-prompt {config.system_prompt!r} contradicts the recorded system prompt {'(none)' if not theirs else repr(theirs)}",
        ))
    agrees = None if config.chat_template is None else _chat_agrees(config, recorded)
    if agrees is not True and config.chat_template is not None:
        done = {"on": "applied the chat template", "off": "used no chat template",
                "messages": "sent chat turns only for problems with chat messages"}.get(recorded.get("chat"), "did not record it")
        verb = "contradicts" if agrees is False else "cannot be checked without --tokenizer against"
        conflicts.append((
            "--chat-template",
            f"--chat-template {config.chat_template} {verb} the record (the rollout {done}, with --chat-template "
            f"{recorded.get('chat_template')})",
        ))
    return conflicts


def _chat_agrees(config, recorded: dict) -> bool | None:
    """Whether --chat-template says what the rollout did; None when `auto` needs a tokenizer to tell."""
    if config.chat_template == recorded.get("chat_template"):
        return True
    if recorded.get("chat") == "messages":
        return (config.chat_template == "on") == (recorded.get("chat_template") == "on")
    if config.chat_template == "auto":
        if config.tokenizer is None:
            return None
        return ("on" if tokenizer_has_chat_template(config.tokenizer) else "off") == recorded.get("chat")
    return config.chat_template == recorded.get("chat")
