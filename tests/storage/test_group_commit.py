"""Group commit on SQLite and PostgreSQL: shared transactions, each caller's own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from imagegate.errors import InvalidRequest
from imagegate.storage.group_commit import Batch, GroupCommit

metadata = sa.MetaData()
items = sa.Table(
    "gc_items",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("value", sa.Integer, nullable=False),
)
counters = sa.Table(
    "gc_counters",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("total", sa.Numeric(18, 6), nullable=False),
)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    from imagegate.storage import db

    engine = db.create_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(
            counters.insert(), [{"name": "a", "total": 0}, {"name": "b", "total": 0}]
        )
    yield engine
    await engine.dispose()


@contextmanager
def counting_commits() -> Iterator[list[int]]:
    """Commits of every engine (a SQLite file's batches run on a synchronous engine of their
    own)."""
    seen = [0]

    def count(_conn: object) -> None:
        seen[0] += 1

    sa.event.listen(sa.engine.Engine, "commit", count)
    try:
        yield seen
    finally:
        sa.event.remove(sa.engine.Engine, "commit", count)


async def add_to_counters(conn: AsyncConnection, counts: dict[Hashable, Decimal]) -> None:
    for name, amount in counts.items():
        await conn.execute(
            counters.update().where(counters.c.name == name).values(total=counters.c.total + amount)
        )


async def rows(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        return {r.id: r.value for r in await conn.execute(sa.select(items))}


async def totals(engine: AsyncEngine) -> dict[str, Decimal]:
    async with engine.connect() as conn:
        return {r.name: Decimal(r.total) for r in await conn.execute(sa.select(counters))}


def insert(item_id: str, value: int, *, tally: str | None = None) -> Any:
    async def operation(batch: Batch) -> str:
        batch.insert(items, {"id": item_id, "value": value})
        if tally:
            batch.tally("counters", tally, Decimal(value))
        return item_id

    return operation


async def test_concurrent_operations_share_commits_and_each_gets_its_result(
    engine: AsyncEngine,
) -> None:
    writer = GroupCommit(engine)
    writer.register_tally("counters", add_to_counters)
    with counting_commits() as seen:
        results = await asyncio.gather(
            *(writer.run(insert(f"i{n}", n, tally="ab"[n % 2])) for n in range(100))
        )
    await writer.close()
    assert results == [f"i{n}" for n in range(100)]
    assert await rows(engine) == {f"i{n}": n for n in range(100)}
    assert await totals(engine) == {"a": sum(range(0, 100, 2)), "b": sum(range(1, 100, 2))}
    assert 1 <= seen[0] < 20  # batched: far fewer commits than operations


async def test_a_refusal_fails_only_its_caller_and_drops_its_rows(engine: AsyncEngine) -> None:
    writer = GroupCommit(engine)

    async def refuse(batch: Batch) -> None:
        batch.insert(items, {"id": "refused", "value": 0})
        raise InvalidRequest("no")

    outcomes = await asyncio.gather(
        writer.run(insert("x", 1)), writer.run(refuse), writer.run(insert("y", 2)),
        return_exceptions=True,
    )  # fmt: skip
    await writer.close()
    assert outcomes[0] == "x" and outcomes[2] == "y"
    assert isinstance(outcomes[1], InvalidRequest)
    assert await rows(engine) == {"x": 1, "y": 2}


async def test_a_failing_batch_is_retried_one_operation_at_a_time(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(items.insert().values(id="taken", value=0))
    writer = GroupCommit(engine)
    outcomes = await asyncio.gather(
        writer.run(insert("p", 1)), writer.run(insert("taken", 9)), writer.run(insert("q", 2)),
        return_exceptions=True,
    )  # fmt: skip
    await writer.close()
    assert outcomes[0] == "p" and outcomes[2] == "q"
    assert isinstance(outcomes[1], sa.exc.IntegrityError)
    assert await rows(engine) == {"taken": 0, "p": 1, "q": 2}


async def test_close_finishes_queued_work_and_later_calls_still_commit(
    engine: AsyncEngine,
) -> None:
    writer = GroupCommit(engine)
    pending = [asyncio.ensure_future(writer.run(insert(f"c{n}", n))) for n in range(10)]
    await asyncio.sleep(0)
    await writer.close()
    assert [await p for p in pending] == [f"c{n}" for n in range(10)]
    assert await writer.run(insert("after", 1)) == "after"
    assert len(await rows(engine)) == 11


async def test_an_operation_whose_caller_left_before_its_batch_is_dropped(
    engine: AsyncEngine,
) -> None:
    writer = GroupCommit(engine)
    left = asyncio.ensure_future(writer.run(insert("gone", 1)))
    stays = asyncio.ensure_future(writer.run(insert("kept", 2)))
    await asyncio.sleep(0)  # both queued; the flusher has not run yet
    left.cancel()
    assert await stays == "kept"
    await writer.close()
    assert await rows(engine) == {"kept": 2}


async def test_on_a_sqlite_file_operations_may_await_only_their_connection(
    tmp_path: Path,
) -> None:
    from imagegate.storage import db

    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    writer = GroupCommit(engine)

    async def wanders(batch: Batch) -> None:
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="awaited something other than its connection"):
        await writer.run(wanders)
    assert await writer.run(insert("fine", 1)) == "fine"
    await writer.close()
    assert await rows(engine) == {"fine": 1}
    await engine.dispose()


async def test_a_committed_batch_s_callers_resume_a_few_per_loop_iteration(
    engine: AsyncEngine,
) -> None:
    from imagegate.pacing import Pacer
    from tests.test_pacing import iteration_counter

    writer = GroupCommit(engine, pacer=Pacer(per_tick=3))
    resumed: list[int] = []

    async def caller(number: int) -> None:
        async def write(batch: Batch) -> None:
            batch.insert(items, {"id": f"p{number}", "value": number})

        await writer.run(write)
        resumed.append(now())

    now = iteration_counter()
    await asyncio.gather(*(caller(i) for i in range(30)))
    await writer.close()

    assert len(resumed) == 30
    assert max(resumed.count(iteration) for iteration in resumed) <= 3
