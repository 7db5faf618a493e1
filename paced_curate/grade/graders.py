"""Graders: (completion, gold) -> verdict and extracted answer, for `paced grade --grader NAME`.

Built in: `math` (math-verify), `exact` (normalised string), `numeric` (within a tolerance) and
`choice` (a multiple-choice letter); `module:function` names a user's own grader. What counts
as the answer (text after the reasoning trace, the LAST box, answer phrases, `--answer-format
boxed`) is in answers.py; the parent cuts it out cheaply (`reduce_completion`) and grades each
distinct (answer, gold) pair once. `same_answer` is each grader's own equivalence between two
extracted answers, which maj@K votes with.

    spec = load_grader("math")
    grade = make_grader(spec)              # in a worker process
    grade(reduce_completion(spec, "so \\\\boxed{2} no, \\\\boxed{3}"), "3")
    # Outcome(verdict='correct', extracted='3', error=None)

Graders run in the worker processes of `pool.py`, which bound them with a hard deadline, so the
math grader switches math-verify's own signal timeouts off.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from paced_curate.errors import ConfigError
from paced_curate.grade.answers import (
    ANSWER_FORMATS,
    DASHES,
    DEFAULT_REASONING_TAGS,
    answer_phrase,
    answer_region,
    choice_letter,
    find_last_box,
    gold_letter,
    last_boxed,  # noqa: F401  (re-exported: graders.last_boxed is public)
    last_number,
    math_box_text,
    parse_number,
    parse_reasoning_tags,
    unwrap,
)

BUILTIN = ("math", "exact", "numeric", "choice")
GRADED_VERDICTS = ("correct", "incorrect", "no_answer")
DEFAULT_TOLERANCE = 1e-6
PLUGIN_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
DEFAULT_TAGS = parse_reasoning_tags(DEFAULT_REASONING_TAGS)


class Outcome(NamedTuple):
    """A grader's answer for one (completion, gold) pair."""

    verdict: str
    """One of correct, incorrect, no_answer, timeout, error."""
    extracted: str | None
    """The extracted answer as text (None when nothing was extracted)."""
    error: str | None = None
    """Why grading failed (verdicts timeout and error only)."""


@dataclass(frozen=True)
class GraderSpec:
    """A grader by name, with its one setting; picklable, so it travels to worker processes."""

    name: str
    """math, exact, numeric, choice, or module:function."""
    tolerance: float = DEFAULT_TOLERANCE
    """numeric only: answers within this absolute or relative distance of the gold are correct."""
    reasoning_tags: tuple[tuple[str, str], ...] = DEFAULT_TAGS
    """(open, close) pairs: only the text after the last closing tag is graded; () turns it off."""
    answer_format: str = "any"
    """any: the last box, else an answer phrase, else the grader's fallback; boxed: the last box only."""

    @property
    def is_plugin(self) -> bool:
        return ":" in self.name


def load_grader(
    name: str,
    tolerance: float | None = None,
    reasoning_tags: tuple[tuple[str, str], ...] = DEFAULT_TAGS,
    answer_format: str = "any",
) -> GraderSpec:
    """Check a grader name (importing a plugin) and return its spec.

    Args:
        name: math, exact, numeric, choice, or module:function.
        tolerance: numeric only; default 1e-6.
        reasoning_tags: (open, close) tag pairs (`answers.parse_reasoning_tags`); () for none.
        answer_format: "any" or "boxed" (built-in graders only; a plugin reads the text itself).

    Raises:
        ConfigError: the name is unknown, or a plugin does not import, is not a function, or
            does not accept (completion, gold) as two positional arguments; or a bad answer_format.
    """
    if answer_format not in ANSWER_FORMATS:
        raise ConfigError(f"--answer-format must be one of {', '.join(ANSWER_FORMATS)} (got {answer_format!r})")
    if name in BUILTIN:
        return GraderSpec(name, DEFAULT_TOLERANCE if tolerance is None else tolerance, reasoning_tags, answer_format)
    if not PLUGIN_RE.match(name):
        raise ConfigError(f"unknown grader {name!r}: choose {', '.join(BUILTIN)}, or module:function for your own")
    _load_plugin(name)
    return GraderSpec(name, DEFAULT_TOLERANCE, reasoning_tags, answer_format)


def _load_plugin(name: str) -> Callable:
    module_name, function_name = name.split(":")
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as error:  # a plugin module may even call sys.exit on import
        raise ConfigError(f"grader {name!r}: module {module_name!r} does not import: {type(error).__name__}: {error}") from None
    function = getattr(module, function_name, None)
    if function is None or not callable(function):
        raise ConfigError(f"grader {name!r}: module {module_name!r} has no function {function_name!r}")
    try:
        inspect.signature(function).bind("completion", "gold")
    except TypeError:
        raise ConfigError(
            f"grader {name!r}: must accept (completion, gold) as two positional arguments; "
            f"its signature is {function_name}{inspect.signature(function)}"
        ) from None
    except ValueError:
        pass  # builtins without a signature: accept and let the call decide
    return function


# --- what each grader reads ----------------------------------------------------------------


def reduce_completion(spec: GraderSpec, completion: str) -> str | None:
    """What a grader needs of a completion, or None when it has no answer (see answers.py).

    None: the reasoning trace never closed, the last box is left open, or (`--answer-format
    boxed`) there is no box. Otherwise `\\boxed{last box}` when there is a box, else
    `\\boxed{answer phrase}` when there is one ("The final answer is $x$." -> `\\boxed{x}`),
    else the text after the trace; a plugin gets the text after the trace. Grading the reduced text gives the
    same outcome as grading the completion (reducing twice changes nothing), and many samples of
    a problem reduce to the same text, so it serves as the deduplication key.
    """
    region = answer_region(completion, spec.reasoning_tags)
    if region is None or spec.is_plugin:
        return region
    found, box = find_last_box(region)
    if found:
        return None if box is None else "\\boxed{" + box + "}"
    if spec.answer_format == "boxed":
        return None
    # An answer phrase is read by every grader as a box would be (and dedups like one).
    phrase = answer_phrase(region)
    return region if phrase is None else "\\boxed{" + phrase + "}"


def final_answer(text: str) -> str | None:
    """The answer of a reduced completion for the string graders: the last box, else the answer
    phrase ("answer is ...", "Answer: ..."), else the text itself when it is one line."""
    found, box = find_last_box(text)
    if found:
        return None if box is None else box.strip()
    phrase = answer_phrase(text)
    if phrase is not None:
        return phrase
    stripped = text.strip()
    return stripped if stripped and "\n" not in stripped else None


def normalise(text: str) -> str:
    """Case-folded text without math delimiters, `\\text{}` wrappers, whitespace or a final period."""
    return re.sub(r"\s+", "", unwrap(text)).rstrip(".").casefold()


# --- the built-in graders -------------------------------------------------------------------


def grade_exact(text: str, gold: str) -> Outcome:
    """Correct when the normalised final answer equals the normalised gold."""
    answer = final_answer(text)
    if answer is None or not normalise(answer):
        return Outcome("no_answer", answer)
    return Outcome("correct" if normalise(answer) == normalise(gold) else "incorrect", answer)


def grade_numeric(text: str, gold: str, tolerance: float) -> Outcome:
    """Correct when the answer is a number within `tolerance` (absolute or relative) of the gold.

    The answer is the last box, else the answer phrase, else the last number in the text; when
    the box or phrase is not exactly one number (`parse_number`), the verdict is no_answer: no
    other number is fished out of it.
    """
    target = parse_number(gold)
    if target is None:
        return Outcome("error", None, f"gold answer {gold!r} is not a number; use another --grader")
    found, box = find_last_box(text)
    answer = box if found else answer_phrase(text)
    if answer is None and not found:
        answer = last_number(text)
    value = None if answer is None else parse_number(answer)
    if value is None:
        return Outcome("no_answer", None if answer is None else answer.strip())
    correct = math.isclose(value, target, rel_tol=tolerance, abs_tol=tolerance)
    return Outcome("correct" if correct else "incorrect", answer.strip())


def grade_choice(text: str, gold: str) -> Outcome:
    """Correct when the one letter chosen equals the gold letter (several letters: no_answer)."""
    target = gold_letter(gold)
    if target is None:
        return Outcome("error", None, f"gold answer {gold!r} is not a choice letter; use another --grader")
    answer = final_answer(text)
    letter = None if answer is None else choice_letter(answer)
    if letter is None:
        return Outcome("no_answer", answer)
    return Outcome("correct" if letter == target else "incorrect", letter)


@functools.lru_cache(maxsize=4096)
def _parse_gold(gold: str) -> list:
    from math_verify import parse

    # Bare LaTeX such as "\\frac{1}{2}" or "\\pi" parses to nothing unless delimited.
    delimited = gold if ("$" in gold or "\\boxed" in gold or "\\(" in gold or "\\[" in gold) else f"${gold}$"
    return parse(delimited, parsing_timeout=None, raise_on_error=True)


def grade_math(text: str, gold: str) -> Outcome:
    """math-verify on the last box (or the whole reduced text when there is none) and the gold.

    The box content goes through `math_box_text` first (math-verify alone reads `9\\,500` as
    509, `1.5e3` as 1.5*e*3, and an en dash or a final period as text).

    Timeouts are off (`parsing_timeout=None`, `timeout_seconds=None`): the pool's hard kill
    bounds every call, so a slow comparison becomes `timeout`, never a silent "incorrect".
    Exceptions propagate (`raise_on_error=True`) and become the verdict `error`.
    """
    from math_verify import parse, verify

    gold_parsed = _parse_gold(gold)
    if not gold_parsed:
        return Outcome("error", None, f"gold answer {gold!r} cannot be parsed by math-verify; use --grader exact")
    found, box = find_last_box(text)
    if found and box is None:
        return Outcome("no_answer", None)
    parsed = parse(text.translate(DASHES) if not found else "\\boxed{" + math_box_text(box) + "}", parsing_timeout=None, raise_on_error=True)
    # Keep math-verify's extracted string; str() of a sympy object can hang (math-verify #65).
    extracted = next((item for item in reversed(parsed) if isinstance(item, str)), None)
    if not parsed:
        return Outcome("no_answer", None)
    correct = verify(gold_parsed, parsed, timeout_seconds=None, raise_on_error=True)
    return Outcome("correct" if correct else "incorrect", extracted)


def grade_plugin(function: Callable, name: str, text: str, gold: str) -> Outcome:
    """Call a user's grader and check what it returns: (verdict, extracted) or a bool."""
    returned = function(text, gold)
    if isinstance(returned, bool):
        return Outcome("correct" if returned else "incorrect", None)
    if isinstance(returned, tuple) and len(returned) == 2 and returned[0] in GRADED_VERDICTS:
        verdict, extracted = returned
        return Outcome(verdict, None if extracted is None else str(extracted))
    shown = repr(returned)[:80]
    return Outcome(
        "error", None, f"grader {name} returned {shown}; expected (verdict, extracted) with verdict in {'/'.join(GRADED_VERDICTS)}, or a bool"
    )


def _reduced_then(spec: GraderSpec, grade: Callable[[str, str], Outcome], text: str, gold: str) -> Outcome:
    reduced = reduce_completion(spec, text)
    return Outcome("no_answer", None) if reduced is None else grade(reduced, gold)


def make_grader(spec: GraderSpec) -> Callable[[str, str], Outcome]:
    """The grading function for a spec: (completion or reduced completion, gold) -> Outcome.

    It reduces the text first (`reduce_completion`; a no-op on reduced text), so it applies the
    reasoning-trace, last-box and answer-format rules to whole completions too. Called in worker
    processes; it quiets math-verify's logger, which otherwise logs whole completions on every
    timeout and warns that its signal timeouts are off.
    """
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    if spec.name == "math":
        grade = grade_math
    elif spec.name == "exact":
        grade = grade_exact
    elif spec.name == "numeric":
        grade = functools.partial(grade_numeric, tolerance=spec.tolerance)
    elif spec.name == "choice":
        grade = grade_choice
    else:
        grade = functools.partial(grade_plugin, _load_plugin(spec.name), spec.name)
    return functools.partial(_reduced_then, spec, grade)


def warm_up(spec: GraderSpec) -> None:
    """Compile math-verify's regexes before the first timed task (about 0.2 s once per process)."""
    if spec.name == "math":
        grade_math("\\boxed{1}", "1")


# --- equivalence between extracted answers (maj@K) ------------------------------------------


@functools.lru_cache(maxsize=8192)
def _parse_answer(answer: str) -> tuple:
    """math-verify's parse of an extracted answer, in the calling process (cached)."""
    import threading

    from math_verify import parse
    from math_verify.errors import TimeoutException

    # Its timeouts use SIGALRM, which only works in the main thread (FIELD-NOTES).
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    delimited = answer if ("$" in answer or "\\boxed" in answer) else f"${math_box_text(answer)}$"
    try:
        return tuple(parse(delimited, parsing_timeout=timeout))
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
    import threading

    from math_verify import verify
    from math_verify.errors import TimeoutException

    parsed_first, parsed_second = _parse_answer(first), _parse_answer(second)
    if not parsed_first or not parsed_second:
        return normalise(first) == normalise(second)
    a, b = _value(first), _value(second)
    if a is not None and b is not None and abs(a - b) > 1e-4 * max(1.0, abs(a), abs(b)):
        return False  # two constants this far apart: verify would say no, at ~10 ms a call
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    try:
        return bool(verify(list(parsed_first), list(parsed_second), timeout_seconds=timeout))
    except (Exception, TimeoutException):
        return False


def _numeric_same(first: str, second: str, tolerance: float) -> bool:
    a, b = parse_number(first), parse_number(second)
    if a is None or b is None:
        return normalise(first) == normalise(second)
    return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)


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
    It runs in the calling process, with math-verify's own 5 s timeouts in the main thread; a
    timeout or failure counts as "not the same".
    """
    if name == "math":
        return _math_same
    if name == "numeric":
        return functools.partial(_numeric_same, tolerance=tolerance)
    if name == "choice":
        return _choice_same
    return _spelling_same
