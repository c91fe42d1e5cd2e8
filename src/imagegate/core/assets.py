"""Private asset store: every generated image is kept by sha256 and linked by signed URLs.

Asset rows live behind :class:`AssetRepository`; the bytes behind
:class:`~imagegate.core.blobs.BlobStore`."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode

from PIL import UnidentifiedImageError

from imagegate.core.blobs import BlobBody, BlobStore
from imagegate.core.unit_of_work import UnitOfWork
from imagegate.errors import ImagegateError, NotFound, PermissionDenied, StorageUnavailable
from imagegate.imaging.thumbnail import thumbnail_webp
from imagegate.observability import tracing

THUMBNAIL = "thumb.webp"
ASSET_ID = re.compile(r"asset_[0-9A-Za-z_-]{16,40}")
log = logging.getLogger("imagegate.assets")
DELETE_CONCURRENCY = 16
REDIRECT_SECONDS = 300
"""The longest a presigned URL a signed link redirects to stays valid."""


class LinkExpired(ImagegateError):
    status = 410
    type = "invalid_request_error"
    default_code = "link_expired"


@dataclass(frozen=True, slots=True)
class Asset:
    id: str
    sha256: str
    content_type: str
    size_bytes: int
    width: int | None
    height: int | None
    owner_key_id: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class NewAsset:
    data: bytes
    content_type: str
    width: int | None = None
    height: int | None = None


_MAX_EXPIRY_DIGITS = 12
"""Unix seconds until the year 33658: longer is never a link this server signed."""
_SIGNATURE = re.compile(r"[0-9a-f]{64}")


def link_expiry(exp: str | None, sig: str | None) -> int | None:
    """``exp`` as Unix seconds when ``exp``/``sig`` have the shape of a signed link's, else
    ``None``. Only ASCII digits count (``str.isdigit`` accepts ``²``, which ``int`` refuses),
    and only a few of them (``int`` refuses 5,000 digits); ``sig`` must be 64 hex digits."""
    if not exp or not sig or len(exp) > _MAX_EXPIRY_DIGITS or not _SIGNATURE.fullmatch(sig):
        return None
    if not (exp.isascii() and exp.isdigit()):
        return None
    return int(exp)


class AssetRepository(Protocol):
    """The asset rows: one per stored image, naming its blob (several may share one)."""

    def add(
        self, uow: UnitOfWork, stored: list[Asset], *, request_id: str | None, prompt: str | None
    ) -> None:
        """Write the rows of ``stored`` with the unit of work's other rows (at its end)."""
        ...

    async def insert(self, stored: list[Asset], *, request_id: str | None) -> None:
        """Write the rows of ``stored`` in one transaction of their own."""
        ...

    async def get(self, asset_id: str) -> Asset | None: ...

    async def delete_older_than(self, cutoff: float) -> tuple[int, set[str]]:
        """Delete the assets created before ``cutoff``; returns how many, and the digests of
        their blobs that no asset or file refers to any more."""
        ...


class AssetService:
    """Stores images, signs and checks download links, and sweeps expired assets."""

    def __init__(
        self,
        repository: AssetRepository,
        blobs: BlobStore,
        secret: bytes,
        *,
        link_ttl: int,
        retention_seconds: float,
        redirect: bool = False,
    ) -> None:
        """``redirect``: valid links answer with a presigned URL of the store (when it has
        them) instead of the bytes."""
        self._rows = repository
        self._blobs = blobs
        self._secret = secret
        self.link_ttl = link_ttl
        self.retention_seconds = retention_seconds
        self.redirect = redirect

    async def store(
        self, items: list[NewAsset], *, owner_key_id: str | None, request_id: str | None
    ) -> list[Asset]:
        """Write the blobs, then one row per image in a single transaction."""
        stored = await self.write_blobs(items, owner_key_id=owner_key_id)
        if stored:
            await self._rows.insert(stored, request_id=request_id)
        return stored

    async def write_blobs(self, items: list[NewAsset], *, owner_key_id: str | None) -> list[Asset]:
        """Store the bytes (idempotent) and describe each asset; no row is written yet, so the
        caller can write them in its own unit of work (:meth:`add_rows`)."""
        with tracing.span("storage.write", **{"imagegate.objects": len(items)}):
            if len(items) == 1:  # the common case, without gather's task
                digests = [await self._blobs.put(items[0].data, items[0].content_type)]
            else:
                digests = await asyncio.gather(
                    *(self._blobs.put(item.data, item.content_type) for item in items)
                )
        now = time.time()
        return [
            Asset(
                id="asset_" + secrets.token_urlsafe(18),
                sha256=digest,
                content_type=item.content_type,
                size_bytes=len(item.data),
                width=item.width,
                height=item.height,
                owner_key_id=owner_key_id,
                created_at=now,
            )
            for item, digest in zip(items, digests, strict=True)
        ]

    def add_rows(
        self,
        uow: UnitOfWork,
        stored: list[Asset],
        *,
        request_id: str | None,
        prompt: str | None = None,
    ) -> None:
        """Write the rows of ``stored`` in the caller's unit of work (with its other rows, at
        its end); ``prompt`` is kept for the owner's gallery."""
        self._rows.add(uow, stored, request_id=request_id, prompt=prompt or None)

    async def blob(self, digest: str) -> bytes:
        """A stored blob's bytes."""
        data = await self._blobs.get(digest)
        if data is None:
            raise NotFound("a stored input is gone", code="blob_not_found")
        return data

    async def put_blob(self, data: bytes, content_type: str) -> str:
        """Store bytes by content; returns the sha256."""
        with tracing.span("storage.write", **{"imagegate.objects": 1}):
            return await self._blobs.put(data, content_type)

    def sign(self, asset_id: str, expires_at: int) -> str:
        message = f"{asset_id}|{expires_at}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def signed_path(
        self, asset_id: str, *, ttl: int | None = None, now: float | None = None
    ) -> str:
        """``/files/<id>?exp=…&sig=…`` valid for ``ttl`` seconds (default: the link lifetime)."""
        expires_at = int((now if now is not None else time.time()) + (ttl or self.link_ttl))
        query = urlencode({"exp": expires_at, "sig": self.sign(asset_id, expires_at)})
        return f"/files/{asset_id}?{query}"

    def verify(self, asset_id: str, exp: str | None, sig: str | None) -> None:
        """Raise 403 for a bad or missing signature, 410 for an expired link."""
        expires_at = link_expiry(exp, sig)
        if not ASSET_ID.fullmatch(asset_id) or expires_at is None or sig is None:
            raise PermissionDenied("invalid or missing link signature", code="invalid_signature")
        if not hmac.compare_digest(self.sign(asset_id, expires_at).encode(), sig.encode()):
            raise PermissionDenied("invalid or missing link signature", code="invalid_signature")
        if expires_at < time.time():
            raise LinkExpired("this link has expired; request a new one")

    async def get(self, asset_id: str) -> Asset:
        """The asset's row; 404 when gone."""
        asset = await self._rows.get(asset_id)
        if asset is None:
            raise NotFound("no such asset", code="asset_not_found")
        return asset

    async def open(self, asset_id: str) -> tuple[Asset, BlobBody]:
        """The asset and its bytes as a stream; 404 when gone."""
        asset = await self.get(asset_id)
        body = await self._blobs.open(asset.sha256)
        if body is None:
            raise NotFound("no such asset", code="asset_not_found")
        return asset, body

    async def read(self, asset_id: str) -> bytes:
        """The asset's bytes; 404 when gone."""
        return await self.blob((await self.get(asset_id)).sha256)

    async def redirect_url(self, asset: Asset, link_expires_at: float | None = None) -> str | None:
        """Where a valid link sends the client instead of streaming, when redirects are on
        and the store can presign: valid for at most :data:`REDIRECT_SECONDS`, never past the
        link's own expiry."""
        if not self.redirect:
            return None
        ttl = REDIRECT_SECONDS
        if link_expires_at is not None:
            ttl = max(1, min(ttl, int(link_expires_at - time.time())))
        return await self._blobs.presign(asset.sha256, ttl)

    async def sweep(self, now: float | None = None) -> int:
        """Delete assets past retention, and their blobs once no asset references them."""
        cutoff = (now if now is not None else time.time()) - self.retention_seconds
        removed, orphans = await self._rows.delete_older_than(cutoff)
        await self._delete_blobs(orphans)
        return removed

    async def _delete_blobs(self, digests: set[str]) -> None:
        """Delete up to :data:`DELETE_CONCURRENCY` objects at a time; a store that is down
        leaves the rest in place (logged) instead of failing the whole retention sweep."""
        gate = asyncio.Semaphore(DELETE_CONCURRENCY)

        async def delete(digest: str) -> bool:
            async with gate:
                try:
                    await self._blobs.delete(digest)
                except StorageUnavailable:
                    return False
                return True

        deleted = await asyncio.gather(*(delete(digest) for digest in digests))
        if not all(deleted):
            log.warning(
                "retention left %d unreferenced blobs in the store (it was unavailable)",
                deleted.count(False),
            )

    async def check(self) -> None:
        """Raise :class:`~imagegate.errors.StorageUnavailable` unless the store takes writes."""
        await self._blobs.check()

    async def thumbnail(self, asset: Asset) -> BlobBody | None:
        """The asset's small WebP rendition, made on first use and stored beside its blob;
        ``None`` when the image cannot be thumbnailed (an SVG)."""
        made = await self._blobs.open_rendition(asset.sha256, THUMBNAIL)
        if made is not None:
            return made
        data = await self._blobs.get(asset.sha256)
        if data is None:
            raise NotFound("no such asset", code="asset_not_found")
        try:
            small = await asyncio.to_thread(thumbnail_webp, data)
        except (UnidentifiedImageError, OSError, ValueError):
            return None
        await self._blobs.put_rendition(asset.sha256, THUMBNAIL, small, "image/webp")
        return await self._blobs.open_rendition(asset.sha256, THUMBNAIL)
