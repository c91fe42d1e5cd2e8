"""Admin API for keys: ``POST/GET /admin/keys``, ``DELETE /admin/keys/{id}``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from imagegate.api._auth import require_admin
from imagegate.api._body import parse_json_body
from imagegate.api._deps import services_of
from imagegate.api._responses import json_response
from imagegate.core.keys import ApiKey, parse_globs
from imagegate.errors import NotFound

router = APIRouter(prefix="/admin", tags=["Admin"])


class CreateKeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(default="", max_length=200)
    models: list[str] | str | None = Field(
        default=None, description="model globs, as a list or comma-separated; omitted = all"
    )
    admin: bool = False

    def globs(self) -> tuple[str, ...] | None:
        if isinstance(self.models, list):
            return parse_globs(",".join(self.models))
        return parse_globs(self.models)


@router.post(
    "/keys",
    status_code=201,
    summary="Create a key (the secret is shown once)",
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"schema": CreateKeyBody.model_json_schema()}}
        }
    },
)
async def create_key(request: Request, _admin: ApiKey = Depends(require_admin)) -> Response:
    raw = await request.body()
    body = await parse_json_body(request, CreateKeyBody) if raw.strip() else CreateKeyBody()
    key, secret = await services_of(request).keys.create(
        name=body.name, models=body.globs(), admin=body.admin
    )
    return json_response({**key.public(), "key": secret}, status_code=201)


@router.get("/keys", summary="List keys (never their secrets)")
async def list_keys(request: Request, _admin: ApiKey = Depends(require_admin)) -> Response:
    keys = await services_of(request).keys.list()
    body = {"object": "list", "data": [key.public() for key in keys]}
    return json_response(body)


@router.delete("/keys/{key_id}", summary="Revoke a key")
async def revoke_key(
    key_id: str, request: Request, _admin: ApiKey = Depends(require_admin)
) -> Response:
    key = await services_of(request).keys.revoke(key_id)
    if key is None:
        raise NotFound(f"no key with id {key_id!r}", param="key_id", code="key_not_found")
    return json_response({**key.public(), "revoked": True})
