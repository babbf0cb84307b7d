"""Review decisions (SPEC §3 Reviews): results (one, or many at once) and package runs, histories."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header
from starlette.concurrency import run_in_threadpool

from packmatch.api import presenters
from packmatch.api.deps import PageDep, PrincipalDep, ServicesDep
from packmatch.api.rendering import JSONResponse
from packmatch.api.schemas import BulkResultReviewCreate, ResultReviewCreate, RunReviewCreate
from packmatch.domain.ids import Kind, parse_id
from packmatch.domain.public import etag
from packmatch.domain.reviews import Reviewer, ReviewStatus
from packmatch.errors import ValidationFailed
from packmatch.services.accounts import Principal
from packmatch.services.reviews.results import Decision

router = APIRouter(tags=["reviews"])

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The ETag the decision is based on (bulk: the ETags of every result decided); "
        "a stale one → 412, nothing written.",
    ),
]
RESULT = presenters.MATCHING_RUNS + "/{matching_run_id}/results/{result_id}"
RUN = presenters.PACKAGE_RUNS + "/{run_id}"


def reviewer(principal: Principal) -> Reviewer:
    return Reviewer(key_id=principal.key_id, name=principal.name)


def with_etag(shown: dict[str, Any]) -> JSONResponse:
    return JSONResponse(shown, headers={"ETag": etag(shown)})


@router.get(RESULT, summary="Get one match result")
def get_result(
    matching_run_id: str, result_id: str, principal: PrincipalDep, services: ServicesDep
) -> JSONResponse:
    mr, mres = parse_id(Kind.MATCHING_RUN, matching_run_id), parse_id(Kind.MATCH_RESULT, result_id)
    return with_etag(
        presenters.match_result(services.result_reviews.get(principal.organization_id, mr, mres))
    )


@router.post(RESULT + "/review", summary="Approve or reject one match result")
def review_result(
    matching_run_id: str,
    result_id: str,
    body: ResultReviewCreate,
    principal: PrincipalDep,
    services: ServicesDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    mr, mres = parse_id(Kind.MATCHING_RUN, matching_run_id), parse_id(Kind.MATCH_RESULT, result_id)
    decision = Decision(mres, ReviewStatus(body.status), body.notes, body.reference_row_id)
    reviewed = services.result_reviews.review(
        principal.organization_id, mr, decision, reviewer(principal), if_match
    )
    return with_etag(presenters.match_result(reviewed))


def _decisions(body: BulkResultReviewCreate) -> list[Decision]:
    decisions, problems = [], []
    for i, item in enumerate(body.decisions):
        try:
            result_id = parse_id(Kind.MATCH_RESULT, item.result_id, field=f"decisions[{i}].result_id")
        except ValidationFailed as bad:
            problems.extend(bad.details)
            continue
        decisions.append(Decision(result_id, ReviewStatus(item.status), item.notes, item.reference_row_id))
    if problems:
        raise ValidationFailed("Some decisions are invalid; nothing was recorded.", details=list(problems))
    return decisions


@router.post(
    presenters.MATCHING_RUNS + "/{matching_run_id}/results/review",
    summary="Approve or reject up to 500 results of a matching run at once (all or nothing)",
)
def review_results(
    matching_run_id: str,
    body: BulkResultReviewCreate,
    principal: PrincipalDep,
    services: ServicesDep,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    mr = parse_id(Kind.MATCHING_RUN, matching_run_id)
    reviewed = services.result_reviews.review_many(
        principal.organization_id, mr, _decisions(body), reviewer(principal), if_match
    )
    return {"data": [presenters.match_result(r) for r in reviewed]}


@router.get(RESULT + "/reviews", summary="A match result's review history, newest first")
def result_history(
    matching_run_id: str, result_id: str, principal: PrincipalDep, services: ServicesDep, page: PageDep
) -> dict[str, Any]:
    mr, mres = parse_id(Kind.MATCHING_RUN, matching_run_id), parse_id(Kind.MATCH_RESULT, result_id)
    found = services.result_reviews.history(principal.organization_id, mr, mres, page)
    return presenters.page(found, presenters.result_review_record)


@router.post(RUN + "/review", summary="Approve or reject a final package run (its status stays)")
async def review_run(
    run_id: str,
    body: RunReviewCreate,
    principal: PrincipalDep,
    services: ServicesDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    ident = parse_id(Kind.PACKAGE_RUN, run_id)
    reviewed = await run_in_threadpool(
        services.run_reviews.review,
        principal.organization_id,
        ident,
        ReviewStatus(body.decision),
        body.notes,
        reviewer(principal),
        if_match,
    )
    return with_etag(presenters.package_run(reviewed))


@router.get(RUN + "/reviews", summary="A package run's review history, newest first")
def run_history(run_id: str, principal: PrincipalDep, services: ServicesDep, page: PageDep) -> dict[str, Any]:
    found = services.run_reviews.history(principal.organization_id, parse_id(Kind.PACKAGE_RUN, run_id), page)
    return presenters.page(found, presenters.run_review_record)
