"""What counts as the answer of a completion: the text after the reasoning trace, the last box,
a final-answer phrase, and how numbers and choice letters are read from it.

The rules (README "What counts as the answer" says the same):

1. Reasoning trace. With reasoning tags (default `<think>,</think>` and
   `<|begin_of_thought|>,<|end_of_thought|>`, matched case-insensitively), only the text after
   the LAST closing tag of any pair is graded; text before an opening tag and everything inside
   traces is ignored. A closing tag without an opening tag (templates that put `<think>` in the
   prompt) works the same. An opening tag with no closing tag after it (the model stopped
   mid-thought) means there is no answer (`no_answer`), whatever the trace holds.
2. The last box. The last `\\boxed{...}` / `\\fbox{...}` of that text is the answer (braces
   matched; `\\boxed 42` without braces reads as the token after it, 42). When that last box
   never closes (the output was cut), the answer is unreadable: `no_answer`, never an earlier
   box. Two boxes close together are not merged: the last one counts.
3. Without a box (`--answer-format any`, the default): the text after the last "answer is" /
   "Answer:" / "final answer is" / "correct option is" / GSM8K's "####" (to the end of its
   sentence, or its `$...$` span; the Minerva format "Final Answer: The final answer is $x$. I
   hope it is correct." gives `x`), else what each grader does on its own (math: math-verify's
   extraction; numeric: the last number; exact and choice: a one-line completion). With
   `--answer-format boxed` a completion without a box has no answer.

    tags = parse_reasoning_tags(DEFAULT_REASONING_TAGS)
    region = answer_region(completion, tags)           # None: unclosed trace
    found, content = find_last_box(region)             # (True, None): last box left open
    parse_number("\\\\$9{,}500")                         # 9500.0
    choice_letter("E) 42 meters")                      # 'E'
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from paced_curate.errors import ConfigError

DEFAULT_REASONING_TAGS = ("<think>,</think>", "<|begin_of_thought|>,<|end_of_thought|>")
ANSWER_FORMATS = ("any", "boxed")

BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
# Overlapping (a lookahead), so that "Final Answer: The final answer is $x$" finds the inner phrase.
ANSWER_RE = re.compile(
    r"(?=(?:\b(?:(?:final\s+)?answer|(?:correct|right|best)\s+(?:option|choice))\b[\s*_]*(?:is\b|:|=)|####)[\s*_:=]*([^\n]*))", re.IGNORECASE
)
# Unicode minus, figure dash .. horizontal bar, small and full-width hyphen-minus: all mean "-".
DASHES = dict.fromkeys(map(ord, "\u2212\u2012\u2013\u2014\u2015\ufe63\uff0d"), "-")
TEXT_RE = re.compile(r"\\(?:text|textbf|textrm|textnormal|mathrm|mathbf|mbox|textit)\s*\{([^{}]*)\}")
MARKDOWN_RE = re.compile(r"\*\*|__|`")


# --- reasoning traces ------------------------------------------------------------------------


def parse_reasoning_tags(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """Tag pairs from `--reasoning-tags` values ("OPEN,CLOSE" each; "none" alone turns them off).

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
        if value == "none" or len(parts) != 2 or not all(part.strip() for part in parts):
            raise ConfigError(f"--reasoning-tags {value!r}: give OPEN,CLOSE (e.g. '<think>,</think>'), or 'none' alone to turn traces off")
        pairs.append((parts[0].strip(), parts[1].strip()))
    return tuple(pairs)


@functools.lru_cache(maxsize=64)
def _tag_patterns(tags: tuple[tuple[str, str], ...]) -> tuple[re.Pattern, re.Pattern]:
    opening = re.compile("|".join(re.escape(open_) for open_, _ in tags), re.IGNORECASE)
    closing = re.compile("|".join(re.escape(close) for _, close in tags), re.IGNORECASE)
    return opening, closing


def answer_region(text: str, tags: tuple[tuple[str, str], ...]) -> str | None:
    """The text after the last closing reasoning tag (all of `text` when there is none).

    Returns None when a trace never closes: an opening tag with no closing tag after it.
    """
    if not tags:
        return text
    opening, closing = _tag_patterns(tags)
    end = 0
    for match in closing.finditer(text):
        end = match.end()
    region = text[end:]
    return None if opening.search(region) else region


# --- boxes and answer phrases ---------------------------------------------------------------


def find_last_box(text: str) -> tuple[bool, str | None]:
    """The last `\\boxed`/`\\fbox` of `text`: (False, None) when there is none, (True, None) when
    it is left open (cut off), else (True, its content with braces matched)."""
    matches = list(BOX_RE.finditer(text))
    if not matches:
        return False, None
    start = matches[-1].end()
    rest = text[start:]
    stripped = rest.lstrip()
    if not stripped.startswith("{"):
        # "\boxed 42": the token after it, as people mean it (LaTeX would box only "4").
        token = re.match(r"[^\s$]+", stripped)
        return True, (token.group(0) if token else None)
    start += len(rest) - len(stripped) + 1
    depth = 1
    for index in range(start, len(text)):
        char = text[index]
        if char in "{}" and text[index - 1] == "\\":
            continue  # \{ and \} are literal braces
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return True, text[start:index]
    return True, None


def last_boxed(text: str) -> str | None:
    """The content of the last box of `text`; None when there is no box or the last one is open."""
    return find_last_box(text)[1]


def _math_span(text: str) -> str | None:
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if text.startswith(left):
            end = text.find(right, len(left))
            return text[len(left) : end].strip() if end > len(left) else None
    return None


def answer_phrase(text: str) -> str | None:
    """The answer after the last "answer is" / "Answer:" / "final answer is" / "####", or None.

    It ends at the end of its sentence, or is the `$...$` (or `\\(...\\)`) span it starts with:
    "Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct." -> "\\frac{3}{4}".
    When the phrase is the end of a line ("Answer:" then a new line), the next line is the answer.
    """
    matches = list(ANSWER_RE.finditer(text))
    if not matches:
        return None
    last = matches[-1]
    phrase = last.group(1).strip()
    if not MARKDOWN_RE.sub("", phrase).strip():
        following = text[last.start() :].split("\n", 1)
        phrase = following[1].strip().split("\n", 1)[0].strip() if len(following) > 1 else ""
    phrase = MARKDOWN_RE.sub("", phrase).strip()
    span = _math_span(phrase)
    if span is not None:
        return span or None
    sentence = re.split(r"\.(?:\s|$)", phrase, maxsplit=1)[0].strip()
    return sentence or None


def unwrap(text: str) -> str:
    """`text` without math delimiters around it, `\\text{}`-like wrappers or markdown emphasis."""
    text = MARKDOWN_RE.sub("", text.translate(DASHES)).strip()
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if text.startswith(left) and text.endswith(right) and len(text) >= len(left) + len(right):
            text = text[len(left) : len(text) - len(right)].strip()
    previous = None
    while previous != text:
        previous, text = text, TEXT_RE.sub(r"\1", text)
    return text.strip()


# --- numbers --------------------------------------------------------------------------------

INTEGER = r"(?:\d{1,3}(?:,\d{3})+|\d+)"
PLAIN = rf"[-+]?(?:{INTEGER}(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
PLAIN_RE = re.compile(rf"^{PLAIN}$")
FRACTION_RE = re.compile(rf"^([-+]?)\\frac\{{\s*({PLAIN})\s*\}}\{{\s*({PLAIN})\s*\}}$")
SLASH_RE = re.compile(rf"^({PLAIN})\s*/\s*({PLAIN})$")
MIXED_RE = re.compile(rf"^([-+]?)(\d+)\s*(?:\\frac\{{\s*(\d+)\s*\}}\{{\s*(\d+)\s*\}}|\s(\d+)\s*/\s*(\d+))$")
POWER_RE = re.compile(rf"^(?:({PLAIN})\s*(?:\\times|\\cdot|×|·)\s*)?10\s*\^\s*(?:\{{\s*([-+]?\d+)\s*\}}|([-+]?\d))$")
# Thousands separators between digits: {,}  \,  \!  \ (a space)  ~  and thin / no-break spaces.
GROUP_SEPARATOR_RE = re.compile(r"(?<=\d)(?:\{,\}|\\[,!; ]|~|[\u2009\u202f\u00a0 ])(?=\d{3}(?!\d))")
UNITS = (
    "km|cm|mm|m|kg|mg|g|ms|s|min|h|hr|hrs|ml|mL|L|l|in|ft|yd|mi|lb|lbs|oz|mph|kph|km/h|m/s|cm/s|"
    "sq|sec|secs|deg|degrees|dollars|cents|units|meters|metres|inches|feet|miles|hours|minutes|seconds|days|years"
)
UNIT_TAIL_RE = re.compile(
    r"(?:\s|~|\\[,;:! ])*"
    r"(?:\\(?:text|textrm|textnormal|mathrm|mbox|operatorname)\s*\{[^{}\d]*\}(?:\s*\^\s*\{?\d\}?)?"
    r"|\^\s*\{?\s*\\circ\s*\}?|°|\\circ|\\%|%|\\\$"
    rf"|(?<=[\d\s}},;:!~])(?:{UNITS})\.?(?:\s*\^\s*\{{?\d\}}?)?"
    r"|(?<=[\s,;:!~])[A-Za-z]{2,}\.?)$"
)


# Words that change the value: "7.5 million" is not 7.5, so such an answer is not read at all.
MULTIPLIER_RE = re.compile(r"\b(?:hundreds?|thousands?|millions?|billions?|trillions?|dozens?|lakhs?|crores?)\b", re.IGNORECASE)


def _strip_units(text: str) -> str:
    previous = None
    while previous != text:
        previous = text
        text = UNIT_TAIL_RE.sub("", text).rstrip(" .")
    return text


def _plain(text: str) -> float | None:
    if not PLAIN_RE.match(text):
        return None
    value = float(text.replace(",", ""))
    return value if value == value and abs(value) != float("inf") else None


def parse_number(text: str) -> float | None:
    """The number `text` spells, or None when it is not exactly one number.

    Read: Unicode minus and dashes as "-"; thousands separators `1,234`, `9{,}500`, `9\\,500`,
    `9\\!500`, thin or plain spaces (only in groups of three digits: "1,23" and "1, 2" are not numbers);
    `1.5e3`, `1.5\\times 10^{3}`, `1.5\\cdot 10^3`, `10^{3}`; `\\frac`/`\\dfrac`/`\\tfrac{a}{b}`,
    `\\frac12`, `a/b`; mixed numbers `2\\frac{1}{2}` and `2 1/2` (2.5); `x = 5`; a leading `\\$` or
    `$`; a trailing `\\%` or `%` (50\\% is 50), units (`\\text{ meters}`, `cm`, `^\\circ`, words
    after a space) and a final period. Anything else (an expression, a list, `\\sqrt{2}`) is None:
    a grader then says no_answer rather than read some other number out of it.
    """
    text = unwrap(text).replace("\\left", "").replace("\\right", "")
    if MULTIPLIER_RE.search(text):
        return None
    text = re.sub(r"\\[dt]frac", r"\\frac", text)
    text = re.sub(r"\\frac\s*(\d)\s*(\d)", r"\\frac{\1}{\2}", text)
    text = re.sub(r"^[A-Za-z]\w*\s*=\s*", "", text.strip())  # x = 5
    text = re.sub(r"^(?:\\\$|\$)\s*", "", text).replace("\\$", "")
    text = _strip_units(text.strip().rstrip("."))
    text = GROUP_SEPARATOR_RE.sub(",", text).replace("{,}", ",")
    text = re.sub(r"^([-+])\s+", r"\1", text.strip())
    while text.startswith("{") and text.endswith("}") and text.count("{") == 1:
        text = text[1:-1].strip()
    value = _plain(text)
    if value is not None:
        return value
    if match := FRACTION_RE.match(text) or SLASH_RE.match(text):
        groups = match.groups()
        sign, top, bottom = ("", *groups) if len(groups) == 2 else groups
        top_value, bottom_value = _plain(top), _plain(bottom)
        if top_value is None or not bottom_value:
            return None
        return (-1 if sign == "-" else 1) * top_value / bottom_value
    if match := MIXED_RE.match(text):
        sign, whole, *parts = match.groups()
        top, bottom = (parts[0], parts[1]) if parts[0] is not None else (parts[2], parts[3])
        if int(bottom) == 0:
            return None
        return (-1 if sign == "-" else 1) * (int(whole) + int(top) / int(bottom))
    if match := POWER_RE.match(text):
        mantissa = 1.0 if match.group(1) is None else _plain(match.group(1))
        exponent = int(match.group(2) or match.group(3))
        if mantissa is None or abs(exponent) > 300:
            return None
        return mantissa * 10.0**exponent
    return None


NUMBER_TOKEN_RE = re.compile(
    r"\\[dt]?frac\s*\{[^{}]*\}\s*\{[^{}]*\}"
    r"|(?<![\w.])[-+]?(?:\d{1,3}(?:(?:,|\{,\}|\\,)\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w])"
    # A multiplier word stays with its number, so that "2.5 million" is not read as 2.5.
    r"(?:\s*(?:hundred|thousand|million|billion|trillion|dozen)s?\b)?"
)


def last_number(text: str) -> str | None:
    """The last number written in `text` (as text), for the numeric grader's fallback."""
    tokens = NUMBER_TOKEN_RE.findall(text.translate(DASHES))
    return tokens[-1] if tokens else None


def math_box_text(content: str) -> str:
    """A box's content made safe for math-verify, which reads `9\\,500` as 509, `1.5e3` as
    1.5*e*3 and `–7` or `5.` as text: dashes become "-", thin-space thousands separators go,
    e notation becomes `\\times 10^{k}`, and a final period is dropped."""
    text = content.translate(DASHES)
    text = re.sub(r"(?<=\d)\\[,!; ](?=\d{3}(?!\d))", "", text)
    text = re.sub(r"(?<![\w\\.])(\d+(?:\.\d+)?)[eE]([-+]?\d+)(?![\w.])", r"\1\\times 10^{\2}", text)
    return re.sub(r"(?<=\d)\s*\.$", "", text.strip())


# --- choice letters -------------------------------------------------------------------------

LABEL_RE = re.compile(r"^(?:the\s+)?(?:final\s+|correct\s+|best\s+)*(?:answer|option|choice)(?:\s+is)?\s*[:=]?\s*", re.IGNORECASE)
CHOICE_HEAD_RE = re.compile(r"^(?:\(([A-Z])\)|\[([A-Z])\]|([A-Z])(?=[).:,]|\s|$))[).:]?\s*(.*)$", re.DOTALL)
# After a letter: a connective and another letter, a bracketed letter, or a lone letter.
ANOTHER_CHOICE_RE = re.compile(r"^(?:(?:,|/|&|\\&|\+|;|and\b|or\b)\s*[(\[]?[A-Z](?![A-Za-z])|[(\[][A-Z][)\]]|[A-Z][.)]?$)")
STANDALONE_LETTER_RE = re.compile(r"(?<![A-Za-z'])[(\[]?[A-Z][)\]]?(?![A-Za-z'])")


def gold_letter(gold: str) -> str | None:
    """A gold choice: "B", "b", "(B)", "B.", "B)", "\\text{B}" -> "B"; else None."""
    match = re.fullmatch(r"[(\[]?([A-Za-z])[)\]]?\.?", re.sub(r"\s+", "", unwrap(gold)))
    return match.group(1).upper() if match else None


def choice_letter(text: str) -> str | None:
    """The one letter an answer chooses, or None when it chooses none or several.

    Read: "B", "(B)", "[B]", "B.", "**B**", "\\text{Answer: G}", "E) 42 meters" (option text after
    a letter with ")", "." or ":"), "(C) because ..."; a lone lower-case "b" or "(b)".
    Several letters ("A, C", "A or B", "B/D", "A and C", "(A)(C)", "AC") are None.
    """
    text = LABEL_RE.sub("", unwrap(text)).strip()
    lone = re.fullmatch(r"[(\[]?([a-z])[)\]]?\.?", text)
    if lone:
        return lone.group(1).upper()
    match = CHOICE_HEAD_RE.match(text)
    if not match:
        return None
    letter = match.group(1) or match.group(2) or match.group(3)
    rest = match.group(4).strip()
    delimited = match.group(3) is None or text[1:2] in (")", ".", ":")
    if ANOTHER_CHOICE_RE.match(rest):
        return None
    if not delimited and STANDALONE_LETTER_RE.search(rest):
        return None  # "A or maybe B", "C because I ...": it may name another choice
    return letter
