"""POST /v1/matching/configs/{id}/evaluations with a CSV file: a `text/csv` body or a multipart `file`."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

import pytest

from packmatch.bootstrap import Runtime
from tests.e2e.conftest import Api, chunked, error_body
from tests.e2e.test_api_evaluations import CONFIGS, final, labelled_rows, matching_config

COLUMNS = ("booking_reference", "carrier", "reference_row_id", "total", "ship_date")


def as_csv(rows: list[dict[str, Any]]) -> bytes:
    """Labelled rows as a CSV file: the label in the middle column, None as a blank cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        cells = {**row["values"], "reference_row_id": row["reference_row_id"]}
        writer.writerow("" if cells[name] is None else cells[name] for name in COLUMNS)
    return out.getvalue().encode()


def rows_with_a_blank() -> list[dict[str, Any]]:
    """`labelled_rows()` plus one with a blank carrier (the cell is null, as in reference data)."""
    rows = labelled_rows()
    return [*rows, {"values": {**rows[2]["values"], "carrier": None}, "reference_row_id": "BK-3"}]


def as_read_from_csv(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same rows as the CSV gives them: `total` is a number column, so its cells are numbers."""
    return [{**row, "values": {**row["values"], "total": json.loads(row["values"]["total"])}} for row in rows]


def send_csv(api: Api, path: str, content: bytes, how: str = "text/csv", **kwargs: Any) -> Any:
    headers = kwargs.pop("headers", {})
    if how == "multipart":
        return api.post(path, files={"file": ("labels.csv", content, "text/csv")}, headers=headers, **kwargs)
    return api.post(path, content=content, headers={"Content-Type": how, **headers}, **kwargs)


def evaluations_path(api: Api) -> str:
    return f"{CONFIGS}/{matching_config(api)['id']}/evaluations"


@pytest.mark.parametrize("how", ["text/csv", "multipart"])
def test_a_csv_evaluation_reports_what_the_same_rows_sent_as_json_do(stored_api: Api, how: str) -> None:
    path = evaluations_path(stored_api)
    rows = rows_with_a_blank()
    response = send_csv(stored_api, path, as_csv(rows), how)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert response.headers["Location"] == accepted["links"]["self"]
    assert (accepted["source"], accepted["status"]) == ("csv", "queued")
    assert accepted["progress"] == {"done": 0, "total": len(rows)}

    sent_as_json = stored_api.post(path, json={"rows": as_read_from_csv(rows)})
    assert sent_as_json.status_code == 202, sent_as_json.text
    from_csv = final(stored_api, accepted["links"]["self"])
    from_json = final(stored_api, sent_as_json.headers["Location"])
    assert (from_csv["status"], from_json["status"]) == ("done", "done")
    assert from_csv["report"] == from_json["report"]
    assert from_csv["report"]["rows"] == len(rows)
    assert from_csv["report"]["labelled_matches"] == 6
    # The typed values are what the engine saw: the evidence shows the number, not the cell's text.
    evidence = from_csv["report"]["worst_misses"][0]["candidates"][0]["evidence"]
    assert isinstance(evidence["total"]["source_value"], float)


def test_a_csv_with_a_byte_order_mark_and_crlf_line_ends_is_read(api: Api) -> None:
    path = evaluations_path(api)
    content = b"\xef\xbb\xbf" + as_csv(labelled_rows()).replace(b"\n", b"\r\n")
    response = send_csv(api, path, content, "text/csv; charset=utf-8")
    assert response.status_code == 202, response.text
    assert final(api, response.headers["Location"])["report"]["rows"] == 6


HEADER = b"booking_reference,reference_row_id\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty; its first line must be a header row naming the columns"),
        (b"booking_reference,carrier\nABC1234567,Maersk\n", "line 1: the header has no 'reference_row_id'"),
        (HEADER, "the file has a header but no rows"),
        (HEADER + b"ABC1234567,BK-1\nABC1234567,BK-1,extra\n", "line 3: expected 2 fields, got 3"),
        (HEADER + b"ABC\xff1234567,BK-1\n", "line 2: not valid UTF-8 (byte 0xff at position 4)"),
        (b"reference_row_id,a,a\nBK-1,1,2\n", "line 1: column 3 'a' has the same name as column 2"),
        (HEADER + b"ABC,BK-1\nABC,BK-404\n", "line 3: reference_row_id: 'BK-404' is not a row of this"),
        (HEADER + b"ABC," + b"x" * 201 + b"\n", "line 2: reference_row_id is longer than 200 characters"),
        (HEADER + b'"ABC,BK-1\n', "line 2: unexpected end of data"),
    ],
    ids=["empty", "no-label", "no-rows", "fields", "utf8", "header", "unknown-label", "long-label", "quote"],
)
def test_a_bad_csv_gets_a_400_naming_its_line(api: Api, content: bytes, message: str) -> None:
    path = evaluations_path(api)
    for how in ("text/csv", "multipart"):
        body = error_body(send_csv(api, path, content, how), 400, "validation_error")
        assert body["message"].startswith(("The CSV file cannot be evaluated", "Some labels name no"))
        assert body["details"][0]["field"] == "file"
        assert body["details"][0]["message"].startswith(message), body["details"]
    assert api.get(path).json()["pagination"]["total"] == 0  # nothing refused was recorded


def test_more_than_100k_rows_is_413(api: Api) -> None:
    path = evaluations_path(api)
    content = HEADER + b"ABC,\n" * 100_001
    body = error_body(send_csv(api, path, content), 413, "payload_too_large")
    assert body["details"] == [{"field": "file", "message": "The file has more than 100,000 rows."}]
    assert send_csv(api, path, HEADER + b"ABC,\n" * 100_000).status_code == 202


@pytest.fixture
def small_body_api(make_runtime: Callable[..., Runtime], sqlite_url: str, start_api: Any) -> Api:
    api: Api = start_api(make_runtime(database_url=sqlite_url, max_body_bytes=2048))
    return api


def test_a_csv_over_the_body_limit_is_413_with_or_without_a_content_length(small_body_api: Api) -> None:
    path = evaluations_path(small_body_api)
    content = HEADER + b"ABC,\n" * 1000
    for how in ("text/csv", "multipart"):
        error_body(send_csv(small_body_api, path, content, how), 413, "payload_too_large")
    streamed = send_csv(small_body_api, path, chunked(HEADER, *[b"ABC,\n"] * 1000))  # type: ignore[arg-type]
    error_body(streamed, 413, "payload_too_large")
    assert small_body_api.get(path).json()["pagination"]["total"] == 0


@pytest.mark.parametrize("content_type", ["text/plain", "text/csv; charset=latin-1", "application/xml"])
def test_another_media_type_or_charset_is_415(api: Api, content_type: str) -> None:
    path = evaluations_path(api)
    response = send_csv(api, path, as_csv(labelled_rows()), content_type)
    body = error_body(response, 415, "unsupported_media_type")
    assert "text/csv" in body["message"]


def test_a_multipart_upload_needs_one_file_part_and_nothing_else(api: Api) -> None:
    path = evaluations_path(api)
    content = as_csv(labelled_rows())
    extra = error_body(send_csv(api, path, content, "multipart", data={"name": "x"}), 400, "validation_error")
    assert [d["field"] for d in extra["details"]] == ["name"]
    missing = api.post(path, data={"rows": "x"}, files={"other": ("a.csv", content, "text/csv")})
    error_body(missing, 400, "validation_error")


def test_the_same_idempotency_key_replays_a_csv_evaluation_and_refuses_another_file(api: Api) -> None:
    path = evaluations_path(api)
    key = {"Idempotency-Key": "csv-eval-1"}
    content = as_csv(labelled_rows())
    first = send_csv(api, path, content, headers=key)
    again = send_csv(api, path, content, headers=key)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (again.json()["id"], again.headers["Location"]) == (first.json()["id"], first.headers["Location"])
    other = send_csv(api, path, as_csv(labelled_rows()[:2]), headers=key)
    error_body(other, 422, "idempotency_key_mismatch")
    assert api.get(path).json()["pagination"]["total"] == 1
    final(api, first.headers["Location"])


def test_a_csv_evaluation_of_an_unknown_config_is_404(api: Api) -> None:
    path = f"{CONFIGS}/mc_00000000-0000-4000-8000-000000000000/evaluations"
    error_body(send_csv(api, path, as_csv(labelled_rows())), 404, "not_found")
