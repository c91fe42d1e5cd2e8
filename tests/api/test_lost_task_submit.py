"""A task submitted by an attempt whose answer was lost does not run (or count) twice when the
client retries with its Idempotency-Key."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from imagegate.storage.tables import ledger, tasks, usage
from tests.api.billing_kit import priced_gateway
from tests.api.test_billing_api import make_key
from tests.conftest import Gateway

ROUTE = "/flux/v1/sketch"
CONTENT = orjson.dumps({"prompt": "a red square", "width": 256, "height": 256})
DIGEST = hashlib.sha256(b"\0".join([ROUTE.encode(), b"", CONTENT])).hexdigest()


@pytest.fixture
async def priced(tmp_path: Path) -> AsyncIterator[Gateway]:
    async for gateway in priced_gateway(tmp_path):
        yield gateway


async def all_finished(gateway: Gateway) -> list[str]:
    deadline = time.monotonic() + 10
    while True:
        async with gateway.services.engine.connect() as conn:
            statuses = (await conn.execute(sa.select(tasks.c.status))).scalars().all()
        if all(s in ("succeeded", "failed", "canceled") for s in statuses):
            return list(statuses)
        assert time.monotonic() < deadline, statuses
        await asyncio.sleep(0.05)


async def test_a_retried_task_submit_counts_once(priced: Gateway) -> None:
    key_id, headers = await make_key(priced, credit_usd=1.0)
    headers = {**headers, "content-type": "application/json"}
    lost = await priced.client.post(ROUTE, content=CONTENT, headers=headers)
    assert lost.status_code == 200, lost.text
    await priced.services.idempotency.claim(
        key_id,
        "lost",
        DIGEST,
        now=time.time() - 600,
        owner="dead-replica",
        request_id=lost.headers["x-request-id"],
    )
    retry = await priced.client.post(
        ROUTE, content=CONTENT, headers={**headers, "Idempotency-Key": "lost"}
    )
    assert retry.status_code == 200, retry.text
    assert retry.json()["id"] != lost.json()["id"]
    assert sorted(await all_finished(priced)) in (
        ["canceled", "succeeded"],
        ["succeeded", "succeeded"],  # the lost one finished first: its charge is voided
    )
    async with priced.services.engine.connect() as conn:
        net = (
            await conn.execute(
                sa.select(-sa.func.sum(ledger.c.amount_usd)).where(
                    ledger.c.key_id == key_id, ledger.c.kind.in_(("charge", "void"))
                )
            )
        ).scalar_one()
        metered = (
            await conn.execute(
                sa.select(sa.func.sum(usage.c.cost_usd)).where(usage.c.key_id == key_id)
            )
        ).scalar_one()
    assert net == metered == Decimal("0.1")
