"""Schemathesis hooks that keep generated requests reaching packmatch's core logic.

Used by `test_openapi_schemathesis.py` and by the long CLI run (docs/api-testing.md). They change
which valid requests are sent, never what counts as a failure.

- `Idempotency-Key`: generated keys come from a small pool, so most writes would reuse a key with
  another body and stop at 422 `idempotency_key_mismatch` (documented, but it hides the route). A
  well-formed key gets a unique suffix; a malformed one (empty, too long) is sent as generated.
- Ids: a generated id names nothing, so every operation on an id, and every create that refers to
  another resource, would stop at 404. Half of the well-formed ids in paths and bodies (by their
  UUID's parity, so runs repeat) are swapped for ids of that type seen in earlier responses.
- Extreme numbers (issue 13): a matching config's options, some weights and thresholds, and
  values in reference rows and run inputs are replaced, in turn, by numbers at a float's edges
  (±1e308, 5e-324, the largest double): each must be a 400 naming its field or be scored, never a 5xx.
- Rules no schema can express: a matching config's `target`s are columns of its dataset, and a
  run's `input_documents` are keyed by its package config's slot names. Columns and slot names
  seen in responses replace the generated values, in order.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

import schemathesis

MATCHING_CONFIGS = "/v1/matching/configs"
PACKAGE_CONFIGS = "/v1/matching/packages/configs"
PACKAGE_RUNS = "/v1/matching/packages/runs"
PREFIX_BY_COLLECTION = {
    "/v1/matching/reference-data/": "ref",
    f"{MATCHING_CONFIGS}/": "mc",
    f"{PACKAGE_CONFIGS}/": "pkg",
    f"{PACKAGE_RUNS}/": "run",
    "/v1/matching/runs/": "mr",
    "/v1/webhooks/": "whk",
}
PREFIX_BY_PARAMETER = {"delivery_id": "whd", "result_id": "mres"}  # a path naming two kinds of id
MAX_KEY_LENGTH = 255

seen_ids: defaultdict[str, list[str]] = defaultdict(list)  # by prefix: "ref", "mc", "pkg", …
columns_by_dataset: dict[str, list[str]] = {}
slots_by_config: dict[str, list[str]] = {}


def unique_key(key: Any) -> Any:
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH:
        return key
    suffix = f"-{uuid.uuid4().hex}"
    return key[: MAX_KEY_LENGTH - len(suffix)] + suffix


def seen_id(value: Any, prefix: str) -> Any:
    if not isinstance(value, str) or not seen_ids[prefix] or value in seen_ids[prefix]:
        return value
    try:
        number = uuid.UUID(value.removeprefix(f"{prefix}_")).int
    except ValueError:
        return value
    ids = seen_ids[prefix]
    return value if number % 2 else ids[number // 2 % len(ids)]


def with_seen_ids(path: str, body: dict[str, Any]) -> None:
    if path.startswith(MATCHING_CONFIGS) and "reference_data_id" in body:
        body["reference_data_id"] = seen_id(body["reference_data_id"], "ref")
    if path.startswith(PACKAGE_CONFIGS) and isinstance(body.get("document_type_configs"), list):
        for slot in body["document_type_configs"]:
            if isinstance(slot, dict) and "matching_config_id" in slot:
                slot["matching_config_id"] = seen_id(slot["matching_config_id"], "mc")
    if path == PACKAGE_RUNS and "package_config_id" in body:
        body["package_config_id"] = seen_id(body["package_config_id"], "pkg")


def with_columns(body: dict[str, Any]) -> None:
    columns = columns_by_dataset.get(str(body.get("reference_data_id")))
    if columns and isinstance(body.get("field_mappings"), list):
        for i, mapping in enumerate(body["field_mappings"]):
            if isinstance(mapping, dict):
                mapping["target"] = columns[i % len(columns)]


# Options are a free-form object in the schema, so schemathesis never puts numbers in them: these
# replace a generated mapping's options, in turn (issue 13: extreme numbers must be a 400, never a 5xx).
EXTREME_OPTIONS: list[dict[str, Any]] = [
    {},
    {"tolerance_abs": 1e308, "tolerance_pct": 1e308},
    {"tolerance_days": 1e12, "formats": ["%q", "%"]},
    {"min_similarity": -1e308, "scorer": "jaro_winkler"},
    {"max_edits": 10**30},
    {"tolerance_abs": 1e15, "tolerance_pct": 100},
    {"tolerance_days": 3650, "allow_day_month_swap": True, "formats": ["%d.%m.%Y"]},
    {"min_similarity": 0.5, "scorer": "levenshtein"},
    {"max_edits": 2},
]


def with_extreme_options(body: dict[str, Any]) -> None:
    if isinstance(body.get("field_mappings"), list):
        for i, mapping in enumerate(body["field_mappings"]):
            if isinstance(mapping, dict) and isinstance(mapping.get("options"), dict):
                mapping["options"] = EXTREME_OPTIONS[(len(str(mapping)) + i) % len(EXTREME_OPTIONS)]


# Weights, thresholds and values at the edges of a float: out of range → 400; in range (the tiniest
# weight, the largest values) → a run that ends with a verdict, never a 5xx (issue 13).
EXTREME_NUMBERS: list[float] = [1e308, -1e308, 5e-324, 1.7976931348623157e308, 1e-300, 1e15, 0.0]


def extreme(seed: int) -> float:
    return EXTREME_NUMBERS[seed % len(EXTREME_NUMBERS)]


def with_extreme_weights(body: dict[str, Any]) -> None:
    mappings = body.get("field_mappings")
    if not isinstance(mappings, list):
        return
    seed = len(str(body))
    if seed % 3 == 0 and mappings and isinstance(mappings[0], dict):
        mappings[0]["weight"] = extreme(seed)
    if seed % 5 == 0:
        body["threshold"] = extreme(seed // 5)


def with_extreme_values(rows: Any) -> None:
    """Numbers at a float's edges in place of a row's generated values, in turn."""
    if not isinstance(rows, list):
        return
    for i, row in enumerate(rows):
        values = row.get("values") if isinstance(row, dict) and "document_id" in row else row
        if isinstance(values, dict):
            for j, name in enumerate(list(values)[:3]):
                if (i + j) % 2 == 0:
                    values[name] = extreme(i + j + len(name))


def with_slot_names(body: dict[str, Any]) -> None:
    if isinstance(body.get("input_documents"), dict):
        names = iter(slots_by_config.get(str(body.get("package_config_id")), []))
        body["input_documents"] = {next(names, key): rows for key, rows in body["input_documents"].items()}


@schemathesis.hook
def before_call(
    context: schemathesis.HookContext, case: schemathesis.Case[Any], kwargs: dict[str, Any]
) -> None:
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = unique_key(case.headers["Idempotency-Key"])
    prefix = next((p for c, p in PREFIX_BY_COLLECTION.items() if case.path.startswith(c)), None)
    if prefix is not None and case.path_parameters:
        for name, value in case.path_parameters.items():
            case.path_parameters[name] = seen_id(value, PREFIX_BY_PARAMETER.get(name, prefix))
    if case.method not in ("POST", "PUT") or not isinstance(case.body, dict):
        return
    with_seen_ids(case.path, case.body)
    decisions = case.body.get("decisions")
    if case.path.endswith("/results/review") and isinstance(decisions, list):
        for decision in decisions:  # bulk review: results seen in earlier responses
            if isinstance(decision, dict) and "result_id" in decision:
                decision["result_id"] = seen_id(decision["result_id"], "mres")
    if case.path.startswith(MATCHING_CONFIGS):
        with_columns(case.body)
        with_extreme_options(case.body)
        with_extreme_weights(case.body)
    if case.path == "/v1/matching/reference-data":
        with_extreme_values(case.body.get("rows"))
    if case.path == PACKAGE_RUNS:
        with_slot_names(case.body)
        documents = case.body.get("input_documents")
        if isinstance(documents, dict):
            for rows in documents.values():
                with_extreme_values(rows)


def remember(resource: dict[str, Any]) -> None:
    if not isinstance(resource.get("id"), str):
        return
    prefix = resource["id"].partition("_")[0]
    if resource["id"] not in seen_ids[prefix]:
        seen_ids[prefix].append(resource["id"])
    if isinstance(resource.get("columns"), list):
        columns_by_dataset[resource["id"]] = [column["name"] for column in resource["columns"]]
    if isinstance(resource.get("document_type_configs"), list):
        slots_by_config[resource["id"]] = [
            slot["document_type"] for slot in resource["document_type_configs"]
        ]


def forget(deleted: str) -> None:
    for ids in seen_ids.values():
        if deleted in ids:
            ids.remove(deleted)


@schemathesis.hook
def after_call(
    context: schemathesis.HookContext, case: schemathesis.Case[Any], response: schemathesis.Response
) -> None:
    if not 200 <= response.status_code < 300 or not case.path.startswith("/v1/"):
        return
    if case.method == "DELETE":
        for value in (case.path_parameters or {}).values():
            forget(str(value))
        return
    body = response.json()
    items = body["data"] if isinstance(body, dict) and isinstance(body.get("data"), list) else [body]
    for item in items:
        if isinstance(item, dict):
            remember(item)
