"""Asset downloads: ``GET /files/{asset_id}?exp=…&sig=…`` — the signed URL is the credential."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.responses import FileResponse

from imagegate.fronts.http.deps import services_of

router = APIRouter(tags=["Assets"])


@router.get("/files/{asset_id}", summary="Download a stored image through a signed link")
async def download(
    asset_id: str,
    request: Request,
    exp: str | None = Query(None, description="expiry, Unix seconds"),
    sig: str | None = Query(None, description="hex HMAC-SHA256 of 'asset_id|exp'"),
) -> FileResponse:
    assets = services_of(request).assets
    assets.verify(asset_id, exp, sig)
    asset, path = await assets.open(asset_id)
    return FileResponse(
        path,
        media_type=asset.content_type,
        headers={"cache-control": "private, max-age=3600", "etag": f'"{asset.sha256}"'},
    )
