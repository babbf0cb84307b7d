"""`packmatch runs submit`'s sending: retries after `Retry-After`, the API's refusal in one line."""

from __future__ import annotations

import pytest

from packmatch import submit


def test_a_rate_limited_batch_is_retried_after_retry_after() -> None:
    answers = [(429, {"Retry-After": "7"}, b"{}"), (202, {}, b'{"data": [{"id": "run_x"}]}')]
    waits: list[float] = []
    batch = submit.Batch()
    batch.add(1, b"{}")

    entries = submit.send(lambda payload, key: answers.pop(0), batch, sleep=waits.append)

    assert entries == [{"id": "run_x"}]
    assert waits == [7.0]


def test_a_refused_batch_stops_with_the_apis_message() -> None:
    batch = submit.Batch()
    batch.add(1, b"{}")
    refused: tuple[int, dict[str, str], bytes] = (401, {}, b'{"message": "Missing or invalid API key."}')

    with pytest.raises(submit.SubmitError, match="401: Missing or invalid API key"):
        submit.send(lambda payload, key: refused, batch)
