"""The SQL repositories behind keys, key settings, console sessions, the console's read models
and the usage report, on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.console_sessions import ConsoleSession
from imagegate.core.console_views import ConsoleViews
from imagegate.core.keys import ApiKey
from imagegate.core.usage_report import UsageFilter, UsageReport
from imagegate.storage.group_commit import GroupCommit
from imagegate.storage.repositories.console_sessions import SqlSessionRepository
from imagegate.storage.repositories.console_views import SqlConsoleViewRepository
from imagegate.storage.repositories.key_settings import SqlKeySettingsRepository
from imagegate.storage.repositories.keys import SqlKeyRepository
from imagegate.storage.repositories.usage_report import SqlUsageRepository
from imagegate.storage.tables import assets, usage

DAY = 86400.0
MIDNIGHT = 1_700_006_400.0  # 2023-11-15T00:00:00Z


async def test_keys_join_the_callers_unit_of_work_and_stay_findable_once_revoked(
    engine: AsyncEngine,
) -> None:
    keys, writer = SqlKeyRepository(engine), GroupCommit(engine)
    key = ApiKey("key_a", "a", "ig-abcdefg", ("sketch",), False, 100.0)
    try:
        await writer.run(lambda uow: keys.insert(uow, key, "hash-a"))
    finally:
        await writer.close()
    assert await keys.by_hash("hash-a") == key
    assert await keys.count_active() == 1
    revoked = await keys.revoke("key_a", 200.0)
    assert revoked is not None and revoked.revoked_at == 200.0
    assert (await keys.revoke("key_a", 300.0)) == revoked  # revoked once, at the first time
    assert await keys.by_hash("hash-a") == revoked  # the service, not SQL, refuses it
    assert await keys.list(include_revoked=False) == []
    assert await keys.list(include_revoked=True) == [revoked]
    assert await keys.revoke("key_missing", 1.0) is None


async def test_key_settings_insert_then_replace(engine: AsyncEngine) -> None:
    settings = SqlKeySettingsRepository(engine)
    assert await settings.get("key_a", "x") is None
    await settings.put("key_a", "x", "one", 1.0)
    await settings.put("key_a", "x", "two", 2.0)
    assert await settings.get("key_a", "x") == "two"
    assert await settings.get("key_b", "x") is None


async def test_sessions_are_touched_and_deleted_by_key_and_by_age(engine: AsyncEngine) -> None:
    sessions = SqlSessionRepository(engine)
    for id_hash, key_id, created in (("h1", "key_a", 100.0), ("h2", "key_a", 500.0)):
        await sessions.insert(ConsoleSession(id_hash, key_id, "csrf", created, created))
    await sessions.insert(ConsoleSession("h3", "key_b", "csrf", 100.0, 100.0))
    await sessions.touch("h3", 900.0)
    found = await sessions.get("h3")
    assert found == ConsoleSession("h3", "key_b", "csrf", 100.0, 900.0)
    assert await sessions.delete_stale(seen_before=100.0, created_before=0.0) == 1  # h1
    assert await sessions.delete_stale(seen_before=0.0, created_before=100.0) == 1  # h3
    assert await sessions.get("h1") is None and await sessions.get("h3") is None
    assert await sessions.delete_of_key("key_a") == 1
    await sessions.delete("h2")  # already gone: no error
    assert await sessions.get("h2") is None


async def _usage(engine: AsyncEngine) -> None:
    rows = [
        ("r1", "key_a", "m1", 200, 2, "0.5", MIDNIGHT + 10),
        ("r2", "key_a", "m2", 500, 0, "0", MIDNIGHT + 20),
        ("r3", "key_b", "m1", 200, 1, "0.25", MIDNIGHT + DAY + 5),
    ]
    async with engine.begin() as conn:
        await conn.execute(
            usage.insert(),
            [
                {
                    "request_id": rid,
                    "key_id": key,
                    "model": model,
                    "route": "/v1/images/generations",
                    "n": images,
                    "images": images,
                    "input_tokens": 3,
                    "cost_usd": Decimal(cost),
                    "status": status,
                    "latency_ms": 1.0,
                    "created_at": at,
                }
                for rid, key, model, status, images, cost, at in rows
            ],
        )
        await conn.execute(
            assets.insert(),
            [
                {
                    "id": f"asset_{i}",
                    "sha256": "0" * 64,
                    "content_type": "image/png",
                    "size_bytes": 1,
                    "owner_key_id": "key_a",
                    "request_id": "r1",
                    "prompt": "a cat",
                    "created_at": MIDNIGHT + 10 + i,
                }
                for i in range(2)
            ],
        )


async def test_usage_report_groups_by_utc_day_model_and_key(engine: AsyncEngine) -> None:
    await _usage(engine)
    report = UsageReport(SqlUsageRepository(engine))
    totals = await report.totals(UsageFilter(start=MIDNIGHT))
    assert totals["totals"] == {
        "requests": 3,
        "images": 3,
        "input_tokens": 9,
        "output_tokens": 0,
        "cost_usd": 0.75,
        "errors": 1,
    }
    assert [(g["day"], g["requests"]) for g in totals["by_day"]] == [
        ("2023-11-15", 2),
        ("2023-11-16", 1),
    ]
    assert [(g["model"], g["cost_usd"]) for g in totals["by_model"]] == [("m1", 0.75), ("m2", 0)]
    assert [(g["key_id"], g["images"]) for g in totals["by_key"]] == [("key_a", 2), ("key_b", 1)]
    assert all(type(name) is str for name in totals["by_day"][0])
    rows = await report.rows(UsageFilter(model="m1", end=MIDNIGHT + DAY))
    assert [(r["request_id"], r["cost_usd"]) for r in rows] == [("r1", 0.5)]


async def test_console_views_sum_one_scan_and_share_a_requests_cost(engine: AsyncEngine) -> None:
    await _usage(engine)
    views = ConsoleViews(SqlConsoleViewRepository(engine))
    summary = await views.usage_summary(MIDNIGHT, None)
    assert (summary.totals.requests, summary.totals.errors) == (3, 1)
    assert summary.totals.cost_usd == Decimal("0.75")
    assert sorted(summary.by_day) == ["2023-11-15", "2023-11-16"]
    assert summary.by_key["key_a"].images == 2
    only_b = await views.usage_summary(MIDNIGHT, "key_b")
    assert list(only_b.by_key) == ["key_b"]
    items, total = await views.gallery("key_a")
    assert total == 2 and [item.asset_id for item in items] == ["asset_1", "asset_0"]
    assert {(item.cost_usd, item.prompt, item.model) for item in items} == {
        (Decimal("0.25"), "a cat", "m1")
    }
    assert await views.cost_of("r1") == Decimal("0.5")
    assert await views.cost_of("missing") is None
    assert await views.deliveries("task_missing") == []
    assert await views.tasks(None) == []
