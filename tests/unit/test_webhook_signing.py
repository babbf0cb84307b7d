"""Signatures, the published test vector and verification snippet of docs/webhooks.md, and the pieces
of a delivery request."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from packmatch.domain.webhooks import DeliveryJob, DeliveryStatus, WebhookDelivery, WebhookEvent
from packmatch.sealing import SecretBox
from packmatch.services.webhooks.deliveries import request_body, request_headers
from packmatch.services.webhooks.signing import SECRET_PREFIX, new_secret, sign, standard_signature, verify

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def doc_block(after: str, language: str) -> str:
    text = DOC.read_text()
    start = text.index(after)
    found = re.search(rf"```{language}\n(.*?)```", text[start:], re.DOTALL)
    assert found is not None, f"no {language} block after {after!r} in {DOC}"
    return found.group(1)


def published_vector() -> dict[str, str]:
    lines = doc_block("### Test vector", "text").splitlines()
    return {name.strip(): value.strip() for name, _, value in (line.partition(" = ") for line in lines)}


def standard_vector() -> dict[str, str]:
    lines = doc_block("### Standard Webhooks test vector", "text").splitlines()
    return {name.strip(): value.strip() for name, _, value in (line.partition(" = ") for line in lines)}


def test_the_published_test_vector_holds() -> None:
    vector = published_vector()
    assert sign(vector["secret"], vector["body"].encode()) == vector["signature"]


def test_the_documented_verification_snippet_accepts_the_vector_and_nothing_else() -> None:
    namespace: dict[str, Any] = {}
    exec(doc_block("## Verifying a delivery", "python"), namespace)  # the snippet, as published
    vector = published_vector()
    body = vector["body"].encode()
    assert namespace["verify"](vector["secret"], body, vector["signature"])
    assert not namespace["verify"](vector["secret"], body + b" ", vector["signature"])
    assert not namespace["verify"]("whsec_other", body, vector["signature"])
    assert not namespace["is_fresh"](body)  # 2024: far outside any tolerance


def test_a_signature_is_sha256_hex_of_the_body() -> None:
    signature = sign("s3cret-s3cret-s3cret", b"{}")
    assert re.fullmatch(r"sha256=[0-9a-f]{64}", signature)
    assert verify("s3cret-s3cret-s3cret", b"{}", signature)
    assert not verify("s3cret-s3cret-s3cret", b"{ }", signature)


def test_generated_secrets_are_prefixed_and_distinct() -> None:
    first, second = new_secret(), new_secret()
    assert first.startswith(SECRET_PREFIX)
    assert len(base64.b64decode(first[len(SECRET_PREFIX) :], validate=True)) == 32  # standard base64
    assert first != second


AT = datetime(2024, 9, 14, 10, 40, 1, 250_000, tzinfo=UTC)


def job(secret: str | None = None) -> DeliveryJob:
    delivery = WebhookDelivery(
        id=uuid.UUID("f6a7b8c9-d0e1-4345-9012-678901234567"),
        webhook_id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        event=WebhookEvent.COMPLETED,
        package_run_id=uuid.uuid4(),
        status=DeliveryStatus.PENDING,
        attempts=1,
        last_status_code=None,
        last_error=None,
        next_attempt_at=AT,
        delivered_at=None,
        created_at=AT,
        updated_at=AT,
    )
    data = {"id": "run_b2c3d4e5-f6a7-4901-bcde-f23456789012", "status": "passed"}
    sealed = SecretBox().seal(secret or published_vector()["secret"])
    return DeliveryJob(delivery=delivery, url="https://x.example", sealed_secret=sealed, data=data)


def test_the_request_body_is_the_published_one() -> None:
    assert request_body(job(), AT).decode() == published_vector()["body"]


def test_the_headers_name_the_event_delivery_and_time_and_sign_the_body() -> None:
    body = request_body(job(), AT)
    headers = request_headers(job(), published_vector()["secret"], body, AT)
    assert headers["X-Packmatch-Signature"] == published_vector()["signature"]
    assert headers["X-Packmatch-Event"] == "package_run.completed"
    assert headers["X-Packmatch-Delivery-Id"] == "whd_f6a7b8c9-d0e1-4345-9012-678901234567"
    assert headers["X-Packmatch-Timestamp"] == "2024-09-14T10:40:01.250Z"


@pytest.mark.parametrize("secret", ["whsec_abcdefghijklmnop", "another-secret-value"])
def test_neither_headers_nor_body_hold_the_secret(secret: str) -> None:
    body = request_body(job(secret), AT)
    assert secret.encode() not in body
    assert all(secret not in value for value in request_headers(job(secret), secret, body, AT).values())


# --- Standard Webhooks ---------------------------------------------------------------------------


def test_the_headers_carry_the_published_standard_webhooks_vector() -> None:
    vector, body = standard_vector(), request_body(job(), AT)
    headers = request_headers(job(), published_vector()["secret"], body, AT)
    assert body.decode() == vector["body"]
    assert headers["webhook-id"] == vector["webhook-id"] == headers["X-Packmatch-Delivery-Id"]
    assert headers["webhook-timestamp"] == vector["webhook-timestamp"] == str(int(AT.timestamp()))
    assert headers["webhook-signature"] == vector["webhook-signature"]


def test_the_standard_vector_is_hmac_sha256_of_id_timestamp_body_under_the_decoded_secret() -> None:
    """Computed by hand, without the library, as another language's receiver would."""
    import hashlib
    import hmac

    vector = standard_vector()
    key = base64.b64decode(vector["secret"].removeprefix("whsec_") + "==")
    signed = f"{vector['webhook-id']}.{vector['webhook-timestamp']}.{vector['body']}".encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert vector["webhook-signature"] == f"v1,{expected}"


def library_verifies(key: str | bytes, signature: str, body: bytes, at: datetime) -> bool:
    stamp = str(int(at.timestamp()))
    headers = {"webhook-id": "whd_1", "webhook-timestamp": stamp, "webhook-signature": signature}
    try:
        Webhook(key).verify(body, headers, json_parse=False)
    except WebhookVerificationError:
        return False
    return True


@given(st.binary(min_size=12, max_size=64), st.binary(max_size=200))
def test_whsec_secrets_verify_with_the_library_given_the_string(raw: bytes, body: bytes) -> None:
    secret, now = SECRET_PREFIX + base64.b64encode(raw).decode(), datetime.now(UTC)
    signature = standard_signature(secret, "whd_1", now, body)
    assert library_verifies(secret, signature, body, now)
    assert not library_verifies(secret, signature, body + b"x", now)


@given(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=16, max_size=80))
def test_other_secrets_verify_with_the_library_given_their_bytes(secret: str) -> None:
    now = datetime.now(UTC)
    signature = standard_signature(secret, "whd_1", now, b"{}")
    key: str | bytes = secret if secret.startswith(SECRET_PREFIX) else secret.encode()
    try:
        Webhook(key)
    except Exception:  # a whsec_ secret the library cannot decode: signed with its bytes
        key = secret.encode()
    assert library_verifies(key, signature, b"{}", now)


def test_a_whsec_secret_that_is_not_base64_is_used_as_bytes() -> None:
    secret, now = "whsec_a", datetime.now(UTC)  # 1 base64 character cannot be decoded
    assert library_verifies(secret.encode(), standard_signature(secret, "whd_1", now, b"{}"), b"{}", now)
