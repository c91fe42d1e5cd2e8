"""In-memory repositories and a blob store for the core's unit tests: no database, no disk.

Each keeps the semantics its SQL counterpart in ``storage/repositories`` promises (a taken key
is refused, a take-over only wins against the lease it read, a blob is unreferenced only when no
file nor asset points at it), so a core rule tested against one holds against the other."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Collection
from dataclasses import replace

from imagegate.core.blobs import RENDITIONS, BlobBody
from imagegate.core.files import StoredFile
from imagegate.core.idempotency import IdempotencyRecord, StoredResponse


class MemoryIdempotencyRepository:
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], IdempotencyRecord] = {}

    async def add(self, record: IdempotencyRecord) -> bool:
        if (record.scope, record.key) in self.records:
            return False
        self.records[record.scope, record.key] = record
        return True

    async def get(self, scope: str, key: str) -> IdempotencyRecord | None:
        return self.records.get((scope, key))

    async def take_over(
        self,
        record: IdempotencyRecord,
        *,
        owner: str,
        lease_expires_at: float,
        request_id: str | None,
    ) -> bool:
        current = self.records.get((record.scope, record.key))
        if (
            current is None
            or current.state != "in_flight"
            or current.lease_expires_at != record.lease_expires_at
        ):
            return False
        self.records[record.scope, record.key] = replace(
            current, lease_owner=owner, lease_expires_at=lease_expires_at, request_id=request_id
        )
        return True

    async def renew(
        self, keys: Collection[tuple[str, str]], owner: str, lease_expires_at: float
    ) -> int:
        renewed = 0
        for scope_key in keys:
            current = self.records.get(scope_key)
            if (
                current is not None
                and current.lease_owner == owner
                and current.state == "in_flight"
            ):
                self.records[scope_key] = replace(current, lease_expires_at=lease_expires_at)
                renewed += 1
        return renewed

    async def finish(self, scope: str, key: str, response: StoredResponse) -> None:
        current = self.records.get((scope, key))
        if current is not None:
            self.records[scope, key] = replace(
                current, state="done", lease_owner=None, lease_expires_at=None, response=response
            )

    async def delete(self, scope: str, key: str) -> None:
        self.records.pop((scope, key), None)

    async def delete_created_before(self, cutoff: float) -> int:
        old = [scope_key for scope_key, r in self.records.items() if r.created_at < cutoff]
        for scope_key in old:
            del self.records[scope_key]
        return len(old)


class MemoryFileRepository:
    """``asset_digests``: the blobs assets refer to (they keep a blob as a file does)."""

    def __init__(self) -> None:
        self.files: dict[str, StoredFile] = {}
        self.asset_digests: set[str] = set()

    async def add(self, stored: StoredFile) -> None:
        assert stored.id not in self.files
        self.files[stored.id] = stored

    async def get(self, file_id: str, owner_key_id: str) -> StoredFile | None:
        stored = self.files.get(file_id)
        return stored if stored is not None and stored.owner_key_id == owner_key_id else None

    async def list(self, owner_key_id: str, purpose: str | None = None) -> list[StoredFile]:
        mine = [
            f
            for f in self.files.values()
            if f.owner_key_id == owner_key_id and (not purpose or f.purpose == purpose)
        ]
        return sorted(mine, key=lambda f: f.created_at, reverse=True)

    async def delete(self, stored: StoredFile) -> set[str]:
        self.files.pop(stored.id, None)
        used = {f.sha256 for f in self.files.values()} | self.asset_digests
        return {stored.sha256} - used


class MemoryBlobStore:
    """A :class:`~imagegate.core.blobs.BlobStore` of bytes in a dict."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.renditions: dict[tuple[str, str], bytes] = {}

    async def put(self, data: bytes, content_type: str) -> str:
        digest = hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        return digest

    async def get(self, digest: str) -> bytes | None:
        return self.blobs.get(digest)

    async def open(self, digest: str) -> BlobBody | None:
        data = self.blobs.get(digest)
        return None if data is None else _body(data)

    async def delete(self, digest: str) -> None:
        self.blobs.pop(digest, None)
        for name in RENDITIONS:
            self.renditions.pop((digest, name), None)

    async def put_rendition(self, digest: str, name: str, data: bytes, content_type: str) -> None:
        self.renditions[digest, name] = data

    async def open_rendition(self, digest: str, name: str) -> BlobBody | None:
        data = self.renditions.get((digest, name))
        return None if data is None else _body(data)

    async def presign(self, digest: str, ttl: int) -> str | None:
        return None

    async def check(self) -> None:
        return None

    async def close(self) -> None:
        return None


def _body(data: bytes) -> BlobBody:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    return BlobBody(size=len(data), chunks=chunks)
