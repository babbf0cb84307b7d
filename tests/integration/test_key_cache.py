"""The in-process cache of authenticated keys (`Accounts.principals`): bounded staleness for a
revocation made elsewhere, none for one made through the same `Accounts`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from packmatch.errors import Unauthorized
from packmatch.services.accounts import Accounts, Principals
from packmatch.store.db import Database, migrate
from packmatch.store.tables import api_keys

pytestmark = [pytest.mark.postgres]


class Timer:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(postgres_url: str) -> Iterator[Database]:
    migrate(postgres_url)
    database = Database.from_url(postgres_url)
    yield database
    database.dispose()


def revoke_elsewhere(db: Database) -> None:
    """What `packmatch keys revoke` in another process does: the row changes, this cache does not hear."""
    with db.transaction() as conn:
        conn.execute(api_keys.update().values(revoked_at=sa.func.now()))


def test_a_key_revoked_elsewhere_is_refused_once_its_cache_entry_expires(db: Database) -> None:
    timer = Timer()
    accounts = Accounts(db, principals=Principals(ttl=5.0, timer=timer))
    key = accounts.create_key("acme", frozenset({"read"}))
    first = accounts.authenticate(key)
    revoke_elsewhere(db)
    timer.now = 4.9
    assert accounts.authenticate(key) == first  # within the documented bound: from memory
    assert accounts.cached(key) == first
    timer.now = 5.1
    assert accounts.cached(key) is None
    with pytest.raises(Unauthorized):
        accounts.authenticate(key)


def test_a_key_revoked_through_the_same_accounts_is_refused_at_once(db: Database) -> None:
    accounts = Accounts(db, principals=Principals(ttl=300.0))
    key = accounts.create_key("acme", frozenset({"read"}))
    principal = accounts.authenticate(key)
    assert accounts.revoke(principal.key_id)
    assert accounts.cached(key) is None
    with pytest.raises(Unauthorized):
        accounts.authenticate(key)


def test_no_cache_looks_every_request_up(db: Database) -> None:
    accounts = Accounts(db, key_cache_seconds=0)
    key = accounts.create_key("acme", frozenset({"read"}))
    accounts.authenticate(key)
    assert accounts.cached(key) is None
    revoke_elsewhere(db)
    with pytest.raises(Unauthorized):
        accounts.authenticate(key)


def test_a_malformed_or_unknown_key_is_never_cached(db: Database) -> None:
    accounts = Accounts(db)
    for key in (None, "nope", "pmk_" + "x" * 43):
        with pytest.raises(Unauthorized):
            accounts.authenticate(key)
        assert accounts.cached(key) is None
