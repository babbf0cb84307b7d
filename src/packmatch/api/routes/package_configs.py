"""/v1/matching/packages/configs"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from packmatch.api import presenters
from packmatch.api.deps import PageDep, PrincipalDep, ServicesDep
from packmatch.api.schemas import PackageConfigCreate, PackageConfigReplace
from packmatch.domain.ids import Kind, parse_id
from packmatch.domain.models import Slot
from packmatch.errors import ProblemList
from packmatch.services.configs import PackageConfigInput

router = APIRouter(prefix=presenters.PACKAGE_CONFIGS, tags=["package configs"])


def to_input(body: PackageConfigCreate | PackageConfigReplace) -> PackageConfigInput:
    problems = ProblemList()
    seen: set[str] = set()
    for i, slot in enumerate(body.document_type_configs):
        if slot.document_type in seen:
            problems.add(
                f"document_type_configs[{i}].document_type",
                f"Duplicate document_type '{slot.document_type}'.",
            )
        seen.add(slot.document_type)
    problems.raise_if_any("The package config is invalid.")
    slots = [
        Slot(
            document_type=s.document_type,
            matching_config_id=parse_id(
                Kind.MATCHING_CONFIG,
                s.matching_config_id,
                field=f"document_type_configs[{i}].matching_config_id",
            ),
            presence=s.presence,
        )
        for i, s in enumerate(body.document_type_configs)
    ]
    return PackageConfigInput(name=body.name, slots=slots, pass_criteria=body.pass_criteria.to_domain())


@router.post("", status_code=201, summary="Create a package config")
def create(
    body: PackageConfigCreate, principal: PrincipalDep, services: ServicesDep, response: Response
) -> dict[str, Any]:
    config = services.configs.create_package(principal.organization_id, to_input(body))
    shown = presenters.package_config(config)
    response.headers["Location"] = shown["links"]["self"]
    return shown


@router.get("", summary="List package configs")
def list_(principal: PrincipalDep, services: ServicesDep, page: PageDep) -> dict[str, Any]:
    result = services.configs.list_packages(principal.organization_id, page)
    return presenters.page(result, presenters.package_config)


@router.get("/{config_id}", summary="Get a package config")
def get(config_id: str, principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    ident = parse_id(Kind.PACKAGE_CONFIG, config_id)
    return presenters.package_config(services.configs.get_package(principal.organization_id, ident))


@router.put(
    "/{config_id}",
    summary="Replace a package config",
    description="Replaces `name`, `document_type_configs` and `pass_criteria` (omitted fields take their "
    "defaults) and bumps `version`. Runs already accepted keep the config as it was.",
)
def replace(
    config_id: str, body: PackageConfigReplace, principal: PrincipalDep, services: ServicesDep
) -> dict[str, Any]:
    ident = parse_id(Kind.PACKAGE_CONFIG, config_id)
    config = services.configs.replace_package(principal.organization_id, ident, to_input(body))
    return presenters.package_config(config)


@router.delete(
    "/{config_id}",
    summary="Delete a package config and its runs",
    description="Deletes the config and all of its runs, with their matching runs and results. "
    "A run still in flight is dropped; no verdict or webhook follows for it.",
)
def delete(config_id: str, principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    services.configs.delete_package(principal.organization_id, parse_id(Kind.PACKAGE_CONFIG, config_id))
    return {"deleted": True}
