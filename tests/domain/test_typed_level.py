"""Typing a scale level's number picks that level whatever dash or plus sign was typed.

Properties, not examples: for every level of every shipped ordinal scale (and arbitrary level
sets), every way of writing its number names it; nothing that is not one of its numbers does.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kapmonitor.domain.reference import load_reference
from kapmonitor.domain.typed_level import (
    MINUS_SIGNS,
    PLUS_SIGNS,
    is_sign_or_digit,
    level_for_typed,
    normalise_signs,
    typed_number,
)
from kapmonitor.paths import resources_dir

REF = load_reference(resources_dir())
SHIPPED_LEVELS = [
    [level.value for level in scale.levels]
    for scale in REF.scales.values()
    if scale.kind == "ordinal"
]

level_sets = st.one_of(
    st.sampled_from(SHIPPED_LEVELS),
    st.lists(st.integers(-50, 50), min_size=1, max_size=12, unique=True),
)
spaces = st.sampled_from(["", " ", "  "])


@st.composite
def spelled(draw: st.DrawFn, value: int) -> str:
    """``value`` as a person might type or paste it: any minus, an optional plus, spaces."""
    if value < 0:
        sign = draw(st.sampled_from(sorted(MINUS_SIGNS)))
    else:
        sign = draw(st.sampled_from(["", *sorted(PLUS_SIGNS)]))
    zeros = draw(st.sampled_from(["", "0"]))
    return f"{draw(spaces)}{sign}{draw(spaces)}{zeros}{abs(value)}{draw(spaces)}"


@given(st.data(), level_sets)
def test_every_spelling_of_a_level_names_it(data: st.DataObject, values: list[int]) -> None:
    value = data.draw(st.sampled_from(values))
    text = data.draw(spelled(value))
    assert level_for_typed(text, values) == value


@given(level_sets, st.integers(-1000, 1000), st.data())
def test_a_number_that_is_no_level_names_nothing(
    values: list[int], number: int, data: st.DataObject
) -> None:
    text = data.draw(spelled(number))
    expected = number if number in values else None
    assert level_for_typed(text, values) == expected


@given(level_sets, st.text(alphabet=st.characters(exclude_categories=["Nd"]), max_size=6))
def test_text_without_digits_names_nothing(values: list[int], text: str) -> None:
    assert typed_number(text) is None
    assert level_for_typed(text, values) is None


@given(st.integers(-10_000, 10_000))
def test_the_typed_number_round_trips(number: int) -> None:
    assert typed_number(str(number)) == number
    assert typed_number(str(number).replace("-", "\u2212")) == number


@given(st.text(max_size=20))
def test_normalising_keeps_length_and_leaves_only_ascii_signs(text: str) -> None:
    out = normalise_signs(text)
    assert len(out) == len(text)
    assert not (set(out) & (MINUS_SIGNS | PLUS_SIGNS)) - {"-", "+"}


def test_the_rass_card_and_a_keyboard_agree() -> None:
    rass = [level.value for level in REF.scales["rass"].levels]
    assert level_for_typed("-1", rass) == -1
    assert level_for_typed("\u22121", rass) == -1
    assert level_for_typed("+1", rass) == 1
    assert level_for_typed("1", rass) == 1
    assert level_for_typed("-6", rass) is None
    assert level_for_typed("-", rass) is None  # not finished typing
    assert level_for_typed("1-", rass) is None


def test_only_signs_and_digits_are_read_as_a_number() -> None:
    assert all(is_sign_or_digit(ch) for ch in "-+0123456789\u2212\u2013")
    assert not any(is_sign_or_digit(ch) for ch in ["a", " ", "", "--", "²", "/"])
