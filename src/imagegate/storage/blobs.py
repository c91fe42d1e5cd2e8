"""Content-addressed blob storage (sha256 → bytes) on the local filesystem."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path
from typing import Protocol

_SHA256 = re.compile(r"[0-9a-f]{64}")
RENDITIONS = ("thumb.webp",)
"""Derived files kept beside a blob and deleted with it."""


class BlobStore(Protocol):
    """Where image bytes live. Callers name blobs only by a sha256 the store computed."""

    def put(self, data: bytes) -> str:
        """Store ``data`` (idempotent) and return its sha256 hex digest."""

    def path(self, digest: str) -> Path | None:
        """A local file holding the blob, or ``None`` when it does not exist."""

    def delete(self, digest: str) -> None:
        """Remove the blob and its renditions if present."""

    def rendition(self, digest: str, name: str) -> Path:
        """Where the blob's rendition ``name`` (a thumbnail) lives beside it, made or not."""

    def put_rendition(self, digest: str, name: str, data: bytes) -> Path:
        """Store a rendition of the blob beside it; returns its file."""

    def writable(self) -> bool:
        """Whether the store can take writes now (readiness)."""


class LocalBlobStore:
    """Blobs as files under ``root/ab/cd/<sha256>``, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _file(self, digest: str) -> Path:
        if not _SHA256.fullmatch(digest):
            raise ValueError("not a sha256 digest")
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        target = self._file(digest)
        if target.exists():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{digest}.{secrets.token_hex(4)}.tmp")
        temporary.write_bytes(data)
        os.replace(temporary, target)
        return digest

    def path(self, digest: str) -> Path | None:
        target = self._file(digest)
        return target if target.is_file() else None

    def delete(self, digest: str) -> None:
        target = self._file(digest)
        target.unlink(missing_ok=True)
        for name in RENDITIONS:
            target.with_name(f"{digest}.{name}").unlink(missing_ok=True)

    def rendition(self, digest: str, name: str) -> Path:
        if name not in RENDITIONS:
            raise ValueError(f"unknown rendition {name!r}")
        return self._file(digest).with_name(f"{digest}.{name}")

    def put_rendition(self, digest: str, name: str, data: bytes) -> Path:
        """Write a rendition atomically (a concurrent maker writes the same bytes)."""
        target = self.rendition(digest, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{digest}.{secrets.token_hex(4)}.tmp")
        temporary.write_bytes(data)
        os.replace(temporary, target)
        return target

    def writable(self) -> bool:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".ready-{secrets.token_hex(4)}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError:
            return False
        return True
