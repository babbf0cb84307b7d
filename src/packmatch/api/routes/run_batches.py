"""POST /v1/matching/packages/runs/batch"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from packmatch.api import presenters
from packmatch.api.deps import PrincipalDep, ServicesDep
from packmatch.api.errors import error_fields, problem
from packmatch.api.rendering import JSONResponse
from packmatch.api.schemas import PackageRunBatchCreate, PackageRunCreate
from packmatch.errors import PackmatchError, ValidationFailed
from packmatch.services.run_batches import BatchEntry, BatchItem, ItemFailed, item_error

router = APIRouter(prefix=presenters.PACKAGE_RUNS, tags=["package runs"])


def _item(index: int, body: dict[str, Any]) -> BatchItem | ItemFailed:
    """One run of the batch checked as a single POST's body is; its problems named `runs[i]…`."""
    try:
        config_id, documents = PackageRunCreate.model_validate(body).to_domain()
    except ValidationError as exc:
        problems = [problem({**dict(e), "loc": ("runs", index, *e["loc"])}) for e in exc.errors()]
        message = "; ".join(f"{p.field}: {p.message}" for p in problems[:3])
        return ItemFailed(index, ValidationFailed(message, details=problems))
    except PackmatchError as error:
        return item_error(index, error)
    return BatchItem(config_id, documents)


def _shown(entry: BatchEntry) -> dict[str, Any]:
    if isinstance(entry, ItemFailed):
        return {
            "index": entry.index,
            "error": error_fields(entry.error.code, entry.error.message, entry.error.details),
        }
    return presenters.package_run(entry)


@router.post("/batch", status_code=202, summary="Submit up to 1,000 package runs at once")
async def create_batch(
    body: PackageRunBatchCreate,
    principal: PrincipalDep,
    services: ServicesDep,
    atomic: Annotated[
        bool, Query(description="`true`: any bad item fails the whole batch (400) and nothing is accepted.")
    ] = False,
) -> JSONResponse:
    items = [_item(i, run) for i, run in enumerate(body.runs)]
    accept = services.run_batches.accept
    entries = await run_in_threadpool(accept, principal.organization_id, items, atomic=atomic)
    return JSONResponse({"data": [_shown(entry) for entry in entries]}, status_code=202)
