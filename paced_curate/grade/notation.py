"""Notation that readers of an answer must see through: wrappers, Unicode symbols, number words,
repeating decimals, named sets, inequalities written for intervals, and what math-verify needs
before it reads a box.

    unwrap("$\\\\text{Paris}$")                 # 'Paris'
    unicode_to_latex("2\u221a3 + x\u00b2")        # '2\\\\sqrt{3} + x^{2}'
    number_word_value("twenty-five")          # 25.0
    inequality_to_interval("x < -2 or x > 3")  # '(-\\\\infty, -2) \\\\cup (3, \\\\infty)'
    math_text("1,\\\\!000,\\\\!000")              # '1000000' (what math-verify is given)
"""

from __future__ import annotations

import re
from fractions import Fraction

# Unicode minus, figure dash .. horizontal bar, small and full-width hyphen-minus: all mean "-".
DASHES = dict.fromkeys(map(ord, "\u2212\u2012\u2013\u2014\u2015\ufe63\uff0d"), "-")
TEXT_RE = re.compile(r"\\(?:text|textbf|textrm|textnormal|mathrm|mathbf|mbox|textit|textsf|mathit|operatorname)\s*\{([^{}]*)\}")
MARKDOWN_RE = re.compile(r"\*\*|__|`")


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


# --- Unicode symbols -------------------------------------------------------------------------

SYMBOLS = {
    "\u00b0": "^{\\circ}", "\u03c0": "\\pi", "\u221e": "\\infty", "\u00d7": "\\times", "\u00b7": "\\cdot", "\u22c5": "\\cdot",
    "\u00f7": "\\div", "\u2264": "\\le", "\u2265": "\\ge", "\u2260": "\\ne", "\u00b1": "\\pm", "\u2213": "\\mp",
    "\u222a": "\\cup", "\u2229": "\\cap", "\u2205": "\\emptyset", "\u211d": "\\mathbb{R}", "\u2208": "\\in",
    "\u00bd": "\\frac{1}{2}", "\u00bc": "\\frac{1}{4}", "\u00be": "\\frac{3}{4}", "\u2153": "\\frac{1}{3}", "\u2154": "\\frac{2}{3}",
    "\u215b": "\\frac{1}{8}", "\u2248": "\\approx ",
}
SUPERSCRIPTS = dict(zip("\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079\u207b\u207a", "0123456789-+"))
SUPERSCRIPT_RE = re.compile("[" + "".join(SUPERSCRIPTS) + "]+")
ROOT_RE = re.compile(r"([\u221a\u221b])\s*(\([^()]*\)|\{[^{}]*\}|\d+(?:\.\d+)?|[A-Za-z])")


def unicode_to_latex(text: str) -> str:
    """Unicode math (`2\u221a3`, `x\u00b2`, `30\u00b0`, `\u03c0`, `\u2264`, `\u00bd`) in LaTeX."""
    if text.isascii():
        return text

    def root(match: re.Match) -> str:
        body = match.group(2)
        body = body[1:-1] if body[0] in "({" else body
        return ("\\sqrt{" if match.group(1) == "\u221a" else "\\sqrt[3]{") + body + "}"

    text = ROOT_RE.sub(root, text)
    text = SUPERSCRIPT_RE.sub(lambda m: "^{" + "".join(SUPERSCRIPTS[c] for c in m.group(0)) + "}", text)
    return "".join(SYMBOLS.get(char, char) for char in text)


# --- number words ----------------------------------------------------------------------------

UNITS_WORDS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
TENS_WORDS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
WORD_VALUES = {word: i for i, word in enumerate(UNITS_WORDS)} | {word: 20 + 10 * i for i, word in enumerate(TENS_WORDS)}
SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}


def number_word_value(text: str) -> float | None:
    """The value of a number written in English words ("five", "twenty-five", "one hundred and
    two", "minus three"), or None when `text` is anything else."""
    words = re.sub(r"[-\s]+", " ", text.strip().rstrip(".").lower()).split()
    if not words:
        return None
    sign = 1
    if words[0] in ("minus", "negative"):
        sign, words = -1, words[1:]
    total, current, seen = 0, 0, False
    for word in words:
        if word == "and" and seen:
            continue
        if word in WORD_VALUES:
            current += WORD_VALUES[word]
        elif word in SCALES and seen:
            if SCALES[word] == 100:
                current = max(current, 1) * 100
            else:
                total += max(current, 1) * SCALES[word]
                current = 0
        else:
            return None
        seen = True
    return float(sign * (total + current)) if seen else None


# --- repeating decimals, named sets, intervals ------------------------------------------------

REPEATING_RE = re.compile(r"(-?)(\d*)\.(\d*)\\overline\{(\d+)\}")


def _repeating(match: re.Match) -> str:
    sign, whole, fixed, period = match.groups()
    value = Fraction(int(whole or "0")) + (Fraction(int(fixed), 10 ** len(fixed)) if fixed else 0)
    value += Fraction(int(period), (10 ** len(period) - 1) * 10 ** len(fixed))
    return f"{sign}\\frac{{{value.numerator}}}{{{value.denominator}}}"


DOT_RE = re.compile(r"(-?)(\d*)\.(\d*)\\dot\{?(\d)\}?(?:(\d*)\\dot\{?(\d)\}?)?")
PAREN_REPEATING_RE = re.compile(r"^(-?)(\d*)\.(\d*)\((\d+)\)$")


def _dotted(match: re.Match) -> str:
    sign, whole, fixed, first, middle, last = match.groups()
    period = first + (middle or "") + (last or "")
    return f"{sign}{whole}.{fixed}\\overline{{{period}}}"  # read by REPEATING_RE next


def repeating_to_fraction(text: str) -> str:
    """`0.\\overline{3}`, `0.\\dot{3}`, `0.(3)` -> `\\frac{1}{3}`; `1.2\\overline{34}` -> its exact fraction."""
    text = PAREN_REPEATING_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}.{m.group(3)}\\overline{{{m.group(4)}}}", text.strip())
    text = DOT_RE.sub(_dotted, text)
    return REPEATING_RE.sub(_repeating, text)


ALL_REALS_RE = re.compile(
    r"^(?:\\text\{)?\s*(?:all\s+real\s+(?:numbers|values)(?:\s+of\s+[a-z])?|all\s+reals|all\s+real\s+[a-z]|(?:the\s+set\s+of\s+)?real\s+numbers|every\s+real\s+number)\s*\}?$",
    re.IGNORECASE,
)
EMPTY_RE = re.compile(r"^(?:\\varnothing|\\emptyset|\\\{\s*\\\}|\{\s*\}|\\text\{\s*(?:no\s+solutions?|none|empty\s+set)\s*\})$", re.IGNORECASE)


def named_set(text: str) -> str | None:
    """LaTeX for a set named in words or by another symbol: all real numbers -> (-\\infty, \\infty),
    \\varnothing / no solution -> \\emptyset; None for anything else."""
    stripped = text.strip().rstrip(".")
    if ALL_REALS_RE.match(stripped) or stripped in ("\\mathbb{R}", "\\mathbb R", "\\R"):
        return "(-\\infty, \\infty)"
    if EMPTY_RE.match(stripped):
        return "\\emptyset"
    return None


NUMBER = r"-?(?:\d+(?:\.\d+)?|\\frac\{[^{}]+\}\{[^{}]+\}|\\sqrt\{[^{}]+\}|\\infty)"
LESS = {"<": "<", "\\lt": "<", "\\le": "<=", "\\leq": "<=", "\\leqslant": "<="}
GREATER = {">": ">", "\\gt": ">", "\\ge": ">=", "\\geq": ">=", "\\geqslant": ">="}
FLIP = dict(zip(LESS, GREATER)) | dict(zip(GREATER, LESS))
RELATION = r"(<|>|\\lt|\\gt|\\leqslant|\\geqslant|\\leq|\\geq|\\le|\\ge)"
BETWEEN_RE = re.compile(rf"^({NUMBER})\s*{RELATION}\s*([a-z])\s*{RELATION}\s*({NUMBER})$")
ONE_SIDE_RE = re.compile(rf"^([a-z])\s*{RELATION}\s*({NUMBER})$|^({NUMBER})\s*{RELATION}\s*([a-z])$")
AND_RE = re.compile(r"\s*(?:\\text\{\s*and\s*\}|\band\b|\\land|\\wedge)\s*")
NOT_EQUAL_RE = re.compile(rf"^([a-z])\s*(?:\\neq?|!=)\s*({NUMBER})$")
OR_RE = re.compile(r"\s*(?:\\text\{\s*or\s*\}|\bor\b|\\lor|\\vee|\\cup|,|;)\s*")


def _one(part: str) -> tuple[str, str] | None:
    """(left, right) interval ends of one inequality in one variable, or None."""
    part = part.strip().strip("$")
    if match := BETWEEN_RE.match(part):
        low, first, _, second, high = match.groups()
        if first in LESS and second in LESS:
            return ("[" if LESS[first] == "<=" else "(") + low, high + ("]" if LESS[second] == "<=" else ")")
        if first in GREATER and second in GREATER:
            return ("[" if GREATER[second] == ">=" else "(") + high, low + ("]" if GREATER[first] == ">=" else ")")
        return None
    if match := ONE_SIDE_RE.match(part):
        if match.group(1):
            relation, bound = match.group(2), match.group(3)
        else:  # "3 < x" is "x > 3"
            bound, relation = match.group(4), FLIP[match.group(5)]
        if relation in GREATER:
            return ("[" if GREATER[relation] == ">=" else "(") + bound, "\\infty)"
        return "(-\\infty", bound + ("]" if LESS[relation] == "<=" else ")")
    return None


def inequality_to_interval(text: str) -> str | None:
    """An inequality in one variable, or a union of them joined by "or", as interval notation.

    `x > 3` -> `(3, \\infty)`, `-1 \\le x < 2` -> `[-1, 2)`, `x < -2 \\text{ or } x > 3` ->
    `(-\\infty, -2) \\cup (3, \\infty)`; None when `text` is not such an inequality (or uses two variables).
    """
    text = unicode_to_latex(text).replace("\\left", "").replace("\\right", "").strip().strip("$").rstrip(".")
    text = re.sub(r"\\(?:[,;!]|quad|qquad)", " ", text)
    both = AND_RE.split(text)
    if len(both) == 2 and (first := _one(both[0])) and (second := _one(both[1])):
        lower = next((ends for ends in (first, second) if ends[1].endswith("\\infty)")), None)
        upper = next((ends for ends in (first, second) if ends[0].startswith("(-\\infty")), None)
        if lower is not None and upper is not None and lower is not upper:
            return f"{lower[0]}, {upper[1]}"
    if match := NOT_EQUAL_RE.match(text):
        return f"(-\\infty, {match.group(2)}) \\cup ({match.group(2)}, \\infty)"
    parts = [part for part in OR_RE.split(text) if part.strip()]
    if not parts or not re.search(RELATION, text):
        return None
    intervals, variables = [], set()
    for part in parts:
        ends = _one(part)
        if ends is None:
            return None
        variables.update(re.findall(r"(?<![a-z\\])[a-z](?![a-z])", part))
        intervals.append(f"{ends[0]}, {ends[1]}")
    return None if len(variables) > 1 else " \\cup ".join(intervals)


def is_interval(text: str) -> bool:
    """Whether `text` is written like an interval or a union of intervals (`(3, \\infty)`, `[1,2)
    \\cup (3,4]`, also `(2, 5)`, which may be a point: an inequality answer still reads as an interval)."""
    text = unicode_to_latex(text).strip().strip("$").replace("\\left", "").replace("\\right", "")
    pieces = re.split(r"\\cup", text)
    return all(re.fullmatch(r"\s*[(\[][^,()\[\]]+,[^,()\[\]]+[)\]]\s*", piece) for piece in pieces)


# --- what math-verify is given -----------------------------------------------------------------

LATEX_SPACING_RE = re.compile(r"\\(?:displaystyle|textstyle|left|right|bigl?|Bigl?|bigr|Bigr)(?![A-Za-z])")
THOUSANDS_RE = re.compile(r"(?<=\d)(?:,\\!|\{,\}\\!|\\[,!; ]|,\\,|~|[\u2009\u202f\u00a0])(?=\d{3}(?!\d))")
SPACED_THOUSANDS_RE = re.compile(r"(?<![\d.,])\d{1,3}(?: \d{3})+(?![\d.])")


def math_text(content: str) -> str:
    """A box's (or an answer phrase's) content made safe for math-verify.

    math-verify alone reads `9\\,500` as 509, `1.5e3` as 1.5*e*3, `\u20137` or `5.` as text,
    `1,\\!000` as a pair, `1 000 000` as a product, `30\u00b0`, `2\u221a3`, `x\u00b2` and `\\varnothing` as
    unknown symbols, `0.\\overline{3}` as 0, `\\text{five}` as a word and `14.0 - 1.0i` with `i` a
    variable. Here: dashes are minus signs; thousands separators go; e notation becomes
    `\\times 10^{k}`; Unicode math becomes LaTeX; a repeating decimal becomes its fraction; a
    number word becomes its digits; a named set becomes its symbol; `\\displaystyle`,
    `\\left`/`\\right` go; `1.0i` becomes `1.0 i`; a final period is dropped.
    """
    text = unicode_to_latex(content.translate(DASHES)).strip()
    text = LATEX_SPACING_RE.sub("", text)
    text = THOUSANDS_RE.sub("", text)
    text = SPACED_THOUSANDS_RE.sub(lambda m: m.group(0).replace(" ", ""), text)
    text = re.sub(r"(?<![\w\\.])(\d+(?:\.\d+)?)[eE]([-+]?\d+)(?![\w.])", r"\1\\times 10^{\2}", text)
    text = repeating_to_fraction(text)
    text = re.sub(r"\\(?:mathrm|text|mathit|operatorname)\{([ie])\}", r" \1", text)  # \mathrm{i}: the unit i
    text = re.sub(r"(?<=\d)i(?![A-Za-z])", " i", text)
    text = re.sub(r"(?<=\d)\s*\.$", "", text.strip())
    text = re.sub(r"\\+\s*$", "", text)  # a trailing line break "\\" (NeMo-Skills strips it too)
    words = unwrap(text)
    if re.fullmatch(r"[A-Za-z][A-Za-z \-]*", words) and (value := number_word_value(words)) is not None:
        return str(int(value))
    return named_set(text) or named_set(words) or text
