"""/v1/matching/packages/runs"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from packmatch.api import presenters
from packmatch.api.deps import PageDep, PrincipalDep, ServicesDep
from packmatch.api.rendering import JSONResponse
from packmatch.api.schemas import Decided, PackageRunCreate, WaitSeconds
from packmatch.domain.ids import Kind, parse_id
from packmatch.domain.models import PackageRun, RunStatus
from packmatch.domain.public import etag
from packmatch.domain.reviews import ReviewStatus
from packmatch.services.container import Services
from packmatch.services.runs import RunFilters

router = APIRouter(prefix=presenters.PACKAGE_RUNS, tags=["package runs"])

StatusFilter = Annotated[RunStatus | None, Query(description="Only runs with this status.")]


async def _wait_until_final(services: Services, run: PackageRun, seconds: float) -> PackageRun:
    """Poll the run (20 ms, backing off to 250 ms) until it is final or `seconds` have passed."""
    deadline = time.monotonic() + seconds
    poll = 0.02
    while run.status is RunStatus.RUNNING and time.monotonic() < deadline:
        await asyncio.sleep(min(poll, max(0.0, deadline - time.monotonic())))
        run = await run_in_threadpool(services.runs.get, run.organization_id, run.id)
        poll = min(poll * 1.5, 0.25)
    return run


@router.post(
    "",
    status_code=202,
    summary="Submit a package run",
    responses={200: {"description": "The run reached its final status within `wait` seconds."}},
)
async def create(
    body: PackageRunCreate,
    principal: PrincipalDep,
    services: ServicesDep,
    wait: Annotated[
        WaitSeconds, Query(ge=0, le=30, description="Seconds (0–30) to hold the response until final.")
    ] = 0,
) -> JSONResponse:
    config_id, documents = body.to_domain()
    run = await run_in_threadpool(services.runs.accept, principal.organization_id, config_id, documents)
    if wait > 0:
        run = await _wait_until_final(services, run, wait)
    shown = presenters.package_run(run)
    status = 202 if run.status is RunStatus.RUNNING else 200
    return JSONResponse(shown, status_code=status, headers={"Location": shown["links"]["self"]})


@router.get("", summary="List package runs")
def list_(
    principal: PrincipalDep,
    services: ServicesDep,
    page: PageDep,
    package_config_id: Annotated[str | None, Query(description="Only runs of this package config.")] = None,
    status: StatusFilter = None,
    reviewed: Annotated[
        bool | None, Query(description="Only runs a person has (true) or has not (false) reviewed.")
    ] = None,
    review_decision: Annotated[
        Decided | None, Query(description="Only runs with this review decision.")
    ] = None,
) -> dict[str, Any]:
    filters = RunFilters(
        reviewed=reviewed,
        review_decision=None if review_decision is None else ReviewStatus(review_decision),
        package_config_id=None
        if package_config_id is None
        else parse_id(Kind.PACKAGE_CONFIG, package_config_id, field="package_config_id"),
        status=status,
    )
    result = services.runs.list(principal.organization_id, page, filters)
    return presenters.page(result, presenters.package_run)


@router.get("/{run_id}", summary="Get a package run")
def get(run_id: str, principal: PrincipalDep, services: ServicesDep) -> JSONResponse:
    """Served with an `ETag`: a review POST may name it in `If-Match` (SPEC §3 Reviews)."""
    run = services.runs.get(principal.organization_id, parse_id(Kind.PACKAGE_RUN, run_id))
    shown = presenters.package_run(run)
    return JSONResponse(shown, headers={"ETag": etag(shown)})
