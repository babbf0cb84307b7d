"""Operations endpoints: liveness, readiness, metrics. None needs a key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from packmatch.api.deps import ServicesDep
from packmatch.api.errors import error_response
from packmatch.api.rendering import JSONResponse

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, Any]:
    return {"status": "ok"}


def _check(name: str, probe: Any) -> tuple[str, str]:
    try:
        probe()
    except Exception as exc:
        return name, f"unavailable ({type(exc).__name__})"
    return name, "ok"


@router.get("/readyz", summary="The database and the broker are reachable")
async def readyz(request: Request, services: ServicesDep) -> Response:
    checks = dict(
        [
            await run_in_threadpool(_check, "database", services.db.ping),
            await run_in_threadpool(_check, "broker", services.publisher.ping),
        ]
    )
    if all(v == "ok" for v in checks.values()):
        return JSONResponse({"status": "ok", "checks": checks})
    failing = ", ".join(k for k, v in checks.items() if v != "ok")
    return error_response(request, "unavailable", f"Not ready: {failing} unreachable.")


@router.get("/metrics", summary="Prometheus metrics")
def metrics(request: Request) -> Response:
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
