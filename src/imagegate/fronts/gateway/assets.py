"""Asset downloads: ``GET /files/{asset_id}?exp=…&sig=…`` — the signed URL is the credential."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from imagegate.fronts.http.blobs import asset_response
from imagegate.fronts.http.deps import services_of

router = APIRouter(tags=["Assets"])


@router.get(
    "/files/{asset_id}",
    summary="Download a stored image through a signed link",
    response_class=Response,
)
async def download(
    asset_id: str,
    request: Request,
    exp: str | None = Query(None, description="expiry, Unix seconds"),
    sig: str | None = Query(None, description="hex HMAC-SHA256 of 'asset_id|exp'"),
) -> Response:
    assets = services_of(request).assets
    assets.verify(asset_id, exp, sig)
    return await asset_response(assets, asset_id, float(exp or 0))
