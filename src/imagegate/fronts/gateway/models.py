"""Model catalogue routes: the public ``/api/models`` and OpenAI's ``/v1/models``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from imagegate.core.catalog import CatalogEntry
from imagegate.core.keys import ApiKey
from imagegate.fronts.http.auth import require_key
from imagegate.fronts.http.deps import services_of
from imagegate.fronts.http.responses import json_response

router = APIRouter(tags=["Models"])


@router.get("/api/models", summary="The public model catalogue")
async def list_catalog(
    request: Request,
    page: int = Query(0, ge=0, le=1_000_000, description="0 = everything, else 1-based"),
    page_size: int = Query(20, ge=1, le=100),
    model_type: str | None = None,
    provider: str | None = None,
    feature: str | None = None,
    q: str | None = Query(None, description="substring of the id or name"),
    all: bool = Query(False, description="also list models that have no configured provider"),
) -> Response:
    entries = [
        entry
        for entry in services_of(request).catalog
        if (all or entry.available) and _matches(entry, model_type, provider, feature, q)
    ]
    total = len(entries)
    if page:
        entries = entries[(page - 1) * page_size : page * page_size]
    return json_response(
        {
            "success": True,
            "page": page,
            "page_size": page_size if page else 0,
            "total": total,
            "data": [entry.record() for entry in entries],
        }
    )


def _matches(
    entry: CatalogEntry,
    model_type: str | None,
    provider: str | None,
    feature: str | None,
    q: str | None,
) -> bool:
    spec = entry.spec
    providers = {spec.provider.lower(), spec.provider_code.lower()}
    return (
        (model_type is None or spec.model_type == model_type)
        and (provider is None or provider.lower() in providers)
        and (feature is None or feature in spec.features)
        and (q is None or q.lower() in spec.id.lower() or q.lower() in spec.name.lower())
    )


def _openai_model(entry: CatalogEntry) -> dict[str, Any]:
    return {
        "id": entry.spec.id,
        "object": "model",
        "created": entry.spec.created,
        "owned_by": entry.spec.provider_code,
    }


@router.get("/v1/models", summary="Models this key can use (OpenAI list shape)")
async def list_models(request: Request, key: ApiKey = Depends(require_key)) -> Response:
    data = [
        _openai_model(entry)
        for entry in services_of(request).catalog
        if entry.available and key.may_use_model(entry.spec.id, tuple(entry.spec.aliases))
    ]
    return json_response({"object": "list", "data": data})


@router.get("/v1/models/{model_id:path}", summary="One model (OpenAI shape)")
async def get_model(
    model_id: str, request: Request, key: ApiKey = Depends(require_key)
) -> Response:
    entry = services_of(request).images.resolve_model(key, model_id)
    return json_response(_openai_model(entry))
