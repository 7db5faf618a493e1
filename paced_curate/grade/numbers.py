"""Reading one number, a percentage, a clock time or a ratio out of an answer, or nothing.

    parse_number("\\\\$9{,}500")                 # 9500.0
    read_quantity("\\\\approx 42.4")             # Quantity(value=42.4, percent=False)
    read_quantity("5 or 6")                    # None: several values compete
    parse_clock("2:15 p.m.")                   # Clock(hour=14, minute=15, second=0, suffix=True)
    parse_ratio("1 : 2")                       # (1.0, 2.0)

A value a reader cannot be sure of is None, never some other number out of the text: the
numeric grader then says no_answer (or asks math-verify, graders.py).
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

from paced_curate.grade.notation import DASHES, number_word_value, unicode_to_latex, unwrap

INTEGER = r"(?:\d{1,3}(?:,\d{3})+|\d+)"
PLAIN = rf"[-+]?(?:{INTEGER}(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
PLAIN_RE = re.compile(rf"^{PLAIN}$")
FRACTION_RE = re.compile(rf"^([-+]?)\\frac\{{\s*({PLAIN})\s*\}}\{{\s*({PLAIN})\s*\}}$")
SLASH_RE = re.compile(rf"^({PLAIN})\s*/\s*({PLAIN})$")
MIXED_RE = re.compile(rf"^([-+]?)(\d+)\s*(?:\\frac\{{\s*(\d+)\s*\}}\{{\s*(\d+)\s*\}}|\s(\d+)\s*/\s*(\d+))$")
POWER_RE = re.compile(rf"^(?:({PLAIN})\s*(?:\\times|\\cdot|\u00d7|\u00b7)\s*)?10\s*\^\s*(?:\{{\s*([-+]?\d+)\s*\}}|([-+]?\d))$")
# Thousands separators between digits: {,}  \,  \!  ,\! (MATH)  \ (a space)  ~  and thin / no-break spaces.
GROUP_SEPARATOR_RE = re.compile(r"(?<=\d)(?:,\\!|\{,\}\\!|\{,\}|\\[,!; ]|~|[\u2009\u202f\u00a0 ])(?=\d{3}(?!\d))")
UNITS = (
    "km|cm|mm|m|kg|mg|g|ms|s|min|h|hr|hrs|ml|mL|L|l|in|ft|yd|mi|lb|lbs|oz|mph|kph|km/h|m/s|cm/s|"
    "sq|sec|secs|deg|degrees|dollars|cents|units|meters|metres|inches|feet|miles|hours|minutes|seconds|days|years"
)
UNIT_TAIL_RE = re.compile(
    r"(?:\s|~|\\[,;:! ])*"
    r"(?:\\(?:text|textrm|textnormal|mathrm|mbox|operatorname)\s*\{[^{}\d]*\}(?:\s*\^\s*\{?\d\}?)?"
    r"|\^\s*\{?\s*\\circ\s*\}?|\u00b0|\\circ|\\%|%|\\\$"
    rf"|(?<=[\d\s}},;:!~])(?:{UNITS})\.?(?:\s*\^\s*\{{?\d\}}?)?"
    r"|(?<=[\s,;:!~])[A-Za-z]{2,}\.?"
    # Units or a copula in Chinese, Japanese or Korean: "42\u5143", "42\uc785\ub2c8\ub2e4".
    r"|(?<=[\d\s])[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]+)$"
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
    `9\\!500`, MATH's `10,\\!000`, thin or plain spaces (only in groups of three digits: "1,23"
    and "1, 2" are not numbers); `1.5e3`, `1.5\\times 10^{3}`, `1.5\\cdot 10^3`, `10^{3}`;
    `\\frac`/`\\dfrac`/`\\tfrac{a}{b}`, `\\frac12`, `a/b`; mixed numbers `2\\frac{1}{2}` and `2 1/2`
    (2.5); `x = 5`; a leading `\\$` or `$`; a trailing `\\%` or `%` (50\\% is 50), units
    (`\\text{ meters}`, `cm`, `^\\circ`, words after a space, CJK units) and a final period.
    Anything else (an expression, a list, `\\sqrt{2}`) is None: a grader then says no_answer
    rather than read some other number out of it.
    """
    text = unwrap(text).replace("\\left", "").replace("\\right", "")
    if MULTIPLIER_RE.search(text):
        return None
    text = re.sub(r"\\[dtc]frac", r"\\frac", text)
    text = re.sub(r"\\frac\s*(\d)\s*(\d)", r"\\frac{\1}{\2}", text)
    text = re.sub(r"^[A-Za-z]\w*\s*=\s*", "", text.strip())  # x = 5
    text = re.sub(r"^(?:\\\$|\$)\s*", "", text).replace("\\$", "")
    text = _strip_units(text.strip().rstrip("."))
    text = GROUP_SEPARATOR_RE.sub(",", text)
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


# --- one quantity, as a reader means it -------------------------------------------------------


class Quantity(NamedTuple):
    """A value read from an answer; `percent` when it was written with % (or "percent")."""

    value: float
    percent: bool = False


APPROX_RE = re.compile(r"^(?:\\approx|\\sim|~|approximately|approx\.?|about|around|roughly|circa|ca\.)\s*", re.IGNORECASE)
REMARK_RE = re.compile(r"\s*\(([^()]*)\)\s*\.?$")
REJECTION_RE = re.compile(
    r"\b(?:reject\w*|discard\w*|extraneous|invalid|not valid|ignored?)\b"
    r"|^\s*(?:since|because|as|where|when|for|i\.e\.|e\.g\.|note|which|assuming|given|taking|rounded|to the)\b",
    re.IGNORECASE,
)
PERCENT_RE = re.compile(r"(?:\\%|%|\s*(?:percent|per\s*cent)\b)\.?$", re.IGNORECASE)
# Several values compete: "5 or 6", "1-3", "2 \pm 1", "3, 5", "(1, 2)", "between 2 and 3".
SEVERAL_RE = re.compile(
    r"\d[^\d\n]{0,30}?\b(?:or|and)\b[^\d\n]{0,30}?\d|\d\s*\bto\b\s*\d|\bbetween\b|\\pm|\\mp|\u00b1|;"
    r"|^\s*-?\d+(?:\.\d+)?\s*(?:-|\u2013|\u2014)\s*\d+(?:\.\d+)?\s*$"
    r"|,(?!\d{3}(?:\D|$))",
    re.IGNORECASE,
)


def _last_side(text: str) -> str:
    """The last side of an equation chain ("2 \\times 3 = 6" -> "6"); `text` when there is none."""
    sides = re.split(r"(?<![<>!\\])=(?!=)", text)
    return sides[-1].strip() if len(sides) > 1 and sides[-1].strip() else text


def without_remark(text: str) -> str:
    """`text` without a remark in brackets after the value ("18 (dollars)", "5 (the negative
    root is rejected)"); a bracket that offers another value ("(or 4)", "(-2 also works)") stays."""
    match = REMARK_RE.search(text)
    if not match or not text[: match.start()].strip():
        return text
    remark = match.group(1)
    words = re.search(r"[A-Za-z]{2}", remark) is not None
    if words and not re.search(r"\bor\b", remark, re.IGNORECASE) and (not re.search(r"\d", remark) or REJECTION_RE.search(remark)):
        return text[: match.start()].strip()
    return text


def several_values(text: str) -> bool:
    """Whether `text` offers more than one value ("5 or 6", "1-3", "2 \\pm 1", "3, 5")."""
    text = GROUP_SEPARATOR_RE.sub("", without_remark(unwrap(text)))
    return bool(SEVERAL_RE.search(text.replace("\\,", " ").replace("\\!", "")))


def value_texts(text: str) -> list[str]:
    """The spellings of the one value an answer gives, best first, or [] when it offers several.

    `\\displaystyle` goes; "X \\approx Y" gives X, then Y; a leading `\\approx` or
    "approximately"/"about" goes; an equation chain gives its last side (`2 \\times 3 = 6` -> 6);
    a remark in brackets after the value goes.
    """
    text = unwrap(unicode_to_latex(text.translate(DASHES)))
    text = re.sub(r"\\(?:displaystyle|textstyle)\s*", "", text).strip().rstrip(".").strip()
    if several_values(text):
        return []
    parts = [text]
    if "\\approx" in text and not text.startswith("\\approx"):
        exact, _, rounded = text.partition("\\approx")
        parts = [exact, rounded]
    return [without_remark(APPROX_RE.sub("", _last_side(part.strip())).strip()) for part in parts if part.strip()]


def quantity_of(candidate: str) -> Quantity | None:
    """One spelling from `value_texts` as a value: `parse_number`, else number words ("five",
    "twenty-five"); a percent sign is kept as a flag (`25\\%` is 25, percent)."""
    percent = bool(PERCENT_RE.search(candidate))
    if percent:
        candidate = PERCENT_RE.sub("", candidate).strip()
    value = parse_number(candidate)
    if value is None and re.fullmatch(r"[A-Za-z][A-Za-z \-]*", candidate):
        value = number_word_value(candidate)
    return None if value is None else Quantity(value, percent)


def read_quantity(text: str) -> Quantity | None:
    """The one value an answer gives, or None (none, or several competing): the first spelling
    of `value_texts` that `quantity_of` reads. Several values ("5 or 6", "1-3", "3, 5",
    "2 \\pm 1") are None."""
    for candidate in value_texts(text):
        if (quantity := quantity_of(candidate)) is not None:
            return quantity
    return None


def quantities_equal(answer: Quantity, gold: Quantity, tolerance: float) -> bool:
    """Equal within `tolerance` (absolute or relative). A percentage on one side matches the other
    side's value times 100 (`25\\%` and 0.25); it matches the bare number (`25\\%` and 25) only when
    that number is at least 1, since "0.25\\%" is not 0.25."""

    def close(a: float, b: float) -> bool:
        return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)

    if answer.percent == gold.percent:
        return close(answer.value, gold.value)
    percent, plain = (answer, gold) if answer.percent else (gold, answer)
    return close(percent.value / 100, plain.value) or (abs(plain.value) >= 1 and close(percent.value, plain.value))


NUMBER_TOKEN_RE = re.compile(
    r"\\[dt]?frac\s*\{[^{}]*\}\s*\{[^{}]*\}"
    r"|(?<![\w.])[-+]?(?:\d{1,3}(?:(?:,|\{,\}|\\,|,\\!)\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w])"
    # A multiplier word stays with its number, so that "2.5 million" is not read as 2.5.
    r"(?:\s*(?:hundred|thousand|million|billion|trillion|dozen)s?\b)?"
)


def last_number(text: str) -> str | None:
    """The last number written in `text` (as text), for the numeric grader's fallback."""
    tokens = NUMBER_TOKEN_RE.findall(text.translate(DASHES))
    return tokens[-1] if tokens else None


# --- clock times and ratios -------------------------------------------------------------------


class Clock(NamedTuple):
    """A time of day; `suffix` when written with a.m./p.m. (hour then converted to 0-23)."""

    hour: int
    minute: int
    second: int
    suffix: bool


CLOCK_RE = re.compile(r"^(\d{1,2})(?::([0-5]\d)(?::([0-5]\d))?)?\s*(?:([ap])\.?\s*m\.?|(o'?clock))?$", re.IGNORECASE)
RATIO_RE = re.compile(r"^(-?\d+(?:\.\d+)?)(?:\s*(?::|\\colon|\bto\b)\s*(-?\d+(?:\.\d+)?))+$")
NAMED_TIMES = {"noon": "12:00 pm", "midday": "12:00 pm", "midnight": "12:00 am"}


def _clock_text(text: str) -> str:
    text = unwrap(text.strip()).strip().rstrip(".").strip()
    text = re.sub(r"\{:\}|\\colon", ":", text)
    text = re.sub(r"\\[,;! ]|~", " ", text).strip()
    text = re.sub(r"\s*(?:\\[!,;: ])*\s*:\s*(?:\\[!,;: ])*\s*", ":", text)
    return NAMED_TIMES.get(text.lower(), text)


def parse_clock(text: str) -> Clock | None:
    """A clock time `H:MM` or `H:MM:SS`, with an optional a.m./p.m. (`2:15 PM`, `14:15`), an hour
    with a.m./p.m. or "o'clock" (`4 pm`), noon or midnight; else None.

    Hours run 0-24 (1-12 with a suffix); minutes and seconds are two digits 00-59.
    """
    match = CLOCK_RE.match(_clock_text(text))
    if not match:
        return None
    hour, minute, second = int(match.group(1)), int(match.group(2) or 0), int(match.group(3) or 0)
    half = (match.group(4) or "").lower()
    if match.group(2) is None and not (half or match.group(5)):
        return None  # a bare number is not a time
    if half:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half == "p" else 0)
    elif hour > 24:
        return None
    return Clock(hour, minute, second, bool(half))


def clocks_equal(answer: Clock, gold: Clock) -> bool:
    """The same time of day. Without a.m./p.m. on either side the hours must match as written;
    when one side has one, the other side's hour 1-12 may be either half of the day."""
    if (answer.minute, answer.second) != (gold.minute, gold.second):
        return False
    if answer.suffix == gold.suffix:
        return answer.hour % 24 == gold.hour % 24
    plain, suffixed = (gold, answer) if answer.suffix else (answer, gold)
    if 1 <= plain.hour <= 12:
        return suffixed.hour in (plain.hour % 12, plain.hour % 12 + 12)
    return plain.hour % 24 == suffixed.hour


def parse_ratio(text: str) -> tuple[float, ...] | None:
    """A ratio `a:b` (or `a:b:c`, `a \\colon b`, `a to b`) as its terms; None otherwise."""
    text = _clock_text(text)
    if not RATIO_RE.match(text):
        return None
    return tuple(float(term) for term in re.split(r"\s*(?::|\\colon|\bto\b)\s*", text))


def ratios_equal(answer: tuple[float, ...], gold: tuple[float, ...]) -> bool:
    """The same ratio: as many terms, proportional (1:2 = 2:4 = 0.5:1), no zero-only side."""
    if len(answer) != len(gold) or not any(gold) or not any(answer):
        return False
    scale_a, scale_g = max(abs(t) for t in answer), max(abs(t) for t in gold)
    return all(math.isclose(a / scale_a, g / scale_g, rel_tol=1e-9, abs_tol=1e-12) for a, g in zip(answer, gold))


def gold_is_clock(gold: str) -> bool:
    """A gold `H:MM` (hour 0-24, two-digit minutes) or with a.m./p.m. is a clock time, not a
    ratio: `4:30` is half past four, so `2:15` is wrong (2/15 = 4/30 as fractions)."""
    return parse_clock(gold) is not None
