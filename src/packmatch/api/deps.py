"""FastAPI dependencies: services, the authenticated principal, pagination parameters.

The ones that do no I/O are `async def`: FastAPI runs a plain `def` dependency in the thread pool,
and those hand-offs were the largest single cost of a cheap request (py-spy, benchmarks/README.md)."""

from __future__ import annotations

from typing import Annotated, Literal

import structlog
from fastapi import Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from packmatch.services.accounts import Principal
from packmatch.services.container import Services
from packmatch.store.pagination import PageRequest

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def is_review_post(request: Request) -> bool:
    """The review POSTs (SPEC §3 Reviews) take the `review` scope as well as `write`."""
    return request.method == "POST" and request.url.path.endswith(("/review", "/results/review"))


async def get_principal(request: Request, services: ServicesDep) -> Principal:
    """A key authenticated within the last few seconds is answered from memory (no thread
    hand-off, no query: `Accounts.principals`); any other goes to the database in the pool."""
    key = _bearer(request)
    principal = services.accounts.cached(key)
    if principal is None:
        principal = await run_in_threadpool(services.accounts.authenticate, key)
    request.state.organization_id = str(principal.organization_id)
    structlog.contextvars.bind_contextvars(organization_id=str(principal.organization_id))
    if request.method in READ_METHODS:
        principal.require("read", "review")  # a reviewer reads everything
    elif is_review_post(request):
        principal.require("review", "write")
    else:
        principal.require("write")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


Limit = Annotated[int, Query(ge=1, le=100, description="Items per page (1–100).")]
Cursor = Annotated[str | None, Query(max_length=500, description="`next_cursor` of the previous page.")]
InputOrder = Annotated[Literal["asc", "desc"], Query(description="`asc` = input order.")]


async def page_request(
    limit: Limit = 20,
    cursor: Cursor = None,
    order: Annotated[Literal["asc", "desc"], Query(description="`desc` = newest first.")] = "desc",
) -> PageRequest:
    return PageRequest(limit=limit, cursor=cursor, order=order)


async def row_page_request(
    limit: Limit = 20, cursor: Cursor = None, order: InputOrder = "asc"
) -> PageRequest:
    """Rows and results are listed in input order by default; `order=desc` reverses it."""
    return PageRequest(limit=limit, cursor=cursor, order=order)


async def result_page_request(
    limit: Annotated[int, Query(ge=1, le=1000, description="Items per page (1–1,000).")] = 20,
    cursor: Cursor = None,
    order: InputOrder = "asc",
) -> PageRequest:
    """A matching run's results: in input order by default, up to 1,000 a page (SPEC §2)."""
    return PageRequest(limit=limit, cursor=cursor, order=order)


PageDep = Annotated[PageRequest, Depends(page_request)]
ResultPageDep = Annotated[PageRequest, Depends(result_page_request)]
RowPageDep = Annotated[PageRequest, Depends(row_page_request)]
