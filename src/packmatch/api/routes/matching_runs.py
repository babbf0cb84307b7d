"""/v1/matching/runs"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from packmatch.api import presenters
from packmatch.api.deps import PrincipalDep, ResultPageDep, ServicesDep
from packmatch.domain.ids import Kind, parse_id
from packmatch.domain.reviews import ReviewStatus

router = APIRouter(prefix=presenters.MATCHING_RUNS, tags=["matching runs"])


@router.get("/{matching_run_id}", summary="Get a matching run")
def get(matching_run_id: str, principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    ident = parse_id(Kind.MATCHING_RUN, matching_run_id)
    return presenters.matching_run(services.matching_runs.get(principal.organization_id, ident))


@router.get("/{matching_run_id}/results", summary="List a matching run's per-row results")
def results(
    matching_run_id: str,
    principal: PrincipalDep,
    services: ServicesDep,
    page: ResultPageDep,
    review_status: Annotated[
        ReviewStatus | None, Query(description="Only results with this review status.")
    ] = None,
) -> dict[str, Any]:
    ident = parse_id(Kind.MATCHING_RUN, matching_run_id)
    found = services.matching_runs.results(principal.organization_id, ident, page, review_status)
    return presenters.page(found, presenters.match_result)
