"""Asynchronous upstreams (Bria's status polling, Stability's results) across a gateway restart:
the gateway stops while the upstream is still working; the next start finishes the task once
and charges it once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from imagegate.app import create_app
from imagegate.providers.fakes import FakeBria, FakeStability
from imagegate.settings import Settings
from imagegate.storage.tables import ledger
from tests.api.fronts_kit import data_uri, picture
from tests.conftest import ADMIN_KEY, Gateway
from tests.providers.upstream_kit import running

bria, stability = FakeBria("bria-restart"), FakeStability("sk-stab-restart")
CONFIG = """
[[models]]
id = "bria-fibo"
[[models.deployments]]
provider = "bria"
model = "fibo"
credentials = { api_token = ["BRIA_API_TOKEN"] }
base_url_env = "BRIA_BASE_URL"
options = { poll_interval = 0.05 }

[[models]]
id = "stable-image-creative-upscale"
[[models.deployments]]
provider = "stability"
model = "stable-image-core"
credentials = { api_key = ["STABILITY_API_KEY"] }
base_url_env = "STABILITY_BASE_URL"
options = { creative_upscale = true, poll_interval = 0.05 }
"""


@pytest.fixture(scope="module")
def bases() -> Iterator[dict[str, str]]:
    with running(bria) as b, running(stability) as s:
        yield {"bria": b, "stability": s}


@pytest.fixture
def settings(tmp_path: Path, bases: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    bria.reset()
    stability.reset()
    monkeypatch.setenv("BRIA_API_TOKEN", "bria-restart")
    monkeypatch.setenv("BRIA_BASE_URL", bases["bria"])
    monkeypatch.setenv("STABILITY_API_KEY", "sk-stab-restart")
    monkeypatch.setenv("STABILITY_BASE_URL", bases["stability"])
    config = tmp_path / "imagegate.toml"
    config.write_text(CONFIG)
    return Settings(
        data_dir=tmp_path / "data",
        admin_key=ADMIN_KEY,
        config=config,
        task_poll_seconds=0.05,
        task_lease_seconds=0.5,
    )


@asynccontextmanager
async def serving(settings: Settings, key: str | None = None) -> AsyncIterator[Gateway]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        if key is None:
            _, key = await app.state.services.keys.create(name="restart tests")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield Gateway(app, client, key)


async def charges(gw: Gateway) -> list[Decimal]:
    async with gw.services.engine.connect() as conn:
        rows = await conn.execute(sa.select(ledger.c.amount_usd).where(ledger.c.kind == "charge"))
        return sorted(-Decimal(str(amount)) for (amount,) in rows)


async def finished(gw: Gateway, request_id: str) -> dict[str, Any]:
    for _ in range(600):
        response = await gw.client.get(f"/bria/{request_id}", headers=gw.auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] != "IN_PROGRESS":
            return body
        await asyncio.sleep(0.05)
    raise AssertionError("the task never finished")


async def until(condition: Any) -> None:
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.025)
    raise AssertionError("the upstream was never reached")


async def test_a_bria_task_survives_a_restart_and_is_charged_once(settings: Settings) -> None:
    bria.pending_polls = 10_000
    async with serving(settings) as first:
        answer = await first.client.post(
            "/bria/image/edit/remove_background",
            json={"image": data_uri(picture()), "model": "bria-fibo"},
            headers=first.auth,
        )
        assert answer.status_code == 202, answer.text
        await until(lambda: bria.calls_to("poll"))
    bria.pending_polls = 0
    for job in bria.jobs.values():
        job.polls_left = 0
    async with serving(settings, first.key) as second:
        done = await finished(second, answer.json()["request_id"])
        assert done["status"] == "COMPLETED" and done["result"]["image_url"], done
        assert await charges(second) == [Decimal("0.04")]
        again = await finished(second, answer.json()["request_id"])
        assert again["result"] == done["result"]
    (submit,) = bria.calls_to("submit")  # the second start polls the job the first submitted
    assert submit.path == "/v2/image/edit/remove_background"


async def test_a_stability_result_survives_a_restart_and_is_charged_once(
    settings: Settings,
) -> None:
    stability.pending_polls = 10_000
    async with serving(settings) as first:
        answer = await first.client.post(
            "/bria/image/edit/increase_resolution",
            json={"image": data_uri(picture()), "model": "stable-image-creative-upscale",
                  "desired_increase": 2},
            headers=first.auth,
        )  # fmt: skip
        assert answer.status_code == 202, answer.text
        await until(lambda: stability.calls_to("result"))
    stability.pending_polls = 0
    for result_id, (_, data, media) in list(stability.results.items()):
        stability.results[result_id] = (0, data, media)
    async with serving(settings, first.key) as second:
        done = await finished(second, answer.json()["request_id"])
        assert done["status"] == "COMPLETED", done
        assert await charges(second) == [Decimal("0.6")]
    (call,) = stability.calls_to("upscale/creative")  # submitted once across the restart
    assert call.headers["authorization"] == "Bearer sk-stab-restart"


async def test_fanned_out_bria_jobs_are_each_resumed_after_a_restart(settings: Settings) -> None:
    """``num_results`` fans out into one Bria job per image: each is kept with the task, and
    the second start polls both, submitting neither again."""
    bria.pending_polls = 10_000
    async with serving(settings) as first:
        answer = await first.client.post(
            "/bria/image/edit/remove_background",
            json={"image": data_uri(picture()), "model": "bria-fibo", "num_results": 2},
            headers=first.auth,
        )
        assert answer.status_code == 202, answer.text
        await until(lambda: len(bria.calls_to("submit")) == 2 and bria.calls_to("poll"))
        await asyncio.sleep(0.1)  # both jobs kept in the task's row
    bria.pending_polls = 0
    for job in bria.jobs.values():
        job.polls_left = 0
    async with serving(settings, first.key) as second:
        done = await finished(second, answer.json()["request_id"])
        assert done["status"] == "COMPLETED", done
        assert len(await charges(second)) == 1
    assert len(bria.calls_to("submit")) == 2
