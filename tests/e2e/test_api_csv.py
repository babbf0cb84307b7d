"""POST /v1/matching/reference-data with a CSV file (multipart/form-data): SPEC §2 limits, §3."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

from packmatch.api.routes import reference_data as route
from packmatch.bootstrap import Runtime
from packmatch.services.reference import datasets as service
from tests.e2e.conftest import (
    BOOKINGS,
    INVOICE_MAPPINGS,
    Api,
    chunked_csv_upload,
    chunked_json_rows,
    error_body,
    invoice,
)

REFERENCE_DATA = "/v1/matching/reference-data"
BOOKINGS_CSV = b"""id,reference,carrier_name,amount,departure
BK-1,ABC1234567,Maersk Line,4250.0,2024-09-10
BK-2,XYZ7654321,MSC Mediterranean,1200.0,2024-09-01
BK-3,QRS1111111,Hapag-Lloyd,999.5,2024-08-20
"""
VENDORS_CSV = b"""vendor,active,since,limit,count,note
Acme,true,2020-01-31,100,3,
Globex,FALSE,2021-06-01,2.5,-4,new
Initech,,,n/a,1e3,007
"""


@pytest.fixture
def api(
    request: pytest.FixtureRequest, make_runtime: Callable[..., Runtime], sqlite_url: str, start_api: Any
) -> Api:
    """The embedded stack on SQLite, or (for tests marked ON_BOTH_DATABASES) also on PostgreSQL."""
    url = (
        request.getfixturevalue("postgres_url") if getattr(request, "param", "") == "postgres" else sqlite_url
    )
    result: Api = start_api(make_runtime(database_url=url))
    return result


ON_BOTH_DATABASES = pytest.mark.parametrize(
    "api", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def upload(api: Api, content: bytes | IO[bytes], filename: str = "bookings.csv", **fields: str) -> Any:
    return api.post(REFERENCE_DATA, files={"file": (filename, content, "text/csv")}, data=fields)


def imported(api: Api, content: bytes | IO[bytes], filename: str = "bookings.csv", **fields: str) -> Any:
    response = upload(api, content, filename, **fields)
    assert response.status_code == 201, response.text
    return response.json()


def rows_of(api: Api, dataset: dict[str, Any]) -> list[dict[str, Any]]:
    body = api.get(dataset["links"]["rows"], params={"limit": 100}).json()
    assert not body["pagination"]["has_more"]
    rows: list[dict[str, Any]] = body["data"]
    return rows


def problems(response: Any) -> list[str]:
    body = error_body(response, 400, "validation_error")
    assert {d["field"] for d in body["details"]} == {"file"}
    return [d["message"] for d in body["details"]]


def datasets_total(api: Api) -> int:
    total: int = api.get(REFERENCE_DATA).json()["pagination"]["total"]
    return total


# --- the happy path ---------------------------------------------------------------------------


def test_csv_upload_creates_reference_data_with_source_type_csv(api: Api) -> None:
    response = upload(api, BOOKINGS_CSV)
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["source_type"], created["row_count"]) == ("csv", 3)
    assert response.headers["Location"] == created["links"]["self"]
    assert api.get(created["links"]["self"]).json() == created


def test_csv_name_defaults_to_the_file_name_without_its_extension(api: Api) -> None:
    assert imported(api, BOOKINGS_CSV, "bookings-2024.q3.csv")["name"] == "bookings-2024.q3"


def test_csv_name_default_drops_the_directories_of_the_file_name(api: Api) -> None:
    assert imported(api, BOOKINGS_CSV, "C:\\exports\\bookings.csv")["name"] == "bookings"


def test_csv_name_field_wins_over_the_file_name(api: Api) -> None:
    assert imported(api, BOOKINGS_CSV, "export.csv", name="Bookings Q3")["name"] == "Bookings Q3"


def test_csv_blank_name_field_is_rejected_naming_it(api: Api) -> None:
    body = error_body(upload(api, BOOKINGS_CSV, name="  "), 400, "validation_error")
    assert [d["field"] for d in body["details"]] == ["name"]


def test_csv_columns_are_the_header_without_id_typed_from_their_values(api: Api) -> None:
    assert imported(api, BOOKINGS_CSV)["columns"] == [
        {"name": "reference", "type": "string"},
        {"name": "carrier_name", "type": "string"},
        {"name": "amount", "type": "number"},
        {"name": "departure", "type": "date"},
    ]


def test_csv_column_types_are_inferred_like_json(api: Api) -> None:
    assert imported(api, VENDORS_CSV)["columns"] == [
        {"name": "vendor", "type": "string"},
        {"name": "active", "type": "boolean"},
        {"name": "since", "type": "date"},
        {"name": "limit", "type": "string"},
        {"name": "count", "type": "number"},
        {"name": "note", "type": "string"},
    ]


@ON_BOTH_DATABASES
def test_csv_values_are_stored_as_their_column_type_and_empty_cells_as_null(api: Api) -> None:
    assert rows_of(api, imported(api, VENDORS_CSV)) == [
        {"id": "row_1", "vendor": "Acme", "active": True, "since": "2020-01-31", "limit": "100",
         "count": 3, "note": None},
        {"id": "row_2", "vendor": "Globex", "active": False, "since": "2021-06-01", "limit": "2.5",
         "count": -4, "note": "new"},
        {"id": "row_3", "vendor": "Initech", "active": None, "since": None, "limit": "n/a",
         "count": 1000.0, "note": "007"},
    ]  # fmt: skip


def test_csv_rows_equal_the_same_rows_uploaded_as_json(api: Api) -> None:
    from_csv = imported(api, BOOKINGS_CSV)
    from_json = api.create(REFERENCE_DATA, {"name": "bookings", "rows": BOOKINGS})
    assert rows_of(api, from_csv) == rows_of(api, from_json) == BOOKINGS
    assert from_csv["columns"] == from_json["columns"]


def test_csv_id_column_gives_the_row_ids(api: Api) -> None:
    assert [r["id"] for r in rows_of(api, imported(api, BOOKINGS_CSV))] == ["BK-1", "BK-2", "BK-3"]


def test_csv_without_an_id_column_numbers_the_rows(api: Api) -> None:
    assert [r["id"] for r in rows_of(api, imported(api, VENDORS_CSV))] == ["row_1", "row_2", "row_3"]


def test_csv_quoted_fields_keep_commas_quotes_and_line_breaks(api: Api) -> None:
    content = b'id,name,address\n1,"Doe, Jane","12 ""Main"" St\nSpringfield"\n'
    [row] = rows_of(api, imported(api, content))
    assert row == {"id": "1", "name": "Doe, Jane", "address": '12 "Main" St\nSpringfield'}


def test_csv_utf8_text_is_kept_and_a_byte_order_mark_dropped(api: Api) -> None:
    content = "\ufeffid,carrier\nK-1,Kühne + Nagel\nK-2,日本郵船\n".encode()
    created = imported(api, content)
    assert [c["name"] for c in created["columns"]] == ["carrier"]
    assert [r["carrier"] for r in rows_of(api, created)] == ["Kühne + Nagel", "日本郵船"]


def test_csv_with_crlf_line_endings_and_blank_lines(api: Api) -> None:
    created = imported(api, b"id,amount\r\nA,1\r\n\r\nB,2\r\n\r\n")
    assert [(r["id"], r["amount"]) for r in rows_of(api, created)] == [("A", 1), ("B", 2)]


def test_csv_header_names_are_trimmed(api: Api) -> None:
    created = imported(api, b"id , amount\nA,1\n")
    assert created["columns"] == [{"name": "amount", "type": "number"}]


def test_csv_with_a_header_only_creates_empty_reference_data(api: Api) -> None:
    created = imported(api, b"id,reference,amount\n")
    assert created["row_count"] == 0
    assert created["columns"] == [
        {"name": "reference", "type": "string"},
        {"name": "amount", "type": "string"},
    ]


# --- bad files --------------------------------------------------------------------------------


def test_csv_row_with_the_wrong_number_of_fields_names_its_line(api: Api) -> None:
    content = b"id,reference,amount\nA,x,1\nB,y\nC,z,3\n"
    assert problems(upload(api, content)) == ["line 3: expected 3 fields, got 2"]


def test_csv_line_numbers_count_line_breaks_inside_quotes(api: Api) -> None:
    content = b'id,address\nA,"two\nlines"\nB\n'
    assert problems(upload(api, content)) == ["line 4: expected 2 fields, got 1"]


def test_csv_invalid_utf8_names_its_line(api: Api) -> None:
    content = b"id,carrier\nA,Maersk\nB,K\xfchne\n"
    assert problems(upload(api, content)) == ["line 3: not valid UTF-8 (byte 0xfc at position 4)"]


def test_csv_nul_byte_names_its_line(api: Api) -> None:
    content = b"id,carrier\nA,Maersk\nB\x00,MSC\n"
    assert problems(upload(api, content)) == ["line 3: contains a NUL byte at position 2"]


def test_csv_unterminated_quote_names_the_line_it_starts_on(api: Api) -> None:
    content = b'id,note\nA,ok\nB,"never closed\nC,more\n'
    assert problems(upload(api, content)) == ["line 3: unexpected end of data"]


def test_csv_problems_are_listed_by_line_up_to_20(api: Api) -> None:
    content = b"id,amount\n" + b"".join(b"%d\n" % n for n in range(100))
    body = error_body(upload(api, content), 400, "validation_error")
    assert [d["message"] for d in body["details"]] == [
        f"line {line}: expected 2 fields, got 1" for line in range(2, 22)
    ]
    assert "first 20" in body["message"]


def test_csv_duplicate_ids_name_the_line(api: Api) -> None:
    content = b"id,amount\nA,1\nB,2\nA,3\n"
    assert problems(upload(api, content)) == ["line 4: duplicate row id 'A'"]


@ON_BOTH_DATABASES
def test_csv_duplicate_id_far_apart_is_found(api: Api) -> None:
    rows = b"".join(b"ID-%d,%d\n" % (n, n) for n in range(1, 2501))
    content = b"id,amount\n" + rows + b"ID-7,0\n"
    assert problems(upload(api, content)) == ["line 2502: duplicate row id 'ID-7'"]


def test_csv_empty_id_names_the_line(api: Api) -> None:
    assert problems(upload(api, b"id,amount\nA,1\n ,2\n")) == [
        "line 3: row id must be a non-blank string or an integer"
    ]


def test_json_row_id_that_clashes_with_a_generated_id_is_a_duplicate(api: Api) -> None:
    response = api.post(REFERENCE_DATA, json={"name": "n", "rows": [{"id": "row_2", "a": 1}, {"a": 2}]})
    body = error_body(response, 400, "validation_error")
    assert body["details"] == [{"field": "rows[1].id", "message": "duplicate row id 'row_2'"}]


@ON_BOTH_DATABASES
def test_csv_rejected_for_a_duplicate_id_leaves_nothing_behind(api: Api) -> None:
    rows = b"".join(b"ID-%d,%d\n" % (n, n) for n in range(1, 2501))
    upload(api, b"id,amount\n" + rows + b"ID-1,0\n")
    assert datasets_total(api) == 0


def test_csv_empty_file_is_rejected(api: Api) -> None:
    assert problems(upload(api, b"")) == [
        "the file is empty; its first line must be a header row naming the columns"
    ]


def test_csv_blank_header_name_names_the_column(api: Api) -> None:
    assert problems(upload(api, b"id,,amount\nA,x,1\n")) == ["line 1: column 2 has no name"]


def test_csv_duplicate_header_name_names_both_columns(api: Api) -> None:
    assert problems(upload(api, b"id,amount,note,amount\nA,1,x,2\n")) == [
        "line 1: column 4 'amount' has the same name as column 2"
    ]


def test_csv_with_more_rows_than_the_limit_is_payload_too_large(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "MAX_ROWS", 3)
    body = error_body(upload(api, b"id,amount\nA,1\nB,2\nC,3\nD,4\n"), 413, "payload_too_large")
    assert body["message"] == "The file has more than 3 rows."
    assert datasets_total(api) == 0


def test_csv_upload_over_the_byte_cap_is_payload_too_large(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(route, "MAX_CSV_BYTES", 1000)
    content = b"id,amount\n" + b"".join(b"%d,%d\n" % (n, n) for n in range(1000))
    error_body(upload(api, content), 413, "payload_too_large")


def test_chunked_csv_upload_over_the_byte_cap_is_payload_too_large(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(route, "MAX_CSV_BYTES", 1000)
    body, headers = chunked_csv_upload()
    error_body(api.post(REFERENCE_DATA, content=body, headers=headers), 413, "payload_too_large")


def test_chunked_json_body_over_the_body_limit_is_payload_too_large(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api.runtime.settings, "max_body_bytes", 1000)
    headers = {"Content-Type": "application/json"}
    response = api.post(REFERENCE_DATA, content=chunked_json_rows(), headers=headers)
    error_body(response, 413, "payload_too_large")


# --- the request itself -----------------------------------------------------------------------


def test_other_content_types_are_unsupported_media_type(api: Api) -> None:
    response = api.post(REFERENCE_DATA, content=BOOKINGS_CSV, headers={"Content-Type": "text/csv"})
    body = error_body(response, 415, "unsupported_media_type")
    assert body["message"] == ("Content-Type must be application/json or multipart/form-data (got text/csv).")


def test_a_json_body_without_a_content_type_is_read_as_json(api: Api) -> None:
    response = api.post(REFERENCE_DATA, content=b'{"name": "bookings", "rows": [{"a": 1}]}')
    assert response.status_code == 201, response.text


def test_multipart_without_a_file_part_names_file(api: Api) -> None:
    response = api.post(REFERENCE_DATA, files={"name": (None, b"bookings")})
    body = error_body(response, 400, "validation_error")
    assert [d["field"] for d in body["details"]] == ["file"]


def test_multipart_with_an_unknown_field_names_it(api: Api) -> None:
    response = upload(api, BOOKINGS_CSV, delimiter=";")
    body = error_body(response, 400, "validation_error")
    assert [d["field"] for d in body["details"]] == ["delimiter"]


def test_malformed_multipart_body_is_a_validation_error(api: Api) -> None:
    headers = {"Content-Type": "multipart/form-data; boundary=xyz"}
    response = api.post(REFERENCE_DATA, content=b"--xyz\r\nnonsense", headers=headers)
    error_body(response, 400, "validation_error")


def test_read_only_key_cannot_upload_csv(api: Api) -> None:
    reader = api.other_organization("acme-reader", scopes="read")
    response = reader.post(REFERENCE_DATA, files={"file": ("b.csv", BOOKINGS_CSV, "text/csv")})
    error_body(response, 403, "insufficient_scope")


# --- size -------------------------------------------------------------------------------------


def test_csv_of_50k_rows_is_imported(api: Api) -> None:
    content = b"id,reference,amount\n" + b"".join(
        b"BK-%d,REF%07d,%d.5\n" % (n, n, n) for n in range(1, 50_001)
    )
    created = imported(api, content)
    assert created["row_count"] == 50_000
    last = api.get(created["links"]["rows"], params={"limit": 1, "order": "desc"}).json()
    assert last["data"] == [{"id": "BK-50000", "reference": "REF0050000", "amount": 50000.5}]
    assert last["pagination"]["total"] == 50_000


@ON_BOTH_DATABASES
def test_csv_larger_than_the_10_mib_body_limit_is_accepted(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "bookings.csv"
    with path.open("wb") as file:
        file.write(b"id,reference,carrier_name,note\n")
        for n in range(1, 110_001):
            file.write(b"BK-%d,REF%07d,Carrier number %d,%s\n" % (n, n, n, b"x" * 60))
    assert path.stat().st_size > api.runtime.settings.max_body_bytes
    with path.open("rb") as file:
        created = imported(api, file)
    assert (created["name"], created["row_count"]) == ("bookings", 110_000)


def test_csv_import_holds_a_batch_in_memory_not_the_file(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    with path.open("wb") as file:
        file.write(b"id,note\n")
        for n in range(1, 20_001):
            file.write(b"W-%d,%s\n" % (n, b"x" * 500))
    organization_id = api.runtime.services.accounts.authenticate(api.key).organization_id
    tracemalloc.start()
    try:
        with path.open("rb") as file:
            api.runtime.services.reference_data.create_from_csv(organization_id, "wide", file)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert path.stat().st_size > 10_000_000
    assert peak < 6_000_000  # a batch of 1,000 rows is about 2.5 MB here; the file is 10 MB


# --- matching ---------------------------------------------------------------------------------


def invoice_run(api: Api, reference_data_id: str) -> dict[str, Any]:
    mc = api.create(
        "/v1/matching/configs",
        {"name": "Invoice", "reference_data_id": reference_data_id, "field_mappings": INVOICE_MAPPINGS},
    )
    slots = [{"document_type": "invoice", "matching_config_id": mc["id"], "presence": "required"}]
    pkg = api.create("/v1/matching/packages/configs", {"name": "Bundle", "document_type_configs": slots})
    rows = [invoice("doc_1"), invoice("doc_2", booking_reference="XYZ7654321", total="1,199", carrier="MSC")]
    response = api.run(pkg["id"], {"invoice": rows})
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


def results(api: Api, run: dict[str, Any]) -> list[dict[str, Any]]:
    matching_run = api.get(f"/v1/matching/runs/{run['document_results'][0]['matching_run_id']}").json()
    data: list[dict[str, Any]] = api.get(matching_run["links"]["results"]).json()["data"]
    return [{k: v for k, v in result.items() if k != "id"} for result in data]


@ON_BOTH_DATABASES
def test_matching_against_csv_data_equals_matching_against_the_same_json_data(api: Api) -> None:
    from_csv = invoice_run(api, imported(api, BOOKINGS_CSV)["id"])
    from_json = invoice_run(api, api.create(REFERENCE_DATA, {"name": "b", "rows": BOOKINGS})["id"])
    assert from_csv["status"] == from_json["status"] == "passed"
    assert results(api, from_csv) == results(api, from_json)
    assert [r["confidence"] for r in from_csv["document_results"]] == [0.9833]
