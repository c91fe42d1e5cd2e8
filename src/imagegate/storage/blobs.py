"""Content-addressed blob storage (sha256 → bytes) in a local directory."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from imagegate.core.blobs import RENDITIONS, BlobBody, blob_key, rendition_key
from imagegate.errors import StorageUnavailable

CHUNK = 256 * 1024
INLINE_PUT = 64 * 1024
"""Blobs up to this size are hashed and written on the event loop: handing them to a thread
costs more than the work (a few microseconds of hashing and one small file)."""


class LocalBlobStore:
    """Blobs as files under ``root/ab/cd/<sha256>``, written atomically (one replica, or
    replicas that share this directory)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._root = str(root)

    def _path(self, key: str) -> str:
        """The file that holds a store key (:func:`blob_key`, :func:`rendition_key`): a string,
        not a ``Path``, since it is built and checked on the event loop for every small image."""
        return os.path.join(self._root, key)

    async def put(self, data: bytes, content_type: str) -> str:
        if len(data) <= INLINE_PUT:
            return self._put(data)
        return await asyncio.to_thread(self._put, data)

    def _put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        target = self._path(blob_key(digest))
        if not os.path.exists(target):
            _write(target, data)
        return digest

    async def get(self, digest: str) -> bytes | None:
        target = Path(self._path(blob_key(digest)))
        try:
            return await asyncio.to_thread(target.read_bytes)
        except FileNotFoundError:
            return None

    async def open(self, digest: str) -> BlobBody | None:
        return await _open(Path(self._path(blob_key(digest))))

    async def put_rendition(self, digest: str, name: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(_write, self._path(rendition_key(digest, name)), data)

    async def open_rendition(self, digest: str, name: str) -> BlobBody | None:
        return await _open(Path(self._path(rendition_key(digest, name))))

    async def delete(self, digest: str) -> None:
        keys = [blob_key(digest), *(rendition_key(digest, name) for name in RENDITIONS)]

        def unlink() -> None:
            for key in keys:
                Path(self._path(key)).unlink(missing_ok=True)

        await asyncio.to_thread(unlink)

    async def presign(self, digest: str, ttl: int) -> str | None:
        return None

    async def check(self) -> None:
        if not await asyncio.to_thread(self._writable):
            raise StorageUnavailable(f"the asset directory {self.root} is not writable")

    def _writable(self) -> bool:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".ready-{secrets.token_hex(4)}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError:
            return False
        return True

    async def close(self) -> None:
        return None


def _write(target: str, data: bytes) -> None:
    """Write ``target`` atomically (a concurrent writer writes the same bytes)."""
    directory, name = os.path.split(target)
    try:
        os.makedirs(directory, exist_ok=True)
        temporary = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.tmp")
        with open(temporary, "wb") as file:
            file.write(data)
        os.replace(temporary, target)
    except OSError as exc:
        raise StorageUnavailable() from exc


async def _open(target: Path) -> BlobBody | None:
    try:
        size = (await asyncio.to_thread(target.stat)).st_size
    except FileNotFoundError:
        return None

    async def chunks() -> AsyncIterator[bytes]:
        with target.open("rb") as file:
            while chunk := await asyncio.to_thread(file.read, CHUNK):
                yield chunk

    return BlobBody(size=size, chunks=chunks, path=target)
