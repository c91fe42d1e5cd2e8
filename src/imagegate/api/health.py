"""Liveness and readiness probes."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request
from starlette.responses import Response

from imagegate.api._deps import services_of
from imagegate.api._responses import json_response
from imagegate.errors import StorageUnavailable

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
    try:
        await services.assets.check()
        checks["storage"] = "ok"
    except StorageUnavailable as exc:
        checks["storage"] = f"error: {exc.message}"
    ready = all(value == "ok" for value in checks.values())
    return json_response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )
