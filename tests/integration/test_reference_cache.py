"""The worker's reference index cache: slots matching against one dataset load it once per process."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from packmatch.domain.models import ReferenceRow, RunStatus
from packmatch.store import reference_data as datasets
from tests.integration.conftest import Stack, invoice_row


def test_slots_and_runs_on_one_dataset_load_it_once(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[uuid.UUID] = []
    original = datasets.load_rows

    def counting(conn: Any, dataset_id: uuid.UUID) -> Sequence[ReferenceRow]:
        loaded.append(dataset_id)
        return original(conn, dataset_id)

    monkeypatch.setattr(datasets, "load_rows", counting)
    first = stack.submit(invoice=[invoice_row(0)], delivery_note=[invoice_row(1)])
    second = stack.submit(invoice=[invoice_row(3, ref="NOPE", carrier="Unknown", total=1)])
    stack.drain()
    assert [stack.get(run).status for run in (first, second)] == [RunStatus.PASSED, RunStatus.FAILED]
    assert loaded == [stack.world.reference_data_id]
