"""Which level of an ordinal scale a clinician means when they type its number.

Scale lists show signed levels with a typographic minus ("−1 — drowsy"), as printed on the RASS
card, but a keyboard types a hyphen-minus ("-1"). A list that matches typed text to labels
letter for letter therefore finds nothing when "-1" is typed, and the clinician scrolls at the
bedside instead. This module reads what was typed as a number, whichever dash or plus sign was
used, and returns the level with that value. It has no Qt in it so it can be proved on its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Every character a keyboard, an input method or a pasted label may use for "minus".
MINUS_SIGNS = frozenset(
    {
        "-",  # hyphen-minus (what a keyboard types)
        "\u2212",  # minus sign (what the scale labels show)
        "\u2010",  # hyphen
        "\u2011",  # non-breaking hyphen
        "\u2012",  # figure dash
        "\u2013",  # en dash
        "\u2014",  # em dash
        "\ufe63",  # small hyphen-minus
        "\uff0d",  # fullwidth hyphen-minus
    }
)
PLUS_SIGNS = frozenset({"+", "\ufe62", "\uff0b"})

_NUMBER = re.compile(r"^([+-]?)(\d+)$")


def normalise_signs(text: str) -> str:
    """``text`` with every minus-like character as "-" and every plus-like one as "+"."""
    return "".join("-" if ch in MINUS_SIGNS else "+" if ch in PLUS_SIGNS else ch for ch in text)


def typed_number(text: str) -> int | None:
    """The whole number ``text`` spells, with any dash or plus; ``None`` if it spells none yet.

    Spaces around and between the sign and the digits are ignored ("- 1" is −1); a lone sign is
    ``None`` (the clinician has not finished typing).
    """
    compact = "".join(normalise_signs(text).split())
    match = _NUMBER.match(compact)
    if match is None:
        return None
    value = int(match.group(2))
    return -value if match.group(1) == "-" else value


def level_for_typed(text: str, values: Iterable[int]) -> int | None:
    """The level among ``values`` that ``text`` names, or ``None`` when it names none of them."""
    number = typed_number(text)
    if number is None:
        return None
    return number if number in set(values) else None


def is_sign_or_digit(ch: str) -> bool:
    """Whether a typed character can be part of a level's number (so the list should read it)."""
    return len(ch) == 1 and (ch.isdecimal() or ch in MINUS_SIGNS or ch in PLUS_SIGNS)
