"""Content-addressed blob storage in an S3-compatible bucket (AWS S3, R2, MinIO, Ceph…).

Built on obstore (Rust's ``object_store``): native async, streamed reads, multipart writes of
large blobs, presigned URLs computed locally, and a 10 ms import against botocore's ~400 ms.
The client's own retries are kept short so that a bucket that is down becomes a prompt 503
(the task engine retries its own writes), not a request hanging for minutes."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, NoReturn

import obstore
from obstore.exceptions import BaseError, NotFoundError
from obstore.store import S3Store

from imagegate.core.blobs import RENDITIONS, BlobBody, blob_key, rendition_key
from imagegate.errors import StorageUnavailable

if TYPE_CHECKING:
    from obstore.store import S3Config  # a TypedDict of the stubs only

HASH_OFF_LOOP_BYTES = 256 * 1024
"""Blobs at least this large are hashed in a thread (hashlib releases the GIL)."""
READ_CHUNK = 256 * 1024
REQUEST_SECONDS = 30.0
"""The whole of one request that is not a download stream: a stalled store is a 503 by then."""
STREAM_SECONDS = 900.0
"""The whole of one download stream, which goes at the pace of the client reading it."""
MISSING = (NotFoundError, FileNotFoundError)
"""obstore reports a missing object as either, depending on the call."""
FAILED = (BaseError, OSError)


class S3BlobStore:
    """Blobs as objects ``<prefix>/ab/cd/<sha256>`` in one bucket, configured by the standard
    AWS variables (``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``), which obstore reads itself."""

    def __init__(self, bucket: str, prefix: str = "") -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._store = self._client(REQUEST_SECONDS)
        self._reader = self._client(STREAM_SECONDS)

    def _client(self, timeout: float) -> S3Store:
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        # obstore reads AWS_REGION itself; AWS_DEFAULT_REGION is the AWS CLI's older name.
        config: S3Config = {}
        if not os.environ.get("AWS_REGION") and os.environ.get("AWS_DEFAULT_REGION"):
            config["region"] = os.environ["AWS_DEFAULT_REGION"]
        return S3Store(
            self.bucket,
            prefix=self.prefix or None,
            config=config or None,
            client_options={
                "allow_http": bool(endpoint and endpoint.startswith("http://")),
                "connect_timeout": timedelta(seconds=2),
                "timeout": timedelta(seconds=timeout),
            },
            retry_config={
                "max_retries": 2,
                "retry_timeout": timedelta(seconds=5),
                "backoff": {
                    "init_backoff": timedelta(milliseconds=100),
                    "max_backoff": timedelta(seconds=1),
                    "base": 2,
                },
            },
        )

    async def put(self, data: bytes, content_type: str) -> str:
        if len(data) >= HASH_OFF_LOOP_BYTES:
            digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
        else:
            digest = hashlib.sha256(data).hexdigest()
        await self._put(blob_key(digest), data, content_type)
        return digest

    async def _put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            await obstore.put_async(
                self._store, key, data, attributes={"Content-Type": content_type}
            )
        except FAILED as exc:
            _unavailable(exc)

    async def get(self, digest: str) -> bytes | None:
        try:
            result = await obstore.get_async(self._store, blob_key(digest))
            return bytes(await result.bytes_async())
        except MISSING:
            return None
        except FAILED as exc:
            _unavailable(exc)

    async def open(self, digest: str) -> BlobBody | None:
        return await self._open(blob_key(digest))

    async def put_rendition(self, digest: str, name: str, data: bytes, content_type: str) -> None:
        await self._put(rendition_key(digest, name), data, content_type)

    async def open_rendition(self, digest: str, name: str) -> BlobBody | None:
        return await self._open(rendition_key(digest, name))

    async def _open(self, key: str) -> BlobBody | None:
        try:
            result = await obstore.get_async(self._reader, key)
        except MISSING:
            return None
        except FAILED as exc:
            _unavailable(exc)

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in result.stream(min_chunk_size=READ_CHUNK):
                yield bytes(chunk)

        return BlobBody(size=int(result.meta["size"]), chunks=chunks)

    async def delete(self, digest: str) -> None:
        keys = [blob_key(digest), *(rendition_key(digest, name) for name in RENDITIONS)]
        try:
            await obstore.delete_async(self._store, keys)
        except MISSING:
            return
        except FAILED as exc:
            _unavailable(exc)

    async def presign(self, digest: str, ttl: int) -> str | None:
        try:
            return await obstore.sign_async(
                self._store, "GET", blob_key(digest), timedelta(seconds=ttl)
            )
        except FAILED as exc:
            _unavailable(exc)

    async def check(self) -> None:
        """Write a tiny probe object: reachable, the bucket exists, and we may write to it."""
        try:
            await obstore.put_async(self._store, ".readyz", b"")
        except FAILED as exc:
            _unavailable(exc)

    async def close(self) -> None:
        return None


def _unavailable(exc: Exception) -> NoReturn:
    raise StorageUnavailable() from exc
