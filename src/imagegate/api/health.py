"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from fastapi import APIRouter, Request
from starlette.responses import Response

from imagegate.api._deps import services_of
from imagegate.api._responses import json_response
from imagegate.core.rate_fallback import FallbackRateLimiter

router = APIRouter(tags=["Health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get("/readyz", summary="The database and the asset store are reachable")
async def readyz(request: Request) -> Response:
    services = services_of(request)
    checks: dict[str, str] = {}
    try:
        async with services.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    writable = await asyncio.to_thread(services.assets.writable)
    checks["storage"] = "ok" if writable else "error: not writable"
    ready = all(value == "ok" for value in checks.values())
    # Reported, not counted: without Redis the replica still serves, limiting per process.
    degraded = isinstance(services.rate, FallbackRateLimiter) and services.rate.degraded
    checks["rate_limits"] = "degraded: Redis unreachable, limits per process" if degraded else "ok"
    return json_response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )
