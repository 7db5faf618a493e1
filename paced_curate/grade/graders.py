"""Graders: (completion, gold) -> verdict and extracted answer, for `paced grade --grader NAME`.

Built in: `math` (math-verify), `exact` (normalised string), `numeric` (within a tolerance) and
`choice` (a multiple-choice letter); `module:function` names a user's own grader. What counts
as the answer (text after the reasoning trace, the LAST box, answer phrases, the tail,
`--answer-format boxed`) is in answers.py and regions.py; the parent cuts it out cheaply
(`reduce_completion`) and grades each distinct (answer, gold) pair once. Besides grading, a
spec can check that a gold is readable (`task="gold"`, golds.py) or read the completion with
math-verify alone (`task="independent"`, the default audit). `equivalence.same_answer` is
each grader's own equivalence between two extracted answers, which maj@K votes with.

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
import re
from collections.abc import Callable
from dataclasses import dataclass

from paced_curate.errors import ConfigError
from paced_curate.grade.answers import (
    ANSWER_FORMATS,
    ANSWER_RE,
    DEFAULT_REASONING_TAGS,
    answer_phrase,
    answer_region,
    answer_text,
    choice_letter,
    find_last_box,
    gold_letter,
    last_boxed,  # noqa: F401  (re-exported: graders.last_boxed is public)
    last_number,
    parse_reasoning_tags,
    tail_sentence,
    unwrap,
)
from paced_curate.grade.math_reader import Outcome, grade_math, gold_form, math_value, read_independently, unbalanced
from paced_curate.grade.numbers import Quantity, quantities_equal, quantity_of, value_texts

BUILTIN = ("math", "exact", "numeric", "choice")
INDEPENDENT = "math-verify"
"""The independent reading for `--audit math-verify`: math-verify alone on the whole completion."""
TASKS = ("grade", "gold", "independent")
GRADED_VERDICTS = ("correct", "incorrect", "no_answer")
DEFAULT_TOLERANCE = 1e-6
PLUGIN_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
DEFAULT_TAGS = parse_reasoning_tags(DEFAULT_REASONING_TAGS)


@dataclass(frozen=True)
class GraderSpec:
    """A grader by name, with its settings; picklable, so it travels to worker processes."""

    name: str
    """math, exact, numeric, choice, or module:function."""
    tolerance: float = DEFAULT_TOLERANCE
    """numeric only: answers within this absolute or relative distance of the gold are correct."""
    reasoning_tags: tuple[tuple[str, str], ...] = DEFAULT_TAGS
    """(open, close) pairs: only the text after the last closing tag is graded; () turns it off."""
    answer_format: str = "any"
    """any: the last box, else an answer phrase, else the grader's fallback; boxed: the last box only."""
    task: str = "grade"
    """grade; gold: check that the gold (the task's second text) is readable by this grader;
    independent: math-verify alone on the whole completion (`name` is then unused)."""

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
    else the region's text (regions.answer_text); a plugin gets the text after the trace, and
    the independent reading the whole completion. Grading the reduced text gives the same
    outcome as grading the completion (reducing twice changes nothing), and many samples of a
    problem reduce to the same text, so it serves as the deduplication key.
    """
    if spec.task == "independent":
        return completion
    region = answer_region(completion, spec.reasoning_tags)
    if region is None or spec.is_plugin:
        return region
    text = answer_text(region)
    found, box = find_last_box(text)
    if found:
        return None if box is None else "\\boxed{" + box + "}"
    if spec.answer_format == "boxed":
        return None
    # An answer phrase is read by every grader as a box would be (and dedups like one).
    phrase = answer_phrase(text)
    return text if phrase is None else "\\boxed{" + phrase + "}"


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
    if ANSWER_RE.search(stripped):
        return None  # a label with nothing after it ("Answer:") is not the answer
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


def numeric_value(text: str) -> Quantity | None:
    """The one value of an answer for the numeric grader: `numbers.read_quantity`'s reading, else
    the value math-verify reads (`\\frac{\\sqrt{3}}{2}`, `2^{10}`), else None (no value, or several
    competing: "5 or 6", "1-3")."""
    if CLOCK_OR_RATIO_RE.search(text):
        return None  # "4:30" is a clock time or a ratio, not one number (math-verify would read 4/30)
    candidates = value_texts(text)
    for candidate in candidates:
        if (quantity := quantity_of(candidate)) is not None:
            return quantity
    for candidate in candidates:
        if (value := math_value(candidate)) is not None:
            return Quantity(value)
    return None


def grade_numeric(text: str, gold: str, tolerance: float) -> Outcome:
    """Correct when the answer is a number within `tolerance` (absolute or relative) of the gold.

    The answer is the last box, else the answer phrase, else the last number of the tail
    sentence; when the box or phrase is not one value (`numeric_value`), the verdict is
    no_answer: no other number is fished out of it. A percentage matches its value / 100.
    """
    target = numeric_value(gold)
    if target is None:
        return Outcome("error", None, f"gold answer {gold!r} is not a number; use another --grader")
    found, box = find_last_box(text)
    answer = box if found else answer_phrase(text)
    if answer is None and not found:
        tail = tail_sentence(text)
        answer = None if tail is None else last_number(tail)
    value = None if answer is None else numeric_value(answer)
    if value is None:
        return Outcome("no_answer", None if answer is None else answer.strip())
    return Outcome("correct" if quantities_equal(value, target, tolerance) else "incorrect", answer.strip())


CLOCK_OR_RATIO_RE = re.compile(r"\d\s*(?::|\\colon)\s*\d")
LAST_LINE_CHOICE_RE = re.compile(r"^[(\[*\s]*[A-Z][)\].*\s]*$")


def grade_choice(text: str, gold: str) -> Outcome:
    """Correct when the one letter chosen equals the gold letter (several letters: no_answer).

    The answer is the last box, else the answer phrase, else a one-line completion, else a last
    line that is a letter alone ("**B**", "(B)").
    """
    target = gold_letter(gold)
    if target is None:
        return Outcome("error", None, f"gold answer {gold!r} is not a choice letter; use another --grader")
    answer = final_answer(text)
    if answer is None and not find_last_box(text)[0]:
        lines = [line for line in text.strip().splitlines() if line.strip()]
        if lines and LAST_LINE_CHOICE_RE.match(lines[-1]):
            answer = lines[-1].strip()
    letter = None if answer is None else choice_letter(answer)
    if letter is None:
        return Outcome("no_answer", answer)
    return Outcome("correct" if letter == target else "incorrect", letter)


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


def gold_reading(name: str, gold: str, tolerance: float = DEFAULT_TOLERANCE) -> str | None:
    """How the built-in grader `name` reads a gold, as text, or None when it cannot read it.

    math: a clock time, a ratio, or what math-verify parses, with balanced braces and brackets
    (`math_reader.unbalanced`); numeric: one value
    (`numeric_value`); choice: one letter; exact: any non-empty text.
    """
    if name == "math":
        if unbalanced(gold) is not None:
            return None  # math-verify would read it as a string no answer equals
        try:
            form = gold_form(gold)
        except Exception:  # math-verify fails on some golds ("12:00" once read as 12/0)
            return None
        if form.kind != "math":
            return f"a {'clock time' if form.kind == 'clock' else 'ratio'}"
        return next((item for item in reversed(form.value) if isinstance(item, str)), "math")
    if name == "numeric":
        value = numeric_value(gold)
        return None if value is None else f"{value.value:g}" + ("%" if value.percent else "")
    if name == "choice":
        return gold_letter(gold)
    return normalise(gold) or None


def _check_gold(name: str, tolerance: float, _text: str, gold: str) -> Outcome:
    reading = gold_reading(name, gold, tolerance)
    return Outcome("correct", reading) if reading is not None else Outcome("error", None, f"the {name} grader cannot read it")


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
    if spec.task == "gold":
        return functools.partial(_check_gold, spec.name, spec.tolerance)
    if spec.task == "independent":
        return read_independently
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
    if spec.name in ("math", "numeric") or spec.task == "independent":
        grade_math("\\boxed{1}", "1")
