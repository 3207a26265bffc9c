"""Lists typed as text: a table of good and bad inputs, and hypothesis round trips."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from explorer.inputs.lists import (
    ListError,
    describe_limits,
    format_list,
    parse_choices,
    parse_numbers,
)


@pytest.mark.parametrize(
    "text,kwargs,expected",
    [
        ("1, 2, 5, 10", dict(integer=True), [1, 2, 5, 10]),
        ("1,2,5,10", dict(integer=True), [1, 2, 5, 10]),
        (" 0, 0.25 ,1.5 ", {}, [0.0, 0.25, 1.5]),
        ("1, 2,", dict(integer=True), [1, 2]),  # one trailing comma is fine
        ("5.0", dict(integer=True), [5]),
        ("-1e-3, 2E1", {}, [-0.001, 20.0]),
        ("3, 3", {}, [3.0, 3.0]),  # duplicates allowed unless unique=True
    ],
)
def test_parse_numbers_accepts(text, kwargs, expected):
    assert parse_numbers(text, **kwargs) == expected


@pytest.mark.parametrize(
    "text,kwargs,message",
    [
        ("1,,2", {}, "entry 2 is empty"),
        ("", {}, "empty"),
        ("  ,", {}, "empty"),
        ("abc", {}, "'abc' is not a number"),
        ("1, two", dict(integer=True), "'two' is not a whole number"),
        ("2.5", dict(integer=True), "'2.5' is not a whole number"),
        ("1e400", {}, "not a finite number"),
        ("nan", {}, "not a finite number"),
        ("NaN, 1", {}, "not a finite number"),
        ("-inf", {}, "not a finite number"),
        ("1, 2, 3", dict(max_count=2), "3 values given, at most 2"),
        ("0, 5", dict(lo=1, hi=4), "0 is out of range; allowed 1 to 4"),
        ("500", dict(lo=1, hi=200, integer=True), "500 is out of range"),
        ("1, 1", dict(unique=True), "1 appears more than once"),
        ("1" * 3000, {}, "too long"),
        ("1_000", {}, "not a number"),
        ("\u0661", {}, "not a number"),  # an Arabic-Indic digit: float() would take it
        ("0x10", {}, "not a number"),
    ],
)
def test_parse_numbers_refuses(text, kwargs, message):
    with pytest.raises(ListError, match=message):
        parse_numbers(text, **kwargs)


def test_error_names_the_list_and_is_a_value_error():
    with pytest.raises(ValueError, match="^steps: "):
        parse_numbers("x", name="steps")
    with pytest.raises(ListError, match="expected text"):
        parse_numbers(None)  # type: ignore[arg-type]


def test_parse_choices():
    names = ["ddim", "euler", "dpmpp_2m"]
    assert parse_choices("DDIM, euler", names) == ["ddim", "euler"]
    with pytest.raises(ListError, match="unknown 'heun'; choose from ddim, euler, dpmpp_2m"):
        parse_choices("ddim, heun", names)
    with pytest.raises(ListError, match="more than once"):
        parse_choices("euler, Euler", names)


def test_describe_limits():
    text = describe_limits(lo=1, hi=200, max_count=8, integer=True)
    assert text == "Up to 8 whole numbers from 1 to 200, separated by commas."


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(st.lists(finite, min_size=1, max_size=12))
def test_round_trip_floats(values):
    assert parse_numbers(format_list(values)) == values


@given(st.lists(st.integers(0, 2**40), min_size=1, max_size=12))
def test_round_trip_ints(values):
    assert parse_numbers(format_list(values), integer=True) == values


@given(st.text(max_size=60))
def test_any_text_parses_or_raises_list_error(text):
    try:
        values = parse_numbers(text, lo=-100, hi=100, max_count=5)
    except ListError as e:
        assert str(e).startswith("values: ")
    else:
        assert 1 <= len(values) <= 5
        assert all(math.isfinite(v) and -100 <= v <= 100 for v in values)


@given(st.text(alphabet="0123456789.,e- naif", max_size=40))
def test_numeric_looking_text_parses_or_raises_list_error(text):
    try:
        values = parse_numbers(text, integer=True, lo=0, hi=1000)
    except ListError:
        return
    assert all(isinstance(v, int) and 0 <= v <= 1000 for v in values)
