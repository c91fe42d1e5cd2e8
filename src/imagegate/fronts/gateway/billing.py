"""Money routes: ``POST /api/estimate`` (a quote, charged nothing) and ``GET /api/usage``."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from imagegate.core.keys import ApiKey
from imagegate.core.params import GenerationParams
from imagegate.core.requests import Operation
from imagegate.core.usage_report import UsageFilter, to_csv
from imagegate.errors import InvalidRequest, PermissionDenied
from imagegate.fronts.http.auth import require_key
from imagegate.fronts.http.body import parse_json_body
from imagegate.fronts.http.deps import services_of
from imagegate.fronts.http.responses import json_response

router = APIRouter(prefix="/api", tags=["Billing"])

ENDPOINT_OPERATIONS: dict[str, Operation] = {
    "openai-image": "generate",
    "openai-image-edit": "edit",
    "openai-image-variation": "variation",
}


class EstimateBody(BaseModel):
    """Any generation or edit body, plus which endpoint it is for."""

    model_config = ConfigDict(extra="allow", strict=True)

    endpoint: str = "openai-image"
    model: str | None = None
    prompt: str = ""
    n: int = Field(default=1, ge=1, le=10)
    size: str | None = None
    quality: str | None = None
    output_format: Literal["png", "jpeg", "webp", "svg"] | None = None
    background: Literal["transparent", "opaque", "auto"] | None = None
    images: list[Any] | None = None
    image: list[Any] | Any | None = None
    action: str | None = Field(default=None, description="task APIs priced per action")
    tier: str | None = Field(default=None, description="speed tier (fast, turbo, relax)")

    def operation(self) -> Operation:
        found = ENDPOINT_OPERATIONS.get(self.endpoint)
        if found is None:
            names = ", ".join(ENDPOINT_OPERATIONS)
            raise InvalidRequest(f"endpoint must be one of {names}", param="endpoint")
        return found

    def input_count(self) -> int:
        if self.images is not None:
            return len(self.images)
        if isinstance(self.image, list):
            return len(self.image)
        return 1 if self.image is not None else 0


@router.post(
    "/estimate",
    summary="Quote a request before making it (charges nothing)",
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"schema": EstimateBody.model_json_schema()}}
        }
    },
)
async def estimate(request: Request, key: ApiKey = Depends(require_key)) -> Response:
    body = await parse_json_body(request, EstimateBody)
    operation = body.operation()
    params = GenerationParams(
        prompt=body.prompt or ("x" if operation != "variation" else ""),
        operation=operation,
        model=body.model,
        n=body.n,
        size=body.size,
        quality=body.quality,
        output_format=body.output_format,
        background=body.background,
    )
    entry, price = services_of(request).images.estimate(
        key, params, input_images=body.input_count(), action=body.action, tier=body.tier
    )
    return json_response(
        {
            "model": entry.spec.id,
            "currency": "USD",
            "estimated_cost": float(price.amount),
            "breakdown": price.breakdown,
        }
    )


MAX_UNIX_SECONDS = 32_503_680_000.0
"""The year 3000."""


def _when(value: str | None, param: str) -> float | None:
    """Unix seconds or an ISO 8601 date/time (UTC when no zone is given)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if not 0 <= seconds <= MAX_UNIX_SECONDS:  # also NaN and infinities
            raise InvalidRequest(
                f"{param} must be Unix seconds between 0 and {MAX_UNIX_SECONDS:.0f}", param=param
            )
        return seconds
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(
            f"{param} must be Unix seconds or an ISO 8601 date", param=param
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


@router.get("/usage", summary="Usage rows and totals (own key; admin keys see every key)")
async def usage(
    request: Request,
    start: str | None = Query(None, description="Unix seconds or ISO 8601"),
    end: str | None = Query(None, description="Unix seconds or ISO 8601 (exclusive)"),
    model: str | None = None,
    key_id: str | None = None,
    route: str | None = None,
    format: Literal["json", "csv"] = "json",
    limit: int = Query(1000, ge=1, le=100_000),
    key: ApiKey = Depends(require_key),
) -> Response:
    if not key.is_admin:
        if key_id not in (None, key.id):
            raise PermissionDenied("only admin keys may read other keys' usage", param="key_id")
        key_id = key.id
    where = UsageFilter(_when(start, "start"), _when(end, "end"), model, key_id, route)
    services = services_of(request)
    await services.usage.flush()  # this process's latest rows first
    report = services.usage_report
    rows = await report.rows(where, limit)
    if format == "csv":
        headers = {"content-disposition": 'attachment; filename="usage.csv"'}
        return Response(to_csv(rows), media_type="text/csv", headers=headers)
    body: dict[str, Any] = {"object": "list", "data": rows, **await report.totals(where)}
    return json_response(body)
