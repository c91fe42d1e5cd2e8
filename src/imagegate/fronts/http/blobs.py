"""Stored bytes as HTTP answers: streamed from the blob store, or a redirect to its presigned
URL; shared by every route that hands out an asset (``/files``, ``/v1/files``, ``/mj/image``)."""

from __future__ import annotations

from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from imagegate.core.assets import AssetService
from imagegate.core.blobs import BlobBody


def blob_response(
    body: BlobBody, media_type: str, headers: dict[str, str] | None = None
) -> Response:
    """The blob's bytes, streamed: ``sendfile`` from a local file, chunks from a bucket (never
    the whole image in memory)."""
    if body.path is not None:
        return FileResponse(body.path, media_type=media_type, headers=headers)
    headers = {**(headers or {}), "content-length": str(body.size)}
    return StreamingResponse(body.chunks(), media_type=media_type, headers=headers)


async def asset_response(
    assets: AssetService, asset_id: str, link_expires_at: float | None
) -> Response:
    """An asset a valid link or key names: a 302 to the store's presigned URL when redirects
    are on (and the store has them), else its bytes."""
    if assets.redirect:
        url = await assets.redirect_url(await assets.get(asset_id), link_expires_at)
        if url is not None:
            return RedirectResponse(url, status_code=302, headers={"cache-control": "no-store"})
    asset, body = await assets.open(asset_id)
    headers = {"cache-control": "private, max-age=3600", "etag": f'"{asset.sha256}"'}
    return blob_response(body, asset.content_type, headers)
