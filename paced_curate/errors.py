"""Errors a user can act on.

The CLI prints a `PacedError` as one line and exits with code 2 (no traceback unless
`--debug`). Anything else is a bug and keeps its traceback.
"""


class PacedError(Exception):
    """A problem with the user's input or settings, explained in one line."""


class InputError(PacedError):
    """An input file is missing, unreadable or malformed (the message names file, row, column)."""


class SchemaError(PacedError):
    """A table does not match the Arrow schema its stage declares."""


class ConfigError(PacedError):
    """A flag or config value is out of range or inconsistent with another."""


class ResumeMismatch(PacedError):
    """An existing output was made with different settings, so it cannot be resumed."""


CONSONANT_SOUNDS = ("uni", "use", "usu", "uint", "eu", "one")
"""Words spelt with a vowel that start with a consonant sound ("a uint8", "a unicode string")."""


def a_or_an(noun: str) -> str:
    """The noun with its indefinite article, for messages: "an int", "a list", "an 'export' table".

    By spelling (a leading quote is skipped): "an" before a, e, i, o, u unless the word starts
    with a consonant sound (`CONSONANT_SOUNDS`).
    """
    word = noun.lstrip("'\"`").lower()
    vowel = word[:1] in tuple("aeiou") and not word.startswith(CONSONANT_SOUNDS)
    return f"{'an' if vowel else 'a'} {noun}"
