"""`packmatch.jsontext` writes and reads what the standard library's `json` does, byte for byte."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.processors import JSONRenderer

from packmatch import jsontext

COMPACT = (",", ":")
finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | st.integers() | finite | st.text()
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
# Floats around the exponents where orjson and `json` write the same value differently.
tiny = st.builds(lambda m, e: m * 10.0**e, st.floats(-10, 10, allow_nan=False), st.integers(-12, -3))


def body(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=COMPACT).encode()


@settings(max_examples=500)
@given(documents)
def test_a_body_is_what_starlette_renders(value: Any) -> None:
    assert jsontext.dumps_body(value) == body(value)


@given(st.lists(tiny | finite, min_size=1, max_size=5))
def test_tiny_and_huge_floats_keep_the_standard_librarys_text(values: list[float]) -> None:
    document = {"values": values, "one": values[0]}
    assert jsontext.dumps_body(document) == body(document)


def test_what_orjson_refuses_gets_the_standard_librarys_answer() -> None:
    assert (
        jsontext.dumps_body({"n": 2**80, "k": [1e-5, 2.5e-7]})
        == b'{"n":1208925819614629174706176,"k":[1e-05,2.5e-07]}'
    )
    assert jsontext.dumps_body({1: np.float64(0.5)}) == b'{"1":0.5}'
    with pytest.raises(ValueError, match="not JSON compliant"):
        jsontext.dumps_body({"x": math.inf, "big": 2**70})  # orjson refuses the integer, json the inf


def test_a_nested_nan_is_written_null_the_one_difference() -> None:
    # `json` would raise (bodies) or write `NaN` (documents); the API refuses NaN on input.
    assert jsontext.dumps_body({"x": [math.nan]}) == b'{"x":[null]}'


@settings(max_examples=500)
@given(documents)
def test_reading_gives_the_values_json_gives(value: Any) -> None:
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
        read = jsontext.loads(text)
        assert read == json.loads(text)
        assert repr(read) == repr(json.loads(text))  # int stays int, however long
        assert jsontext.loads(text.encode()) == read
        assert jsontext.loads(memoryview(text.encode())) == read


def test_reading_keeps_long_integers_and_what_only_json_accepts() -> None:
    assert jsontext.loads('{"n":123456789012345678901234567890}') == {"n": 123456789012345678901234567890}
    assert jsontext.loads(b'[123456789012345678901, "ref 12345678901234567890"]')[0] == 123456789012345678901
    assert jsontext.loads("[1e400, NaN]")[0] == math.inf
    assert jsontext.loads('["\ud800", "\u00e9"]') == ["\ud800", "é"]  # raw: orjson refuses them
    with pytest.raises(json.JSONDecodeError):
        jsontext.loads("{")


class Colour(Enum):
    RED = "red"


def test_a_log_line_is_what_structlogs_json_renderer_wrote() -> None:
    ours, theirs = JSONRenderer(serializer=jsontext.dumps_log_line), JSONRenderer(separators=COMPACT)
    events: list[dict[str, Any]] = [
        {"event": "run.accepted", "run_id": "run_1", "slots": 3, "duration_ms": 12.5, "ok": True, "x": None},
        {"event": "slot.failed", "error": "naïve – “quoted”", "tiny": 1e-5},
        {"event": "odd", "id": uuid.UUID(int=7), "at": datetime(2026, 1, 2, tzinfo=UTC), "c": Colour.RED},
        {"event": "odd", "n": 2**70, "nan": math.nan, "nested": {"a": [1, 2.5e-6]}},
    ]
    for event in events:
        assert ours(None, "info", dict(event)) == theirs(None, "info", dict(event))
