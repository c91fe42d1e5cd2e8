"""Which blob store a gateway uses, from ``IMAGEGATE_STORAGE_URL``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from imagegate.core.blobs import BlobStore
from imagegate.storage.blobs import LocalBlobStore


def parse_storage_url(url: str) -> tuple[str, str, str]:
    """``("file", <dir>, "")`` or ``("s3", <bucket>, <prefix>)``; ``ValueError`` otherwise."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        directory = url[len("file://") :]
        if not directory:
            raise ValueError("file:// needs a directory, e.g. file:///var/lib/imagegate/assets")
        return "file", directory, ""
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError("s3:// needs a bucket, e.g. s3://my-bucket/imagegate")
        return "s3", parts.netloc, parts.path.strip("/")
    raise ValueError("the storage URL must start with file:// or s3://")


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
