"""What math-verify reads: the math grader, single values for the numeric grader, the
independent reading of the whole completion (the default audit), and whether a gold is readable.

Timeouts are off (`parsing_timeout=None`, `timeout_seconds=None`) in everything the worker pool
runs: the pool's hard kill bounds every call, so a slow comparison becomes `timeout`, never a
silent "incorrect" (math-verify's own timeouts also need SIGALRM in the main thread and whole
seconds; FIELD-NOTES). `str()` of a parsed sympy object can hang (math-verify #65): only
math-verify's own extracted strings are kept.

    grade_math("\\\\boxed{2:15}", "4:30")     # Outcome('incorrect', '2:15'): a clock time, not 2/15
    math_value("\\\\frac{\\\\sqrt{3}}{2}")         # 0.866...
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from paced_curate.grade.answers import answer_phrase, find_last_box, tail_sentence
from paced_curate.grade.notation import DASHES, inequality_to_interval, is_interval, math_text, unicode_to_latex
from paced_curate.grade.numbers import clocks_equal, parse_clock, parse_ratio, ratios_equal, without_remark
from paced_curate.grade.regions import cut_side_remark


class Outcome(NamedTuple):
    """A grader's answer for one (completion, gold) pair."""

    verdict: str
    """One of correct, incorrect, no_answer, timeout, error."""
    extracted: str | None
    """The extracted answer as text (None when nothing was extracted)."""
    error: str | None = None
    """Why grading failed (verdicts timeout and error only)."""


DELIMITED_RE = re.compile(r"\$|\\boxed|\\\(|\\\[")
CLOCK_TOKEN_RE = re.compile(r"\b\d{1,2}:[0-5]\d(?::[0-5]\d)?(?:\s*[AaPp]\.?\s*[Mm]\.?)?")
RATIO_TOKEN_RE = re.compile(r"-?\d+(?:\.\d+)?(?:\s*:\s*-?\d+(?:\.\d+)?)+")
MATH_SPAN_RE = re.compile(r"\$([^$]+)\$|\\\((.+?)\\\)")
COLON_PAIR_RE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*:\s*(-?\d+(?:\.\d+)?)\s*$")


def _parse(text: str) -> list:
    from math_verify import parse

    return parse(text, parsing_timeout=None, raise_on_error=True)


@functools.lru_cache(maxsize=4096)
def parse_gold(gold: str) -> list:
    """math-verify's reading of a gold (after `math_text`); bare LaTeX is put in `$...$` first,
    since math-verify reads `\\frac{1}{2}` or `\\pi` alone as nothing."""
    text = gold if DELIMITED_RE.search(gold) else f"${math_text(gold)}$"
    return _parse(text)


class GoldForm(NamedTuple):
    """How a gold is compared: as a clock time, a ratio, or by math-verify."""

    kind: str
    """clock, ratio or math."""
    value: object


def gold_form(gold: str) -> GoldForm:
    """A gold `H:MM` is a clock time; `a:b` otherwise a ratio; anything else goes to math-verify.

    Raises:
        ValueError: math-verify reads nothing in the gold (or fails on it).
    """
    if (clock := parse_clock(gold)) is not None:
        return GoldForm("clock", clock)
    if (ratio := parse_ratio(gold)) is not None:
        return GoldForm("ratio", ratio)
    parsed = parse_gold(gold)
    if not parsed:
        raise ValueError(f"gold answer {gold!r} cannot be parsed by math-verify")
    return GoldForm("math", parsed)


DELIMITER_RE = re.compile(r"\\\\|\\[{}()\[\]]|[{}()\[\]]")
"""Braces and brackets, plain or written as symbols (`\\{`); `\\\\` (a line break) is matched so its
second backslash escapes nothing."""
CLOSES = {"}": "{", ")": "([", "]": "([", "\\}": "\\{"}
SKIPPED = {"\\\\", "\\(", "\\)", "\\[", "\\]"}
"""A line break, and display delimiters (`\\(...\\)` holds the math, not a group)."""


def unbalanced(gold: str) -> str | None:
    """What does not balance in a gold's braces or brackets, e.g. "an unclosed '{'", else None.

    Braces must nest exactly (LaTeX groups). Round and square brackets close each other, since an
    interval may be half-open (`[0, 1)`); they and the set braces `\\{ \\}` are not checked
    beside `\\left.` or `\\right.`, which pair a delimiter with nothing (a piecewise function).
    math-verify reads a gold such as `\\frac{` or `\\sqrt{2` as a plain string that no answer
    equals, so it must be refused, not graded.
    """
    loose = re.search(r"\\(?:left|right)\s*\.", gold) is not None
    stack: list[str] = []
    for match in DELIMITER_RE.finditer(gold):
        token = match.group()
        if token in SKIPPED or (loose and token != "{" and token != "}"):
            continue
        if token not in CLOSES:
            stack.append(token)
        elif not stack:
            return f"an unmatched {token!r}"
        elif stack[-1] not in CLOSES[token]:
            return f"an unclosed {stack[-1]!r}"
        else:
            stack.pop()
    return f"an unclosed {stack[-1]!r}" if stack else None


def _interval_gold(gold: str, answer: str) -> list | None:
    """A gold written as an inequality, read as intervals when the answer is an interval."""
    interval = inequality_to_interval(gold) if is_interval(math_text(answer)) else None
    return None if interval is None else _parse(f"${interval}$")


def _last_token(pattern: re.Pattern, text: str) -> str | None:
    tokens = pattern.findall(text)
    return tokens[-1] if tokens else None


def _math_answer(answer: str, gold: str) -> str:
    """The answer as math-verify should see it, given the gold: notation fixed (`math_text`), an
    inequality written for an interval gold as intervals (and the reverse), `a:b` as a fraction."""
    text = math_text(without_remark(cut_side_remark(answer)))
    if is_interval(gold) and (interval := inequality_to_interval(text)) is not None:
        return interval
    if (pair := COLON_PAIR_RE.match(text)) is not None:
        top, bottom = pair.groups()
        # "2:00" against a number: no value (math-verify would read 2/0 and fail).
        return f"\\frac{{{top}}}{{{bottom}}}" if float(bottom) else "\\text{" + text + "}"
    return text


def _verify(gold_parsed: list, answer_parsed: list) -> bool:
    from math_verify import verify

    return verify(gold_parsed, answer_parsed, timeout_seconds=None, raise_on_error=True)


def grade_math(text: str, gold: str) -> Outcome:
    """math-verify on the last box (else the answer phrase, else the tail sentence) and the gold.

    A clock-time gold compares clock times (`2:15` is not `4:30`, though 2/15 = 4/30); a ratio
    gold compares ratios (1:2 = 2:4) or, for two terms, the value a/b (`\\frac{1}{2}`); an interval
    gold also accepts the inequality (`x > 3` for `(3, \\infty)`, unions joined by "or"). The
    answer goes through `math_text` first. Exceptions propagate (`raise_on_error=True`) and
    become the verdict `error`; a gold math-verify cannot read is `error` (golds are checked before
    any work, so this is a bug, or a direct call).
    """
    try:
        form = gold_form(gold)
    except ValueError:
        return Outcome("error", None, f"gold answer {gold!r} cannot be parsed by math-verify; use --grader exact")
    found, box = find_last_box(text)
    if found and box is None:
        return Outcome("no_answer", None)
    answer = box if found else answer_phrase(text)
    tail = None if answer is not None else tail_sentence(text)
    if answer is None and tail is None:
        return Outcome("no_answer", None)
    if form.kind == "clock":
        shown = answer if answer is not None else _last_token(CLOCK_TOKEN_RE, tail)
        if shown is None:
            return Outcome("no_answer", None)
        clock = parse_clock(shown)
        return Outcome("correct" if clock is not None and clocks_equal(clock, form.value) else "incorrect", shown.strip())
    if form.kind == "ratio":
        shown = answer if answer is not None else _last_token(RATIO_TOKEN_RE, tail)
        if shown is not None and (ratio := parse_ratio(shown)) is not None:
            return Outcome("correct" if ratios_equal(ratio, form.value) else "incorrect", shown.strip())
        if len(form.value) != 2 or not form.value[1]:
            return Outcome("incorrect", shown) if shown is not None else Outcome("no_answer", None)
        gold_parsed = _parse(f"$\\frac{{{form.value[0]:g}}}{{{form.value[1]:g}}}$")
    else:
        gold_parsed = form.value
        if answer is not None and (as_interval := _interval_gold(gold, answer)) is not None:
            gold_parsed = as_interval
    if answer is None and is_interval(gold):
        # An inequality in the tail's math ("The solution set is $x > 3$.") is the answer.
        spans = [match.group(1) or match.group(2) for match in MATH_SPAN_RE.finditer(tail)]
        answer = next((span for span in reversed(spans) if inequality_to_interval(span) is not None), None)
    if answer is not None:
        parsed = _parse("\\boxed{" + _math_answer(answer, gold) + "}")
    else:
        parsed = _parse(unicode_to_latex(tail.translate(DASHES)))
    # Keep math-verify's extracted string; str() of a sympy object can hang (math-verify #65).
    extracted = next((item for item in reversed(parsed) if isinstance(item, str)), None)
    if not parsed:
        return Outcome("no_answer", None)
    return Outcome("correct" if _verify(gold_parsed, parsed) else "incorrect", extracted)


MATH_WORD_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")


def math_value(text: str) -> float | None:
    """The real value of one constant math-verify reads in `text` (`\\frac{\\sqrt{3}}{2}`, `2\\pi`,
    `3^{2}`), or None: no reading, a symbol, a set, a tuple, an equation, a complex number, or
    prose (a word of three letters outside LaTeX commands)."""
    if not text.strip() or MATH_WORD_RE.search(re.sub(r"\\(?:text|mathrm|operatorname)\{[^{}]*\}", "", text)):
        return None
    parsed = _parse("$" + math_text(text) + "$")
    expr = parsed[0] if parsed else None
    try:
        # count_ops bounds evalf's work: huge powers never reach it (math-verify #65).
        if expr is None or not getattr(expr, "is_number", False) or expr.count_ops() > 60:
            return None
        value = complex(expr.evalf(15))
    except (TypeError, ValueError, AttributeError, ArithmeticError):
        return None
    if value.imag or value.real != value.real or abs(value.real) == float("inf"):
        return None
    return value.real


def read_independently(text: str, gold: str) -> Outcome:
    """math-verify called alone on the whole completion, with its default extraction: the
    independent reading the grade summary compares paced's verdicts with (`--audit math-verify`)."""
    gold_parsed = _parse(gold if DELIMITED_RE.search(gold) else f"${gold}$")
    if not gold_parsed:
        return Outcome("error", None, f"gold answer {gold!r} cannot be parsed by math-verify")
    parsed = _parse(text)
    if not parsed:
        return Outcome("no_answer", None)
    extracted = next((item for item in reversed(parsed) if isinstance(item, str)), None)
    return Outcome("correct" if _verify(gold_parsed, parsed) else "incorrect", extracted)
