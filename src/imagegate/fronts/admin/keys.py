"""Admin API for keys and their limits: create, list, show, update, top up, revoke."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from imagegate.core.keys import ApiKey, parse_globs
from imagegate.errors import InvalidRequest, NotFound
from imagegate.fronts.http.auth import require_admin
from imagegate.fronts.http.body import parse_json_body
from imagegate.fronts.http.deps import services_of
from imagegate.fronts.http.responses import json_response

router = APIRouter(prefix="/admin", tags=["Admin"])


MAX_USD = 1_000_000_000.0
"""Money columns hold 10 integer digits; a balance topped up past this would not fit."""
MAX_COUNT = 1_000_000_000
"""Counts are 32-bit integer columns."""
MAX_MEGAPIXELS = 1e12
MAX_UNIX_SECONDS = 32_503_680_000.0
"""The year 3000: later dates do not survive the conversions that show a key."""


class LimitFields(BaseModel):
    """Limits a key carries; omitted = unchanged (on create: unlimited)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    budget_daily_usd: float | None = Field(default=None, ge=0, le=MAX_USD, allow_inf_nan=False)
    budget_monthly_usd: float | None = Field(default=None, ge=0, le=MAX_USD, allow_inf_nan=False)
    routes: list[str] | None = Field(default=None, description="path globs, e.g. '/v1/images/*'")
    rpm: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    images_per_minute: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    megapixels_per_day: float | None = Field(
        default=None, gt=0, le=MAX_MEGAPIXELS, allow_inf_nan=False
    )
    max_concurrent: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    expires_at: float | None = Field(
        default=None, ge=0, le=MAX_UNIX_SECONDS, allow_inf_nan=False, description="Unix seconds"
    )

    def changes(self) -> dict[str, Any]:
        values = self.model_dump(exclude_unset=True)
        for name in ("budget_daily_usd", "budget_monthly_usd"):
            if values.get(name) is not None:
                values[name] = Decimal(str(values[name]))
        return values


class CreateKeyBody(LimitFields):
    name: str = Field(default="", max_length=200)
    models: list[str] | str | None = Field(
        default=None, description="model globs, as a list or comma-separated; omitted = all"
    )
    admin: bool = False
    credit_usd: float | None = Field(
        default=None,
        ge=0,
        le=MAX_USD,
        allow_inf_nan=False,
        description="starting balance; omitted = unlimited credit",
    )

    def globs(self) -> tuple[str, ...] | None:
        if isinstance(self.models, list):
            return parse_globs(",".join(self.models))
        return parse_globs(self.models)

    def limits(self) -> dict[str, Any]:
        values = LimitFields.model_validate(
            self.model_dump(exclude_unset=True, include=set(LimitFields.model_fields))
        ).changes()
        if self.credit_usd is not None:
            values["balance_usd"] = Decimal(str(self.credit_usd))
        return values


class TopUpBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    amount_usd: float = Field(gt=0, le=MAX_USD, allow_inf_nan=False)
    note: str | None = Field(default=None, max_length=200)


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"content": {"application/json": {"schema": model.model_json_schema()}}}}


async def _shown(request: Request, key: ApiKey) -> dict[str, Any]:
    limits = await services_of(request).billing.limits(key.id)
    return {**key.public(), **limits.public()}


@router.post(
    "/keys",
    status_code=201,
    summary="Create a key (the secret is shown once)",
    openapi_extra=_schema(CreateKeyBody),
)
async def create_key(request: Request, _admin: ApiKey = Depends(require_admin)) -> Response:
    raw = await request.body()
    body = await parse_json_body(request, CreateKeyBody) if raw.strip() else CreateKeyBody()
    key, secret = await services_of(request).keys.create(
        name=body.name, models=body.globs(), admin=body.admin, limits=body.limits()
    )
    return json_response({**await _shown(request, key), "key": secret}, status_code=201)


@router.get("/keys", summary="List keys (never their secrets)")
async def list_keys(request: Request, _admin: ApiKey = Depends(require_admin)) -> Response:
    keys = await services_of(request).keys.list()
    body = {"object": "list", "data": [await _shown(request, key) for key in keys]}
    return json_response(body)


@router.get("/keys/{key_id}", summary="A key with its limits, balance and spending")
async def show_key(
    key_id: str, request: Request, _admin: ApiKey = Depends(require_admin)
) -> Response:
    return json_response(await _shown(request, await _key(request, key_id)))


@router.patch("/keys/{key_id}", summary="Change a key's limits", openapi_extra=_schema(LimitFields))
async def update_key(
    key_id: str, request: Request, _admin: ApiKey = Depends(require_admin)
) -> Response:
    key = await _key(request, key_id)
    body = await parse_json_body(request, LimitFields)
    services = services_of(request)
    await services.billing.update_limits(key.id, body.changes())
    services.access.forget(key.id)
    return json_response(await _shown(request, key))


@router.post(
    "/keys/{key_id}/topup", summary="Add credit to a key", openapi_extra=_schema(TopUpBody)
)
async def top_up(
    key_id: str, request: Request, _admin: ApiKey = Depends(require_admin)
) -> Response:
    key = await _key(request, key_id)
    body = await parse_json_body(request, TopUpBody)
    services = services_of(request)
    balance = (await services.billing.limits(key.id)).balance_usd
    if balance is not None and balance + Decimal(str(body.amount_usd)) > Decimal(MAX_USD):
        raise InvalidRequest(
            f"the balance would pass {MAX_USD:.0f} USD, the most a key can hold",
            param="amount_usd",
        )
    await services.billing.top_up(key.id, Decimal(str(body.amount_usd)), body.note)
    services.access.forget(key.id)
    return json_response(await _shown(request, key))


@router.delete("/keys/{key_id}", summary="Revoke a key")
async def revoke_key(
    key_id: str, request: Request, _admin: ApiKey = Depends(require_admin)
) -> Response:
    key = await services_of(request).keys.revoke(key_id)
    if key is None:
        raise NotFound(f"no key with id {key_id!r}", param="key_id", code="key_not_found")
    return json_response({**key.public(), "revoked": True})


async def _key(request: Request, key_id: str) -> ApiKey:
    key = await services_of(request).keys.get(key_id)
    if key is None:
        raise NotFound(f"no key with id {key_id!r}", param="key_id", code="key_not_found")
    return key
