"""The OpenAPI document: success and error schemas, headers, security and links for every operation.

Routes declare none of this. `install(app)` replaces `app.openapi` with a builder that takes FastAPI's
own document and completes each operation by its method and path pattern (`RESOURCES`), so a route
added to any router later is documented the same way. The response models mirror `presenters`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from packmatch.api import presenters
from packmatch.api import response_models as rm
from packmatch.domain.ids import Kind

REF = "#/components/schemas/{model}"
SECURITY_SCHEME = "ApiKey"
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
BODY_METHODS = frozenset({"post", "put", "patch"})
ANY_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

Shape = Literal["collection", "item", "child", "other"]


@dataclass(frozen=True)
class Resource:
    path: str
    kind: Kind
    id_field: str  # how other resources' bodies and filters name it
    item: type[BaseModel]
    listing: type[BaseModel] | None = None
    created: tuple[int, ...] = (201,)
    refers: bool = False  # a create/replace body names other resources: an unknown one → 404
    children: Mapping[str, type[BaseModel]] = field(default_factory=dict)
    nested_ids: Mapping[str, str] = field(default_factory=dict)  # JSON pointer → resource path
    created_item: type[BaseModel] | None = None  # when the create answers with more than the item
    feeds: Mapping[str, Any] = field(default_factory=dict)  # create path → body parts it supplies


RESOURCES = (
    Resource(
        presenters.REFERENCE_DATA, Kind.REFERENCE_DATA, "reference_data_id", rm.ReferenceData,
        rm.ReferenceDataList, children={"rows": rm.ReferenceRowList},
        feeds={presenters.MATCHING_CONFIGS: {"reference_data_id": "$response.body#/id"}},
    ),
    Resource(
        presenters.MATCHING_CONFIGS, Kind.MATCHING_CONFIG, "matching_config_id", rm.MatchingConfig,
        rm.MatchingConfigList, refers=True,
        feeds={presenters.PACKAGE_CONFIGS: {
            "document_type_configs": [{"matching_config_id": "$response.body#/id"}],
        }},
    ),
    Resource(
        presenters.PACKAGE_CONFIGS, Kind.PACKAGE_CONFIG, "package_config_id", rm.PackageConfig,
        rm.PackageConfigList, refers=True,
        feeds={presenters.PACKAGE_RUNS: {"package_config_id": "$response.body#/id"}},
    ),
    Resource(
        presenters.PACKAGE_RUNS, Kind.PACKAGE_RUN, "package_run_id", rm.PackageRun, rm.PackageRunList,
        created=(202, 200), refers=True, children={"reviews": rm.RunReviewList},
        nested_ids={"/document_results/0/matching_run_id": presenters.MATCHING_RUNS},
    ),
    Resource(
        presenters.MATCHING_RUNS, Kind.MATCHING_RUN, "matching_run_id", rm.MatchingRun,
        children={"results": rm.MatchResultList},
    ),
    Resource(
        presenters.WEBHOOKS, Kind.WEBHOOK, "webhook_id", rm.Webhook, rm.WebhookList,
        created_item=rm.CreatedWebhook, children={"deliveries": rm.WebhookDeliveryList},
    ),
)  # fmt: skip

# Operations `RESOURCES` shapes do not cover (actions, items below a child): path → method → models.
NESTED: dict[str, dict[str, dict[int, type[BaseModel]]]] = {
    f"{presenters.PACKAGE_RUNS}/batch": {"post": {202: rm.PackageRunBatch}},
    f"{presenters.WEBHOOKS}/{{webhook_id}}/rotate-secret": {"post": {200: rm.CreatedWebhook}},
    f"{presenters.PACKAGE_RUNS}/{{run_id}}/review": {"post": {200: rm.PackageRun}},
    f"{presenters.MATCHING_CONFIGS}/{{config_id}}/calibrations": {"post": {200: rm.Calibration}},
    f"{presenters.MATCHING_CONFIGS}/{{config_id}}/evaluations": {
        "post": {202: rm.Evaluation},
        "get": {200: rm.EvaluationList},
    },
    f"{presenters.MATCHING_CONFIGS}/{{config_id}}/evaluations/{{evaluation_id}}": {
        "get": {200: rm.Evaluation}
    },
    f"{presenters.MATCHING_RUNS}/{{matching_run_id}}/results/review": {"post": {200: rm.ReviewedResults}},
    f"{presenters.MATCHING_RUNS}/{{matching_run_id}}/results/{{result_id}}": {"get": {200: rm.MatchResult}},
    f"{presenters.MATCHING_RUNS}/{{matching_run_id}}/results/{{result_id}}/review": {
        "post": {200: rm.MatchResult}
    },
    f"{presenters.MATCHING_RUNS}/{{matching_run_id}}/results/{{result_id}}/reviews": {
        "get": {200: rm.ResultReviewList}
    },
    f"{presenters.WEBHOOKS}/{{webhook_id}}/deliveries/{{delivery_id}}": {"get": {200: rm.WebhookDelivery}},
    f"{presenters.WEBHOOKS}/{{webhook_id}}/deliveries/{{delivery_id}}/redeliver": {
        "post": {202: rm.WebhookDelivery}
    },
}
# Creates that answer with many resources, so no `Location`.
UNLOCATED = frozenset(
    {
        f"{presenters.PACKAGE_RUNS}/batch",
        f"{presenters.MATCHING_CONFIGS}/{{config_id}}/calibrations",
        *(path for path in NESTED if path.endswith("/review")),
    }
)
PATH_IDS = {
    "webhook_id": Kind.WEBHOOK,
    "delivery_id": Kind.WEBHOOK_DELIVERY,
    "matching_run_id": Kind.MATCHING_RUN,
    "result_id": Kind.MATCH_RESULT,
    "evaluation_id": Kind.EVALUATION,
}

OPERATIONS: dict[str, type[BaseModel] | None] = {
    "/healthz": rm.Health,
    "/readyz": rm.Readiness,
    "/metrics": None,
}

MODELS: tuple[type[BaseModel], ...] = (
    rm.ErrorBody, rm.Deleted, rm.Health, rm.Readiness,
    *(r.item for r in RESOURCES), *(r.listing for r in RESOURCES if r.listing),
    *(m for r in RESOURCES for m in r.children.values()),
    *(r.created_item for r in RESOURCES if r.created_item),
    *dict.fromkeys(m for methods in NESTED.values() for models in methods.values() for m in models.values()),
)  # fmt: skip

ERRORS = {
    400: ("validation_error", "A malformed id, parameter or body; `details` names the fields."),
    401: ("unauthorized", "Missing, unknown or revoked API key."),
    403: ("insufficient_scope", "The key lacks the `read` (GET) or `write` (POST, PUT, DELETE) scope."),
    404: ("not_found", "No such resource in your organization (another organization's is never shown)."),
    409: (
        "idempotency_key_in_use",
        "`idempotency_key_in_use`: a request with this `Idempotency-Key` is still in progress; "
        "or `conflict`: the resource is in use (a dataset by a matching config, a matching config by a "
        "package config), or a delivery of an inactive webhook is redelivered.",
    ),
    412: ("precondition_failed", "`If-Match` is not the current `ETag`: nothing was written."),
    413: ("payload_too_large", "The request body exceeds 10 MiB."),
    415: ("unsupported_media_type", "The body's `Content-Type` is none of those documented here."),
    422: ("idempotency_key_mismatch", "This `Idempotency-Key` was first used with a different request."),
    429: ("rate_limited", "Too many requests from this API key; retry after `Retry-After` seconds."),
    500: ("internal_error", "An unexpected failure; it has been logged. No trace or SQL is included."),
    503: (
        "unavailable",
        "The database or the broker is briefly unreachable, or (SQLite) another write such as an "
        "import holds the one write lock; retry shortly.",
    ),
}


def _header(description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema}


REQUEST_ID = _header(
    "This request's id; equal to `request_id` in an error body.",
    {"type": "string", "pattern": rm.id_pattern(Kind.REQUEST)},
    required=True,
)
RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": _header(
        "Requests per minute allowed for this API key (per client address without one); the three "
        "`X-RateLimit-*` headers are absent when rate limiting is off.",
        {"type": "integer"},
    ),
    "X-RateLimit-Remaining": _header("Requests left in the current window.", {"type": "integer"}),
    "X-RateLimit-Reset": _header("When the window resets (epoch seconds).", {"type": "integer"}),
}
LOCATION = _header("Relative path of the resource.", {"type": "string"}, required=True)
REPLAYED = _header("`true` when this is the stored response of an earlier request.", {"type": "string"})
ETAG = _header(
    "This version of the resource: name it in a review's `If-Match` (SPEC §3 Reviews).",
    {"type": "string"},
    required=True,
)
# The operations that answer with one run or one result, and so with its `ETag`.
_RUN = "/v1/matching/packages/runs/{run_id}"
_RESULT = "/v1/matching/runs/{matching_run_id}/results/{result_id}"
ETAGGED = {("get", _RUN), ("post", _RUN + "/review"), ("get", _RESULT), ("post", _RESULT + "/review")}
RETRY_AFTER = _header("Seconds to wait before retrying.", {"type": "integer"})
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Repeat a request safely for 24 h: the same key, method, path and body return the "
    "first response again (`Idempotent-Replayed: true`).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


@dataclass(frozen=True)
class Target:
    """Where an operation's path sits among `RESOURCES`."""

    resource: Resource | None
    shape: Shape
    param: str | None = None
    child: str | None = None


def locate(path: str) -> Target:
    for resource in RESOURCES:
        pattern = rf"{re.escape(resource.path)}(?:/\{{(?P<param>[^/}}]+)\}}(?:/(?P<child>[\w-]+))?)?"
        found = re.fullmatch(pattern, path)
        if found is None:
            continue
        param, child = found["param"], found["child"]
        shape: Shape = "collection" if param is None else ("item" if child is None else "child")
        return Target(resource, shape, param, child)
    return Target(None, "other")


def success_models(target: Target, method: str) -> dict[int, type[BaseModel]]:
    resource = target.resource
    if resource is None:
        return {}
    if target.shape == "collection" and method == "get" and resource.listing:
        return {200: resource.listing}
    if target.shape == "collection" and method == "post":
        return dict.fromkeys(resource.created, resource.created_item or resource.item)
    if target.shape == "item" and method in {"get", "put"}:
        return {200: resource.item}
    if target.shape == "item" and method == "delete":
        return {200: rm.Deleted}
    if target.shape == "child" and method == "get" and target.child in resource.children:
        return {200: resource.children[str(target.child)]}
    return {}


def error_statuses(target: Target, method: str, negotiated: bool = False) -> list[int]:
    """`negotiated`: the body may come in several media types, so an unknown one is a 415."""
    statuses = {400, 401, 403, 429, 500, 503}
    refers = target.resource is not None and target.resource.refers and method in BODY_METHODS
    if target.shape != "collection" or refers:
        statuses.add(404)
    if method in WRITE_METHODS:
        statuses |= {409, 422}
    if method in BODY_METHODS:
        statuses.add(413)
    if negotiated:
        statuses.add(415)
    return sorted(statuses)


class Builder:
    """Completes FastAPI's document in place; one instance per document."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.components = schema.setdefault("components", {})
        self.refs: dict[type[BaseModel], dict[str, Any]] = {}
        self.examples: dict[Any, Any] = rm.examples()

    def build(self) -> dict[str, Any]:
        self._add_models()
        self.components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key `pmk_…` (`packmatch keys create`).",
        }
        for path, item in self.schema.get("paths", {}).items():
            for method, operation in item.items():
                if path.startswith("/v1/"):
                    self._api_operation(path, method, operation)
                else:
                    self._ops_operation(path, operation)
        self._drop_unreferenced("HTTPValidationError", "ValidationError")
        return self.schema

    def _add_models(self) -> None:
        keys, top = models_json_schema([(m, "serialization") for m in MODELS], ref_template=REF)
        schemas = self.components.setdefault("schemas", {})
        for name, definition in top.get("$defs", {}).items():
            if schemas.setdefault(name, definition) != definition:
                raise RuntimeError(f"OpenAPI component {name!r} is defined twice, differently.")
        self.refs = {model: keys[(model, "serialization")] for model in MODELS}

    def _content(self, model: type[BaseModel], example: Any = None) -> dict[str, Any]:
        media: dict[str, Any] = {"schema": dict(self.refs[model])}
        if (example := example or self.examples.get(model)) is not None:
            media["example"] = example
        return {"application/json": media}

    def _api_operation(self, path: str, method: str, operation: dict[str, Any]) -> None:
        target = locate(path)
        given = operation.get("responses", {})
        responses: dict[str, Any] = {
            k: v for k, v in given.items() if k != "422" and not k.startswith(("4", "5"))
        }
        base_headers = {"X-Request-Id": REQUEST_ID, **RATE_LIMIT_HEADERS}
        models = success_models(target, method) or NESTED.get(path, {}).get(method, {})
        for status, model in models.items():
            headers = dict(base_headers)
            located = status in (201, 202) or (status == 200 and method == "post")
            if located and path not in UNLOCATED:
                headers["Location"] = LOCATION
            if method in WRITE_METHODS:
                headers["Idempotent-Replayed"] = REPLAYED
            if status == 200 and (method, path) in ETAGGED:
                headers["ETag"] = ETAG
            response = responses.setdefault(str(status), {})
            response["description"] = _description(response, status)
            example = self.examples.get((model, status))
            response.update(headers=headers, content=self._content(model, example))
            if links := self._links(target, method, model):
                response["links"] = links
        negotiated = len(operation.get("requestBody", {}).get("content", {})) > 1
        statuses = error_statuses(target, method, negotiated)
        if method == "post" and path.endswith("/review"):  # a review decision (SPEC §3 Reviews)
            statuses = sorted({*statuses, 404, 412})
        for status in statuses:
            retry = (
                {"Retry-After": {**RETRY_AFTER, "required": status == 429}} if status in (429, 503) else {}
            )
            responses[str(status)] = self._error(path, status, {**base_headers, **retry})
        for response in responses.values():
            response.setdefault("headers", dict(base_headers))
        operation["responses"] = dict(sorted(responses.items()))
        operation["security"] = [{SECURITY_SCHEME: []}]
        self._parameters(target, method, operation)

    def _ops_operation(self, path: str, operation: dict[str, Any]) -> None:
        ok = operation.setdefault("responses", {}).setdefault("200", {})
        ok["headers"] = {"X-Request-Id": REQUEST_ID}
        model = OPERATIONS.get(path)
        if model is not None:
            ok["content"] = self._content(model)
        elif path in OPERATIONS:
            ok["content"] = {"text/plain": {"schema": {"type": "string"}}}
        statuses = (500, 503) if path == "/readyz" else (500,)
        for status in statuses:
            operation["responses"][str(status)] = self._error(path, status, {"X-Request-Id": REQUEST_ID})

    def _error(self, path: str, status: int, headers: dict[str, Any]) -> dict[str, Any]:
        code, description = ERRORS[status]
        example = {
            "statusCode": status,
            "code": code,
            "error": HTTPStatus(status).phrase,
            "message": description,
            "retryable": code in {"rate_limited", "unavailable", "idempotency_key_in_use", "internal_error"},
            "request_id": "req_6a7d2b0e-1f43-4c8e-9a55-3b1f0e2d4c6a",
            "timestamp": "2024-09-14T10:40:00.000Z",
            "path": path,
            "details": [],
        }
        text = description if status == 409 else f"`{code}`: {description}"
        return {"description": text, "headers": headers, "content": self._content(rm.ErrorBody, example)}

    def _parameters(self, target: Target, method: str, operation: dict[str, Any]) -> None:
        by_field = {r.id_field: r.kind for r in RESOURCES}
        for parameter in operation.get("parameters", []):
            kind = None
            if parameter["in"] == "path" and target.resource and parameter["name"] == target.param:
                kind = target.resource.kind
            elif parameter["in"] == "path":
                kind = PATH_IDS.get(parameter["name"])
            elif parameter["in"] == "query":
                kind = by_field.get(parameter["name"])
            if kind is not None:
                _id_schema(parameter.setdefault("schema", {}), kind)
        for media in operation.get("requestBody", {}).get("content", {}).values():
            self._body_ids(media.get("schema"), by_field, seen=set())
        if method in WRITE_METHODS:
            names = {p["name"].lower() for p in operation.get("parameters", [])}
            if "idempotency-key" not in names:
                operation.setdefault("parameters", []).append(dict(IDEMPOTENCY_KEY))

    def _body_ids(self, node: Any, by_field: dict[str, Kind], seen: set[str]) -> None:
        """Give every id field of a request body (e.g. `document_type_configs[].matching_config_id`)
        its pattern; a body schema only says `string`, the API answers 400 to anything but an id."""
        if not isinstance(node, dict):
            return
        if (ref := node.get("$ref", "")) and ref not in seen:
            seen.add(ref)
            self._body_ids(self.components["schemas"].get(ref.rpartition("/")[2]), by_field, seen)
        for name, prop in node.get("properties", {}).items():
            if name in by_field and isinstance(prop, dict):
                _id_schema(prop, by_field[name])
            self._body_ids(prop, by_field, seen)
        for key in ("items", "additionalProperties"):
            self._body_ids(node.get(key), by_field, seen)
        for key in ("anyOf", "allOf", "oneOf"):
            for sub in node.get(key, []):
                self._body_ids(sub, by_field, seen)

    def _links(self, target: Target, method: str, model: type[BaseModel]) -> dict[str, Any]:
        resource = target.resource
        if resource is None or model not in (resource.item, resource.created_item):
            return {}
        links = self._id_links(resource.path, "$response.body#/id", exclude=(target, method))
        for pointer, other in resource.nested_ids.items():
            links.update(self._id_links(other, f"$response.body#{pointer}", exclude=(target, method)))
        links.update(self._reference_links(resource))
        return links

    def _id_links(self, collection: str, expression: str, exclude: tuple[Target, str]) -> dict[str, Any]:
        links = {}
        for path, item in self.schema["paths"].items():
            target = locate(path)
            if target.resource is None or target.resource.path != collection or target.param is None:
                continue
            for method, operation in item.items():
                if (target, method) != exclude:
                    links[operation["operationId"]] = {
                        "operationId": operation["operationId"],
                        "parameters": {f"path.{target.param}": expression},
                    }
        return links

    def _reference_links(self, resource: Resource) -> dict[str, Any]:
        """Links to the creates that this resource `feeds`, and to lists filtered by its `id_field`."""
        links = {}
        for path, item in self.schema["paths"].items():
            for method, operation in item.items():
                link: dict[str, Any] = {"operationId": operation["operationId"]}
                query = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
                if method == "post" and path in resource.feeds:
                    link["requestBody"] = resource.feeds[path]
                elif resource.id_field in query:
                    link["parameters"] = {f"query.{resource.id_field}": "$response.body#/id"}
                else:
                    continue
                links[operation["operationId"]] = link
        return links

    def _drop_unreferenced(self, *names: str) -> None:
        """FastAPI's 422 schemas, which no operation uses once errors are documented (400, not 422)."""
        schemas = self.components.get("schemas", {})
        for name in names:
            definition = schemas.pop(name, None)
            if definition is not None and REF.format(model=name) in json.dumps(self.schema):
                schemas[name] = definition


def _description(response: dict[str, Any], status: int) -> str:
    generic = {"Successful Response", "Validation Error", HTTPStatus(status).phrase, None}
    given = response.get("description")
    return str(given) if given not in generic else HTTPStatus(status).phrase


def _id_schema(schema: dict[str, Any], kind: Kind) -> None:
    """`schema` is a string, or FastAPI's `anyOf: [string, null]` for an optional one."""
    string = next((s for s in schema.get("anyOf", []) if s.get("type") == "string"), schema)
    string["pattern"] = f"^({kind.value}_)?{ANY_UUID}$"
    schema.setdefault("description", f"A `{kind.value}_…` id, or its bare UUID.")


def install(app: FastAPI) -> None:
    """Serve the completed document at `/openapi.json` (and so in `/docs`, with an Authorize button)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
                servers=app.servers,
            )
            app.openapi_schema = Builder(schema).build()
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
