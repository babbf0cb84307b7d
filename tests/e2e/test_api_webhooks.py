"""/v1/webhooks over HTTP: every endpoint's contract (shapes, auth, scopes, tenancy, ids, pagination,
validation, idempotency), with real deliveries to a local receiver."""

from __future__ import annotations

import io
import json
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from packmatch.bootstrap import Runtime
from packmatch.services.webhooks.signing import verify
from tests.e2e.conftest import Api, error_body, invoice
from tests.e2e.test_api_no_leaks import log_lines  # noqa: F401 (the fixture)
from tests.webhook_receiver import Receiver, receiving

WEBHOOKS = "/v1/webhooks"
EVENTS = ["package_run.completed", "package_run.failed", "package_run.review", "package_run.error"]


@pytest.fixture
def api(make_runtime: Callable[..., Runtime], sqlite_url: str, start_api: Callable[[Runtime], Api]) -> Api:
    """The embedded stack, allowed to call a receiver on this machine; one attempt per delivery."""
    runtime = make_runtime(
        database_url=sqlite_url,
        webhook_allow_private_networks="127.0.0.0/8",
        webhook_retry_schedule_seconds="",
    )
    return start_api(runtime)


def create(api: Api, url: str, **body: Any) -> dict[str, Any]:
    return api.create(WEBHOOKS, {"url": url, **body})


def eventually(api: Api, path: str, check: Callable[[dict[str, Any]], bool], seconds: float = 20) -> Any:
    """GET `path` until `check(body)` holds (the worker records an outcome after the receiver answers)."""
    deadline = time.monotonic() + seconds
    while True:
        body = api.get(path).json()
        if check(body):
            return body
        assert time.monotonic() < deadline, f"{path} did not reach the expected state: {body}"
        time.sleep(0.05)


def delivered(api: Api, hook: dict[str, Any]) -> dict[str, Any]:
    """Run a bundle to its verdict and wait until its delivery is recorded as delivered."""
    config_id = api.shipment_world(("required",))
    assert api.run(config_id, {"invoice": [invoice()]}).status_code == 200
    page = eventually(
        api,
        hook["links"]["deliveries"],
        lambda body: [d["status"] for d in body["data"]] == ["delivered"],
    )
    result: dict[str, Any] = page["data"][0]
    return result


# --- create, read, replace, delete ---------------------------------------------------------------


def test_create_answers_201_with_the_secret_once(api: Api, receiver: Receiver) -> None:
    response = api.post(WEBHOOKS, json={"url": receiver.url})
    assert response.status_code == 201, response.text
    hook = response.json()
    assert set(hook) == {"id", "url", "events", "is_active", "created_at", "updated_at", "links", "secret"}
    assert hook["id"].startswith("whk_")
    assert hook["secret"].startswith("whsec_")
    assert (hook["url"], hook["events"], hook["is_active"]) == (receiver.url, ["package_run.completed"], True)
    assert response.headers["Location"] == hook["links"]["self"] == f"{WEBHOOKS}/{hook['id']}"
    assert hook["links"]["deliveries"] == f"{WEBHOOKS}/{hook['id']}/deliveries"
    shown = api.get(hook["links"]["self"]).json()
    assert "secret" not in shown
    assert shown == {k: v for k, v in hook.items() if k != "secret"}
    assert "secret" not in api.get(WEBHOOKS).json()["data"][0]


def test_a_given_secret_signs_the_deliveries(api: Api, receiver: Receiver) -> None:
    secret = "my-own-secret-0123456789"
    hook = create(api, receiver.url, secret=secret, events=EVENTS)
    assert hook["secret"] == secret
    delivery = delivered(api, hook)
    [request] = receiver.requests
    assert verify(secret, request.body, request.headers["x-packmatch-signature"])
    assert request.delivery_id == delivery["id"]


def test_events_are_kept_once_each_in_order(api: Api, receiver: Receiver) -> None:
    hook = create(api, receiver.url, events=["package_run.error", "package_run.failed", "package_run.error"])
    assert hook["events"] == ["package_run.error", "package_run.failed"]


def test_put_replaces_url_events_and_is_active_and_keeps_the_secret(api: Api, receiver: Receiver) -> None:
    hook = create(api, "http://127.0.0.1:9/old", secret="kept-secret-0123456789")
    body = {"url": receiver.url, "events": ["package_run.completed"], "is_active": False}
    response = api.client.put(hook["links"]["self"], json=body, headers=api.headers)
    assert response.status_code == 200, response.text
    replaced = response.json()
    assert (replaced["url"], replaced["is_active"], replaced["created_at"]) == (
        receiver.url,
        False,
        hook["created_at"],
    )
    assert "secret" not in replaced
    api.client.put(hook["links"]["self"], json={"url": receiver.url}, headers=api.headers)
    assert api.get(hook["links"]["self"]).json()["is_active"] is True  # omitted: the default again
    delivered(api, hook)
    assert verify(
        "kept-secret-0123456789",
        receiver.requests[0].body,
        receiver.requests[0].headers["x-packmatch-signature"],
    )


def test_put_cannot_set_the_secret(api: Api, receiver: Receiver) -> None:
    hook = create(api, receiver.url)
    body = {"url": receiver.url, "secret": "a-new-secret-0123456789"}
    response = api.client.put(hook["links"]["self"], json=body, headers=api.headers)
    assert error_body(response, 400, "validation_error")["details"][0]["field"] == "secret"


def test_rotating_the_secret_shows_the_new_one_once_and_signs_with_it(api: Api, receiver: Receiver) -> None:
    hook = create(api, receiver.url)
    response = api.post(f"{hook['links']['self']}/rotate-secret")
    assert response.status_code == 200, response.text
    assert response.headers["Location"] == hook["links"]["self"]
    rotated = response.json()
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != hook["secret"]
    assert {k: v for k, v in rotated.items() if k not in ("secret", "updated_at")} == {
        k: v for k, v in hook.items() if k not in ("secret", "updated_at")
    }
    assert "secret" not in api.get(hook["links"]["self"]).json()
    delivered(api, hook)
    signature = receiver.requests[0].headers["x-packmatch-signature"]
    assert verify(rotated["secret"], receiver.requests[0].body, signature)
    assert not verify(hook["secret"], receiver.requests[0].body, signature)


def test_delete_answers_deleted_then_the_webhook_is_gone(api: Api, receiver: Receiver) -> None:
    hook = create(api, receiver.url)
    response = api.client.delete(hook["links"]["self"], headers=api.headers)
    assert (response.status_code, response.json()) == (200, {"deleted": True})
    error_body(api.get(hook["links"]["self"]), 404, "not_found")
    error_body(api.get(hook["links"]["deliveries"]), 404, "not_found")


def test_an_inactive_webhook_gets_no_delivery(api: Api, receiver: Receiver) -> None:
    hook = create(api, receiver.url, is_active=False)
    config_id = api.shipment_world(("required",))
    assert api.run(config_id, {"invoice": [invoice()]}).status_code == 200
    assert api.get(hook["links"]["deliveries"]).json()["data"] == []


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://127.0.0.1/x"}, "url"),
        ({"url": "http://169.254.169.254/latest/meta-data/"}, "url"),
        ({"url": "http://metadata.google.internal/"}, "url"),
        ({"url": "http://10.0.0.1/hook"}, "url"),
        ({"url": ""}, "url"),
        ({}, "url"),
        ({"url": "http://127.0.0.1/h", "events": []}, "events"),
        ({"url": "http://127.0.0.1/h", "events": ["package_run.passed"]}, "events[0]"),
        ({"url": "http://127.0.0.1/h", "is_active": "yes"}, "is_active"),
        ({"url": "http://127.0.0.1/h", "secret": "short"}, "secret"),
        ({"url": "http://127.0.0.1/h", "secret": "has spaces in it, 1234"}, "secret"),
        ({"url": "http://127.0.0.1/h", "colour": "blue"}, "colour"),
    ],
)
def test_invalid_bodies_are_400_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    response = api.post(WEBHOOKS, json=body)
    assert error_body(response, 400, "validation_error")["details"][0]["field"] == field
    assert api.get(WEBHOOKS).json()["pagination"]["total"] == 0


def test_the_readme_example_is_accepted_without_dns(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13 item 8: the README's body, on a machine where no name resolves; create and PUT check
    the URL's form and literal addresses only, and the name is resolved when a delivery is attempted."""
    lookups: list[object] = []

    def no_dns(host: object, *args: object, **kwargs: object) -> Any:
        lookups.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    url = "https://erp.example.com/hooks/packmatch"
    hook = create(api, url, events=["package_run.completed"])
    assert (hook["url"], hook["events"]) == (url, ["package_run.completed"])
    replaced = api.client.put(hook["links"]["self"], json={"url": url}, headers=api.headers)
    assert replaced.status_code == 200, replaced.text
    assert lookups == []


def test_a_name_that_does_not_resolve_fails_its_delivery(api: Api) -> None:
    hook = create(api, "http://does-not-resolve.invalid/hook")
    config_id = api.shipment_world(("required",))
    assert api.run(config_id, {"invoice": [invoice()]}).status_code == 200
    page = eventually(
        api, hook["links"]["deliveries"], lambda b: [d["status"] for d in b["data"]] == ["failed"]
    )
    assert page["data"][0]["last_error"] == "refused: host does-not-resolve.invalid: it does not resolve"


def test_a_refused_url_says_why(api: Api) -> None:
    body = error_body(api.post(WEBHOOKS, json={"url": "http://169.254.169.254/"}), 400, "validation_error")
    assert body["message"] == "The webhook URL is refused: 169.254.169.254 is a cloud metadata address."


def test_loopback_needs_the_allow_list(
    make_runtime: Callable[..., Runtime], sqlite_url: str, start_api: Callable[[Runtime], Api]
) -> None:
    strict = start_api(make_runtime(database_url=sqlite_url))
    body = error_body(strict.post(WEBHOOKS, json={"url": "http://127.0.0.1:8080/h"}), 400, "validation_error")
    assert "PACKMATCH_WEBHOOK_ALLOW_PRIVATE_NETWORKS" in body["details"][0]["message"]


def test_put_validates_like_create(api: Api, receiver: Receiver) -> None:
    hook = create(api, receiver.url)
    response = api.client.put(hook["links"]["self"], json={"url": "http://[fe80::1]/"}, headers=api.headers)
    assert error_body(response, 400, "validation_error")["details"][0]["field"] == "url"
    assert api.get(hook["links"]["self"]).json()["url"] == receiver.url


# --- ids, auth, scopes, tenancy ------------------------------------------------------------------


def item_paths(hook: dict[str, Any], delivery: dict[str, Any]) -> list[tuple[str, str, Any]]:
    return [
        ("GET", hook["links"]["self"], None),
        ("PUT", hook["links"]["self"], {"url": hook["url"]}),
        ("DELETE", hook["links"]["self"], None),
        ("GET", hook["links"]["deliveries"], None),
        ("GET", delivery["links"]["self"], None),
        ("POST", delivery["links"]["redeliver"], None),
        ("POST", f"{hook['links']['self']}/rotate-secret", None),
    ]


OPERATIONS = ["get", "put", "delete", "list deliveries", "get delivery", "redeliver", "rotate secret"]


@pytest.mark.parametrize("index", range(7), ids=OPERATIONS)
def test_another_organizations_webhook_is_not_found(api: Api, receiver: Receiver, index: int) -> None:
    hook = create(api, receiver.url)
    method, path, body = item_paths(hook, delivered(api, hook))[index]
    other = api.other_organization()
    response = other.client.request(method, path, json=body, headers=other.headers)
    assert (
        error_body(response, 404, "not_found")["message"]
        == "No webhook with this ID exists for your organization."
    )
    assert api.get(hook["links"]["self"]).json()["url"] == receiver.url


def test_lists_never_show_another_organizations_webhooks(api: Api, receiver: Receiver) -> None:
    create(api, receiver.url)
    assert api.other_organization().get(WEBHOOKS).json() == {
        "data": [],
        "pagination": {"total": 0, "limit": 20, "has_more": False, "next_cursor": None},
    }


def test_bare_uuids_are_accepted_and_other_prefixes_are_not(api: Api, receiver: Receiver) -> None:
    hook = create(api, receiver.url)
    delivery = delivered(api, hook)
    bare_hook, bare_delivery = hook["id"].removeprefix("whk_"), delivery["id"].removeprefix("whd_")
    assert api.get(f"{WEBHOOKS}/{bare_hook}").json()["id"] == hook["id"]
    assert api.get(f"{WEBHOOKS}/{bare_hook}/deliveries/{bare_delivery}").json()["id"] == delivery["id"]
    body = error_body(api.get(f"{WEBHOOKS}/run_{bare_hook}"), 400, "validation_error")
    assert body["message"] == "Invalid webhook ID format. Must be a UUID."
    body = error_body(
        api.get(f"{WEBHOOKS}/{hook['id']}/deliveries/whk_{bare_delivery}"), 400, "validation_error"
    )
    assert body["message"] == "Invalid delivery ID format. Must be a UUID."


def test_a_missing_delivery_of_an_existing_webhook_is_not_found(api: Api, receiver: Receiver) -> None:
    hook = create(api, receiver.url)
    body = error_body(api.get(f"{hook['links']['deliveries']}/whd_{uuid.uuid4()}"), 404, "not_found")
    assert body["message"] == "No delivery with this ID exists for this webhook."


def test_keys_and_scopes(api: Api, receiver: Receiver) -> None:
    hook = create(api, receiver.url)
    error_body(api.client.get(WEBHOOKS), 401, "unauthorized")
    reader = api.other_organization("acme", scopes="read")
    assert reader.get(hook["links"]["self"]).status_code == 200
    error_body(reader.post(WEBHOOKS, json={"url": receiver.url}), 403, "insufficient_scope")
    error_body(reader.post(f"{hook['links']['self']}/rotate-secret"), 403, "insufficient_scope")
    response = api.client.delete(hook["links"]["self"], headers=reader.headers)
    error_body(response, 403, "insufficient_scope")


# --- deliveries ----------------------------------------------------------------------------------


def test_a_delivery_is_listed_with_its_attempts_and_links(api: Api, receiver: Receiver) -> None:
    hook = create(api, receiver.url)
    delivery = delivered(api, hook)
    run_id = receiver.requests[0].json["data"]["id"]
    assert delivery == {
        "id": receiver.requests[0].delivery_id,
        "webhook_id": hook["id"],
        "event": "package_run.completed",
        "package_run_id": run_id,
        "status": "delivered",
        "attempts": 1,
        "last_status_code": 200,
        "last_error": None,
        "next_attempt_at": None,
        "delivered_at": delivery["delivered_at"],
        "created_at": delivery["created_at"],
        "links": {
            "self": f"{hook['links']['deliveries']}/{delivery['id']}",
            "webhook": hook["links"]["self"],
            "package_run": f"/v1/matching/packages/runs/{run_id}",
            "redeliver": f"{hook['links']['deliveries']}/{delivery['id']}/redeliver",
        },
    }
    assert receiver.requests[0].json["data"] == api.get(delivery["links"]["package_run"]).json()
    assert api.get(delivery["links"]["self"]).json() == delivery


def test_a_failed_delivery_is_redelivered_with_the_same_id(api: Api) -> None:
    with receiving([500]) as receiver:
        hook = create(api, receiver.url)
        config_id = api.shipment_world(("required",))
        api.run(config_id, {"invoice": [invoice()]})
        failed = eventually(
            api, hook["links"]["deliveries"], lambda b: [d["status"] for d in b["data"]] == ["failed"]
        )
        delivery = failed["data"][0]
        assert (delivery["last_status_code"], delivery["last_error"]) == (500, "HTTP 500")
        response = api.post(delivery["links"]["redeliver"])
        assert response.status_code == 202, response.text
        assert response.headers["Location"] == delivery["links"]["self"]
        assert response.json()["status"] == "pending"
        again = eventually(api, delivery["links"]["self"], lambda d: d["status"] == "delivered")
    assert (again["attempts"], again["last_status_code"]) == (2, 200)
    assert [r.delivery_id for r in receiver.requests] == [delivery["id"]] * 2


def test_redelivery_while_the_webhook_is_inactive_is_a_conflict(api: Api, receiver: Receiver) -> None:
    hook = create(api, receiver.url)
    delivery = delivered(api, hook)
    api.client.put(hook["links"]["self"], json={"url": receiver.url, "is_active": False}, headers=api.headers)
    error_body(api.post(delivery["links"]["redeliver"]), 409, "conflict")


def test_deliveries_are_paginated_newest_first_and_filtered_by_status(api: Api, receiver: Receiver) -> None:
    hook = create(api, receiver.url)
    config_id = api.shipment_world(("required",))
    for _ in range(3):
        api.run(config_id, {"invoice": [invoice()]})
    path = hook["links"]["deliveries"]
    eventually(api, f"{path}?status=delivered", lambda b: b["pagination"]["total"] == 3)
    first = api.get(path, params={"limit": 2}).json()
    second = api.get(path, params={"limit": 2, "cursor": first["pagination"]["next_cursor"]}).json()
    assert [len(first["data"]), len(second["data"])] == [2, 1]
    assert (first["pagination"]["has_more"], second["pagination"]["has_more"]) == (True, False)
    ids = [d["id"] for d in first["data"] + second["data"]]
    oldest_first = api.get(path, params={"order": "asc"}).json()["data"]
    assert [d["id"] for d in oldest_first] == ids[::-1]
    assert api.get(f"{path}?status=failed").json()["data"] == []
    assert (
        error_body(api.get(f"{path}?status=lost"), 400, "validation_error")["details"][0]["field"] == "status"
    )
    error_body(api.get(path, params={"limit": 0}), 400, "validation_error")
    error_body(api.get(path, params={"cursor": "nope"}), 400, "validation_error")


def test_webhooks_are_paginated(api: Api, receiver: Receiver) -> None:
    ids = [create(api, receiver.url)["id"] for _ in range(3)]
    first = api.get(WEBHOOKS, params={"limit": 2}).json()
    second = api.get(WEBHOOKS, params={"limit": 2, "cursor": first["pagination"]["next_cursor"]}).json()
    assert [h["id"] for h in first["data"] + second["data"]] == ids[::-1]
    assert first["pagination"]["total"] == 3


def test_create_with_an_idempotency_key_creates_one_webhook(api: Api, receiver: Receiver) -> None:
    headers = {"Idempotency-Key": "create-hook-1"}
    first = api.post(WEBHOOKS, json={"url": receiver.url}, headers=headers)
    second = api.post(WEBHOOKS, json={"url": receiver.url}, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == {**first.json(), "secret": None}  # the secret is shown once (decision 0012)
    assert api.get(WEBHOOKS).json()["pagination"]["total"] == 1
    other = api.post(WEBHOOKS, json={"url": receiver.url, "is_active": False}, headers=headers)
    error_body(other, 422, "idempotency_key_mismatch")


# --- logs ----------------------------------------------------------------------------------------


def test_deliveries_are_logged_without_secret_signature_body_or_url(
    api: Api, receiver: Receiver, request: pytest.FixtureRequest
) -> None:
    captured: io.StringIO = request.getfixturevalue("log_lines")
    hook = create(api, receiver.url, secret="LEAK-SECRET-0123456789")
    delivery = delivered(api, hook)
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    sent = next(line for line in lines if line["event"] == "webhook.delivered")
    assert (sent["delivery_id"], sent["webhook_id"], sent["status_code"], sent["attempt"]) == (
        delivery["id"],
        hook["id"],
        200,
        1,
    )
    assert {"webhook.created", "webhook.delivery_enqueued"} <= {line["event"] for line in lines}
    text = captured.getvalue()
    held = receiver.requests[0]
    leaks = [
        "LEAK-SECRET",
        held.headers["x-packmatch-signature"],
        held.body.decode()[:60],
        receiver.url,
    ]
    assert [leak for leak in leaks if leak in text] == []
