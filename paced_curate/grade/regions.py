"""Where in a completion the answer is written: after the reasoning trace, inside R1-Zero's
`<answer>` tags, outside code, and before a few-shot run-on. The first step of what counts as
the answer (README "What counts as the answer"); answers.py reads the answer from the region.

1. Reasoning trace. Only the text after the LAST closing tag of any pair is graded. Pairs
   (case-insensitive) by default: `<think>` (DeepSeek-R1, Qwen3), `<|begin_of_thought|>`
   (OpenThoughts), `[THINK]` (Magistral), `<thinking>`, `<reasoning>`, `<seed:think>`,
   `\u25c1think\u25b7` (Kimi), and gpt-oss's channels, raw (`<|channel|>analysis<|message|>`
   ... `<|channel|>final<|message|>`) or with the special tokens dropped (`analysis...` at the very
   start, then `...assistantfinal`). An opening tag written `^OPEN` counts only at the start of
   the completion and only when a letter follows it ("analysisWe need ..."), so a completion
   that starts "Analysis: ..." is not a trace. An opening tag with no closing tag after it (the
   model stopped mid-thought) means there is no answer.
2. `<answer>...</answer>` (R1-Zero's format): the content of the last such span is the region;
   an `<answer>` left open (no closing tag) gives the text after it.
3. Full-width forms (U+FF01..U+FF5E) are read as their ASCII letters, digits and punctuation,
   the ideographic space as a space and `\u3002` as a period; a full-width comma becomes ", " (a
   list separator in CJK text, never a decimal comma).
4. Code. Fenced code blocks (```python ... ```) are not read for boxes or answer phrases (a
   line `answer = x + y` is code, not an answer), except an output block (```output```), whose
   content stays as text; an unlabelled fence is code when it holds code-like lines.
5. Few-shot run-on: a base model that answers and then invents the next question ("Question:",
   "Q:", "Problem:" at the start of a line) is cut at that line, when an answer (a box, an answer
   phrase or `####`) comes before it; lm-evaluation-harness stops generation at the same strings.

    tags = parse_reasoning_tags(DEFAULT_REASONING_TAGS)
    region = answer_region(completion, tags)           # None: unclosed trace
    region = answer_text(region)                       # tags, full-width forms, code, run-on
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from paced_curate.errors import ConfigError

DEFAULT_REASONING_TAGS = (
    "<think>,</think>",
    "<|begin_of_thought|>,<|end_of_thought|>",
    "[THINK],[/THINK]",
    "<thinking>,</thinking>",
    "<reasoning>,</reasoning>",
    "<seed:think>,</seed:think>",
    "\u25c1think\u25b7,\u25c1/think\u25b7",
    "<|channel|>analysis<|message|>,<|channel|>final<|message|>",
    "^analysis,assistantfinal",
)


def parse_reasoning_tags(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """Tag pairs from `--reasoning-tags` values ("OPEN,CLOSE" each; "none" alone turns them off).

    An OPEN written `^OPEN` counts only at the start of the completion, followed by a letter.

    Raises:
        ConfigError: a value is not two non-empty tags separated by a comma, or "none" is mixed
            with pairs.
    """
    values = (values,) if isinstance(values, str) else tuple(values)
    if values == ("none",) or values == ():
        return ()
    pairs = []
    for value in values:
        parts = value.split(",")
        if value == "none" or len(parts) != 2 or not all(part.strip().lstrip("^") for part in parts):
            raise ConfigError(f"--reasoning-tags {value!r}: give OPEN,CLOSE (e.g. '<think>,</think>'), or 'none' alone to turn traces off")
        pairs.append((parts[0].strip(), parts[1].strip()))
    return tuple(pairs)


@functools.lru_cache(maxsize=64)
def _tag_patterns(tags: tuple[tuple[str, str], ...]) -> tuple[re.Pattern | None, re.Pattern | None, re.Pattern]:
    floating = [re.escape(open_) for open_, _ in tags if not open_.startswith("^")]
    anchored = [re.escape(open_[1:]) for open_, _ in tags if open_.startswith("^")]
    opening = re.compile("|".join(floating), re.IGNORECASE) if floating else None
    at_start = re.compile(r"\A\s*(?:" + "|".join(anchored) + r")(?=[A-Za-z])") if anchored else None
    closing = re.compile("|".join(re.escape(close) for _, close in tags), re.IGNORECASE)
    return opening, at_start, closing


@functools.lru_cache(maxsize=64)
def _lowered_openings(tags: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    return tuple(open_.lower() for open_, _ in tags if not open_.startswith("^"))


def answer_region(text: str, tags: tuple[tuple[str, str], ...]) -> str | None:
    """The text after the last closing reasoning tag (all of `text` when there is none).

    Returns None when a trace never closes: an opening tag with no closing tag after it.
    """
    if not tags:
        return text
    opening, at_start, closing = _tag_patterns(tags)
    lowered = text.lower()
    if len(lowered) == len(text):
        # Substring search is ~10x faster than the regex on long completions (the parent runs this per sample).
        end = max((i + len(close) for _, close in tags if (i := lowered.rfind(close.lower())) >= 0), default=0)
        after = lowered[end:]
        unclosed = any(open_ in after for open_ in _lowered_openings(tags))
    else:  # a character whose lower case is longer: indices differ, use the regexes
        end = max((match.end() for match in closing.finditer(text)), default=0)
        unclosed = opening is not None and opening.search(text, end) is not None
    if unclosed or (end == 0 and at_start is not None and at_start.match(text)):
        return None
    return text[end:]


# --- the region's text -------------------------------------------------------------------------

FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: " ", 0x3002: ".", 0xFF0C: ", ", 0x3001: ", "}
ANSWER_TAG_RE = re.compile(r"<((?:final_)?answer)>(.*?)(?:</\1>|\Z)", re.IGNORECASE | re.DOTALL)
FENCE_RE = re.compile(r"```[ \t]*([\w+#-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
OUTPUT_LABELS = {"output", "text", "txt", "plaintext", "result", "stdout", "markdown", "md", "latex", "tex", "math"}
CODE_LINE_RE = re.compile(r"^\s*(?:print\(|import |from \w+ import|def |return |for .* in |[A-Za-z_]\w*(?:\[[^\]]*\])?\s*[-+*/]?=[^=])", re.MULTILINE)
RUN_ON_RE = re.compile(r"\n[ \t]*(?:#+[ \t]*)?(?:\*\*)?(?:Question|Q|Problem|Human|User|Exercise)(?:[ \t]*\d+)?(?:\*\*)?[ \t]*[:.]", re.IGNORECASE)
# End-of-turn tokens some servers leave in the text: what follows is not the answer.
END_OF_TURN_RE = re.compile(r"<\|im_end\|>|<\|endoftext\|>|<\|eot_id\|>|<\|end_of_text\|>|</s>|<\|im_start\|>")
HAS_ANSWER_RE = re.compile(r"\\(?:boxed|fbox)|####|\b(?:final\s+)?answer\b\s*(?:is\b|:)", re.IGNORECASE)


def full_width_to_ascii(text: str) -> str:
    """Full-width letters, digits and punctuation as ASCII; the CJK comma and period as ", " and "."."""
    return text if text.isascii() else text.translate(FULL_WIDTH)


def _strip_code(text: str) -> str:
    if "```" not in text:
        return text

    def replace(match: re.Match) -> str:
        label, body = match.group(1).lower(), match.group(2)
        if label in OUTPUT_LABELS or (not label and not CODE_LINE_RE.search(body)):
            return "\n" + body.strip() + "\n"
        return "\n"

    return FENCE_RE.sub(replace, text)


def cut_run_on(text: str) -> str:
    """`text` up to the first invented next question that follows an answer (see the module
    docstring), and up to an end-of-turn token (`<|im_end|>`, `</s>`, ...) wherever it is."""
    if ("<|" in text or "</s>" in text) and (end := END_OF_TURN_RE.search(text)):
        text = text[: end.start()]
    for match in RUN_ON_RE.finditer(text):
        if HAS_ANSWER_RE.search(text, 0, match.start()):
            return text[: match.start()]
    return text


def answer_text(region: str) -> str:
    """The part of a region the answer is read from: the last `<answer>` span if any, full-width
    forms as ASCII, code blocks left out (output blocks kept as text), a few-shot run-on cut."""
    spans = ANSWER_TAG_RE.findall(region) if ("nswer>" in region or "NSWER>" in region) else None
    if spans:
        region = spans[-1][1]
    return cut_run_on(_strip_code(full_width_to_ascii(region)))


# A remark after the answer, which may name other values: "7, which is 3 fewer than Tom",
# "D, since B double counts", "5, not 6". Only after a comma, semicolon, dash or bracket: "42
# because 6 times 7" stays whole (and is then not one value).
SIDE_REMARK_RE = re.compile(
    r"(?:,|;|\s+[-\u2013\u2014]+)\s*(?:which|that|who)\s+(?:is|was|are|were)\b"
    r"|,\s*(?:(?:since|because|as|compared|whereas|while|although|though|but|not|rather\s+than|instead\s+of|so\s+that)\b|i\.e\.|e\.g\.)"
    r"|\s*\((?:(?:which|since|because|as|compared|not|note)\b|i\.e\.|e\.g\.)"
    # A comparison after the answer: "24 marbles, 6 more than before", "30 (6 fewer than Tom)", "30 - 6 less".
    r"|(?:,|;|\s+[-\u2013\u2014]+|\s*\()\s*(?=[-+]?\d+(?:\.\d+)?\s*(?:%\s*)?(?:\w+\s+)?(?:more|fewer|less|greater|higher|lower|times|larger|smaller)\b)",
    re.IGNORECASE,
)


# One value (a number, a letter, a math span), then a comma and a word in any language: the
# words are a remark ("8, weil 2 mal 4 acht ist"). A list ("3, 5", "19, 46, and 82") is not cut.
VALUE_THEN_WORDS_RE = re.compile(
    r"^(\s*(?:[-+]?[$\\]*\d[\d.]*(?:\\?%)?|\(?[A-Za-z]\)?|\$[^$]+\$))\s*,\s+"
    r"(?!(?:and|or|und|oder|et|ou|y|o|e|\u0438|\u0438\u043b\u0438)\b)(?=[^\W\d_]{2,})"
)


def cut_side_remark(text: str) -> str:
    """`text` up to a remark that follows the answer (see SIDE_REMARK_RE and VALUE_THEN_WORDS_RE)."""
    match = SIDE_REMARK_RE.search(text)
    if match and match.start() > 0:
        text = text[: match.start()].rstrip()
    if value := VALUE_THEN_WORDS_RE.match(text):
        return value.group(1).strip()
    return text
