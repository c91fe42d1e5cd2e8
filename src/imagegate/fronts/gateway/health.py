"""Liveness and readiness probes, and the Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from starlette.responses import Response

from imagegate.core.rate_fallback import FallbackRateLimiter
from imagegate.errors import PermissionDenied, StorageUnavailable
from imagegate.fronts.http.auth import bearer_key
from imagegate.fronts.http.deps import services_of
from imagegate.fronts.http.responses import json_response
from imagegate.observability import exposition

log = logging.getLogger("imagegate")

router = APIRouter(tags=["Health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get("/readyz", summary="The database and the asset store are reachable")
async def readyz(request: Request) -> Response:
    services = services_of(request)
    checks: dict[str, str] = {}
    try:
        await services.check_database()
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        await services.assets.check()
        checks["storage"] = "ok"
    except StorageUnavailable as exc:
        checks["storage"] = f"error: {exc.message}"
    ready = all(value == "ok" for value in checks.values())
    # Reported, not counted: without Redis the replica still serves, limiting per process.
    degraded = isinstance(services.rate, FallbackRateLimiter) and services.rate.degraded
    checks["rate_limits"] = "degraded: Redis unreachable, limits per process" if degraded else "ok"
    return json_response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics (admin key, unless IMAGEGATE_METRICS_PUBLIC=true)",
    response_class=Response,
)
async def metrics(request: Request) -> Response:
    services = services_of(request)
    if not services.settings.metrics_public:
        key = await bearer_key(request)
        if not key.is_admin:
            raise PermissionDenied("/metrics needs an admin key", code="admin_required")
    body = await asyncio.to_thread(exposition.render, await services.fleet_figures())
    return Response(body, media_type=exposition.CONTENT_TYPE)
