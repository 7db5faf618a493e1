"""Each grader's own equivalence between two extracted answers, which maj@K votes with.

Runs in the calling process (not the worker pool), with math-verify's own 5 s timeouts in the
main thread; a timeout or a failure counts as "not the same".

    same = same_answer("math")
    same("\\\\frac{1}{2}", "0.5")     # True
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable

from paced_curate.grade.choices import choice_letter
from paced_curate.grade.graders import DEFAULT_TOLERANCE, normalise
from paced_curate.grade.notation import math_text
from paced_curate.grade.numbers import read_quantity


def _timeout() -> int | None:
    # math-verify's timeouts use SIGALRM, which only works in the main thread (FIELD-NOTES).
    return 5 if threading.current_thread() is threading.main_thread() else None


@functools.lru_cache(maxsize=8192)
def _parse_answer(answer: str) -> tuple:
    """math-verify's parse of an extracted answer, in the calling process (cached)."""
    from math_verify import parse
    from math_verify.errors import TimeoutException

    delimited = answer if ("$" in answer or "\\boxed" in answer) else f"${math_text(answer)}$"
    try:
        return tuple(parse(delimited, parsing_timeout=_timeout()))
    except (Exception, TimeoutException):
        return ()


@functools.lru_cache(maxsize=8192)
def _value(answer: str) -> complex | None:
    """The numeric value of a small constant answer (7, 1/2, 5*sqrt(7), 7*pi/6), else None."""
    parsed = _parse_answer(answer)
    expr = parsed[0] if parsed else None
    try:
        # count_ops bounds evalf's work: huge powers never reach it (math-verify #65).
        if expr is not None and getattr(expr, "is_number", False) and expr.count_ops() <= 40:
            return complex(expr.evalf(15))
    except Exception:
        pass
    return None


def _math_same(first: str, second: str) -> bool:
    from math_verify import verify
    from math_verify.errors import TimeoutException

    parsed_first, parsed_second = _parse_answer(first), _parse_answer(second)
    if not parsed_first or not parsed_second:
        return normalise(first) == normalise(second)
    a, b = _value(first), _value(second)
    if a is not None and b is not None and abs(a - b) > 1e-4 * max(1.0, abs(a), abs(b)):
        return False  # two constants this far apart: verify would say no, at ~10 ms a call
    try:
        return bool(verify(list(parsed_first), list(parsed_second), timeout_seconds=_timeout()))
    except (Exception, TimeoutException):
        return False


def _numeric_same(first: str, second: str, tolerance: float) -> bool:
    a, b = read_quantity(first), read_quantity(second)
    if a is None or b is None:
        return normalise(first) == normalise(second)
    return math.isclose(a.value, b.value, rel_tol=tolerance, abs_tol=tolerance) and a.percent == b.percent


def _choice_same(first: str, second: str) -> bool:
    a, b = choice_letter(first), choice_letter(second)
    return a == b if a is not None and b is not None else normalise(first) == normalise(second)


def _spelling_same(first: str, second: str) -> bool:
    return normalise(first) == normalise(second)


def same_answer(name: str, tolerance: float = DEFAULT_TOLERANCE) -> Callable[[str, str], bool]:
    """The grader's own equivalence between two extracted answers: (first, second) -> bool.

    math: math-verify's `verify` with `first` in the gold's place (so `\\frac{1}{2}`, `0.5` and
    `1/2` are one answer); numeric: the two numbers are within `tolerance`; choice: the same
    letter; exact, and a plugin (which declares no equivalence): the same normalised spelling.
    """
    if name == "math":
        return _math_same
    if name == "numeric":
        return functools.partial(_numeric_same, tolerance=tolerance)
    if name == "choice":
        return _choice_same
    return _spelling_same
