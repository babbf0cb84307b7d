"""Webhook secrets at rest (issue 13): sealed in the database under PACKMATCH_SECRETS_KEY, never in
an idempotency record, still signing after a key rotation (`packmatch secrets reseal`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from cryptography.fernet import Fernet

from packmatch import cli
from packmatch.bootstrap import Runtime
from packmatch.sealing import SecretBox
from packmatch.services.webhooks.signing import verify
from packmatch.settings import Settings
from packmatch.store.db import alembic_config
from tests.e2e.conftest import Api, invoice
from tests.webhook_receiver import Receiver

WEBHOOKS = "/v1/webhooks"
SECRET = "LEAK-WEBHOOK-SECRET-0123456789"
KEY_1, KEY_2 = Fernet.generate_key().decode(), Fernet.generate_key().decode()


@pytest.fixture
def open_api(
    make_runtime: Callable[..., Runtime], sqlite_url: str, start_api: Callable[[Runtime], Api]
) -> Callable[..., Api]:
    """An API on the one test database, with the given secrets keys; one attempt per delivery."""

    def start(**keys: Any) -> Api:
        runtime = make_runtime(
            database_url=sqlite_url,
            webhook_allow_private_networks="127.0.0.0/8",
            webhook_retry_schedule_seconds="",
            **keys,
        )
        return start_api(runtime)

    return start


def database_text(api: Api) -> str:
    """Every row of every table holding webhook or idempotency data, as text."""
    with api.runtime.services.db.engine.connect() as conn:
        rows = [
            *conn.execute(sa.text("SELECT * FROM webhooks")),
            *conn.execute(sa.text("SELECT * FROM idempotency_keys")),
        ]
    return "\n".join(repr(tuple(row)) for row in rows)


def signed_delivery(api: Api, receiver: Receiver, secret: str) -> None:
    """A run to its verdict; its delivery arrives signed with `secret`."""
    before = len(receiver.requests)
    config_id = api.shipment_world(("required",))
    assert api.run(config_id, {"invoice": [invoice()]}).status_code == 200
    request = receiver.wait_for(before + 1)[-1]
    assert verify(secret, request.body, request.headers["x-packmatch-signature"])


def test_a_secret_is_stored_sealed_under_the_configured_key(
    open_api: Callable[..., Api], receiver: Receiver
) -> None:
    api = open_api(secrets_key=KEY_1)
    hook = api.create(WEBHOOKS, {"url": receiver.url, "secret": SECRET})
    assert hook["secret"] == SECRET
    assert SECRET not in database_text(api)
    with api.runtime.services.db.engine.connect() as conn:
        sealed = conn.execute(sa.text("SELECT sealed_secret FROM webhooks")).scalar_one()
    assert SecretBox([KEY_1]).reveal(sealed) == SECRET
    signed_delivery(api, receiver, SECRET)


def test_an_idempotent_create_keeps_no_secret_and_its_replay_says_so(
    open_api: Callable[..., Api], receiver: Receiver
) -> None:
    api = open_api(secrets_key=KEY_1)
    body, headers = {"url": receiver.url, "secret": SECRET}, {"Idempotency-Key": "hook-1"}
    first = api.post(WEBHOOKS, json=body, headers=headers)
    again = api.post(WEBHOOKS, json=body, headers=headers)
    assert (first.status_code, first.json()["secret"], first.headers["Cache-Control"]) == (
        201,
        SECRET,
        "no-store",
    )
    assert "Idempotent-Secret-Omitted" not in first.headers
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Idempotent-Secret-Omitted"] == "true"
    assert again.json() == {**first.json(), "secret": None}
    assert SECRET not in database_text(api)
    assert len(api.get(WEBHOOKS).json()["data"]) == 1


def test_a_replayed_rotation_keeps_no_secret(open_api: Callable[..., Api], receiver: Receiver) -> None:
    api = open_api(secrets_key=KEY_1)
    hook = api.create(WEBHOOKS, {"url": receiver.url})
    path, headers = f"{hook['links']['self']}/rotate-secret", {"Idempotency-Key": "rotate-1"}
    rotated = api.post(path, headers=headers).json()
    replayed = api.post(path, headers=headers)
    assert replayed.json() == {**rotated, "secret": None}
    assert rotated["secret"] not in database_text(api)
    signed_delivery(api, receiver, rotated["secret"])


def test_after_a_key_rotation_old_secrets_still_sign_and_reseal_retires_the_old_key(
    open_api: Callable[..., Api],
    receiver: Receiver,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
) -> None:
    api = open_api(secrets_key=KEY_1)
    api.create(WEBHOOKS, {"url": receiver.url, "secret": SECRET})
    signed_delivery(open_api(secrets_key=KEY_2, secrets_old_keys=KEY_1), receiver, SECRET)
    monkeypatch.setenv("PACKMATCH_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("PACKMATCH_SECRETS_KEY", KEY_2)
    monkeypatch.setenv("PACKMATCH_SECRETS_OLD_KEYS", KEY_1)
    assert cli.main(["secrets", "reseal"]) == 0
    capsys.readouterr()  # what the APIs above logged
    assert cli.main(["secrets", "reseal"]) == 0  # again: nothing changes, the count is the same
    assert capsys.readouterr().out == "resealed 1 webhook secrets under the current key\n"
    signed_delivery(open_api(secrets_key=KEY_2), receiver, SECRET)


def test_a_secret_no_configured_key_opens_fails_its_delivery_and_says_why(
    open_api: Callable[..., Api], receiver: Receiver
) -> None:
    open_api(secrets_key=KEY_1).create(WEBHOOKS, {"url": receiver.url, "secret": SECRET})
    api = open_api(secrets_key=KEY_2)
    config_id = api.shipment_world(("required",))
    assert api.run(config_id, {"invoice": [invoice()]}).status_code == 200
    hook = api.get(WEBHOOKS).json()["data"][0]
    deadline = time.monotonic() + 20
    while (delivery := api.get(hook["links"]["deliveries"]).json()["data"][0])["attempts"] == 0:
        assert time.monotonic() < deadline, "the delivery was never attempted"
        time.sleep(0.02)
    assert (delivery["status"], delivery["last_error"]) == (
        "failed",
        "secret unreadable: the key that sealed it is not configured",
    )
    assert receiver.requests == []


@pytest.mark.parametrize("keys", [{"secrets_key": "not-a-key"}, {"secrets_old_keys": KEY_1}])
def test_bad_secrets_keys_are_refused_with_a_message(keys: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="PACKMATCH_SECRETS"):
        Settings(**keys)  # type: ignore[arg-type]


def test_migration_0008_seals_existing_secrets_and_its_downgrade_opens_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PACKMATCH_SECRETS_KEY", KEY_1)
    sqlite_url = f"sqlite:///{tmp_path / 'old.db'}"
    config = alembic_config(sqlite_url)
    command.upgrade(config, "0005")
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO organizations (id, name, created_at) VALUES ('o', 'acme', '2024-01-01')")
        )
        conn.execute(
            sa.text(
                "INSERT INTO webhooks (id, organization_id, url, events, is_active, secret, created_at,"
                " updated_at) VALUES ('w', 'o', 'https://erp.example.com/h', '[]', 1, :s, '2024-01-01',"
                " '2024-01-01')"
            ),
            {"s": SECRET},
        )
    command.upgrade(config, "0008")
    with engine.connect() as conn:
        sealed = conn.execute(sa.text("SELECT sealed_secret FROM webhooks")).scalar_one()
    assert SECRET not in sealed
    assert SecretBox([KEY_1]).reveal(sealed) == SECRET
    command.downgrade(config, "0005")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT secret FROM webhooks")).scalar_one() == SECRET
    engine.dispose()
