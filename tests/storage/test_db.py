"""The database layer on SQLite and PostgreSQL: migrations, keys, assets, usage rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.cli._common import key_service
from imagegate.core.keys import KeyService
from imagegate.core.usage import UsageRecorder, UsageRow
from imagegate.storage import db
from imagegate.storage.repositories.usage_rows import SqlUsageRowRepository
from imagegate.storage.tables import api_keys, usage


@pytest.fixture
async def keys(engine: AsyncEngine) -> AsyncIterator[KeyService]:
    async with key_service(engine) as service:
        yield service


async def test_migrations_reach_head_and_are_idempotent(engine: AsyncEngine) -> None:
    head = ScriptDirectory.from_config(db.alembic_config()).get_current_head()
    assert head is not None and await db.current_revision(engine) == head
    await db.upgrade(engine)
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
    assert {"api_keys", "assets", "usage", "files", "tasks", "webhook_deliveries"} <= tables


async def test_keys_are_stored_only_as_hashes(engine: AsyncEngine, keys: KeyService) -> None:
    key, secret = await keys.create(name="ci", models=("sketch",))
    assert len(secret) > 40 and secret.startswith("ig-")
    assert key.prefix == secret[: len(key.prefix)]
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(api_keys))).mappings().all()
    assert len(rows) == 1
    assert secret not in str(dict(rows[0]))
    assert (await keys.authenticate(secret)) == key
    assert await keys.authenticate(secret + "x") is None


async def test_revoked_key_stops_working_at_once(keys: KeyService) -> None:
    key, secret = await keys.create()
    assert await keys.authenticate(secret) is not None
    revoked = await keys.revoke(key.id)
    assert revoked is not None and revoked.revoked_at is not None
    assert await keys.authenticate(secret) is None
    assert await keys.revoke("key_missing") is None
    assert [k.id for k in await keys.list(include_revoked=False)] == []
    assert await keys.count_active() == 0


async def test_sql_metacharacters_in_a_presented_key_are_just_data(keys: KeyService) -> None:
    await keys.create()
    for evil in ["' OR '1'='1", "x'; DROP TABLE api_keys; --", "\x00abc", "a" * 10_000]:
        assert await keys.authenticate(evil) is None
    assert await keys.count_active() == 1


async def test_usage_rows_are_batched_and_flushed_on_close(engine: AsyncEngine) -> None:
    recorder = UsageRecorder(SqlUsageRowRepository(engine), interval=60)
    recorder.start()
    for index in range(3):
        recorder.record(
            UsageRow(
                request_id=f"req_{index}",
                key_id="key_a",
                model="sketch",
                route="/v1/images/generations",
                status=200,
                latency_ms=1.5,
                n=1,
                images=1,
                cost_usd=Decimal("0.0012345"),
            )
        )
    async with engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(usage))).scalar() == 0
    await recorder.close()
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(usage))).mappings().all()
    assert len(rows) == 3
    assert rows[0]["cost_usd"] == Decimal("0.0012345")
    assert rows[0]["created_at"] > 0
