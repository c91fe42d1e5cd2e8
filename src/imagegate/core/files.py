"""Uploaded files (OpenAI's Files API): private to the uploading key, usable as image inputs.

Their bytes are in the blob store; their records are kept by a :class:`FileRepository`
(``storage/repositories/files.py``)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Protocol

from imagegate.core.blobs import BlobBody, BlobStore
from imagegate.errors import NotFound
from imagegate.observability import tracing

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


class FileRepository(Protocol):
    """Where the records of uploaded files are kept."""

    async def add(self, stored: StoredFile) -> None:
        """Keep a new file's record."""
        ...

    async def get(self, file_id: str, owner_key_id: str) -> StoredFile | None:
        """The file ``file_id`` if ``owner_key_id`` uploaded it."""
        ...

    async def list(self, owner_key_id: str, purpose: str | None = None) -> list[StoredFile]:
        """The key's files (of ``purpose``, when given), newest first."""
        ...

    async def delete(self, stored: StoredFile) -> set[str]:
        """Remove the file's record; returns, from the same transaction, its content's digest
        if nothing (no asset, no other file) refers to it any more: the blob to delete."""
        ...


class FileService:
    """Stores uploads in the blob store; every lookup is scoped to the owner's key."""

    def __init__(self, records: FileRepository, blobs: BlobStore) -> None:
        self._records = records
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
        await self._records.add(stored)
        return stored

    async def get(self, file_id: str, owner_key_id: str) -> StoredFile:
        """The caller's file; another key's file is as absent as a missing one (404)."""
        stored = await self._records.get(file_id, owner_key_id)
        if stored is None:
            raise NotFound(f"no such file: {file_id!r}", param="file_id", code="file_not_found")
        return stored

    async def list(self, owner_key_id: str, purpose: str | None = None) -> list[StoredFile]:
        return await self._records.list(owner_key_id, purpose or None)

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
        for digest in await self._records.delete(stored):
            await self._blobs.delete(digest)
