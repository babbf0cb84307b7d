"""/v1/matching/configs"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from packmatch.api import presenters
from packmatch.api.deps import PageDep, PrincipalDep, ServicesDep
from packmatch.api.schemas import MatchingConfigCreate
from packmatch.domain.ids import Kind, parse_id
from packmatch.services.configs import MatchingConfigInput

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
