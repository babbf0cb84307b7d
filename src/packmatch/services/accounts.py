"""API keys: creation (plaintext shown once), authentication by hash, revocation."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from packmatch.errors import InsufficientScope, Unauthorized, ValidationFailed
from packmatch.services.ports import Clock, utcnow
from packmatch.store import accounts as store
from packmatch.store.db import Database

KEY_PREFIX = "pmk_"
SCOPES = frozenset({"read", "write", "review"})
MAX_KEY_NAME = 200


@dataclass(frozen=True)
class Principal:
    organization_id: uuid.UUID
    key_id: uuid.UUID
    scopes: frozenset[str]
    name: str | None = None

    def require(self, scope: str, *alternatives: str) -> None:
        """At least one of `scope` and `alternatives` (the review POSTs take `review` or `write`)."""
        if scope not in self.scopes and not self.scopes.intersection(alternatives):
            raise InsufficientScope(f"This API key lacks the '{scope}' scope.")


def hash_key(key: str) -> str:
    # Keys carry 256 bits of randomness, so one fast hash is enough (no salt or KDF needed).
    return hashlib.sha256(key.encode()).hexdigest()


def parse_scopes(text: str) -> frozenset[str]:
    scopes = frozenset(s.strip() for s in text.split(",") if s.strip())
    unknown = scopes - SCOPES
    if not scopes or unknown:
        raise ValidationFailed(f"Scopes must be a comma-separated subset of {sorted(SCOPES)}.")
    return scopes


class Accounts:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock

    def create_key(self, organization: str, scopes: frozenset[str], name: str | None = None) -> str:
        """`name` (the holder, e.g. a reviewer) is shown in the review decisions the key records."""
        if not organization.strip():
            raise ValidationFailed("Organization name must not be empty.")
        name = None if name is None else name.strip() or None
        if name is not None and len(name) > MAX_KEY_NAME:
            raise ValidationFailed(f"A key's name is at most {MAX_KEY_NAME} characters long.")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        with self.db.transaction() as conn:
            org_id = store.get_or_create_organization(conn, organization.strip(), now)
            store.insert_key(
                conn,
                organization_id=org_id,
                prefix=key[:10],
                key_hash=hash_key(key),
                scopes=scopes,
                now=now,
                name=name,
            )
        return key

    def organization_id(self, name: str) -> uuid.UUID | None:
        """The id of the organization with this name, if there is one."""
        with self.db.transaction() as conn:
            return store.find_organization(conn, name.strip())

    def authenticate(self, key: str | None) -> Principal:
        if not key or not key.startswith(KEY_PREFIX):
            raise Unauthorized("Missing or invalid API key.")
        with self.db.transaction() as conn:
            record = store.find_key_by_hash(conn, hash_key(key))
        if record is None or record.revoked_at is not None:
            raise Unauthorized("Missing or invalid API key.")
        return Principal(record.organization_id, record.id, record.scopes, record.name)

    def list_keys(self, organization: str | None = None) -> list[tuple[str, store.KeyRecord]]:
        with self.db.transaction() as conn:
            return store.list_keys(conn, organization)

    def revoke(self, key_id: uuid.UUID) -> bool:
        with self.db.transaction() as conn:
            return store.revoke_key(conn, key_id, self.clock())
