"""Idempotency keys (SPEC §2): the decision as a value, the request fingerprint, and the use case.

A request with an `Idempotency-Key` first *claims* the key by inserting an `in_progress` record;
the primary key `(api_key_id, idempotency_key)` lets exactly one of any number of concurrent
duplicates win. The winner runs, then stores its response (4xx included) or, on a 5xx, deletes
the record so that the client may retry. Everyone else gets a decision computed from the record.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from packmatch.logging import get_logger
from packmatch.services.ports import Clock, utcnow
from packmatch.store import idempotency as store
from packmatch.store.db import Database
from packmatch.store.idempotency import IdempotencyRecord, KeyState, StoredResponse

log = get_logger(__name__)

TTL = timedelta(hours=24)
# A claim older than this is presumed abandoned (its process died mid-request) and may be taken over.
IN_PROGRESS_LEASE = timedelta(minutes=10)
PURGE_EVERY = timedelta(minutes=5)
CLAIM_ATTEMPTS = 3


class Outcome(StrEnum):
    PROCEED = "proceed"  # this request holds the key: run it, then `complete` or `release`
    REPLAY = "replay"  # the first request finished: answer with its stored response
    MISMATCH = "mismatch"  # the key was used for a different request: 422
    IN_PROGRESS = "in_progress"  # the first request is still running: 409


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    replay: StoredResponse | None = None
    original_request_id: str | None = None
    replacing: str | None = None  # with PROCEED from `decide`: the stale claim's owner to replace


def decide(
    record: IdempotencyRecord | None,
    fingerprint: str,
    now: datetime,
    lease: timedelta = IN_PROGRESS_LEASE,
) -> Decision:
    """What to do with a request, given the record its key already has (if any)."""
    if record is None:
        return Decision(Outcome.PROCEED)
    expired = record.expires_at <= now
    abandoned = record.state is KeyState.IN_PROGRESS and record.created_at + lease <= now
    if expired or abandoned:
        return Decision(Outcome.PROCEED, replacing=record.owner_request_id)
    if record.fingerprint != fingerprint:
        return Decision(Outcome.MISMATCH)
    if record.state is KeyState.IN_PROGRESS or record.response is None:
        return Decision(Outcome.IN_PROGRESS)
    return Decision(Outcome.REPLAY, replay=record.response, original_request_id=record.owner_request_id)


class Fingerprint:
    """SHA-256 of method, path with query string, and body, fed chunk by chunk.

    For `multipart/form-data` the boundary is left out: clients such as curl pick a fresh random
    boundary for every attempt, so a retried upload of the same file must still be "the same body".
    """

    def __init__(self, method: str, target: str, boundary: bytes | None = None) -> None:
        self._hash = hashlib.sha256()
        head = f"{method.upper()}\n{len(target)}:{target}\n".encode()
        self._hash.update(head)
        self._boundary = boundary or b""
        self._carry = b""

    def update(self, chunk: bytes) -> None:
        if not self._boundary:
            self._hash.update(chunk)
            return
        data = (self._carry + chunk).replace(self._boundary, b"")
        # Hold back a tail that could be the start of a boundary split across two chunks.
        split = max(0, len(data) - (len(self._boundary) - 1))
        self._hash.update(data[:split])
        self._carry = data[split:]

    def hexdigest(self) -> str:
        final = self._hash.copy()
        final.update(self._carry)
        return final.hexdigest()


class Idempotency:
    def __init__(
        self,
        db: Database,
        clock: Clock = utcnow,
        *,
        ttl: timedelta = TTL,
        lease: timedelta = IN_PROGRESS_LEASE,
    ) -> None:
        self.db = db
        self.clock = clock
        self.ttl = ttl
        self.lease = lease
        self._next_purge: datetime | None = None

    def begin(self, api_key_id: uuid.UUID, key: str, fingerprint: str, request_id: str) -> Decision:
        """Claim `key` for this request, or say why not. Never raises on a lost race."""
        for _ in range(CLAIM_ATTEMPTS):
            now = self.clock()
            with self.db.transaction() as conn:
                record = store.find(conn, api_key_id, key)
            decision = decide(record, fingerprint, now, self.lease)
            if decision.outcome is not Outcome.PROCEED:
                return decision
            claim = IdempotencyRecord.claim(api_key_id, key, fingerprint, request_id, now, self.ttl)
            with self.db.transaction() as conn:
                won = store.claim(conn, claim, replacing=decision.replacing)
            if won:
                self._purge_now_and_then(now)
                return Decision(Outcome.PROCEED)
            # Another request claimed (or released) the key in between: look again.
        return Decision(Outcome.IN_PROGRESS)

    def complete(self, api_key_id: uuid.UUID, key: str, request_id: str, response: StoredResponse) -> None:
        with self.db.transaction() as conn:
            stored = store.complete(conn, api_key_id, key, request_id, response)
        if not stored:
            log.warning("idempotency.claim_lost", request_id=request_id)

    def release(self, api_key_id: uuid.UUID, key: str, request_id: str) -> None:
        with self.db.transaction() as conn:
            store.release(conn, api_key_id, key, request_id)

    def purge_expired(self) -> int:
        """Delete every expired record. Cheap (indexed on `expires_at`); the reconciler may call it."""
        with self.db.transaction() as conn:
            return store.delete_expired(conn, self.clock())

    def _purge_now_and_then(self, now: datetime) -> None:
        if self._next_purge is not None and now < self._next_purge:
            return
        self._next_purge = now + PURGE_EVERY
        deleted = self.purge_expired()
        if deleted:
            log.info("idempotency.purged", deleted=deleted)
