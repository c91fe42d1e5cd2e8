"""Imagegate's Midjourney routes relayed 1:1 to a midjourney-proxy relay (a fake on loopback):
set ``MIDJOURNEY_PROXY_URL`` and ``MIDJOURNEY_PROXY_SECRET`` and an existing Midjourney client
works unchanged, with imagegate's task ids, image links, webhooks and prices."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from PIL import Image

from imagegate.app import create_app
from imagegate.providers.fakes import Blocked, FakeMidjourneyProxy
from imagegate.providers.fakes.midjourney import scripted_code
from imagegate.settings import Settings
from imagegate.storage.tables import ledger
from tests.api.fronts_kit import data_uri, encode
from tests.api.mj_kit import button, image_of, press, submit, wait
from tests.api.refusal_kit import ReleaseSpy, assert_given_back_once, error_rows
from tests.conftest import ADMIN_KEY, Gateway
from tests.providers.upstream_kit import running

SECRET = "relay-secret-123"
relay = FakeMidjourneyProxy(SECRET)
# The built-in `midjourney` deployment, polled every 50 ms instead of every 2 s.
CONFIG = """
[[models]]
id = "midjourney"

[[models.deployments]]
provider = "midjourney-proxy"
model = "midjourney"
credentials = { api_key = ["MIDJOURNEY_PROXY_SECRET"] }
base_url_env = "MIDJOURNEY_PROXY_URL"
options = { poll_interval = 0.05 }
"""


@pytest.fixture(scope="module")
def relay_url() -> Iterator[str]:
    with running(relay) as base:
        yield base


@pytest.fixture
def relay_settings(tmp_path: Path, relay_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A gateway's settings with the relay configured, as an operator would (fresh relay)."""
    relay.reset()
    monkeypatch.setenv("MIDJOURNEY_PROXY_URL", relay_url)
    monkeypatch.setenv("MIDJOURNEY_PROXY_SECRET", SECRET)
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
    """A gateway on ``settings`` with a client key (``key``, or a new one)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        if key is None:
            _, key = await app.state.services.keys.create(name="relay tests")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield Gateway(app, client, key)


@pytest.fixture
async def gateway(relay_settings: Settings) -> AsyncIterator[Gateway]:
    async with serving(relay_settings) as gw:
        yield gw


def relayed(kind: str) -> list[dict[str, Any]]:
    """The bodies the relay received on ``/mj/submit/<kind>``."""
    return [c.json for c in relay.calls_to("submit") if c.path.endswith(f"/{kind}")]


async def charges(gw: Gateway) -> list[Decimal]:
    async with gw.services.engine.connect() as conn:
        rows = await conn.execute(sa.select(ledger.c.amount_usd).where(ledger.c.kind == "charge"))
        return sorted(-Decimal(str(amount)) for (amount,) in rows)


async def test_imagine_then_upscale_relay_one_to_one(gateway: Gateway) -> None:
    auth = gateway.auth
    body = {"prompt": "a lighthouse --ar 16:9", "state": "mine", "notifyHook": "https://x.test/h"}
    answer = await submit(gateway.client, "/mj/submit/imagine", body, auth)
    assert answer["code"] == 1
    (sent,) = relayed("imagine")
    assert sent == {"prompt": "a lighthouse --ar 16:9", "state": "mine"}  # the hook stays here
    relay_id = next(iter(relay.tasks))
    assert answer["result"] != relay_id

    grid = await wait(gateway.client, answer["result"], auth)
    assert grid["status"] == "SUCCESS" and grid["action"] == "IMAGINE"
    assert grid["id"] == answer["result"] and grid["state"] == "mine"
    assert grid["imageUrl"].startswith("http://gateway.test/mj/image/")
    assert (await image_of(gateway.client, grid)).size == relay_image_size(relay_id)
    assert [b["customId"] for b in grid["buttons"]] == [
        b["customId"] for b in relay.tasks[relay_id]["buttons"]
    ]
    assert grid["properties"]["model"] == "midjourney"

    pressed = await press(gateway.client, grid, "U2", auth)
    assert pressed["code"] == 1
    (action,) = relayed("action")
    assert action == {"taskId": relay_id, "customId": f"MJ::JOB::upsample::2::{relay_id}"}
    upscaled = await wait(gateway.client, pressed["result"], auth)
    assert upscaled["status"] == "SUCCESS" and upscaled["action"] == "UPSCALE"
    assert upscaled["properties"]["parentId"] == grid["id"]
    assert {b["label"] for b in upscaled["buttons"]} >= {"Vary (Region)", "Custom Zoom"}
    assert await charges(gateway) == [Decimal("0.02"), Decimal("0.05")]  # per action, once


def relay_image_size(relay_id: str) -> tuple[int, int]:
    url = relay.tasks[relay_id]["imageUrl"]
    data = httpx.get(url, timeout=10).content
    return Image.open(io.BytesIO(data)).size


async def test_a_button_that_opens_a_modal_waits_for_its_input(gateway: Gateway) -> None:
    auth = gateway.auth
    answer = await submit(gateway.client, "/mj/submit/imagine", {"prompt": "a cat"}, auth)
    grid = await wait(gateway.client, answer["result"], auth)
    pressed = await press(gateway.client, grid, "U1", auth)
    upscaled = await wait(gateway.client, pressed["result"], auth)

    region = await press(gateway.client, upscaled, "Vary (Region)", auth)
    assert region["code"] == 21
    waiting = (await gateway.client.get(f"/mj/task/{region['result']}/fetch", headers=auth)).json()
    assert waiting["status"] == "MODAL"

    mask = base64.b64encode(encode(Image.new("L", (64, 64), 255))).decode()
    given = await submit(
        gateway.client,
        "/mj/submit/modal",
        {"taskId": region["result"], "prompt": "a hat", "maskBase64": mask},
        auth,
    )
    assert given == {**given, "code": 1, "result": region["result"]}
    (modal,) = relayed("modal")
    relay_modal_id = next(i for i, t in relay.tasks.items() if t["action"] == "INPAINT")
    assert modal == {"taskId": relay_modal_id, "prompt": "a hat", "maskBase64": mask}
    repainted = await wait(gateway.client, region["result"], auth)
    assert repainted["status"] == "SUCCESS" and repainted["action"] == "INPAINT"
    assert repainted["prompt"] == "a hat"
    assert await charges(gateway) == [Decimal("0.02"), Decimal("0.05"), Decimal("0.05")]


async def test_describe_shows_the_relays_prompts(gateway: Gateway) -> None:
    image = data_uri(encode(Image.new("RGB", (32, 32))))
    answer = await submit(gateway.client, "/mj/submit/describe", {"base64": image}, gateway.auth)
    task = await wait(gateway.client, answer["result"], gateway.auth)
    assert task["status"] == "SUCCESS" and task["action"] == "DESCRIBE"
    assert "a described picture, variant 1" in task["promptEn"]
    assert task["imageUrl"] == ""
    assert relayed("describe") == [{"base64": image}]


@pytest.mark.parametrize(
    ("step", "code"), [(Blocked("banned word"), 24), (scripted_code(23, "queue full"), 23)]
)
async def test_the_relays_refusals_keep_their_codes_and_cost_nothing(
    gateway: Gateway, step: Any, code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = ReleaseSpy(gateway, monkeypatch)
    relay.script("submit", step)
    answer = await submit(gateway.client, "/mj/submit/imagine", {"prompt": "x"}, gateway.auth)
    assert answer["code"] == code and answer["result"] is None
    assert await charges(gateway) == []
    tasks = await gateway.services.tasks.get_many([], gateway.key)
    assert tasks == []
    key_id = await key_id_of(gateway)
    await assert_given_back_once(gateway, spy, key_id)  # the refused submit's hold, once
    assert [model for _, model in await error_rows(gateway, key_id)] == ["midjourney"]


async def test_a_modal_the_relay_refuses_gives_its_hold_back_once(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = gateway.auth
    spy = ReleaseSpy(gateway, monkeypatch)
    answer = await submit(gateway.client, "/mj/submit/imagine", {"prompt": "a cat"}, auth)
    grid = await wait(gateway.client, answer["result"], auth)
    upscaled = await wait(
        gateway.client, (await press(gateway.client, grid, "U1", auth))["result"], auth
    )
    region = await press(gateway.client, upscaled, "Vary (Region)", auth)
    assert region["code"] == 21  # parked: its hold went back, quietly, until the modal

    relay.script("submit", Blocked("banned word"))
    mask = base64.b64encode(encode(Image.new("L", (64, 64), 255))).decode()
    body = {"taskId": region["result"], "prompt": "a hat", "maskBase64": mask}
    refused = await submit(gateway.client, "/mj/submit/modal", body, auth)
    assert refused["code"] == 24
    key_id = await key_id_of(gateway)
    await assert_given_back_once(gateway, spy, key_id)
    assert len(spy.released) == 2  # the parked action's hold and the refused modal's
    assert [model for _, model in await error_rows(gateway, key_id)] == ["midjourney"]


async def key_id_of(gateway: Gateway) -> str:
    key = await gateway.services.keys.authenticate(gateway.key)
    assert key is not None
    return key.id


async def test_buttons_and_tasks_are_checked_here_first(gateway: Gateway) -> None:
    auth = gateway.auth
    answer = await submit(gateway.client, "/mj/submit/imagine", {"prompt": "a dog"}, auth)
    grid = await wait(gateway.client, answer["result"], auth)
    foreign = await submit(
        gateway.client,
        "/mj/submit/action",
        {"taskId": grid["id"], "customId": "MJ::JOB::upsample::1::0000000000000000"},
        auth,
    )
    assert foreign["code"] == 4 and "customId" in foreign["description"]
    unknown = await gateway.client.post(
        "/mj/submit/action",
        json={"taskId": "no-such-task", "customId": button(grid, "U1")},
        headers=auth,
    )
    assert unknown.status_code == 404  # as for tasks drawn here
    assert unknown.json()["error"]["code"] == "task_not_found"
    not_modal = await submit(
        gateway.client, "/mj/submit/modal", {"taskId": grid["id"], "prompt": "x"}, auth
    )
    assert not_modal["code"] == 4
    assert relayed("action") == [] and relayed("modal") == []


async def test_a_relayed_task_survives_a_restart_and_is_never_submitted_twice(
    relay_settings: Settings,
) -> None:
    """The gateway stops while the relay is still drawing; the next start polls the same relay
    task and delivers it once."""
    async with serving(relay_settings) as first:
        answer = await submit(first.client, "/mj/submit/imagine", {"prompt": "a fox"}, first.auth)
        (relay_id,) = relay.tasks
        relay.pending(relay_id, 10_000)
        while not relay.calls_to("fetch"):
            await asyncio.sleep(0.02)
    relay.pending(relay_id, 0)

    async with serving(relay_settings, first.key) as second:
        task = await wait(second.client, answer["result"], second.auth)
        assert task["status"] == "SUCCESS" and task["imageUrl"]
        assert len(relayed("imagine")) == 1
        assert await charges(second) == [Decimal("0.05")]


async def test_other_front_ends_get_the_relays_grid(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/images/generations",
        json={"model": "midjourney", "prompt": "a boat", "size": "1456x816"},
        headers=gateway.auth,
    )
    assert response.status_code == 200, response.text
    (sent,) = relayed("imagine")
    assert sent["prompt"] == "a boat --ar 16:9"
    assert len(response.json()["data"]) == 1


async def test_without_the_relays_url_the_model_is_unavailable_and_the_routes_draw_here(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay.reset()
    monkeypatch.delenv("MIDJOURNEY_PROXY_URL", raising=False)
    monkeypatch.setenv("MIDJOURNEY_PROXY_SECRET", SECRET)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        _, key = await app.state.services.keys.create(name="no relay")
        auth = {"Authorization": f"Bearer {key}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            models = (await client.get("/api/models?all=true")).json()["data"]
            answer = await submit(client, "/mj/submit/imagine", {"prompt": "a fox --q .25"}, auth)
            task = await wait(client, answer["result"], auth)
    assert not next(m for m in models if m["id"] == "midjourney")["available"]
    assert task["status"] == "SUCCESS" and task["properties"]["model"] == "sketch"
    assert relay.calls == []


async def test_image_seed_is_the_relays(gateway: Gateway) -> None:
    answer = await submit(gateway.client, "/mj/submit/imagine", {"prompt": "a cat"}, gateway.auth)
    await wait(gateway.client, answer["result"], gateway.auth)
    (relay_id,) = relay.tasks
    seed = await gateway.client.get(f"/mj/task/{answer['result']}/image-seed", headers=gateway.auth)
    assert seed.json() == {
        "code": 1,
        "description": "success",
        "result": str(int(relay_id) % 4_294_967_296),
    }


async def test_a_speed_prefix_reaches_the_relay_as_its_mode_and_sets_the_price(
    gateway: Gateway,
) -> None:
    path = "/mj-relax/mj/submit/imagine"
    answer = await submit(gateway.client, path, {"prompt": "a cow"}, gateway.auth)
    task = await wait(gateway.client, answer["result"], gateway.auth)
    assert task["properties"]["speed"] == "relax"
    assert relayed("imagine") == [{"prompt": "a cow", "accountFilter": {"modes": ["RELAX"]}}]
    assert await charges(gateway) == [Decimal("0.02")]  # relax:IMAGINE


async def test_a_relay_task_that_never_ends_fails_after_the_deployments_timeout(
    relay_settings: Settings,
) -> None:
    assert relay_settings.config is not None
    relay_settings.config.write_text(CONFIG.replace("options =", "timeout = 0.5\noptions ="))
    async with serving(relay_settings) as gw:
        answer = await submit(gw.client, "/mj/submit/imagine", {"prompt": "a slow"}, gw.auth)
        (relay_id,) = relay.tasks
        relay.pending(relay_id, 10_000)
        task = await wait(gw.client, answer["result"], gw.auth)
        assert task["status"] == "FAILURE" and "did not finish" in task["failReason"]
        assert await charges(gw) == []
