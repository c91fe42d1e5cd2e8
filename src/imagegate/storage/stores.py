"""Which blob store a gateway uses, from ``IMAGEGATE_STORAGE_URL``."""

from __future__ import annotations

from pathlib import Path

from imagegate.core.blobs import BlobStore
from imagegate.settings import parse_storage_url
from imagegate.storage.blobs import LocalBlobStore


def open_blob_store(url: str | None, default_dir: Path) -> BlobStore:
    """A local directory (``file://<dir>``; by default ``default_dir``) or a bucket
    (``s3://<bucket>/<prefix>``, configured by the standard AWS variables)."""
    if not url:
        return LocalBlobStore(default_dir)
    scheme, where, prefix = parse_storage_url(url)
    if scheme == "file":
        return LocalBlobStore(Path(where))
    from imagegate.storage.s3 import S3BlobStore  # obstore loads only for a bucket

    return S3BlobStore(where, prefix)
