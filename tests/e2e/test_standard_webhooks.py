"""Real deliveries, verified as a receiver would with the `standardwebhooks` package from PyPI:
the generated and a chosen secret, a rotation, another webhook's secret, and a replay refused."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks.webhooks as standard
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from packmatch.bootstrap import Runtime
from packmatch.services.webhooks.signing import verify
from tests.e2e.conftest import Api
from tests.e2e.test_api_webhooks import EVENTS, create, delivered
from tests.webhook_receiver import Receiver

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


@pytest.fixture
def api(make_runtime: Callable[..., Runtime], sqlite_url: str, start_api: Callable[[Runtime], Api]) -> Api:
    runtime = make_runtime(
        database_url=sqlite_url,
        webhook_allow_private_networks="127.0.0.0/8",
        webhook_retry_schedule_seconds="",
    )
    return start_api(runtime)


def test_a_delivery_verifies_with_the_library_given_the_secret_shown(api: Api, receiver: Receiver) -> None:
    hook = create(api, receiver.url)
    delivery = delivered(api, hook)
    [request] = receiver.requests
    payload = Webhook(hook["secret"]).verify(request.body, request.headers)
    assert payload["delivery_id"] == delivery["id"] == request.headers["webhook-id"]
    assert payload["data"]["status"] == "passed"
    sent = datetime.fromisoformat(payload["timestamp"].replace("Z", "+00:00"))
    assert request.headers["webhook-timestamp"] == str(int(sent.timestamp()))
    assert verify(hook["secret"], request.body, request.headers["x-packmatch-signature"])  # still there


def test_a_chosen_secret_verifies_given_its_bytes(api: Api, receiver: Receiver) -> None:
    secret = "my-own-secret-0123456789"
    hook = create(api, receiver.url, secret=secret, events=EVENTS)
    delivered(api, hook)
    [request] = receiver.requests
    assert Webhook(secret.encode()).verify(request.body, request.headers)["event"] == "package_run.completed"


def test_the_documented_receiver_snippet_accepts_a_real_delivery(api: Api, receiver: Receiver) -> None:
    text = DOC.read_text()
    found = re.search(r"```python\n(.*?)```", text[text.index("## Standard Webhooks") :], re.DOTALL)
    assert found is not None
    namespace: dict[str, Any] = {}
    exec(found.group(1), namespace)
    hook = create(api, receiver.url)
    delivered(api, hook)
    [request] = receiver.requests
    receive = namespace["receive"]
    assert receive(hook["secret"], request.body, request.headers)["event"] == "package_run.completed"
    assert receive(hook["secret"], request.body + b" ", request.headers) is None


def test_after_a_rotation_only_the_new_secret_verifies(api: Api, receiver: Receiver) -> None:
    hook = create(api, receiver.url)
    rotated = api.post(f"{hook['links']['self']}/rotate-secret").json()
    delivered(api, hook)
    [request] = receiver.requests
    assert Webhook(rotated["secret"]).verify(request.body, request.headers)["data"]["status"] == "passed"
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(hook["secret"]).verify(request.body, request.headers)


def test_another_webhooks_secret_does_not_verify(api: Api, receiver: Receiver) -> None:
    hook = create(api, receiver.url)
    other = create(api, receiver.url + "/other", events=["package_run.error"])  # gets no delivery here
    delivered(api, hook)
    [request] = receiver.requests
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(other["secret"]).verify(request.body, request.headers)


def test_a_replayed_delivery_is_refused_once_its_timestamp_is_old(
    api: Api, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = create(api, receiver.url)
    delivered(api, hook)
    [request] = receiver.requests
    assert Webhook(hook["secret"]).verify(request.body, request.headers)  # fresh: accepted

    class SixMinutesLater(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.now(UTC) + timedelta(minutes=6)

    monkeypatch.setattr(standard, "datetime", SixMinutesLater)  # the receiver's clock, when replayed
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(hook["secret"]).verify(request.body, request.headers)


def test_a_timestamp_moved_forward_breaks_the_signature(api: Api, receiver: Receiver) -> None:
    """An attacker cannot refresh a replay: the timestamp is signed."""
    hook = create(api, receiver.url)
    delivered(api, hook)
    [request] = receiver.requests
    forged = {**request.headers, "webhook-timestamp": str(int(request.headers["webhook-timestamp"]) + 60)}
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(hook["secret"]).verify(request.body, forged)


def test_the_clients_verify_webhook_accepts_either_secret_during_a_rotation(
    api: Api, receiver: Receiver
) -> None:
    from packmatch.client import WebhookVerificationError as ClientError
    from packmatch.client import verify_webhook

    hook = create(api, receiver.url)
    rotated = api.post(f"{hook['links']['self']}/rotate-secret").json()
    delivered(api, hook)
    [request] = receiver.requests
    assert verify_webhook(request.headers, request.body, [hook["secret"], rotated["secret"]])["event"] == (
        "package_run.completed"
    )
    with pytest.raises(ClientError):
        verify_webhook(request.headers, request.body, hook["secret"])
    with pytest.raises(ClientError):
        verify_webhook(request.headers, request.body + b"\n", rotated["secret"])
