"""API keys: creation (plaintext shown once), authentication by hash, revocation."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TTLCache

from packmatch.errors import InsufficientScope, Unauthorized, ValidationFailed
from packmatch.services.ports import Clock, utcnow
from packmatch.store import accounts as store
from packmatch.store.db import Database

KEY_PREFIX = "pmk_"
SCOPES = frozenset({"read", "write", "review"})
MAX_KEY_NAME = 200
# What `create_key` issues: the prefix and 32 random bytes in URL-safe base64 (43 characters).
KEY_FORMAT = re.compile(r"pmk_[A-Za-z0-9_-]{43}")


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


def well_formed(key: str | None) -> bool:
    return key is not None and KEY_FORMAT.fullmatch(key) is not None


class KnownKeys:
    """Which key hashes were recently seen to be valid, or not: the rate limiter's guide to a
    request's budget (decision 0009). It never grants access: `authenticate` still reads every
    valid key from the database, so a revocation takes effect at once. Unknown hashes are
    remembered for a minute so that a rejected key costs one lookup, not one per request."""

    def __init__(self, maxsize: int = 10_000, valid_ttl: float = 300.0, invalid_ttl: float = 60.0) -> None:
        self._lock = threading.Lock()
        self._valid: TTLCache[str, bool] = TTLCache(maxsize, valid_ttl)
        self._invalid: TTLCache[str, bool] = TTLCache(maxsize, invalid_ttl)

    def status(self, key_hash: str) -> bool | None:
        """True: valid when last looked up; False: not a key; None: not looked up lately."""
        with self._lock:
            if key_hash in self._valid:
                return True
            return False if key_hash in self._invalid else None

    def remember(self, key_hash: str, valid: bool) -> None:
        with self._lock:
            (self._valid if valid else self._invalid)[key_hash] = True
            (self._invalid if valid else self._valid).pop(key_hash, None)


DEFAULT_KEY_CACHE_SECONDS = 5.0


class Principals:
    """The principals of recently authenticated keys, by key hash, for `ttl` seconds: a key
    revoked in another process (the CLI, another API process) is refused at most `ttl` seconds
    later; one revoked through this process's `Accounts.revoke` at once. `ttl` 0 turns it off."""

    def __init__(
        self,
        ttl: float = DEFAULT_KEY_CACHE_SECONDS,
        maxsize: int = 10_000,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._cache: TTLCache[str, Principal] | None = TTLCache(maxsize, ttl, timer) if ttl > 0 else None

    def get(self, key_hash: str) -> Principal | None:
        if self._cache is None:
            return None
        with self._lock:
            return self._cache.get(key_hash)

    def put(self, key_hash: str, principal: Principal) -> None:
        if self._cache is not None:
            with self._lock:
                self._cache[key_hash] = principal

    def forget(self, key_id: uuid.UUID) -> None:
        if self._cache is not None:
            with self._lock:
                for key_hash in [h for h, p in self._cache.items() if p.key_id == key_id]:
                    del self._cache[key_hash]


class Accounts:
    def __init__(
        self,
        db: Database,
        clock: Clock = utcnow,
        known: KnownKeys | None = None,
        key_cache_seconds: float = DEFAULT_KEY_CACHE_SECONDS,
        principals: Principals | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.known = known or KnownKeys()
        self.principals = principals or Principals(key_cache_seconds)

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

    def key_status(self, key: str | None) -> bool | None:
        """Whether `key` is a valid key as far as is known without a database lookup: False for
        a missing or malformed key and for one found invalid lately, None when it needs a lookup."""
        if key is None or not well_formed(key):
            return False
        return self.known.status(hash_key(key))

    def cached(self, key: str | None) -> Principal | None:
        """The principal of `key` if it was authenticated within the cache's time (no I/O)."""
        return None if key is None or not well_formed(key) else self.principals.get(hash_key(key))

    def authenticate(self, key: str | None) -> Principal:
        if key is None or self.key_status(key) is False:
            raise Unauthorized("Missing or invalid API key.")
        key_hash = hash_key(key)
        principal = self.principals.get(key_hash)
        if principal is None:
            principal = self._look_up(key_hash)
            self.principals.put(key_hash, principal)
        return principal

    def _look_up(self, key_hash: str) -> Principal:
        with self.db.transaction() as conn:
            record = store.find_key_by_hash(conn, key_hash)
        valid = record is not None and record.revoked_at is None
        self.known.remember(key_hash, valid)
        if record is None or not valid:
            raise Unauthorized("Missing or invalid API key.")
        return Principal(record.organization_id, record.id, record.scopes, record.name)

    def is_valid(self, key: str) -> bool:
        """Look the key up (and remember the answer): what the rate limiter does for a key it
        has not seen lately, once the client address's budget allows it."""
        try:
            self.authenticate(key)
        except Unauthorized:
            return False
        return True

    def list_keys(self, organization: str | None = None) -> list[tuple[str, store.KeyRecord]]:
        with self.db.transaction() as conn:
            return store.list_keys(conn, organization)

    def revoke(self, key_id: uuid.UUID) -> bool:
        with self.db.transaction() as conn:
            revoked = store.revoke_key(conn, key_id, self.clock())
        self.principals.forget(key_id)
        return revoked
