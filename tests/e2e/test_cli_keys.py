"""`packmatch keys create | list | revoke` as an operator runs them."""

from __future__ import annotations

import pytest

from packmatch.cli import main
from packmatch.errors import Unauthorized
from packmatch.services.accounts import Accounts
from packmatch.store.db import Database

pytestmark = pytest.mark.usefixtures("restore_logging")


@pytest.fixture
def database(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PACKMATCH_DATABASE_URL", sqlite_url)
    return sqlite_url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_create_prints_the_key_alone(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "keys", "create", "--organization", "acme", "--scopes", "read")
    key = out.strip()
    assert code == 0
    assert out == key + "\n"
    principal = Accounts(Database.from_url(database)).authenticate(key)
    assert principal.scopes == frozenset({"read"})


def test_list_shows_prefix_and_state_but_never_the_key(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, created = run(capsys, "keys", "create", "--organization", "acme")
    code, listing = run(capsys, "keys", "list", "--organization", "acme")
    assert code == 0
    assert created.strip() not in listing
    assert created.strip()[:10] in listing
    assert "active" in listing


def test_revoke_disables_the_key(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, created = run(capsys, "keys", "create", "--organization", "acme")
    _, listing = run(capsys, "keys", "list")
    key_id = listing.split()[0]
    code, _ = run(capsys, "keys", "revoke", key_id)
    _, after = run(capsys, "keys", "list")
    assert code == 0
    assert "revoked" in after
    with pytest.raises(Unauthorized):
        Accounts(Database.from_url(database)).authenticate(created.strip())


def test_revoking_an_unknown_key_fails(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run(capsys, "keys", "revoke", "00000000-0000-4000-8000-000000000000")
    assert code == 1
