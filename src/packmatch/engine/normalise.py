"""Turn raw cell values (JSON scalars, CSV strings) into comparable text, numbers and dates.

Every function here is total: it never raises on odd input, it returns ``None`` instead.

Text (SPEC §4): Unicode NFKC, ``str.casefold()``, trimmed, inner whitespace collapsed to one space.
Booleans become ``"true"``/``"false"``; integral floats lose their ``.0`` (``4250.0`` → ``"4250"``).

Numbers: JSON numbers (not booleans, finite) as they are; strings may carry an optional sign
(``-``, ``+`` or U+2212 MINUS SIGN), currency symbols (any Unicode category ``Sc``) and common
ISO currency codes before or after the amount, spaces anywhere, ``,`` thousands separators in
groups of three and ``.`` as the decimal point. ``"1,5"`` (a decimal comma) and exponents are
*not* numbers: guessing there would make ``exact`` match values that differ.

Dates: ``date``/``datetime`` objects pass through; strings in ISO 8601 (``datetime.fromisoformat``,
including a trailing ``Z``) always parse, then each strptime format in order. A datetime keeps its
own calendar date: no time-zone conversion happens.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

__all__ = ["normalise_text", "parse_date", "parse_decimal", "parse_number"]

_CURRENCY_CODES = (
    "AUD|BRL|CAD|CHF|CNY|CZK|DKK|EUR|GBP|HKD|HUF|INR|JPY|KRW|MXN|NOK|NZD|PLN|RON|SEK|SGD|TRY|USD|ZAR"
)
_CODE_PREFIX = re.compile(rf"^(?:{_CURRENCY_CODES})(?![a-z])", re.IGNORECASE)
_CODE_SUFFIX = re.compile(rf"(?<![a-z])(?:{_CURRENCY_CODES})$", re.IGNORECASE)
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|[+-]?\.\d+")
# What a code's letter can be under re.IGNORECASE: ASCII letters and İ ı ſ K (the Kelvin sign).
_CODE_LETTER = "A-Za-z\u0130\u0131\u017f\u212a"
# A run of such letters that is not 3 long can never be stripped as a code: no number (fast).
_NOT_A_CODE = re.compile(
    rf"(?<![{_CODE_LETTER}])(?:[{_CODE_LETTER}]{{1,2}}|[{_CODE_LETTER}]{{4,}})(?![{_CODE_LETTER}])"
)
_SIGNS = "+-"


def normalise_text(value: Any) -> str | None:
    """Comparable text for ``value``; ``None`` when it is missing, empty or only whitespace."""
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", _as_text(value)).casefold()
    return " ".join(text.split()) or None


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_number(value: Any) -> float | None:
    """The finite float ``value`` stands for, or ``None``."""
    number: float | None = None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = _int_to_float(value)
    elif isinstance(value, float):
        number = value
    elif isinstance(value, str) and (text := _number_text(value)) is not None:
        number = float(text)
    return number if number is not None and math.isfinite(number) else None


def _int_to_float(value: int) -> float | None:
    try:
        return float(value)
    except OverflowError:
        return None


def parse_decimal(value: Any) -> Decimal | None:
    """Like :func:`parse_number` but exact: ``"12345678901234567891"`` keeps its last digit.

    A float converts through its shortest repr, so ``4250.1`` equals ``"4250.10"``.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, str) and (text := _number_text(value)) is not None:
        return Decimal(text)
    return None


def _number_text(raw: str) -> str | None:
    """``raw`` reduced to what ``float()``/``Decimal()`` accept, or ``None`` if it is no number."""
    text = unicodedata.normalize("NFKC", raw).replace("\u2212", "-").strip()
    if _NOT_A_CODE.search(text):
        return None
    sign = ""
    if text[:1] and text[:1] in _SIGNS:
        sign, text = text[0], text[1:]
    text = "".join(_strip_currency(text).split())
    if sign and text[:1] in _SIGNS:
        return None
    if not _PLAIN_NUMBER.fullmatch(text):
        return None
    return sign + text.replace(",", "")


def _strip_currency(text: str) -> str:
    """Remove currency symbols and codes (and the spaces beside them) from both ends."""
    previous = None
    while text != previous:
        previous = text
        text = _CODE_SUFFIX.sub("", _CODE_PREFIX.sub("", text)).strip()
        if text and unicodedata.category(text[0]) == "Sc":
            text = text[1:]
        if text and unicodedata.category(text[-1]) == "Sc":
            text = text[:-1]
    return text


def parse_date(value: Any, formats: Sequence[str] = ()) -> date | None:
    """The calendar date ``value`` stands for, or ``None``."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not (text := value.strip()):
        return None
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        pass
    return _parse_with_formats(text, formats)


def _parse_with_formats(text: str, formats: Sequence[str]) -> date | None:
    for fmt in formats:
        try:
            return datetime.strptime(text, fmt).date()  # naive is fine: only the date is kept
        except ValueError:
            continue
    return None
