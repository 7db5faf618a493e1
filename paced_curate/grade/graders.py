"""Graders: (completion, gold) -> verdict and extracted answer, for `paced grade --grader NAME`.

Built in: `math` (math-verify), `exact` (normalised string), `numeric` (within a tolerance) and
`choice` (a multiple-choice letter); `module:function` names a user's own grader. Every grader
takes the LAST `\\boxed{...}` (or `\\fbox{...}`) of a completion as its answer when there is one,
so the parent can cut that box out cheaply (`reduce_completion`) and grade each distinct
(answer, gold) pair once.

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

BUILTIN = ("math", "exact", "numeric", "choice")
GRADED_VERDICTS = ("correct", "incorrect", "no_answer")
DEFAULT_TOLERANCE = 1e-6
PLUGIN_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
ANSWER_RE = re.compile(r"\banswer\b(?:\s+is)?\s*[:=]?\s*(.+)", re.IGNORECASE)
NUMBER_RE = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+")
FRACTION_RE = re.compile(r"^([-+]?)\\[dt]?frac\{([^{}]+)\}\{([^{}]+)\}$")
TEXT_RE = re.compile(r"\\(?:text|textbf|mathrm|mathbf)\{([^{}]*)\}")
CHOICE_RE = re.compile(r"^\(?([A-Z])\)?[.:]?$")


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

    @property
    def is_plugin(self) -> bool:
        return ":" in self.name


def load_grader(name: str, tolerance: float | None = None) -> GraderSpec:
    """Check a grader name (importing a plugin) and return its spec.

    Args:
        name: math, exact, numeric, choice, or module:function.
        tolerance: numeric only; default 1e-6.

    Raises:
        ConfigError: the name is unknown, or a plugin does not import, is not a function, or
            does not accept (completion, gold) as two positional arguments.
    """
    if name in BUILTIN:
        return GraderSpec(name, DEFAULT_TOLERANCE if tolerance is None else tolerance)
    if not PLUGIN_RE.match(name):
        raise ConfigError(f"unknown grader {name!r}: choose {', '.join(BUILTIN)}, or module:function for your own")
    _load_plugin(name)
    return GraderSpec(name)


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


# --- extraction shared by the graders -------------------------------------------------------


def last_boxed(text: str) -> str | None:
    """The content of the last complete `\\boxed{...}` or `\\fbox{...}` in `text`, or None.

    Braces are matched, so `\\boxed{\\frac{1}{2}}` gives `\\frac{1}{2}`. A box left open (a cut-off
    completion) is skipped in favour of the last one that closes.
    """
    for match in reversed(list(BOX_RE.finditer(text))):
        depth, start = 1, match.end()
        for index in range(start, len(text)):
            char = text[index]
            if char == "{" and text[index - 1] != "\\":
                depth += 1
            elif char == "}" and text[index - 1] != "\\":
                depth -= 1
                if depth == 0:
                    return text[start:index]
    return None


def reduce_completion(spec: GraderSpec, completion: str) -> str:
    """What a grader needs of a completion: `\\boxed{last box}` if there is one, else all of it.

    Grading the reduced text gives the same outcome as grading the completion, and many
    samples of a problem reduce to the same text, so it serves as the deduplication key.
    A plugin sees the whole completion.
    """
    if spec.is_plugin:
        return completion
    box = last_boxed(completion)
    return completion if box is None else "\\boxed{" + box + "}"


def final_answer(text: str) -> str | None:
    """The answer of a completion for the string graders: the last box, else the text after the
    last "answer is" / "Answer:", else the completion itself when it is one line."""
    box = last_boxed(text)
    if box is not None:
        return box.strip()
    matches = list(ANSWER_RE.finditer(text))
    if matches:
        return matches[-1].group(1).strip()
    stripped = text.strip()
    return stripped if stripped and "\n" not in stripped else None


def _unwrap(text: str) -> str:
    text = text.strip()
    for left, right in (("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if text.startswith(left) and text.endswith(right) and len(text) >= len(left) + len(right):
            text = text[len(left) : len(text) - len(right)].strip()
    return TEXT_RE.sub(r"\1", text)


def normalise(text: str) -> str:
    """Case-folded text without math delimiters, `\\text{}` wrappers, whitespace or a final period."""
    return re.sub(r"\s+", "", _unwrap(text)).rstrip(".").casefold()


# --- the built-in graders -------------------------------------------------------------------


def grade_exact(text: str, gold: str) -> Outcome:
    """Correct when the normalised final answer equals the normalised gold."""
    answer = final_answer(text)
    if answer is None:
        return Outcome("no_answer", None)
    return Outcome("correct" if normalise(answer) == normalise(gold) else "incorrect", answer)


def parse_number(text: str) -> float | None:
    """A number written as 1,234.5, -3, 1e-3, 3/4, \\frac{3}{4}, 50\\% (as 50), or None."""
    cleaned = _unwrap(text).replace("\\!", "").replace("\\,", "").replace("\\%", "").replace("%", "")
    cleaned = cleaned.replace("\\$", "").replace("$", "").replace(" ", "")
    fraction = FRACTION_RE.match(cleaned)
    if fraction:
        cleaned = f"{fraction.group(1)}{fraction.group(2)}/{fraction.group(3)}"
    if cleaned.count("/") == 1:
        top, bottom = (parse_number(part) for part in cleaned.split("/"))
        return top / bottom if top is not None and bottom not in (None, 0) else None
    try:
        value = float(cleaned.replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def grade_numeric(text: str, gold: str, tolerance: float) -> Outcome:
    """Correct when the final number is within `tolerance` (absolute or relative) of the gold."""
    target = parse_number(gold)
    if target is None:
        return Outcome("error", None, f"gold answer {gold!r} is not a number; use another --grader")
    answer = final_answer(text)
    value = None if answer is None else parse_number(answer)
    if value is None:
        # No parsable final answer: the last number anywhere is what the student committed to.
        numbers = NUMBER_RE.findall(answer if answer is not None else text)
        if not numbers:
            return Outcome("no_answer", answer)
        answer, value = numbers[-1], parse_number(numbers[-1])
    correct = math.isclose(value, target, rel_tol=tolerance, abs_tol=tolerance)
    return Outcome("correct" if correct else "incorrect", answer)


def choice_letter(text: str) -> str | None:
    """"B", "(B)", "B.", "\\text{(B)}" -> "B"; anything else -> None."""
    match = CHOICE_RE.match(re.sub(r"\s+", "", _unwrap(text)).upper())
    return match.group(1) if match else None


def grade_choice(text: str, gold: str) -> Outcome:
    """Correct when the chosen letter equals the gold letter."""
    target = choice_letter(gold)
    if target is None:
        return Outcome("error", None, f"gold answer {gold!r} is not a choice letter; use another --grader")
    answer = final_answer(text)
    letter = None if answer is None else choice_letter(answer)
    if letter is None and answer is not None:
        # "The answer is (C) because ..." -> C
        head = re.match(r"\s*(?:\(([A-Za-z])\)|([A-Z]))(?:[\s.:,]|$)", answer)
        letter = (head.group(1) or head.group(2)).upper() if head else None
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
    """math-verify on the last box (or the whole completion when there is none) and the gold.

    Timeouts are off (`parsing_timeout=None`, `timeout_seconds=None`): the pool's hard kill
    bounds every call, so a slow comparison becomes `timeout`, never a silent "incorrect".
    Exceptions propagate (`raise_on_error=True`) and become the verdict `error`.
    """
    from math_verify import parse, verify

    gold_parsed = _parse_gold(gold)
    if not gold_parsed:
        return Outcome("error", None, f"gold answer {gold!r} cannot be parsed by math-verify; use --grader exact")
    box = last_boxed(text)
    parsed = parse(text if box is None else "\\boxed{" + box + "}", parsing_timeout=None, raise_on_error=True)
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


def make_grader(spec: GraderSpec) -> Callable[[str, str], Outcome]:
    """The grading function for a spec: (reduced completion, gold) -> Outcome.

    Called in worker processes; it quiets math-verify's logger, which otherwise logs whole
    completions on every timeout and warns that its signal timeouts are off.
    """
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    if spec.name == "math":
        return grade_math
    if spec.name == "exact":
        return grade_exact
    if spec.name == "numeric":
        return functools.partial(grade_numeric, tolerance=spec.tolerance)
    if spec.name == "choice":
        return grade_choice
    return functools.partial(grade_plugin, _load_plugin(spec.name), spec.name)


def warm_up(spec: GraderSpec) -> None:
    """Compile math-verify's regexes before the first timed task (about 0.2 s once per process)."""
    if spec.name == "math":
        grade_math("\\boxed{1}", "1")
