"""Both blob stores behind the core's port, on the same tests: a local directory and a real
S3-compatible server (moto) on loopback."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.assets import AssetService, NewAsset
from imagegate.core.blobs import BlobStore
from imagegate.errors import StorageUnavailable
from imagegate.settings import parse_storage_url
from imagegate.storage import db
from imagegate.storage.blobs import LocalBlobStore
from imagegate.storage.repositories.assets import SqlAssetRepository
from imagegate.storage.s3 import S3BlobStore
from imagegate.storage.stores import open_blob_store
from tests.s3_kit import S3Server


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    if request.param == "local":
        blobs: BlobStore = open_blob_store(f"file://{tmp_path / 'assets'}", tmp_path / "unused")
    else:
        bucket = request.getfixturevalue("s3_bucket")
        blobs = open_blob_store(f"s3://{bucket}/gateway/blobs", tmp_path / "unused")
    yield blobs
    await blobs.close()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await db.upgrade(engine)
    yield engine
    await engine.dispose()


async def read_all(store: BlobStore, digest: str) -> tuple[bytes, int]:
    body = await store.open(digest)
    assert body is not None
    chunks = [chunk async for chunk in body.chunks()]
    assert body.size == sum(map(len, chunks))
    return b"".join(chunks), len(chunks)


async def test_put_get_open_delete_by_content(store: BlobStore) -> None:
    digest = await store.put(b"some image bytes", "image/png")
    assert digest == hashlib.sha256(b"some image bytes").hexdigest()
    assert await store.put(b"some image bytes", "image/png") == digest  # idempotent
    assert await store.get(digest) == b"some image bytes"
    assert (await read_all(store, digest))[0] == b"some image bytes"
    await store.delete(digest)
    await store.delete(digest)  # deleting what is gone is fine
    assert await store.get(digest) is None
    assert await store.open(digest) is None
    await store.check()


async def test_a_rendition_lives_beside_its_blob_and_goes_with_it(store: BlobStore) -> None:
    digest = await store.put(b"the full image", "image/png")
    assert await store.open_rendition(digest, "thumb.webp") is None  # not made yet
    await store.put_rendition(digest, "thumb.webp", b"small", "image/webp")
    body = await store.open_rendition(digest, "thumb.webp")
    assert body is not None and b"".join([c async for c in body.chunks()]) == b"small"
    with pytest.raises(ValueError, match="rendition"):
        await store.open_rendition(digest, "../escape")
    await store.delete(digest)
    assert await store.open_rendition(digest, "thumb.webp") is None


async def test_a_large_blob_is_read_as_a_stream_of_chunks(store: BlobStore) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    digest = await store.put(data, "image/png")
    read, chunks = await read_all(store, digest)
    assert read == data and chunks >= 4  # never one 3 MiB piece


async def test_names_must_be_digests(store: BlobStore) -> None:
    with pytest.raises(ValueError, match="sha256"):
        await store.get("../../etc/passwd")


async def test_only_a_bucket_presigns_and_its_url_serves_the_blob(store: BlobStore) -> None:
    digest = await store.put(b"presigned", "image/webp")
    url = await store.presign(digest, 60)
    if isinstance(store, LocalBlobStore):
        assert url is None
        return
    assert url is not None and "X-Amz-Signature=" in url and "X-Amz-Expires=60" in url
    async with httpx.AsyncClient() as client:
        answer = await client.get(url)
    assert answer.status_code == 200 and answer.content == b"presigned"
    assert answer.headers["content-type"] == "image/webp"


async def test_objects_live_under_the_prefix(s3_bucket: str, s3_server: S3Server) -> None:
    store = S3BlobStore(s3_bucket, "tenant/a")
    digest = await store.put(b"x", "image/png")
    assert s3_server.keys(s3_bucket) == [f"tenant/a/{digest[:2]}/{digest[2:4]}/{digest}"]


async def test_assets_are_content_addressed_and_swept_with_their_objects(
    store: BlobStore, engine: AsyncEngine
) -> None:
    assets = AssetService(
        SqlAssetRepository(engine), store, b"s" * 32, link_ttl=60, retention_seconds=100
    )
    first, second = await assets.store(
        [NewAsset(b"same", "image/png"), NewAsset(b"same", "image/png")],
        owner_key_id="key_a",
        request_id="req_1",
    )
    assert first.id != second.id and first.sha256 == second.sha256
    asset, body = await assets.open(first.id)
    assert asset == first and body.size == 4
    assert await assets.read(second.id) == b"same"

    assert await assets.sweep(now=time.time() + 50) == 0
    assert await assets.sweep(now=time.time() + 200) == 2
    assert await store.get(first.sha256) is None


async def test_a_bucket_that_cannot_be_reached_is_unavailable(
    s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    store = S3BlobStore(s3_bucket)
    started = time.monotonic()
    for operation in (store.check(), store.put(b"x", "image/png"), store.get("a" * 64)):
        with pytest.raises(StorageUnavailable) as caught:
            await operation
        assert caught.value.status == 503 and caught.value.retry_after
    assert time.monotonic() - started < 10  # the client's retries are short: a prompt 503


async def test_a_missing_bucket_is_not_ready(s3_bucket: str) -> None:
    with pytest.raises(StorageUnavailable):
        await S3BlobStore(s3_bucket + "-missing").check()


async def test_a_directory_that_cannot_be_written_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    store = LocalBlobStore(tmp_path / "file" / "assets")
    with pytest.raises(StorageUnavailable):
        await store.check()
    with pytest.raises(StorageUnavailable):
        await store.put(b"x", "image/png")


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("file:///var/lib/imagegate", ("file", "/var/lib/imagegate", "")),
        ("s3://bucket", ("s3", "bucket", "")),
        ("s3://bucket/a/b/", ("s3", "bucket", "a/b")),
    ],
)
def test_storage_urls(url: str, parsed: tuple[str, str, str]) -> None:
    assert parse_storage_url(url) == parsed


@pytest.mark.parametrize("url", ["s3:///prefix", "file://", "gs://bucket", "/var/lib"])
def test_bad_storage_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"storage URL|needs"):
        parse_storage_url(url)


class _DeletesFail(LocalBlobStore):
    async def delete(self, digest: str) -> None:
        raise StorageUnavailable()


async def test_a_sweep_while_the_store_is_down_logs_what_it_left_and_finishes(
    engine: AsyncEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = _DeletesFail(tmp_path / "assets")
    assets = AssetService(
        SqlAssetRepository(engine), store, b"s" * 32, link_ttl=60, retention_seconds=100
    )
    await assets.store(
        [NewAsset(b"one", "image/png"), NewAsset(b"two", "image/png")],
        owner_key_id=None,
        request_id=None,
    )
    assert await assets.sweep(now=time.time() + 200) == 2
    assert "left 2 unreferenced blobs" in caplog.text
