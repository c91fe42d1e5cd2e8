"""The SQL repositories behind idempotency, files, webhook tries and the queue gauge, on SQLite
and PostgreSQL: what each promises the core beyond plain reads and writes."""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.files import StoredFile
from imagegate.core.idempotency import IdempotencyRecord, StoredResponse
from imagegate.storage.repositories.files import SqlFileRepository
from imagegate.storage.repositories.idempotency import SqlIdempotencyRepository
from imagegate.storage.repositories.task_queue import SqlTaskQueueRepository
from imagegate.storage.repositories.webhook_deliveries import SqlWebhookDeliveryRepository
from imagegate.storage.tables import assets, tasks, webhook_deliveries


async def test_a_taken_idempotency_key_is_refused_not_raised(engine: AsyncEngine) -> None:
    records = SqlIdempotencyRepository(engine)
    first = IdempotencyRecord("key_a", "k1", "a" * 64, "in_flight", 10.0, "p-1", 40.0, "req_1")
    assert await records.add(first) is True
    assert await records.add(first) is False
    assert await records.get("key_a", "k1") == first


async def test_an_idempotency_take_over_wins_only_against_the_lease_it_read(
    engine: AsyncEngine,
) -> None:
    records = SqlIdempotencyRepository(engine)
    read = IdempotencyRecord("key_a", "k1", "a" * 64, "in_flight", 10.0, "p-dead", 40.0)
    await records.add(read)
    assert await records.take_over(read, owner="p-1", lease_expires_at=90.0, request_id="r1")
    assert not await records.take_over(read, owner="p-2", lease_expires_at=95.0, request_id="r2")
    now = await records.get("key_a", "k1")
    assert now is not None and (now.lease_owner, now.lease_expires_at) == ("p-1", 90.0)
    assert await records.renew([("key_a", "k1")], "p-2", 200.0) == 0
    assert await records.renew([("key_a", "k1")], "p-1", 200.0) == 1

    answer = StoredResponse(201, [("x-a", "1")], b"body")
    await records.finish("key_a", "k1", answer)
    done = await records.get("key_a", "k1")
    assert done is not None and done.state == "done" and done.response == answer
    assert done.lease_owner is None and done.lease_expires_at is None
    assert await records.delete_created_before(11.0) == 1
    assert await records.get("key_a", "k1") is None


def stored_file(file_id: str, sha256: str) -> StoredFile:
    return StoredFile(file_id, "key_a", "a.png", "vision", sha256, "image/png", 3, time.time())


async def test_deleting_a_file_names_its_blob_only_when_nothing_else_uses_it(
    engine: AsyncEngine,
) -> None:
    files = SqlFileRepository(engine)
    shared, kept, alone = "1" * 64, "2" * 64, "3" * 64
    for stored in (
        stored_file("file-a", shared),
        stored_file("file-b", shared),
        stored_file("file-c", kept),
        stored_file("file-d", alone),
    ):
        await files.add(stored)
    async with engine.begin() as conn:
        await conn.execute(
            assets.insert().values(
                id="asset-1",
                owner_key_id="key_a",
                sha256=kept,
                content_type="image/png",
                size_bytes=3,
                width=1,
                height=1,
                created_at=time.time(),
            )
        )
    assert await files.delete(stored_file("file-a", shared)) == set()
    assert await files.delete(stored_file("file-b", shared)) == {shared}
    assert await files.delete(stored_file("file-c", kept)) == set()
    assert await files.delete(stored_file("file-d", alone)) == {alone}
    assert await files.list("key_a") == []


async def test_a_webhook_try_is_claimed_once_and_its_retry_keeps_the_message(
    engine: AsyncEngine,
) -> None:
    deliveries = SqlWebhookDeliveryRepository(engine)
    message = "msg_1"
    async with engine.begin() as conn:
        await conn.execute(
            webhook_deliveries.insert().values(
                message_id=message,
                task_id="t1",
                url="http://x/h",
                payload='{"a":1}',
                attempt=1,
                state="pending",
                due_at=100.0,
                created_at=100.0,
            )
        )
    (claimed,) = await deliveries.claim_due(100.0, 10, 160.0)
    assert (claimed.message_id, claimed.attempt, claimed.payload) == (message, 1, '{"a":1}')
    assert await deliveries.claim_due(101.0, 10, 161.0) == []

    await deliveries.finish(
        claimed, delivered=False, status_code=500, error="HTTP 500", now=102.0, retry_due_at=107.0
    )
    assert await deliveries.claim_due(106.0, 10, 166.0) == []
    (retry,) = await deliveries.claim_due(107.0, 10, 167.0)
    assert (retry.message_id, retry.attempt, retry.created_at) == (message, 2, 100.0)
    await deliveries.finish(
        retry, delivered=True, status_code=200, error=None, now=108.0, retry_due_at=None
    )
    async with engine.connect() as conn:
        query = sa.select(webhook_deliveries.c.state).order_by(webhook_deliveries.c.id)
        assert list((await conn.execute(query)).scalars()) == ["failed", "delivered"]


async def test_the_queue_counts_stop_at_their_bounds(engine: AsyncEngine) -> None:
    now = time.time()
    async with engine.begin() as conn:
        for index, (owner, status) in enumerate(
            [("key_a", "queued")] * 3 + [("key_b", "queued")] * 2 + [("key_a", "running")]
        ):
            await conn.execute(
                tasks.insert().values(
                    id=f"task-{index}",
                    kind="mj",
                    owner_key_id=owner,
                    status=status,
                    request={},
                    meta={},
                    created_at=now,
                    updated_at=now,
                )
            )
    queue = SqlTaskQueueRepository(engine)
    assert await queue.waiting("key_a", all_up_to=10, own_up_to=10) == (5, 3)
    assert await queue.waiting("key_a", all_up_to=4, own_up_to=2) == (4, 2)
    assert await queue.waiting("key_c", all_up_to=10, own_up_to=10) == (5, 0)
