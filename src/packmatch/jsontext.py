"""JSON text written and read with orjson, with the standard library's exact text and values.

orjson is several times faster than `json` for the API's bodies, the JSON columns read back and
the log lines of the hot path, but it differs from `json` in a few corners. Each function here
takes orjson's answer only where it is the text (or the value) `json` would have produced, and
otherwise falls back to `json` — so callers see the standard library's behaviour, faster:

- floats in [1e-10, 1e-4): `json` writes `1e-05`, orjson `0.00001` or `1e-5`; a pattern on
  orjson's text finds them (or a string that looks like one: then `json` runs, which is only slower);
- integers beyond 64 bits, lone surrogates, keys that are not strings, types orjson does not know
  (NumPy scalars, float subclasses): orjson raises, and `json` says what it says;
- reading: orjson turns an integer of 20 digits or more into a float, `json` keeps it exact (so
  any run of 19 digits goes to `json`); orjson refuses `1e400` (json: `inf`) and `NaN`.

What is not reproduced: a NaN or infinity inside a nested body is written `null` (the API refuses
them on input, so none is ever stored or shown; Starlette's `json.dumps` would have raised).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson

# A number orjson writes differently from `json`: `0.0000…` (json: `…e-05`), found by a substring
# search, or a one-digit negative exponent (json: `e-07`) before a compact separator, by a pattern
# that starts with the literal `e-` (which `re` looks for first). A pattern that must be tried at
# every position costs more than orjson saves.
_TINY_DECIMAL = b"0.0000"
_SHORT_EXPONENT = re.compile(rb"e-\d(?:[,\]}]|$)")
# An integer orjson would read as a float (beyond 64 bits) has 19 digits or more in a row: every
# digit mapped to `0` and everything else to `x`, then one substring search.
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x78 for byte in range(256))
_LONG_DIGITS = b"0" * 19
_COMPACT = (",", ":")


def _fast(value: Any) -> bytes | None:
    try:
        text = orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is one
        return None
    if _TINY_DECIMAL in text or _SHORT_EXPONENT.search(text):
        return None
    return text


def dumps_body(value: Any) -> bytes:
    """An HTTP body: `json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))`
    encoded as UTF-8, i.e. what Starlette's `JSONResponse` renders."""
    text = _fast(value)
    if text is not None:
        return text
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=_COMPACT).encode()


def loads(text: str | bytes | bytearray | memoryview) -> Any:
    """`json.loads(text)`: the same values, integers of any length included."""
    if not isinstance(text, str):
        raw = bytes(text)
    elif text.isascii():
        raw = text.encode()
    else:  # rare (columns are written ASCII), and may hold a lone surrogate, which orjson refuses
        return json.loads(text)
    if _LONG_DIGITS not in raw.translate(_DIGITS_AS_ZEROS):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # `json` decides: it reads `NaN` and `1e400`, or raises its own error
    return json.loads(raw)


def _plain(value: Any) -> bool:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    # NaN fails both comparisons; tiny floats are written differently (module docstring).
    return kind is float and (value == 0.0 or 1e-4 <= abs(value) < math.inf)


def dumps_log_line(event: Mapping[str, Any], default: Callable[[Any], Any] | None = None) -> str:
    """A log line: `json.dumps(event, default=default, separators=(",", ":"))` (ASCII, unknown
    objects through `default`). orjson writes it when every value is a plain str, int, bool, None
    or float (it would write UUIDs, datetimes and enums itself, not through `default`)."""
    if all(_plain(value) for value in event.values()):
        try:
            text = orjson.dumps(event)
        except TypeError:
            text = b"\x80"  # not ASCII: `json` below
        if text.isascii():
            return text.decode()
    return json.dumps(event, default=default, separators=_COMPACT)
