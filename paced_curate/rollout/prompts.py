"""Turning a problem into the text the model sees: template, system prompt, chat template.

The template holds `{prompt}` (filled by plain replacement, so `\\boxed{}` needs no escaping).
A problem's own chat messages are sent only up to the last user turn (`problems.prompt_turns`):
a trailing assistant turn is the worked solution, never shown to the student.
With the chat template on, the filled template becomes the user message (after an optional
system message) and the tokenizer's chat template renders it with a generation prompt; off,
the system prompt and the filled template are joined as plain text.
"""

from __future__ import annotations

from dataclasses import dataclass

from paced_curate.errors import ConfigError, InputError
from paced_curate.problems import prompt_turns

DEFAULT_TEMPLATE = "{prompt}\nPlease reason step by step, and put your final answer within \\boxed{}."
CHAT_MODES = ("auto", "on", "off")


@dataclass(frozen=True, kw_only=True)
class PromptFormat:
    """How problems become prompts."""

    template: str = DEFAULT_TEMPLATE
    """Prompt template; `{prompt}` is replaced by the problem text."""
    system_prompt: str | None = None
    """Optional system prompt."""
    chat_template: str = "auto"
    """auto (use the tokenizer's chat template when it has one), on, or off."""

    def __post_init__(self) -> None:
        problems = []
        if "{prompt}" not in self.template:
            problems.append("--template must contain {prompt}")
        if self.chat_template not in CHAT_MODES:
            problems.append(f"--chat-template must be one of {', '.join(CHAT_MODES)}, not {self.chat_template!r}")
        if problems:
            raise ConfigError("; ".join(problems))

    def uses_chat(self, tokenizer) -> bool:
        """Whether the chat template applies with this tokenizer (None: no local tokenizer)."""
        has_template = tokenizer is not None and bool(getattr(tokenizer, "chat_template", None))
        if self.chat_template == "on" and tokenizer is not None and not has_template:
            raise ConfigError("--chat-template on, but the model's tokenizer has no chat template")
        return self.chat_template == "on" or (self.chat_template == "auto" and has_template)

    def messages(self, prompt: str, messages: list[dict] | None) -> list[dict]:
        """The chat messages for a problem: its own messages, or the filled template as the user turn."""
        if messages:
            # Checked when the problems were read too; repeated here so no caller can leak an answer.
            turns = prompt_turns(messages)
            if turns is None:
                raise InputError("a chat prompt has no user turn; the prompt ends at the last user turn")
            chat = [dict(m) for m in turns]
        else:
            chat = [{"role": "user", "content": self.template.replace("{prompt}", prompt)}]
        if self.system_prompt and chat[0]["role"] != "system":
            chat.insert(0, {"role": "system", "content": self.system_prompt})
        return chat

    def plain(self, prompt: str) -> str:
        """The prompt as plain text, without a chat template."""
        body = self.template.replace("{prompt}", prompt)
        return f"{self.system_prompt}\n\n{body}" if self.system_prompt else body


def render(fmt: PromptFormat, tokenizer, prompt: str, messages: list[dict] | None) -> tuple[str, list[int] | None, list[dict] | None]:
    """Render one problem.

    Args:
        fmt: the prompt format.
        tokenizer: the model's tokenizer, or None when only a server knows it.
        prompt: the problem text.
        messages: the problem's chat messages, if it has them.

    Returns:
        (prompt text, token ids or None, chat messages or None). Messages are returned only
        when a chat template applies and no local tokenizer can render it (a server will).
    """
    if tokenizer is None:
        if fmt.chat_template == "on" or messages:
            return "", None, fmt.messages(prompt, messages)
        return fmt.plain(prompt), None, None
    if fmt.uses_chat(tokenizer):
        text = tokenizer.apply_chat_template(fmt.messages(prompt, messages), tokenize=False, add_generation_prompt=True)
        # The template already holds any special tokens it wants; adding them again would double a BOS.
        ids = tokenizer(text, add_special_tokens=False).input_ids
        return text, ids, None
    text = fmt.plain(prompt)
    return text, tokenizer(text).input_ids, None
