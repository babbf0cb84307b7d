"""Idempotency records: one per (API key, Idempotency-Key), claimed by an insert that cannot race."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from packmatch.store.tables import idempotency_keys as t


class KeyState(StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True)
class IdempotencyRecord:
    api_key_id: uuid.UUID
    key: str
    fingerprint: str
    state: KeyState
    owner_request_id: str
    response: StoredResponse | None
    created_at: datetime
    expires_at: datetime

    @classmethod
    def claim(
        cls, api_key_id: uuid.UUID, key: str, fingerprint: str, request_id: str, now: datetime, ttl: timedelta
    ) -> IdempotencyRecord:
        return cls(api_key_id, key, fingerprint, KeyState.IN_PROGRESS, request_id, None, now, now + ttl)


def _the(api_key_id: uuid.UUID, key: str) -> sa.ColumnElement[bool]:
    return sa.and_(t.c.api_key_id == api_key_id, t.c.idempotency_key == key)


def _record(row: sa.Row[Any]) -> IdempotencyRecord:
    m = row._mapping
    response = None
    if m["response_status"] is not None:
        headers = tuple((str(name), str(value)) for name, value in m["response_headers"] or [])
        response = StoredResponse(m["response_status"], headers, bytes(m["response_body"] or b""))
    return IdempotencyRecord(
        api_key_id=m["api_key_id"],
        key=m["idempotency_key"],
        fingerprint=m["fingerprint"],
        state=KeyState(m["state"]),
        owner_request_id=m["owner_request_id"],
        response=response,
        created_at=m["created_at"],
        expires_at=m["expires_at"],
    )


def find(conn: Connection, api_key_id: uuid.UUID, key: str) -> IdempotencyRecord | None:
    row = conn.execute(sa.select(t).where(_the(api_key_id, key))).first()
    return None if row is None else _record(row)


def claim(conn: Connection, record: IdempotencyRecord, replacing: str | None = None) -> bool:
    """Insert an `in_progress` record unless the key already has one; True if this call won.

    `replacing` names the owner of an expired or abandoned record to delete first; if that record
    changed meanwhile, it stays and the insert does nothing.
    """
    if replacing is not None:
        conn.execute(t.delete().where(_the(record.api_key_id, record.key), t.c.owner_request_id == replacing))
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(t).values(
        api_key_id=record.api_key_id,
        idempotency_key=record.key,
        fingerprint=record.fingerprint,
        state=record.state.value,
        owner_request_id=record.owner_request_id,
        created_at=record.created_at,
        expires_at=record.expires_at,
    )
    # RETURNING, not rowcount: psycopg reports no rowcount for INSERT … ON CONFLICT DO NOTHING.
    inserted = conn.execute(
        insert.on_conflict_do_nothing(index_elements=["api_key_id", "idempotency_key"]).returning(
            t.c.idempotency_key
        )
    )
    return inserted.first() is not None


def complete(
    conn: Connection, api_key_id: uuid.UUID, key: str, request_id: str, response: StoredResponse
) -> bool:
    """Store the response of the request that holds the claim; False if it no longer holds it."""
    result = conn.execute(
        t.update()
        .where(
            _the(api_key_id, key), t.c.owner_request_id == request_id, t.c.state == KeyState.IN_PROGRESS.value
        )
        .values(
            state=KeyState.COMPLETED.value,
            response_status=response.status,
            response_headers=[list(pair) for pair in response.headers],
            response_body=response.body,
        )
    )
    return result.rowcount == 1


def release(conn: Connection, api_key_id: uuid.UUID, key: str, request_id: str) -> bool:
    """Forget a claim (its request failed with a 5xx) so that the client may retry with the key."""
    result = conn.execute(
        t.delete().where(
            _the(api_key_id, key), t.c.owner_request_id == request_id, t.c.state == KeyState.IN_PROGRESS.value
        )
    )
    return result.rowcount == 1


def delete_expired(conn: Connection, now: datetime) -> int:
    result = conn.execute(t.delete().where(t.c.expires_at <= now))
    return int(result.rowcount)
