"""Private asset store: every generated image is kept by sha256 and linked by signed URLs."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import sqlalchemy as sa
from PIL import UnidentifiedImageError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from imagegate.errors import ImagegateError, NotFound, PermissionDenied
from imagegate.imaging.thumbnail import thumbnail_webp
from imagegate.storage.blobs import BlobStore
from imagegate.storage.group_commit import Batch
from imagegate.storage.references import unreferenced
from imagegate.storage.tables import assets

THUMBNAIL = "thumb.webp"
ASSET_ID = re.compile(r"asset_[0-9A-Za-z_-]{16,40}")


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


class AssetService:
    """Stores images, signs and checks download links, and sweeps expired assets."""

    def __init__(
        self,
        engine: AsyncEngine,
        blobs: BlobStore,
        secret: bytes,
        *,
        link_ttl: int,
        retention_seconds: float,
    ) -> None:
        self._engine = engine
        self._blobs = blobs
        self._secret = secret
        self.link_ttl = link_ttl
        self.retention_seconds = retention_seconds

    async def store(
        self, items: list[NewAsset], *, owner_key_id: str | None, request_id: str | None
    ) -> list[Asset]:
        """Write blobs off the event loop, then one row per image in a single transaction."""
        stored = await self.write_blobs(items, owner_key_id=owner_key_id)
        async with self._engine.begin() as conn:
            await self.insert_rows(conn, stored, request_id=request_id)
        return stored

    async def write_blobs(self, items: list[NewAsset], *, owner_key_id: str | None) -> list[Asset]:
        """Store the bytes (idempotent) and describe each asset; no row is written yet, so the
        caller can insert them in its own transaction (:meth:`insert_rows`)."""
        digests = await asyncio.to_thread(lambda: [self._blobs.put(item.data) for item in items])
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

    @staticmethod
    async def insert_rows(
        conn: AsyncConnection,
        stored: list[Asset],
        *,
        request_id: str | None,
        prompt: str | None = None,
    ) -> None:
        if stored:
            await conn.execute(assets.insert(), _rows(stored, request_id, prompt))

    @staticmethod
    def add_rows(
        batch: Batch, stored: list[Asset], *, request_id: str | None, prompt: str | None = None
    ) -> None:
        """:meth:`insert_rows` as part of a group-commit operation; ``prompt`` is kept for the
        owner's gallery."""
        batch.insert(assets, *_rows(stored, request_id, prompt))

    def blob(self, digest: str) -> bytes:
        """A stored blob's bytes (call off the event loop)."""
        path = self._blobs.path(digest)
        if path is None:
            raise NotFound("a stored input is gone", code="blob_not_found")
        return path.read_bytes()

    def put_blob(self, data: bytes) -> str:
        """Store bytes by content (call off the event loop); returns the sha256."""
        return self._blobs.put(data)

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
        if not ASSET_ID.fullmatch(asset_id) or not exp or not sig or not exp.isdigit():
            raise PermissionDenied("invalid or missing link signature", code="invalid_signature")
        if not hmac.compare_digest(self.sign(asset_id, int(exp)), sig):
            raise PermissionDenied("invalid or missing link signature", code="invalid_signature")
        if int(exp) < time.time():
            raise LinkExpired("this link has expired; request a new one")

    async def open(self, asset_id: str) -> tuple[Asset, Path]:
        """The asset and the file holding it; 404 when gone."""
        async with self._engine.connect() as conn:
            row = (
                (await conn.execute(assets.select().where(assets.c.id == asset_id)))
                .mappings()
                .first()
            )
        path = self._blobs.path(row["sha256"]) if row else None
        if row is None or path is None:
            raise NotFound("no such asset", code="asset_not_found")
        return _from_row(row), path

    async def sweep(self, now: float | None = None) -> int:
        """Delete assets past retention, and their blobs once no asset references them."""
        cutoff = (now if now is not None else time.time()) - self.retention_seconds
        async with self._engine.begin() as conn:
            old = await conn.execute(sa.select(assets.c.sha256).where(assets.c.created_at < cutoff))
            digests = set(old.scalars())
            result = await conn.execute(assets.delete().where(assets.c.created_at < cutoff))
            orphans = await unreferenced(conn, digests)
        await asyncio.to_thread(self._delete_blobs, orphans)
        return int(result.rowcount or 0)

    def _delete_blobs(self, digests: set[str]) -> None:
        for digest in digests:
            self._blobs.delete(digest)

    def writable(self) -> bool:
        return self._blobs.writable()

    async def thumbnail(self, asset: Asset) -> Path | None:
        """The asset's small WebP rendition, made on first use and stored beside its blob;
        ``None`` when the image cannot be thumbnailed (an SVG)."""
        target = self._blobs.rendition(asset.sha256, THUMBNAIL)
        if target.is_file():
            return target
        return await asyncio.to_thread(self._make_thumbnail, asset.sha256)

    def _make_thumbnail(self, digest: str) -> Path | None:
        path = self._blobs.path(digest)
        if path is None:
            raise NotFound("no such asset", code="asset_not_found")
        try:
            data = thumbnail_webp(path.read_bytes())
        except (UnidentifiedImageError, OSError, ValueError):
            return None
        return self._blobs.put_rendition(digest, THUMBNAIL, data)


def _rows(
    stored: list[Asset], request_id: str | None, prompt: str | None = None
) -> list[dict[str, object]]:
    return [
        {**dataclasses.asdict(asset), "request_id": request_id, "prompt": prompt or None}
        for asset in stored
    ]


def _from_row(row: sa.RowMapping) -> Asset:
    return Asset(
        id=row["id"],
        sha256=row["sha256"],
        content_type=row["content_type"],
        size_bytes=row["size_bytes"],
        width=row["width"],
        height=row["height"],
        owner_key_id=row["owner_key_id"],
        created_at=row["created_at"],
    )
