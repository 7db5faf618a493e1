"""What counts as the answer of a completion: the region after the reasoning trace (regions.py),
then the last box, else an answer phrase, else the tail of the text.

The rules (README "What counts as the answer" says the same):

1. The region (regions.py): the text after the last closing reasoning tag (an unclosed trace
   is no answer), inside the last `<answer>...</answer>`, full-width forms as ASCII, without
   code blocks, and cut before an invented next question (few-shot run-on).
2. The last box. The last `\\boxed{...}` / `\\fbox{...}` of the region is the answer (braces
   matched; `\\boxed 42` reads 42). When that last box never closes (the output was cut), the
   answer is unreadable: `no_answer`, never an earlier box. Boxes joined only by a connective
   ("$x = \\boxed{3}$ or $x = \\boxed{5}$", "\\boxed{3}, \\boxed{5}") are one answer, "3, 5" (several
   roots); boxes with anything else between ("\\boxed{2} or rather \\boxed{3}") are not merged.
3. Without a box (`--answer-format any`, the default): the text after the last "answer is" /
   "Answer:" / "final answer is" / "correct option is" / a "Final Answer" heading line / an
   answer label in another language (Chinese, Japanese, Korean, French, German, Spanish,
   Portuguese, Russian) / GSM8K's "####" followed by a value (a markdown heading such as
   "#### Step 2: Daily income" is not the marker), to the end of its sentence or its `$...$`
   span, without a remark after a comma ("7, which is 3 fewer than Tom" gives 7; the Minerva
   format "Final Answer: The final answer is $x$. I hope it is correct." gives `x`); else the
   tail: the last sentence that holds a number or math, without such a remark ("Mia has 7
   apples left, which is 3 fewer than Tom." gives that sentence up to "left"), for each grader
   to read (math: math-verify; numeric: its last number; exact and choice: a one-line text).
   With `--answer-format boxed` a completion without a box has no answer.

    region = answer_region(completion, tags)           # None: unclosed trace
    found, content = find_last_box(answer_text(region))   # (True, None): last box left open
"""

from __future__ import annotations

import re

from paced_curate.grade.choices import choice_letter, gold_letter  # noqa: F401 (re-exported)
from paced_curate.grade.notation import DASHES, MARKDOWN_RE, TEXT_RE, math_text, unwrap  # noqa: F401 (re-exported)
from paced_curate.grade.numbers import last_number, parse_number  # noqa: F401 (re-exported)
from paced_curate.grade.regions import (  # noqa: F401 (re-exported)
    DEFAULT_REASONING_TAGS,
    answer_region,
    answer_text,
    cut_side_remark,
    parse_reasoning_tags,
)

ANSWER_FORMATS = ("any", "boxed")

BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
# Between two boxes that are one answer: a connective, maybe `x =` again, math delimiters, spaces.
ASSIGNMENT = r"(?:[A-Za-z](?:_\{?\w+\}?)?|\\[A-Za-z]+)\s*=\s*"
BOX_JOIN_RE = re.compile(
    rf"[\s$]*(?:,|;|&|\\\\|\\quad|\\qquad|\bor\b|\band\b|\\text\{{\s*(?:or|and|,)\s*\}})[\s$]*(?:{ASSIGNMENT})?[\s$]*"
    # Roots on lines of their own, each with its variable: "x_1 = \boxed{3}" NEW LINE "x_2 = \boxed{5}".
    rf"|[ \t$]*\n[\s$]*{ASSIGNMENT}[\s$]*"
)
MAX_BOX_JOIN = 400
"""Most characters between two box commands that can still be one answer (a box and its joiner)."""
ENGLISH_LABEL = (
    r"\b(?:(?:final\s+)?answer|(?:correct|right|best)\s+(?:option|choice|answer)|answer\s+to\s+(?:the|this)\s+(?:question|problem))\b"
    # "answer = 42" is a phrase; "answer = x + y" (code, a formula of variables) is not.
    r"[\s*_]*(?:is\b|:|=(?=\s*[-+$\\(.\d]))"
    r"|^[ \t]*(?:#{1,6}[ \t]*)?(?:\*\*)?(?:the\s+)?final\s+answer(?:\*\*)?[ \t]*:?[ \t]*(?:\*\*)?[ \t]*$"
)
OTHER_LABELS = (
    r"(?:\u6700\u7ec8|\u6b63\u786e)?\u7b54\u6848(?:\u5e94\u8be5?|\u5e94)?(?:\u662f|\u4e3a)?\s*[:\uff1a]?"  # Chinese: answer (is)
    r"|(?:\u6545|\u6240\u4ee5|\u56e0\u6b64|\u5e94)\u9009(?:\u62e9)?"  # Chinese: so choose
    r"|\u6b63\u786e\u9009\u9879(?:\u662f|\u4e3a)"  # Chinese: the right option is
    r"|(?:\u7b54\u3048|\u6b63\u89e3)(?:\u306f|\s*[:\uff1a])"  # Japanese
    r"|(?:\uc815\ub2f5|\ub2f5)(?:\uc740|\ub294|\s*[:\uff1a])"  # Korean
    r"|\b(?:la\s+)?r[\u00e9e]ponse(?:\s+finale)?\s+est\b|\br[\u00e9e]ponse\s*:"  # French
    r"|\b(?:die\s+)?(?:endg[\u00fcu]ltige\s+)?antwort\s+(?:ist|lautet)\b|\bantwort\s*:"  # German
    r"|\b(?:la\s+)?respuesta(?:\s+final)?\s+es\b|\brespuesta\s*:"  # Spanish
    r"|\b(?:a\s+)?resposta(?:\s+final)?\s+[\u00e9e]\b|\bresposta\s*:"  # Portuguese
    r"|\u043e\u0442\u0432\u0435\u0442\s*:"  # Russian
    r"|\b(?:la\s+)?risposta(?:\s+finale)?\s+[\u00e8e]\b|\brisposta\s*:"  # Italian
    r"|\bhet\s+(?:juiste\s+)?antwoord\s+is\b|\bantwoord\s*:"  # Dutch
    r"|\u0111\u00e1p\s+\u00e1n(?:\s+l\u00e0)?\s*:?"  # Vietnamese
    r"|\bjawaban(?:nya)?(?:\s+adalah)?\s*:?(?=\s)"  # Indonesian
    r"|\bcevap(?:\s+\u015fudur)?\s*:"  # Turkish
)
# GSM8K's "#### 18": a value follows; a markdown heading ("#### Step 2: ...", "#### 1. Eggs") does not.
GSM8K_MARKER = r"####(?=[ \t]*(?:\*\*)?[ \t]*[-+$\\(.\d])(?![ \t]*\d+(?:[.):][ \t]+|[ \t]+)[A-Za-z])"
# Words every label contains: a text without any has no answer phrase (a cheap scan before ANSWER_RE).
LABEL_TRIGGER_RE = re.compile(
    r"answer|option|choice|antwo|r[\u00e9e]ponse|respuesta|resposta|risposta|\u043e\u0442\u0432\u0435\u0442|\u0111\u00e1p|jawab|cevap|####"
    r"|[\u7b54\u9009\u89e3\ub2f5]",
    re.IGNORECASE,
)
# Overlapping (a lookahead), so that "Final Answer: The final answer is $x$" finds the inner phrase.
ANSWER_RE = re.compile(rf"(?=(?:{ENGLISH_LABEL}|{OTHER_LABELS}|{GSM8K_MARKER})[\s*_:=]*([^\n]*))", re.IGNORECASE | re.MULTILINE)


# --- boxes and answer phrases ---------------------------------------------------------------


def _box_at(text: str, start: int) -> tuple[str | None, int]:
    """The content of the box whose command ends at `start` and where it ends; (None, -1) if open."""
    rest = text[start:]
    stripped = rest.lstrip()
    if not stripped.startswith("{"):
        # "\boxed 42": the token after it, as people mean it (LaTeX would box only "4").
        token = re.match(r"[^\s$]+", stripped)
        return (token.group(0), start + len(rest) - len(stripped) + token.end()) if token else (None, -1)
    start += len(rest) - len(stripped) + 1
    depth = 1
    for index in range(start, len(text)):
        char = text[index]
        if char in "{}" and _escaped(text, index):
            continue  # \{ and \} are literal braces (but "\\}" is a line break, then a brace)
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start:index], index + 1
    return None, -1


def _escaped(text: str, index: int) -> bool:
    """Whether the character at `index` follows an odd number of backslashes."""
    count = 0
    while index - count - 1 >= 0 and text[index - count - 1] == "\\":
        count += 1
    return count % 2 == 1


def find_last_box(text: str) -> tuple[bool, str | None]:
    """The last `\\boxed`/`\\fbox` of `text`: (False, None) when there is none, (True, None) when
    it is left open (cut off), else (True, its content with braces matched). Boxes joined to it
    only by a connective ("\\boxed{3} or \\boxed{5}") are one answer: their contents joined by ", "."""
    matches = list(BOX_RE.finditer(text))
    if not matches:
        return False, None
    content, _ = _box_at(text, matches[-1].end())
    if content is None:
        return True, None
    contents, begin = [content], matches[-1].start()
    for previous in reversed(matches[:-1]):
        if begin - previous.end() > MAX_BOX_JOIN:
            break  # too far apart to be joined: no need to read the earlier box
        earlier, end = _box_at(text, previous.end())
        if earlier is None or not 0 <= end <= begin or not BOX_JOIN_RE.fullmatch(text[end:begin]):
            break
        contents.insert(0, earlier)
        begin = previous.start()
    return True, ", ".join(part.strip() for part in contents) if len(contents) > 1 else content


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
    """The answer after the last answer label (see the module docstring), or None.

    It ends at the end of its sentence, or is the `$...$` (or `\\(...\\)`) span it starts with:
    "Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct." -> "\\frac{3}{4}".
    When the label ends its line ("Answer:" or a "Final Answer" heading, then a new line), the
    next line is the answer. A remark after a comma is cut ("7, which is 3 fewer" -> "7").
    """
    trigger = LABEL_TRIGGER_RE.search(text)
    if trigger is None:
        return None
    # Labels start at most a few words before their trigger word ("the final answer is").
    matches = list(ANSWER_RE.finditer(text, max(0, trigger.start() - 40)))
    if not matches:
        return None
    last = matches[-1]
    phrase = last.group(1).strip()
    if not MARKDOWN_RE.sub("", phrase).strip(" #*_:"):
        following = text[last.start() :].split("\n", 1)
        phrase = following[1].strip().split("\n", 1)[0].strip() if len(following) > 1 else ""
    phrase = MARKDOWN_RE.sub("", phrase).strip()
    span = _math_span(phrase)
    if span is not None:
        return span or None
    sentence = re.split(r"\.(?:\s|$)", phrase, maxsplit=1)[0].strip()
    return cut_side_remark(sentence) or None


# --- the tail: no box, no phrase --------------------------------------------------------------

DISPLAY_RE = re.compile(r"\$\$(.*?)\$\$|\\\[(.*?)\\\]", re.DOTALL)
SENTENCE_END_RE = re.compile(r"(?<!\d)\.(?=\s|$)|\.(?=\s+[A-Z(])|\n+")
HAS_VALUE_RE = re.compile(r"\d|\\frac|\\sqrt|\\pi|\\infty|\$|\\\(")


def tail_sentence(text: str) -> str | None:
    """The last sentence of `text` that holds a number or math, without a remark after a comma
    ("Therefore, Mia has 7 apples left, which is 3 fewer than Tom." -> "Therefore, Mia has 7
    apples left"); None when no sentence holds one. Display math spans count as one sentence."""
    text = DISPLAY_RE.sub(lambda m: "$" + " ".join((m.group(1) or m.group(2) or "").split()) + "$", text)
    for sentence in reversed(SENTENCE_END_RE.split(text)):
        sentence = sentence.strip()
        if HAS_VALUE_RE.search(sentence):
            return cut_side_remark(sentence)
    return None
