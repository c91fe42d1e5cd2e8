"""The blob store port: where image bytes live, as the core sees it.

The core names blobs only by the sha256 the store computed and never learns where they are kept;
:mod:`imagegate.storage` implements the port (a local directory, an S3-compatible bucket). Every
method is a coroutine, so a store on the network never blocks the event loop, and a store that
cannot be reached raises :class:`~imagegate.errors.StorageUnavailable` (a 503 with
``Retry-After``), never a generic error.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

SHA256 = re.compile(r"[0-9a-f]{64}")


def blob_key(digest: str) -> str:
    """``ab/cd/<sha256>``: the blob's name relative to the store's root (two levels of fan-out,
    so no directory or listing page holds millions of names)."""
    if not SHA256.fullmatch(digest):
        raise ValueError("not a sha256 digest")
    return f"{digest[:2]}/{digest[2:4]}/{digest}"


RENDITIONS = ("thumb.webp",)
"""Derived files a store keeps beside a blob (the console's thumbnails), deleted with it."""


def rendition_key(digest: str, name: str) -> str:
    """``ab/cd/<sha256>.<name>``: a rendition's name, beside its blob's."""
    if name not in RENDITIONS:
        raise ValueError(f"unknown rendition {name!r}")
    return f"{blob_key(digest)}.{name}"


@dataclass(frozen=True, slots=True)
class BlobBody:
    """A stored blob opened for reading, not yet read: its bytes come as a stream of chunks
    (``chunks()``, once), so a large image never sits in memory whole. ``path`` is set when a
    local file holds it, for the server to send with ``sendfile``."""

    size: int
    chunks: Callable[[], AsyncIterator[bytes]]
    path: Path | None = None


class BlobStore(Protocol):
    """Where image bytes live; content-addressed, so writing the same bytes twice is harmless."""

    async def put(self, data: bytes, content_type: str) -> str:
        """Store ``data`` and return its sha256 hex digest."""

    async def get(self, digest: str) -> bytes | None:
        """The blob's bytes, or ``None`` when it does not exist."""

    async def open(self, digest: str) -> BlobBody | None:
        """The blob as a stream, or ``None`` when it does not exist."""

    async def delete(self, digest: str) -> None:
        """Remove the blob and its renditions if present."""

    async def put_rendition(self, digest: str, name: str, data: bytes, content_type: str) -> None:
        """Store a rendition (one of :data:`RENDITIONS`) of the blob beside it."""

    async def open_rendition(self, digest: str, name: str) -> BlobBody | None:
        """A rendition as a stream, or ``None`` when it has not been made."""

    async def presign(self, digest: str, ttl: int) -> str | None:
        """A URL that serves the blob for ``ttl`` seconds without the gateway, or ``None`` when
        the store has no such URLs (a local directory)."""

    async def check(self) -> None:
        """Raise :class:`~imagegate.errors.StorageUnavailable` unless the store takes writes."""

    async def close(self) -> None:
        """Release connections."""
