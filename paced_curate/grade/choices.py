"""Reading the one multiple-choice letter an answer chooses, or none.

    choice_letter("E) 42 meters")                 # 'E'
    choice_letter("C because I computed it")      # 'C' (the pronoun I is not a second letter)
    choice_letter("A or B")                       # None
    gold_letter("(b)")                            # 'B'

Letters A-Z (MMLU-Pro uses A-J, so `I` is a choice); a lone lower-case letter (MathQA's
`a ) 38`); labels in English ("answer is", "correct option:") and in Chinese, Japanese and
Korean (`\u7b54\u6848\uff1aB`, `\u6545\u9009\uff08C\uff09`, `\ub530\ub77c\uc11c \ub2f5\uc740 (I) \uc785\ub2c8\ub2e4`).
"""

from __future__ import annotations

import re

from paced_curate.grade.notation import unwrap
from paced_curate.grade.regions import cut_side_remark, full_width_to_ascii

LABEL_RE = re.compile(r"^(?:the\s+)?(?:final\s+|correct\s+|best\s+|right\s+)*(?:answer|option|choice)(?:\s+is)?\s*[:=]?\s*", re.IGNORECASE)
CJK_LABEL_RE = re.compile(
    r"^(?:\u6700\u7ec8|\u6b63\u786e)?(?:\u7b54\u6848|\u9009\u9879)(?:\u5e94\u8be5)?(?:\u662f|\u4e3a|\u9009)?\s*[:\uff1a]?\s*"
    r"|^(?:\u6545|\u6240\u4ee5|\u56e0\u6b64|\u5e94)?\u9009(?:\u62e9)?\s*[:\uff1a]?\s*"
    r"|^(?:\u7b54\u3048|\u6b63\u89e3)(?:\u306f)?\s*[:\uff1a]?\s*"
    r"|^(?:\ub530\ub77c\uc11c\s*)?(?:\uc815\ub2f5|\ub2f5)(?:\uc740|\ub294)?\s*[:\uff1a]?\s*"
)
# What follows a letter and ends the sentence in Chinese, Japanese or Korean: a copula, a period.
CJK_TAIL_RE = re.compile(r"\s*(?:\uc785\ub2c8\ub2e4|\uc774\ub2e4|\uc774\uc5d0\uc694|\u3067\u3059|\u3060|\u3002|\u9879)\s*\.?\s*$")
CHOICE_HEAD_RE = re.compile(r"^(?:\(([A-Z])\)|\[([A-Z])\]|([A-Z])(?=[).:,;]|\s|$))[).:]?\s*(.*)$", re.DOTALL)
# After a letter: a connective and another letter, a bracketed letter, or a lone letter.
ANOTHER_CHOICE_RE = re.compile(r"^(?:(?:,|/|&|\\&|\+|;|and\b|or\b)\s*[(\[]?[A-Z](?![A-Za-z])|[(\[][A-Z][)\]]|[A-Z][.)]?$)")
STANDALONE_LETTER_RE = re.compile(r"(?<![A-Za-z'])[(\[]?[A-Z][)\]]?(?![A-Za-z'])")
# The pronoun I ("I computed", "I'm sure"), not a choice.
PRONOUN_I_RE = re.compile(r"(?<![A-Za-z(\[])I(?=\s+[a-z]|'[a-z])")
# A reason after the letter, even without a comma: "B because A is too small".
REASON_RE = re.compile(r"\s+(?:because|since|as(?!\s+well)(?<!well\sas))\s+", re.IGNORECASE)
LOWER_CHOICE_RE = re.compile(r"^\(?([a-z])\s*\)(?:\s|$)")


def gold_letter(gold: str) -> str | None:
    """A gold choice: "B", "b", "(B)", "B.", "B)", "\\text{B}", "\uff22" -> "B"; else None."""
    match = re.fullmatch(r"[(\[]?([A-Za-z])[)\]]?\.?", re.sub(r"\s+", "", unwrap(full_width_to_ascii(gold))))
    return match.group(1).upper() if match else None


def choice_letter(text: str) -> str | None:
    """The one letter an answer chooses, or None when it chooses none or several.

    Read: "B", "(B)", "[B]", "B.", "**B**", "\\text{Answer: G}", "E) 42 meters" (option text after
    a letter with ")", "." or ":"), "(C) because ...", "D, since B double counts" (a remark after
    a comma is not read), "C because I computed" (the pronoun I is not a letter), a lone
    lower-case "b", "(b)" or MathQA's "a ) 38", and CJK labels. Several letters ("A, C", "A or
    B", "B/D", "A and C", "(A)(C)", "AC") are None.
    """
    text = unwrap(full_width_to_ascii(text))
    text = CJK_LABEL_RE.sub("", LABEL_RE.sub("", text).strip()).strip()
    text = CJK_TAIL_RE.sub("", text).strip()
    lone = re.fullmatch(r"[(\[]?([a-z])[)\]]?\.?", text) or LOWER_CHOICE_RE.match(text)
    if lone:
        return lone.group(1).upper()
    text = REASON_RE.split(cut_side_remark(text), maxsplit=1)[0].strip()
    match = CHOICE_HEAD_RE.match(text)
    if not match:
        return None
    letter = match.group(1) or match.group(2) or match.group(3)
    rest = PRONOUN_I_RE.sub(" ", match.group(4)).strip()
    delimited = match.group(3) is None or text[1:2] in (")", ".", ":")
    if ANOTHER_CHOICE_RE.match(rest):
        return None
    if not delimited and STANDALONE_LETTER_RE.search(rest):
        return None  # "A or maybe B": it may name another choice
    return letter
