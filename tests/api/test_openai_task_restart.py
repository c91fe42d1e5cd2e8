"""An async OpenAI image task outlives the gateway that accepted it: stopped while the upstream
is still drawing, the next start runs it again and it completes once, charged once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from imagegate.app import create_app
from imagegate.providers.fakes import FakeOpenAI, Slow
from imagegate.settings import Settings
from imagegate.storage.tables import ledger, reservations, tasks, usage
from tests.api.fronts_kit import poll
from tests.conftest import ADMIN_KEY, Gateway
from tests.providers.upstream_kit import running

KEY = "sk-restart-upstream"
upstream = FakeOpenAI(KEY)


@pytest.fixture(scope="module")
def upstream_url() -> Iterator[str]:
    with running(upstream) as base:
        yield base


@asynccontextmanager
async def serving(settings: Settings, key: str | None = None) -> AsyncIterator[Gateway]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        if key is None:
            _, key = await app.state.services.keys.create(name="restart tests")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield Gateway(app, client, key)


async def test_an_async_task_survives_a_restart_finishing_and_charged_once(
    tmp_path: Path, upstream_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream.reset()
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", f"{upstream_url}/v1")
    settings = Settings(
        data_dir=tmp_path / "data",
        admin_key=ADMIN_KEY,
        task_poll_seconds=0.05,
        # The stop gives the lease back at once, so the length only matters to a loop starved
        # by a busy machine: a lease that ran out is claimed back, one more attempt counted.
        task_lease_seconds=5,
    )
    upstream.script("generate", Slow(3))  # the first attempt is still drawing at the stop
    async with serving(settings) as first:
        created = await first.client.post(
            "/v1/images/generations",
            json={"model": "gpt-image-1", "prompt": "a lighthouse", "quality": "low"},
            headers={**first.auth, "Prefer": "respond-async"},
        )
        assert created.status_code == 202, created.text
        task_id = created.json()["id"]
        while not upstream.calls_to("generate"):
            await asyncio.sleep(0.02)

    async with serving(settings, first.key) as second:

        async def fetch() -> dict[str, Any]:
            response = await second.client.get(f"/v1/images/tasks/{task_id}", headers=second.auth)
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

        done = await poll(fetch, lambda body: body["status"] not in ("queued", "in_progress"))
        assert done["status"] == "succeeded", done
        assert len(done["result"]["data"]) == 1 and done["result"]["usage"]["total_tokens"] > 0
        assert len(upstream.calls_to("generate")) == 2  # the interrupted call, then the rerun
        await second.services.usage.flush()
        async with second.services.engine.connect() as conn:
            charges = (
                await conn.execute(sa.select(ledger.c.amount_usd).where(ledger.c.kind == "charge"))
            ).all()
            holds = (await conn.execute(sa.select(reservations.c.state))).all()
            rows = (await conn.execute(sa.select(usage.c.route, usage.c.status))).all()
            attempts = await conn.scalar(sa.select(tasks.c.attempts).where(tasks.c.id == task_id))
    assert len(charges) == 1 and [tuple(h) for h in holds] == [("settled",)]
    assert [tuple(r) for r in rows] == [("task:image", 200)]
    assert attempts == 2
