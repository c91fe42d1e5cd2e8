"""Content-addressed blob storage (sha256 → bytes) on the local filesystem."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path
from typing import Protocol

_SHA256 = re.compile(r"[0-9a-f]{64}")


class BlobStore(Protocol):
    """Where image bytes live. Callers name blobs only by a sha256 the store computed."""

    def put(self, data: bytes) -> str:
        """Store ``data`` (idempotent) and return its sha256 hex digest."""

    def path(self, digest: str) -> Path | None:
        """A local file holding the blob, or ``None`` when it does not exist."""

    def delete(self, digest: str) -> None:
        """Remove the blob if present."""

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
        self._file(digest).unlink(missing_ok=True)

    def writable(self) -> bool:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".ready-{secrets.token_hex(4)}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError:
            return False
        return True
