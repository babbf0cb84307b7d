"""Every endpoint of SPEC §3 as a `Call` builder: path, parameters, body and the response model.

Declared once here; `resources` (sync) and `aresources` (async) only send what these build.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from packmatch import responses as r
from packmatch.client.calls import Call, model, params

REF = "/v1/matching/reference-data"
MC = "/v1/matching/configs"
PKG = "/v1/matching/packages/configs"
RUNS = "/v1/matching/packages/runs"
MR = "/v1/matching/runs"
HOOKS = "/v1/webhooks"
Body = Mapping[str, Any]
M = TypeVar("M", bound=BaseModel)


def etag(path: str) -> Call[str]:
    """The resource's current `ETag`, for a review's `if_match`."""
    return Call("GET", path, str, etag=True)


def if_match(etag: str | None) -> dict[str, str]:
    return {"If-Match": etag} if etag else {}


# --- reference data -----------------------------------------------------------------------------
def create_reference_data(name: str, rows: Sequence[Body], key: str | None) -> Call[r.ReferenceData]:
    return Call(
        "POST", REF, model(r.ReferenceData), json={"name": name, "rows": list(rows)}, idempotency_key=key
    )


def list_reference_data(**query: Any) -> Call[r.ReferenceDataList]:
    return Call("GET", REF, model(r.ReferenceDataList), params=params(**query))


def get_reference_data(ref_id: str) -> Call[r.ReferenceData]:
    return Call("GET", f"{REF}/{ref_id}", model(r.ReferenceData))


def reference_rows(ref_id: str, **query: Any) -> Call[r.ReferenceRowList]:
    return Call("GET", f"{REF}/{ref_id}/rows", model(r.ReferenceRowList), params=params(**query))


def delete_reference_data(ref_id: str, key: str | None) -> Call[r.Deleted]:
    return Call("DELETE", f"{REF}/{ref_id}", model(r.Deleted), idempotency_key=key)


# --- matching and package configs ---------------------------------------------------------------
def create(path: str, cls: type[M], body: Body, key: str | None) -> Call[M]:
    return Call("POST", path, model(cls), json=dict(body), idempotency_key=key)


def listing(path: str, cls: type[M], **query: Any) -> Call[M]:
    return Call("GET", path, model(cls), params=params(**query))


def get(path: str, cls: type[M]) -> Call[M]:
    return Call("GET", path, model(cls))


def replace(path: str, cls: type[M], body: Body, key: str | None) -> Call[M]:
    return Call("PUT", path, model(cls), json=dict(body), idempotency_key=key)


def delete(path: str, key: str | None) -> Call[r.Deleted]:
    return Call("DELETE", path, model(r.Deleted), idempotency_key=key)


# --- evaluations of a matching config -----------------------------------------------------------
def evaluations(config_id: str) -> str:
    return f"{MC}/{config_id}/evaluations"


def create_evaluation(
    config_id: str, rows: Sequence[Body] | None, from_reviews: bool, key: str | None
) -> Call[r.Evaluation]:
    body = {"from_reviews": True} if from_reviews else {"rows": list(rows or [])}
    return Call("POST", evaluations(config_id), model(r.Evaluation), json=body, idempotency_key=key)


# --- package runs -------------------------------------------------------------------------------
def submit_run(
    package_config_id: str, input_documents: Body, wait: float | None, key: str | None
) -> Call[r.PackageRun]:
    body = {"package_config_id": package_config_id, "input_documents": dict(input_documents)}
    query = params(wait=None if wait is None else min(30.0, max(0.0, wait)))
    return Call("POST", RUNS, model(r.PackageRun), params=query, json=body, idempotency_key=key)


def submit_batch(runs: Sequence[Body], atomic: bool, key: str | None) -> Call[r.PackageRunBatch]:
    query = params(atomic=atomic or None)
    body = {"runs": list(runs)}
    return Call(
        "POST", f"{RUNS}/batch", model(r.PackageRunBatch), params=query, json=body, idempotency_key=key
    )


def review_run(
    run_id: str, decision: str, notes: str | None, etag: str | None, key: str | None
) -> Call[r.PackageRun]:
    body = {"decision": decision, **({"notes": notes} if notes is not None else {})}
    path = f"{RUNS}/{run_id}/review"
    return Call("POST", path, model(r.PackageRun), json=body, headers=if_match(etag), idempotency_key=key)


# --- matching runs, results and their reviews -------------------------------------------------------
def review_result(
    mr_id: str, result_id: str, decision: Body, etag: str | None, key: str | None
) -> Call[r.MatchResult]:
    path = f"{MR}/{mr_id}/results/{result_id}/review"
    return Call(
        "POST", path, model(r.MatchResult), json=dict(decision), headers=if_match(etag), idempotency_key=key
    )


def review_results(mr_id: str, decisions: Sequence[Body], key: str | None) -> Call[r.ReviewedResults]:
    body = {"decisions": list(decisions)}
    return Call(
        "POST", f"{MR}/{mr_id}/results/review", model(r.ReviewedResults), json=body, idempotency_key=key
    )


# --- webhooks -----------------------------------------------------------------------------------
def rotate_secret(hook_id: str, key: str | None) -> Call[r.CreatedWebhook]:
    return Call("POST", f"{HOOKS}/{hook_id}/rotate-secret", model(r.CreatedWebhook), idempotency_key=key)


def redeliver(hook_id: str, delivery_id: str, key: str | None) -> Call[r.WebhookDelivery]:
    path = f"{HOOKS}/{hook_id}/deliveries/{delivery_id}/redeliver"
    return Call("POST", path, model(r.WebhookDelivery), idempotency_key=key)
