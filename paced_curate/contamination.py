"""Evaluation problems that are also training problems: normalised prompts and the overlap between two sets.

Evidence is out of sample only when no evaluation problem occurs in the training data. Two
problems count as the same when their prompts are equal after `normalise_prompt`, a fixed list
of rewrites that change how a problem is written but not what it asks. `find_overlap` compares
an evaluation set with a training set two ways: by the normalised prompt (exact; a hash join),
and by gold answer + prompt (same normalised gold answer, and one normalised prompt contains the
other as a whole part, e.g. a training prompt that wraps the problem in an instruction).
`paced distill --eval` runs it against the training shards before training (`--eval-overlap`).

    normalise_prompt("Calculate 5 + 3.")          # 'calculate 3+5'
    overlap = find_overlap(eval_rows, train_rows)  # rows: (problem_id, prompt, answer)
    overlap.line("heldout.jsonl", "data/")         # one line for the user

Everything here is a pure function of strings, except `check_eval_overlap`, which applies the
user's `--eval-overlap` choice (raise, or return the line to print).
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable

from paced_curate.errors import InputError

OVERLAP_MODES = ("error", "warn", "allow")
SHOWN_IDS = 3

# Written forms of one operator (after NFKC and casefolding): LaTeX commands and Unicode signs.
_OPERATORS = [
    (re.compile(r"\\(?:times|cdot|ast)(?![a-z])"), "*"),
    (re.compile(r"[\u00d7\u00b7\u2217\u22c5]"), "*"),  # multiplication sign, middle dot, asterisk operator, dot operator
    (re.compile(r"\\div(?![a-z])|\u00f7"), "/"),
    (re.compile(r"[\u2212\u2012\u2013]"), "-"),  # minus sign, figure dash, en dash
]
# LaTeX that only spaces or delimits: spacing commands, \left/\right, math-mode delimiters.
_LATEX_SPACING = re.compile(r"\\(?:quad|qquad|enspace|thinspace|medspace|thickspace|negthinspace)(?![a-z])|\\[,:;!> ]|~")
_LATEX_SIZING = re.compile(r"\\(?:left|right|bigl|bigr|big|bigg|biggl|biggr)(?![a-z])")
_MATH_DELIMITERS = re.compile(r"\$+|\\[()\[\]]")
_SPACE_NEXT_TO_SYMBOL = re.compile(r"\s*([^\w\s])\s*")
_TRAILING_PUNCTUATION = re.compile(r"[.?\s]+$")
_TOKEN = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]+|.", re.DOTALL)
# Neighbours that leave a flat chain of one commutative operator as a whole operand.
_BEFORE = {"+": set("([{=,:;<>"), "*": set("([{=,:;<>+-")}
_AFTER = {"+": set(")]}=,:;<>.?-"), "*": set(")]}=,:;<>.?+-/")}


def normalise_prompt(text: str) -> str:
    """The normalised form of a prompt, under which two ways of writing one problem are equal.

    Applied in this order:

    1. Unicode NFKC (full-width digits and signs, ligatures, non-breaking spaces), then
       casefolding (`str.casefold`).
    2. Operators written other ways become ASCII: `\\times`, `\\cdot`, `\\ast`, U+00D7, U+00B7,
       U+2217, U+22C5 -> `*`; `\\div`, U+00F7 -> `/`; U+2212, U+2012, U+2013 -> `-`.
    3. LaTeX that only spaces or delimits becomes a space: `\\,` `\\:` `\\;` `\\!` `\\>` `\\ `
       `~` `\\quad` `\\qquad` `\\enspace` `\\thinspace` `\\medspace` `\\thickspace`
       `\\negthinspace`, the sizing commands `\\left` `\\right` `\\big`... (the delimiter after
       them stays), and the math delimiters `$`, `$$`, `\\(`, `\\)`, `\\[`, `\\]`.
    4. Whitespace: every run becomes one space, none is kept next to a character that is not
       a letter, digit or underscore (so `3 + 5` = `3+5`), and the ends are stripped.
    5. Trailing `.` and `?` are removed (`!` stays: it may be a factorial).
    6. Operand order of `+` and `*`: in a flat chain of one of them (`a+b+c`, `a*b`) whose
       operands are numbers or single letters, the operands are sorted (`5+3` -> `3+5`). A
       chain is sorted only where reordering cannot change the value: not after `-`, `/`, `^`
       or a higher-precedence operator, not before `*`, `/`, `^` or `!` (for `+`), not next to
       another letter or digit. `2-3+5`, `2^3*4` and `3*4!` keep their order.

    Nothing else changes: words, numbers (`1,000` is not `1000`), LaTeX commands such as
    `\\frac`, and brackets stay as written.

    Args:
        text: a prompt (any string).

    Returns:
        The normalised string; `normalise_prompt` of it is itself.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    for pattern, replacement in _OPERATORS:
        text = pattern.sub(replacement, text)
    text = _LATEX_SPACING.sub(" ", text)
    text = _LATEX_SIZING.sub(" ", text)
    text = _MATH_DELIMITERS.sub(" ", text)
    text = " ".join(text.split())
    text = _SPACE_NEXT_TO_SYMBOL.sub(r"\1", text)
    text = _TRAILING_PUNCTUATION.sub("", text)
    return _sort_commutative(text)


def normalise_answer(text: str) -> str:
    """A gold answer for comparison: steps 1-3 of `normalise_prompt`, then every space removed and
    trailing `.` dropped (`\\frac{1}{2}` stays; no mathematical equivalence is tried).

    Args:
        text: a gold answer (any string).

    Returns:
        The normalised string.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    for pattern, replacement in _OPERATORS:
        text = pattern.sub(replacement, text)
    text = _MATH_DELIMITERS.sub(" ", _LATEX_SIZING.sub(" ", _LATEX_SPACING.sub(" ", text)))
    return "".join(text.split()).rstrip(".")


def prompt_key(text: str) -> str:
    """A short hash of the normalised prompt: 16 hex digits of SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(normalise_prompt(text).encode()).hexdigest()[:16]


def _is_operand(token: str) -> bool:
    return token[0].isdigit() or (len(token) == 1 and token.isalpha())


def _sort_commutative(text: str) -> str:
    tokens = _TOKEN.findall(text)
    out, i = [], 0
    while i < len(tokens):
        end = _chain_end(tokens, i)
        if end is None:
            out.append(tokens[i])
            i += 1
            continue
        operator = tokens[i + 1]
        operands = sorted(tokens[i:end:2])
        out.append(operator.join(operands))
        i = end
    return "".join(out)


def _chain_end(tokens: list[str], start: int) -> int | None:
    """The end (exclusive) of a sortable chain `x op y op ...` starting at `start`, or None."""
    if start + 2 >= len(tokens) or not _is_operand(tokens[start]) or tokens[start + 1] not in ("+", "*"):
        return None
    operator, end = tokens[start + 1], start + 1
    while end + 1 < len(tokens) and tokens[end] == operator and _is_operand(tokens[end + 1]):
        end += 2
    if end == start + 1:
        return None
    before = tokens[start - 1] if start > 0 else " "
    after = tokens[end] if end < len(tokens) else " "
    if not (before == " " or before in _BEFORE[operator]) or not (after == " " or after in _AFTER[operator]):
        return None
    return end


@dataclass(frozen=True)
class Overlap:
    """Evaluation problems that are also training problems.

    `by_prompt` and `by_answer` are (eval problem_id, training problem_id) pairs, one per
    evaluation problem (the first training match), sorted by evaluation id.
    """

    num_eval: int
    """Problems in the evaluation set."""
    num_train: int
    """Distinct problems in the training set."""
    by_prompt: tuple[tuple[str, str], ...]
    """Same normalised prompt."""
    by_answer: tuple[tuple[str, str], ...]
    """Not in `by_prompt`: same normalised gold answer, and one normalised prompt contains the other as a whole part."""

    @property
    def eval_ids(self) -> list[str]:
        """Every evaluation problem found in the training set, sorted."""
        return sorted({pair[0] for pair in self.by_prompt + self.by_answer})

    def line(self, eval_name: str, train_name: str) -> str:
        """One line for the user: how many evaluation problems are training problems, and a few ids."""
        found = len(self.eval_ids)
        if not found:
            return f"eval overlap: none of the {self.num_eval:,} problems in {eval_name} is among the {self.num_train:,} training problems of {train_name} (normalised prompt; gold answer + prompt)"
        pairs = sorted(self.by_prompt + self.by_answer)
        shown = ", ".join(f"{e!r} (= training {t!r})" for e, t in pairs[:SHOWN_IDS])
        more = f" and {found - SHOWN_IDS:,} more" if found > SHOWN_IDS else ""
        return (
            f"eval overlap: {found:,} of the {self.num_eval:,} problems in {eval_name} are also training problems in {train_name} "
            f"({len(self.by_prompt):,} by normalised prompt, {len(self.by_answer):,} more by gold answer + prompt): {shown}{more}"
        )


def find_overlap(eval_rows: Iterable[tuple[str, str, str]], train_rows: Iterable[tuple[str, str, str]]) -> Overlap:
    """Compare an evaluation set with a training set (see the module docstring).

    Args:
        eval_rows: (problem_id, prompt, answer) per evaluation problem.
        train_rows: (problem_id, prompt, answer) per training row; a problem may repeat (several
            references), it counts once.

    Returns:
        An `Overlap`. Cost: one pass over each set for the prompt check; the gold answer +
        prompt check compares each evaluation prompt only with the training prompts that share
        its gold answer.
    """
    by_key: dict[str, str] = {}
    by_answer: dict[str, list[tuple[str, str]]] = defaultdict(list)
    train_ids = set()
    for problem_id, prompt, answer in train_rows:
        if problem_id in train_ids:
            continue
        train_ids.add(problem_id)
        normal = normalise_prompt(prompt)
        by_key.setdefault(normal, problem_id)
        by_answer[normalise_answer(answer)].append((normal, problem_id))
    exact, contained = [], []
    num_eval = 0
    for problem_id, prompt, answer in eval_rows:
        num_eval += 1
        normal = normalise_prompt(prompt)
        if normal in by_key:
            exact.append((problem_id, by_key[normal]))
            continue
        for other, train_id in by_answer.get(normalise_answer(answer), ()):
            if _contains_part(other, normal) or _contains_part(normal, other):
                contained.append((problem_id, train_id))
                break
    return Overlap(num_eval=num_eval, num_train=len(train_ids), by_prompt=tuple(sorted(exact)), by_answer=tuple(sorted(contained)))


def _contains_part(longer: str, shorter: str) -> bool:
    """Whether `shorter` occurs in `longer` as a whole part: no letter, digit, operator or decimal
    point runs on at either end (`calculate 2+3` is a part of `please calculate 2+3 now`, `2+3` is
    not a part of `12+3` or `2+3*4`)."""
    if not shorter or len(shorter) >= len(longer):
        return False
    return _part_pattern(shorter).search(longer) is not None


@functools.lru_cache(maxsize=65536)
def _part_pattern(text: str) -> re.Pattern:
    return re.compile(r"(?<![\w+\-*/^])(?<!\d\.)" + re.escape(text) + r"(?![\w+\-*/^!]|\.\d)")


def table_overlap(eval_table, train_table) -> Overlap:
    """`find_overlap` of two Arrow tables with problem_id, prompt and answer columns (problems, export rows)."""
    def rows(table):
        return zip(*(table.column(name).to_pylist() for name in ("problem_id", "prompt", "answer")))

    return find_overlap(rows(eval_table), rows(train_table))


def check_eval_overlap(overlap: Overlap, mode: str, eval_name: str, train_name: str) -> str:
    """Apply `--eval-overlap` to an overlap.

    Args:
        overlap: `find_overlap`'s result.
        mode: "error" (refuse any overlap), "warn" (the line says "warning:") or "allow".
        eval_name, train_name: how the two sets are named in the line.

    Returns:
        The line to print.

    Raises:
        InputError: mode "error" and at least one evaluation problem is a training problem.
        ValueError: an unknown mode (configs check this first for users).
    """
    if mode not in OVERLAP_MODES:
        raise ValueError(f"unknown overlap mode {mode!r}; known: {', '.join(OVERLAP_MODES)}")
    line = overlap.line(eval_name, train_name)
    if not overlap.eval_ids:
        return line
    if mode == "error":
        raise InputError(f"{line}; evaluation problems must not be training problems (--eval-overlap warn or allow to go on anyway)")
    return f"warning: {line}" if mode == "warn" else line
