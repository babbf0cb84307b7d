from __future__ import annotations

import unicodedata
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from packmatch.engine import normalise
from packmatch.engine.normalise import normalise_text, parse_date, parse_decimal, parse_number


@pytest.mark.parametrize("value", [None, "", "   ", "\t\n ", "\u00a0"])
def test_normalise_text_treats_missing_and_blank_as_none(value: Any) -> None:
    assert normalise_text(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  Hello   World ", "hello world"),
        ("a\tb\nc", "a b c"),
        ("a\u00a0b", "a b"),
        ("ＡＢＣ１２３", "abc123"),
        ("ﬁle", "file"),
        ("Straße", "strasse"),
        ("ÉCOLE", "école"),
    ],
)
def test_normalise_text_applies_nfkc_casefold_and_whitespace_collapse(value: str, expected: str) -> None:
    assert normalise_text(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(4250, "4250"), (4250.0, "4250"), (4250.5, "4250.5"), (-3, "-3"), (0, "0"), (0.0, "0")],
)
def test_normalise_text_writes_numbers_without_trailing_point_zero(value: float, expected: str) -> None:
    assert normalise_text(value) == expected


@pytest.mark.parametrize(("value", "expected"), [(True, "true"), (False, "false")])
def test_normalise_text_writes_booleans_in_lower_case(value: bool, expected: str) -> None:
    assert normalise_text(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (4250, 4250.0),
        (4250.5, 4250.5),
        (-12, -12.0),
        ("4250", 4250.0),
        ("4250.00", 4250.0),
        ("4,250.00", 4250.0),
        ("1,234,567.89", 1234567.89),
        ("$4,250.00", 4250.0),
        ("4 250.00 €", 4250.0),
        ("€ 1 234.50", 1234.5),
        ("£12", 12.0),
        ("¥1,000", 1000.0),
        ("₹ 99.99", 99.99),
        ("USD 4,250.00", 4250.0),
        ("4250 EUR", 4250.0),
        ("usd100", 100.0),
        ("  +42  ", 42.0),
        ("-$1,234.50", -1234.5),
        ("$-1,234.50", -1234.5),
        ("\u2212" + "7", -7.0),
        (".5", 0.5),
        ("100.", 100.0),
        ("１２３", 123.0),
    ],
)
def test_parse_number_accepts_json_numbers_and_formatted_strings(value: Any, expected: float) -> None:
    assert parse_number(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "abc",
        "ABC123",
        "USD",
        "$",
        "-",
        "1,5",
        "12,34",
        "1,2345",
        "1.2.3",
        "1e3",
        "1_000",
        "nan",
        "inf",
        "+-5",
        "5-",
        True,
        False,
        float("nan"),
        float("inf"),
        float("-inf"),
        10**400,
        "1" * 400,
        [1],
        {"amount": 1},
        date(2024, 1, 1),
    ],
)
def test_parse_number_rejects_anything_else(value: Any) -> None:
    assert parse_number(value) is None


def test_parse_decimal_keeps_digits_a_float_would_lose() -> None:
    assert parse_decimal("12345678901234567891") != parse_decimal("12345678901234567890")


def test_parse_decimal_converts_floats_through_their_shortest_repr() -> None:
    assert parse_decimal(4250.1) == parse_decimal("4,250.10") == Decimal("4250.1")


@pytest.mark.parametrize("value", [True, float("nan"), float("inf"), "1,5", None])
def test_parse_decimal_rejects_what_parse_number_rejects(value: Any) -> None:
    assert parse_decimal(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-09-14", date(2024, 9, 14)),
        ("  2024-09-14 ", date(2024, 9, 14)),
        ("2024-09-14T10:40:00Z", date(2024, 9, 14)),
        ("2024-09-14T10:40:00.000Z", date(2024, 9, 14)),
        ("2024-09-14T23:30:00+05:00", date(2024, 9, 14)),
        ("2024-09-14 10:40", date(2024, 9, 14)),
        ("20240914", date(2024, 9, 14)),
    ],
)
def test_parse_date_always_accepts_iso_8601(value: str, expected: date) -> None:
    assert parse_date(value, ()) == expected


def test_parse_date_keeps_the_calendar_date_of_an_aware_datetime() -> None:
    assert parse_date("2024-09-14T23:30:00-10:00", ()) == date(2024, 9, 14)


@pytest.mark.parametrize(
    "value",
    [
        date(2024, 9, 14),
        datetime(2024, 9, 14, 23, 59),
        datetime(2024, 9, 14, 1, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_parse_date_passes_date_objects_through_as_dates(value: date) -> None:
    assert parse_date(value, ()) == date(2024, 9, 14)


def test_parse_date_uses_custom_formats() -> None:
    assert parse_date("14.09.2024", ("%d.%m.%Y",)) == date(2024, 9, 14)


def test_parse_date_tries_formats_in_order() -> None:
    assert parse_date("03/04/2024", ("%d/%m/%Y", "%m/%d/%Y")) == date(2024, 4, 3)


def test_parse_date_falls_through_to_a_later_format() -> None:
    assert parse_date("Sep 14 2024", ("%d.%m.%Y", "%b %d %Y")) == date(2024, 9, 14)


def test_parse_date_prefers_iso_over_custom_formats() -> None:
    assert parse_date("2024-09-04", ("%Y-%d-%m",)) == date(2024, 9, 4)


@pytest.mark.parametrize(
    "value", [None, "", "   ", "14.09.2024", "2024-13-01", "not a date", 20240914, 1.5, True]
)
def test_parse_date_returns_none_when_unparseable(value: Any) -> None:
    assert parse_date(value, ()) is None


def test_parse_date_ignores_a_bad_format_string() -> None:
    assert parse_date("14.09.2024", ("%Q", "%d.%m.%Y")) == date(2024, 9, 14)


# --- the fast rejection of letter runs that cannot be currency codes -----------------------------


def slow_number_text(raw: str) -> str | None:
    """``normalise._number_text`` without its fast rejection: the rules written out in full."""
    text = unicodedata.normalize("NFKC", raw).replace("\u2212", "-").strip()
    sign = ""
    if text[:1] and text[:1] in "+-":
        sign, text = text[0], text[1:]
    text = "".join(normalise._strip_currency(text).split())
    if sign and text[:1] in "+-":
        return None
    if not normalise._PLAIN_NUMBER.fullmatch(text):
        return None
    return sign + text.replace(",", "")


PIECES = [
    *"0123456789,.+- $€£¥\u2212\u00a0",
    *("USD", "usd", "EUR", "Eur", "CHF", "chf", "INR", "ZAR", "ＵＳＤ", "１"),
    *"aBkKsSiIuU\u0130\u0131\u017f\u212a",
]
NUMBERISH = st.lists(st.sampled_from(PIECES), max_size=8).map("".join)


@settings(max_examples=500, deadline=None)
@given(NUMBERISH)
def test_fast_rejection_changes_no_number(raw: str) -> None:
    assert normalise._number_text(raw) == slow_number_text(raw)


@pytest.mark.parametrize("raw", ["ıNR 5", "INR5", "uſd 5", "5 CHF", "\u212aRW 10", "BK00001234", "US 5"])
def test_currency_codes_with_case_folded_letters_still_parse_as_before(raw: str) -> None:
    assert normalise._number_text(raw) == slow_number_text(raw)
