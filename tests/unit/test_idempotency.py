"""Idempotency decisions, request fingerprints and header checks: pure functions, no I/O."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import Headers

from packmatch.api.idempotency import key_problem, multipart_boundary, request_target, with_request_id
from packmatch.services.idempotency import IN_PROGRESS_LEASE, TTL, Fingerprint, Outcome, decide
from packmatch.store.idempotency import IdempotencyRecord, KeyState, StoredResponse

NOW = datetime(2024, 9, 14, 10, 40, tzinfo=UTC)
CREATED = StoredResponse(201, (("content-type", "application/json"),), b'{"id":"ref_1"}')


def record(
    state: KeyState = KeyState.COMPLETED, fingerprint: str = "f1", age: timedelta = timedelta(minutes=1)
) -> IdempotencyRecord:
    created = NOW - age
    response = CREATED if state is KeyState.COMPLETED else None
    return IdempotencyRecord(
        uuid.UUID(int=1), "k", fingerprint, state, "req_first", response, created, created + TTL
    )


# --- decide -------------------------------------------------------------------------------------


def test_an_unused_key_proceeds() -> None:
    assert decide(None, "f1", NOW).outcome is Outcome.PROCEED


def test_a_completed_key_with_the_same_request_replays_its_response() -> None:
    decision = decide(record(), "f1", NOW)
    assert (decision.outcome, decision.replay, decision.original_request_id) == (
        Outcome.REPLAY,
        CREATED,
        "req_first",
    )


def test_a_completed_key_with_another_request_is_a_mismatch() -> None:
    assert decide(record(), "f2", NOW).outcome is Outcome.MISMATCH


def test_a_key_in_progress_with_the_same_request_is_in_progress() -> None:
    assert decide(record(KeyState.IN_PROGRESS), "f1", NOW).outcome is Outcome.IN_PROGRESS


def test_a_key_in_progress_with_another_request_is_a_mismatch() -> None:
    assert decide(record(KeyState.IN_PROGRESS), "f2", NOW).outcome is Outcome.MISMATCH


@pytest.mark.parametrize("fingerprint", ["f1", "f2"])
def test_an_expired_key_is_replaced(fingerprint: str) -> None:
    decision = decide(record(age=TTL), fingerprint, NOW)
    assert (decision.outcome, decision.replacing) == (Outcome.PROCEED, "req_first")


def test_a_key_just_inside_24_hours_still_replays() -> None:
    assert decide(record(age=TTL - timedelta(seconds=1)), "f1", NOW).outcome is Outcome.REPLAY


def test_a_claim_older_than_the_lease_is_taken_over() -> None:
    decision = decide(record(KeyState.IN_PROGRESS, age=IN_PROGRESS_LEASE), "f1", NOW)
    assert (decision.outcome, decision.replacing) == (Outcome.PROCEED, "req_first")


def test_a_completed_key_older_than_the_lease_still_replays() -> None:
    assert decide(record(age=IN_PROGRESS_LEASE * 3), "f1", NOW).outcome is Outcome.REPLAY


# --- fingerprint --------------------------------------------------------------------------------


def digest(
    method: str = "POST", target: str = "/v1/x", body: bytes = b"{}", boundary: bytes | None = None
) -> str:
    fingerprint = Fingerprint(method, target, boundary)
    fingerprint.update(body)
    return fingerprint.hexdigest()


def test_the_same_request_has_the_same_fingerprint() -> None:
    assert digest() == digest()


@pytest.mark.parametrize(
    "changed",
    [{"method": "PUT"}, {"target": "/v1/y"}, {"target": "/v1/x?wait=1"}, {"body": b'{"a":1}'}],
    ids=["method", "path", "query", "body"],
)
def test_method_path_query_and_body_each_change_the_fingerprint(changed: dict[str, object]) -> None:
    assert digest(**changed) != digest()  # type: ignore[arg-type]


def test_the_path_and_body_cannot_be_shifted_into_each_other() -> None:
    assert digest(target="/v1/x", body=b"y{}") != digest(target="/v1/xy", body=b"{}")


@given(st.binary(max_size=300), st.lists(st.integers(min_value=1, max_value=40), max_size=10))
def test_chunking_does_not_change_the_fingerprint(body: bytes, cuts: list[int]) -> None:
    fingerprint = Fingerprint("POST", "/v1/x")
    rest = body
    for cut in cuts:
        fingerprint.update(rest[:cut])
        rest = rest[cut:]
    fingerprint.update(rest)
    assert fingerprint.hexdigest() == digest(body=body)


def multipart(boundary: bytes, content: bytes) -> bytes:
    return (
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
        + content + b"\r\n--" + boundary + b"--\r\n"
    )  # fmt: skip


@given(st.integers(min_value=1, max_value=64))
def test_a_multipart_boundary_split_across_chunks_is_still_ignored(chunk: int) -> None:
    body = multipart(b"b0ab1f3e9c5d", b"id\n1\n")
    fingerprint = Fingerprint("POST", "/v1/x", b"b0ab1f3e9c5d")
    for start in range(0, len(body), chunk):
        fingerprint.update(body[start : start + chunk])
    assert fingerprint.hexdigest() == digest(body=multipart(b"77aa0c", b"id\n1\n"), boundary=b"77aa0c")


def test_multipart_content_still_counts() -> None:
    first = digest(body=multipart(b"b1", b"id\n1\n"), boundary=b"b1")
    assert first != digest(body=multipart(b"b1", b"id\n2\n"), boundary=b"b1")


# --- headers and bodies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "ok"), [(["k"], True), (["x" * 255], True), (["x" * 256], False), ([""], False)]
)
def test_a_key_must_be_1_to_255_characters(values: list[str], ok: bool) -> None:
    assert (key_problem(values) is None) is ok


def test_two_key_headers_are_a_problem() -> None:
    assert key_problem(["a", "b"]) == "Send one Idempotency-Key header, not 2."


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ("multipart/form-data; boundary=abc123", b"abc123"),
        ('multipart/form-data; charset=utf-8; boundary="q u"', b"q u"),
        ("application/json", None),
        ("multipart/form-data", None),
    ],
)
def test_the_multipart_boundary_is_read_from_the_content_type(
    content_type: str, boundary: bytes | None
) -> None:
    assert multipart_boundary(Headers({"content-type": content_type})) == boundary


def test_the_request_target_includes_the_query_string() -> None:
    assert request_target({"path": "/v1/runs", "query_string": b"wait=5"}) == "/v1/runs?wait=5"
    assert request_target({"path": "/v1/runs", "query_string": b""}) == "/v1/runs"


def test_a_replayed_error_envelope_names_the_replaying_request() -> None:
    envelope = {"statusCode": 404, "code": "not_found", "request_id": "req_first", "details": []}
    stored = StoredResponse(404, (), json.dumps(envelope).encode())
    assert json.loads(with_request_id(stored, "req_again")) == {**envelope, "request_id": "req_again"}


@pytest.mark.parametrize("response", [CREATED, StoredResponse(400, (), b"not json")])
def test_other_replayed_bodies_are_left_as_they_were(response: StoredResponse) -> None:
    assert with_request_id(response, "req_again") == response.body
