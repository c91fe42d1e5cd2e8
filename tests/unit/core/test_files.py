"""The Files API's rules in :class:`FileService` (ownership, listing, content, deleting a blob
only when nothing refers to it) on in-memory repositories: no database, no disk."""

from __future__ import annotations

from dataclasses import replace

import pytest

from imagegate.core.files import FileService
from imagegate.errors import NotFound
from tests.unit.core.memory_repositories import MemoryBlobStore, MemoryFileRepository

PNG = b"\x89PNG\r\n\x1a\n" + b"pixels"


@pytest.fixture
def records() -> MemoryFileRepository:
    return MemoryFileRepository()


@pytest.fixture
def blobs() -> MemoryBlobStore:
    return MemoryBlobStore()


@pytest.fixture
def files(records: MemoryFileRepository, blobs: MemoryBlobStore) -> FileService:
    return FileService(records, blobs)


async def upload(files: FileService, owner: str, data: bytes = PNG, purpose: str = "vision") -> str:
    stored = await files.create(
        owner_key_id=owner,
        filename="tiny.png",
        purpose=purpose,
        content_type="image/png",
        data=data,
    )
    return stored.id


async def test_an_upload_is_kept_and_read_back_by_its_owner(
    files: FileService, blobs: MemoryBlobStore
) -> None:
    stored = await files.create(
        owner_key_id="key_a",
        filename="x" * 600,
        purpose="vision",
        content_type="image/png",
        data=PNG,
    )
    assert stored.id.startswith("file-") and stored.size_bytes == len(PNG)
    assert len(stored.filename) == 512
    assert blobs.blobs[stored.sha256] == PNG
    assert await files.get(stored.id, "key_a") == stored
    assert await files.read(stored.id, "key_a") == PNG
    body = await files.content(stored)
    assert body.size == len(PNG)
    assert b"".join([chunk async for chunk in body.chunks()]) == PNG
    assert stored.public()["bytes"] == len(PNG) and stored.public()["object"] == "file"


async def test_another_keys_file_is_as_absent_as_a_missing_one(files: FileService) -> None:
    file_id = await upload(files, "key_a")
    for lookup in (files.get(file_id, "key_b"), files.read(file_id, "key_b")):
        with pytest.raises(NotFound) as caught:
            await lookup
        assert caught.value.code == "file_not_found"
    with pytest.raises(NotFound):
        await files.delete(file_id, "key_b")
    assert (await files.get(file_id, "key_a")).id == file_id
    with pytest.raises(NotFound):
        await files.get("file-missing", "key_a")


async def test_a_key_lists_only_its_files_newest_first(
    files: FileService, records: MemoryFileRepository
) -> None:
    first = await upload(files, "key_a")
    second = await upload(files, "key_a", purpose="user_data")
    await upload(files, "key_b")
    records.files[first] = replace(records.files[first], created_at=1.0)
    records.files[second] = replace(records.files[second], created_at=2.0)
    assert [f.id for f in await files.list("key_a")] == [second, first]
    assert [f.id for f in await files.list("key_a", "vision")] == [first]
    assert await files.list("key_c") == []


async def test_deleting_the_last_file_of_a_content_deletes_its_blob(
    files: FileService, blobs: MemoryBlobStore
) -> None:
    file_id = await upload(files, "key_a")
    digest = (await files.get(file_id, "key_a")).sha256
    await files.delete(file_id, "key_a")
    assert digest not in blobs.blobs
    with pytest.raises(NotFound):
        await files.get(file_id, "key_a")


async def test_a_blob_another_file_shares_outlives_one_files_deletion(
    files: FileService, blobs: MemoryBlobStore
) -> None:
    mine = await upload(files, "key_a")
    theirs = await upload(files, "key_b")
    digest = (await files.get(mine, "key_a")).sha256
    await files.delete(mine, "key_a")
    assert blobs.blobs[digest] == PNG
    assert await files.read(theirs, "key_b") == PNG
    await files.delete(theirs, "key_b")
    assert digest not in blobs.blobs


async def test_a_blob_an_asset_refers_to_outlives_the_file(
    files: FileService, records: MemoryFileRepository, blobs: MemoryBlobStore
) -> None:
    file_id = await upload(files, "key_a")
    digest = (await files.get(file_id, "key_a")).sha256
    records.asset_digests.add(digest)
    await files.delete(file_id, "key_a")
    assert digest in blobs.blobs


async def test_a_file_whose_content_is_gone_is_not_found(
    files: FileService, blobs: MemoryBlobStore
) -> None:
    file_id = await upload(files, "key_a")
    stored = await files.get(file_id, "key_a")
    blobs.blobs.clear()
    with pytest.raises(NotFound, match="is gone"):
        await files.read(file_id, "key_a")
    with pytest.raises(NotFound, match="is gone"):
        await files.content(stored)
