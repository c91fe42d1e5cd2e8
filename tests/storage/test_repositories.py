"""The SQL repositories' methods that no older query did: on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.unit_of_work import UnitOfWork
from imagegate.core.usage import UsageRow
from imagegate.storage.group_commit import GroupCommit
from imagegate.storage.repositories.billing import sql_billing
from imagegate.storage.repositories.usage_rows import SqlUsageRowRepository
from imagegate.storage.tables import usage
from imagegate.storage.task_store import TaskStore


async def test_submitted_by_finds_the_owners_tasks_of_a_requests_hold(
    engine: AsyncEngine,
) -> None:
    writer = GroupCommit(engine)
    billing = sql_billing(engine, writer)
    store = TaskStore(engine, writer)
    mine = await billing.reserve("key_a", Decimal("0.1"), "req_1")
    other = await billing.reserve("key_a", Decimal("0.1"), "req_2")
    now = time.time()
    for task_id, owner, reservation in (
        ("t1", "key_a", mine.id),
        ("t2", "key_a", other.id),
        ("t3", "key_b", mine.id),
        ("t4", "key_a", None),
    ):
        await store.insert(
            {
                "id": task_id,
                "kind": "test",
                "owner_key_id": owner,
                "model": None,
                "status": "queued",
                "request": {},
                "meta": {},
                "reservation_id": reservation,
                "created_at": now,
                "updated_at": now,
            }
        )
    assert await store.submitted_by("key_a", "req_1") == ["t1"]
    assert await store.submitted_by("key_a", "req_9") == []
    await writer.close()


async def test_usage_rows_join_the_unit_of_work_and_get_a_time(engine: AsyncEngine) -> None:
    writer = GroupCommit(engine)
    rows = SqlUsageRowRepository(engine)
    before = time.time()

    async def add(uow: UnitOfWork) -> None:
        rows.add(
            uow,
            UsageRow(request_id="r1", key_id="k", model=None, route="/x", status=200, latency_ms=1),
            UsageRow(
                request_id="r2", key_id="k", model=None, route="/x", status=200, latency_ms=1,
                created_at=5.0,
            ),
        )  # fmt: skip

    await writer.run(add)
    await writer.close()
    async with engine.connect() as conn:
        query = sa.select(usage.c.request_id, usage.c.created_at).order_by(usage.c.request_id)
        found = (await conn.execute(query)).all()
    assert [row.request_id for row in found] == ["r1", "r2"]
    assert found[0].created_at >= before and found[1].created_at == 5.0
