"""/v1/matching/configs"""

from __future__ import annotations

import io
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from packmatch.api import presenters
from packmatch.api.deps import PageDep, PrincipalDep, ServicesDep
from packmatch.api.schemas import (
    CalibrationCreate,
    EvaluationCreate,
    MatchingConfigCreate,
    MatchingConfigReplace,
)
from packmatch.api.uploads import (
    CSV,
    JSON,
    MULTIPART,
    body_kind,
    check_form_fields,
    form_file,
    read_bytes,
    read_form,
    read_json_model,
)
from packmatch.domain.evaluations import EvaluationSource
from packmatch.domain.ids import Kind, parse_id
from packmatch.domain.models import InputRow
from packmatch.quality.labels import LabelledRow
from packmatch.services.calibrations import MAX_REFERENCE_ROWS, MAX_ROWS, CalibrationRequest
from packmatch.services.configs import MatchingConfigInput, MatchingConfigReplacement
from packmatch.services.evaluations import MAX_ROWS as EVALUATION_MAX_ROWS
from packmatch.services.labelled_csv import LABEL

router = APIRouter(prefix=presenters.MATCHING_CONFIGS, tags=["matching configs"])


@router.post("", status_code=201, summary="Create a matching config")
def create(
    body: MatchingConfigCreate, principal: PrincipalDep, services: ServicesDep, response: Response
) -> dict[str, Any]:
    data = MatchingConfigInput(
        name=body.name,
        reference_data_id=parse_id(Kind.REFERENCE_DATA, body.reference_data_id, field="reference_data_id"),
        field_mappings=[m.to_domain() for m in body.field_mappings],
        threshold=body.threshold,
    )
    config = services.configs.create_matching(principal.organization_id, data)
    shown = presenters.matching_config(config)
    response.headers["Location"] = shown["links"]["self"]
    return shown


@router.get("", summary="List matching configs")
def list_(principal: PrincipalDep, services: ServicesDep, page: PageDep) -> dict[str, Any]:
    result = services.configs.list_matching(principal.organization_id, page)
    return presenters.page(result, presenters.matching_config)


@router.get("/{config_id}", summary="Get a matching config")
def get(config_id: str, principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    ident = parse_id(Kind.MATCHING_CONFIG, config_id)
    return presenters.matching_config(services.configs.get_matching(principal.organization_id, ident))


@router.put(
    "/{config_id}",
    summary="Replace a matching config",
    description="Replaces `name`, `field_mappings` and `threshold` (omitted: 0.85) and bumps `version`. "
    "`reference_data_id` cannot change; it may be sent if it equals the current one. Runs already "
    "accepted keep scoring with the config as it was.",
)
def replace(
    config_id: str, body: MatchingConfigReplace, principal: PrincipalDep, services: ServicesDep
) -> dict[str, Any]:
    ident = parse_id(Kind.MATCHING_CONFIG, config_id)
    given = body.reference_data_id
    data = MatchingConfigReplacement(
        name=body.name,
        field_mappings=[m.to_domain() for m in body.field_mappings],
        threshold=body.threshold,
        reference_data_id=None
        if given is None
        else parse_id(Kind.REFERENCE_DATA, given, field="reference_data_id"),
    )
    config = services.configs.replace_matching(principal.organization_id, ident, data)
    return presenters.matching_config(config)


@router.delete(
    "/{config_id}",
    summary="Delete a matching config",
    description="409 `conflict` while a package config uses it. Runs already accepted are unaffected.",
)
def delete(config_id: str, principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    services.configs.delete_matching(principal.organization_id, parse_id(Kind.MATCHING_CONFIG, config_id))
    return {"deleted": True}


@router.post(
    "/{config_id}/calibrations",
    summary="Propose weights, missing policies and a threshold for a matching config",
    description="Fits the Fellegi–Sunter model to the config's reference data and the input rows "
    "given (unsupervised, by EM), or counts on the labels when every row has `reference_row_id`. "
    "Answers 200 with per-field m/u probabilities, weights and explanations, precision/recall "
    f"estimates before and after, and `proposal`: a config body for PUT. Nothing is applied. "
    f"Synchronous: at most {MAX_ROWS:,} rows, and reference data of at most {MAX_REFERENCE_ROWS:,} rows.",
)
def calibrations(
    config_id: str, body: CalibrationCreate, principal: PrincipalDep, services: ServicesDep
) -> dict[str, Any]:
    ident = parse_id(Kind.MATCHING_CONFIG, config_id)
    rows = [InputRow(document_id=f"row_{i}", values=row.values) for i, row in enumerate(body.rows)]
    request = CalibrationRequest(
        rows=rows, labels=body.labels(), sample_pairs=body.sample_pairs, propose_missing=body.propose_missing
    )
    done = services.calibrations.calibrate(principal.organization_id, ident, request)
    return presenters.calibration(done.config, done.report)


EVALUATIONS = "/{config_id}/evaluations"
CSV_FIELDS = frozenset({"file"})
CSV_FILE = (
    f"A UTF-8 CSV file with a header row: a `{LABEL}` column (the reference row each row should "
    "match, blank for none) and the input values in the other columns."
)
EVALUATION_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": EvaluationCreate.model_json_schema()},
        "text/csv": {"schema": {"type": "string", "description": CSV_FILE}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary", "description": CSV_FILE}},
                "additionalProperties": False,
            }
        },
    },
}


@router.post(
    EVALUATIONS,
    status_code=202,
    summary="Evaluate a matching config on labelled rows",
    description="Accepts labelled rows — `application/json` with `rows` (up to "
    f"{EVALUATION_MAX_ROWS:,}, each with `reference_row_id` or null) or `from_reviews: true` (the "
    "config's recorded review decisions as labels), or a CSV file of up to "
    f"{EVALUATION_MAX_ROWS:,} rows as a `text/csv` body or a multipart `file` (a `{LABEL}` column, "
    "blank for no match; the other columns are the input values) — and answers 202 with the "
    "evaluation, `queued`. A worker matches every row with the config as it is now and reports "
    "precision, recall and F1 at its threshold, the curve over thresholds, the best-F1 threshold, "
    "the lowest threshold with precision ≥ 0.99 and the worst misses with their evidence. Poll "
    "`links.self`. Any other Content-Type → 415 `unsupported_media_type`.",
    openapi_extra={"requestBody": EVALUATION_BODY},
)
async def create_evaluation(
    config_id: str, request: Request, principal: PrincipalDep, services: ServicesDep, response: Response
) -> dict[str, Any]:
    ident = parse_id(Kind.MATCHING_CONFIG, config_id)
    kind = body_kind(request, (JSON, CSV, MULTIPART))
    max_bytes: int = request.app.state.settings.max_body_bytes
    evaluations, organization_id = services.evaluations, principal.organization_id
    if kind == JSON:
        rows, source = _labelled_rows(await read_json_model(request, EvaluationCreate, max_bytes))
        evaluation = await run_in_threadpool(evaluations.submit, organization_id, ident, rows, source)
    elif kind == CSV:
        body = io.BytesIO(await read_bytes(request, max_bytes))
        evaluation = await run_in_threadpool(evaluations.submit_csv, organization_id, ident, body)
    else:
        form = await read_form(request, max_bytes, max_fields=10)
        try:
            check_form_fields(form, CSV_FIELDS)
            file = form_file(form, "file").file
            evaluation = await run_in_threadpool(evaluations.submit_csv, organization_id, ident, file)
        finally:
            await form.close()
    shown = presenters.evaluation(evaluation)
    response.headers["Location"] = shown["links"]["self"]
    return shown


def _labelled_rows(body: EvaluationCreate) -> tuple[list[LabelledRow] | None, EvaluationSource]:
    if body.rows is None:
        return None, EvaluationSource.REVIEWS
    rows = [LabelledRow(values=r.values, reference_row_id=r.reference_row_id) for r in body.rows]
    return rows, EvaluationSource.ROWS


@router.get(EVALUATIONS, summary="List a matching config's evaluations")
def list_evaluations(
    config_id: str, principal: PrincipalDep, services: ServicesDep, page: PageDep
) -> dict[str, Any]:
    ident = parse_id(Kind.MATCHING_CONFIG, config_id)
    found = services.evaluations.list(principal.organization_id, ident, page)
    return presenters.page(found, presenters.evaluation)


@router.get(EVALUATIONS + "/{evaluation_id}", summary="Get an evaluation: its progress, then its report")
def get_evaluation(
    config_id: str, evaluation_id: str, principal: PrincipalDep, services: ServicesDep
) -> dict[str, Any]:
    ident = parse_id(Kind.MATCHING_CONFIG, config_id)
    found = services.evaluations.get(
        principal.organization_id, ident, parse_id(Kind.EVALUATION, evaluation_id)
    )
    return presenters.evaluation(found)
