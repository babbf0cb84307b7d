"""/v1/matching/reference-data"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from packmatch.api import presenters
from packmatch.api.deps import PageDep, PrincipalDep, RowPageDep, ServicesDep
from packmatch.api.schemas import ReferenceDataCreate
from packmatch.domain.ids import Kind, parse_id

router = APIRouter(prefix=presenters.REFERENCE_DATA, tags=["reference data"])


@router.post("", status_code=201, summary="Create reference data from JSON rows")
def create(
    body: ReferenceDataCreate, principal: PrincipalDep, services: ServicesDep, response: Response
) -> dict[str, Any]:
    dataset = services.reference_data.create(principal.organization_id, body.name, body.rows)
    shown = presenters.reference_data(dataset)
    response.headers["Location"] = shown["links"]["self"]
    return shown


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
