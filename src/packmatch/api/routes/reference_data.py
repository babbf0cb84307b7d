"""/v1/matching/reference-data"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from packmatch.api import presenters
from packmatch.api.deps import PageDep, PrincipalDep, RowPageDep, ServicesDep
from packmatch.api.schemas import CsvUploadName, ReferenceDataCreate, validate_body
from packmatch.api.uploads import (
    JSON,
    MULTIPART,
    body_kind,
    check_form_fields,
    form_file,
    form_text,
    read_form,
    read_json_model,
)
from packmatch.domain.ids import Kind, parse_id
from packmatch.domain.models import ReferenceDataset
from packmatch.services.accounts import Principal
from packmatch.services.container import Services
from packmatch.services.reference.datasets import MAX_NAME, default_name

router = APIRouter(prefix=presenters.REFERENCE_DATA, tags=["reference data"])

# A CSV upload is exempt from the 10 MiB body limit (SPEC §2) but not unbounded: it is spooled to a
# temporary file before it is read, so this caps the disk one request can take.
MAX_CSV_BYTES = 2 * 1024**3
CSV_FIELDS = frozenset({"file", "name"})

CREATE_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": ReferenceDataCreate.model_json_schema()},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "A UTF-8 CSV file with a header row; an `id` column gives row ids.",
                    },
                    "name": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MAX_NAME,
                        "description": "Defaults to the file name without its extension.",
                    },
                },
                "additionalProperties": False,
            }
        },
    },
}


@router.post(
    "",
    status_code=201,
    summary="Create reference data from JSON rows or a CSV file",
    description="`application/json` with `name` and `rows`, or `multipart/form-data` with a CSV `file` "
    "(and an optional `name`). A CSV upload may exceed the 10 MiB body limit: it is streamed, up to "
    "5,000,000 rows. Any other Content-Type → 415 `unsupported_media_type`.",
    openapi_extra={"requestBody": CREATE_BODY},
)
async def create(
    request: Request, principal: PrincipalDep, services: ServicesDep, response: Response
) -> dict[str, Any]:
    if body_kind(request, (JSON, MULTIPART)) == JSON:
        dataset = await _from_json(request, principal, services)
    else:
        dataset = await _from_csv(request, principal, services)
    shown = presenters.reference_data(dataset)
    response.headers["Location"] = shown["links"]["self"]
    return shown


async def _from_json(request: Request, principal: Principal, services: Services) -> ReferenceDataset:
    max_bytes: int = request.app.state.settings.max_body_bytes
    body = await read_json_model(request, ReferenceDataCreate, max_bytes)
    create = services.reference_data.create
    return await run_in_threadpool(create, principal.organization_id, body.name, body.rows)


async def _from_csv(request: Request, principal: Principal, services: Services) -> ReferenceDataset:
    form = await read_form(request, MAX_CSV_BYTES, max_fields=10)
    try:
        check_form_fields(form, CSV_FIELDS)
        upload = form_file(form, "file")
        name = dataset_name(form_text(form, "name"), upload.filename)
        create = services.reference_data.create_from_csv
        return await run_in_threadpool(create, principal.organization_id, name, upload.file)
    finally:
        await form.close()


def dataset_name(given: str | None, filename: str | None) -> str:
    """The `name` field, else the file's name without directories or its last extension."""
    return validate_body(CsvUploadName, {"name": default_name(filename) if given is None else given}).name


@router.get("", summary="List reference data")
def list_(principal: PrincipalDep, services: ServicesDep, page: PageDep) -> dict[str, Any]:
    result = services.reference_data.list(principal.organization_id, page)
    return presenters.page(result, presenters.reference_data)


@router.get("/{dataset_id}", summary="Get reference data")
def get(dataset_id: str, principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    found = services.reference_data.get(principal.organization_id, parse_id(Kind.REFERENCE_DATA, dataset_id))
    return presenters.reference_data(found)


@router.get("/{dataset_id}/rows", summary="List the rows of reference data (input order)")
def rows(dataset_id: str, principal: PrincipalDep, services: ServicesDep, page: RowPageDep) -> dict[str, Any]:
    ident = parse_id(Kind.REFERENCE_DATA, dataset_id)
    result = services.reference_data.rows(principal.organization_id, ident, page)
    return presenters.page(result, presenters.reference_row)


@router.delete("/{dataset_id}", summary="Delete reference data")
def delete(dataset_id: str, principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    services.reference_data.delete(principal.organization_id, parse_id(Kind.REFERENCE_DATA, dataset_id))
    return {"deleted": True}
