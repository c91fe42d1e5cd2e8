"""Uploaded files (OpenAI's Files API): private to the uploading key, usable as image inputs."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.blobs import BlobBody, BlobStore
from imagegate.errors import NotFound
from imagegate.observability import tracing
from imagegate.storage.references import unreferenced
from imagegate.storage.tables import files

PURPOSES = ("vision", "user_data")


@dataclass(frozen=True, slots=True)
class StoredFile:
    id: str
    owner_key_id: str
    filename: str
    purpose: str
    sha256: str
    content_type: str
    size_bytes: int
    created_at: float

    def public(self) -> dict[str, Any]:
        """OpenAI's file object."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.size_bytes,
            "created_at": int(self.created_at),
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


class FileService:
    """Stores uploads in the blob store; every lookup is scoped to the owner's key."""

    def __init__(self, engine: AsyncEngine, blobs: BlobStore) -> None:
        self._engine = engine
        self._blobs = blobs

    async def create(
        self, *, owner_key_id: str, filename: str, purpose: str, content_type: str, data: bytes
    ) -> StoredFile:
        with tracing.span("storage.write", **{"imagegate.objects": 1}):
            digest = await self._blobs.put(data, content_type)
        stored = StoredFile(
            id="file-" + secrets.token_urlsafe(18),
            owner_key_id=owner_key_id,
            filename=filename[:512],
            purpose=purpose,
            sha256=digest,
            content_type=content_type[:128],
            size_bytes=len(data),
            created_at=time.time(),
        )
        async with self._engine.begin() as conn:
            await conn.execute(files.insert().values(**_columns(stored)))
        return stored

    async def get(self, file_id: str, owner_key_id: str) -> StoredFile:
        """The caller's file; another key's file is as absent as a missing one (404)."""
        query = files.select().where(files.c.id == file_id, files.c.owner_key_id == owner_key_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            raise NotFound(f"no such file: {file_id!r}", param="file_id", code="file_not_found")
        return StoredFile(**dict(row))

    async def list(self, owner_key_id: str, purpose: str | None = None) -> list[StoredFile]:
        query = files.select().where(files.c.owner_key_id == owner_key_id)
        if purpose:
            query = query.where(files.c.purpose == purpose)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(files.c.created_at.desc()))).mappings().all()
        return [StoredFile(**dict(row)) for row in rows]

    async def content(self, stored: StoredFile) -> BlobBody:
        """The file's bytes as a stream."""
        body = await self._blobs.open(stored.sha256)
        if body is None:
            raise NotFound(f"the content of {stored.id!r} is gone", code="file_not_found")
        return body

    async def read(self, file_id: str, owner_key_id: str) -> bytes:
        stored = await self.get(file_id, owner_key_id)
        data = await self._blobs.get(stored.sha256)
        if data is None:
            raise NotFound(f"the content of {stored.id!r} is gone", code="file_not_found")
        return data

    async def delete(self, file_id: str, owner_key_id: str) -> None:
        stored = await self.get(file_id, owner_key_id)
        async with self._engine.begin() as conn:
            await conn.execute(files.delete().where(files.c.id == stored.id))
            orphans = await unreferenced(conn, {stored.sha256})
        for digest in orphans:
            await self._blobs.delete(digest)


def _columns(stored: StoredFile) -> dict[str, Any]:
    return {name: getattr(stored, name) for name in StoredFile.__slots__}
