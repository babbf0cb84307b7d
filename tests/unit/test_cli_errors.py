"""The one line the command line prints for an API answer it got through packmatch.client (`demo`)."""

from __future__ import annotations

from packmatch.cli_errors import explain
from packmatch.client.errors import NotFound, TransportError, ValidationError


def test_a_refused_request_names_the_status_code_fields_and_request_id() -> None:
    body = {
        "code": "validation_error",
        "message": "Invalid request body",
        "details": [{"field": "inputs.invoice[0].amount", "message": "must be a number"}],
        "request_id": "req_1",
    }
    line = explain(ValidationError(400, body))
    assert line == (
        "the API answered 400 validation_error: Invalid request body "
        "(inputs.invoice[0].amount: must be a number) [request req_1]"
    )


def test_an_answer_without_details_is_its_message() -> None:
    assert explain(NotFound(404, {"code": "not_found", "message": "Run not found"})) == (
        "the API answered 404 not_found: Run not found"
    )


def test_no_answer_at_all_says_so_without_a_traceback() -> None:
    line = explain(TransportError("cannot reach http://127.0.0.1:1 (ConnectError)"))
    assert line == "TransportError: cannot reach http://127.0.0.1:1 (ConnectError)"
    assert "unexpected error" not in line
