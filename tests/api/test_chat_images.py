"""Images through ``POST /v1/chat/completions`` (spec §11): OpenRouter's answer shape, earlier
turns' images as edit inputs, ``image_config`` sizes, billing as the image routes, and clear 4xx
for what is not an image request."""

from __future__ import annotations

import base64
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from imagegate.errors import UpstreamError
from imagegate.settings import Settings
from imagegate.storage.tables import assets, ledger, usage
from tests.api.fronts_kit import TEST_MODELS, data_uri, decode, picture
from tests.conftest import ADMIN_KEY, Gateway

CHAT = "/v1/chat/completions"
DESCRIBER = """
[[models]]
id = "describer"
name = "Describes images only (test)"
provider = "imagegate"
provider_code = "local"
created = 1764115200
features = ["image-to-text"]

[[models.deployments]]
provider = "local"
model = "sketch"
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    config = tmp_path / "models.toml"
    config.write_text(TEST_MODELS + DESCRIBER)
    return Settings(data_dir=tmp_path / "data", admin_key=ADMIN_KEY, config=config)


def user(*parts: Any) -> dict[str, Any]:
    content = [p if isinstance(p, dict) else {"type": "text", "text": p} for p in parts]
    return {"role": "user", "content": content}


def image_part(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def images_of(body: dict[str, Any]) -> list[tuple[str, bytes]]:
    (choice,) = body["choices"]
    found = []
    for item in choice["message"]["images"]:
        assert item["type"] == "image_url"
        head, _, data = item["image_url"]["url"].partition(",")
        found.append((head, base64.b64decode(data)))
    return found


async def money(gateway: Gateway) -> list[str]:
    async with gateway.services.engine.connect() as conn:
        rows = await conn.execute(sa.select(ledger.c.kind))
        return [kind for (kind,) in rows]


async def test_a_prompt_answers_openrouters_shape_and_is_billed_as_an_image(
    priced_gateway: Gateway,
) -> None:
    gateway = priced_gateway
    response = await gateway.client.post(
        CHAT,
        json={
            "model": "sketch",
            "messages": [
                {"role": "system", "content": "You draw."},
                {"role": "user", "content": "a yellow sun"},
            ],
            "modalities": ["image", "text"],
            "size": "256x256",
            "n": 2,
            "temperature": 0.7,
        },
        headers=gateway.auth,
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-imagegate-ignored-params"] == "temperature"
    body = response.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "sketch"
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == "Here is a picture of the yellow sun."  # its text
    found = images_of(body)
    assert [head for head, _ in found] == ["data:image/png;base64"] * 2
    assert decode(found[0][1]).size == (256, 256)
    usage_body = body["usage"]
    assert (
        usage_body["total_tokens"] == usage_body["prompt_tokens"] + usage_body["completion_tokens"]
        and usage_body["completion_tokens"] > 0
    )
    await gateway.services.usage.flush()
    async with gateway.services.engine.connect() as conn:
        (row,) = (await conn.execute(sa.select(usage.c.route, usage.c.images))).all()
        stored = await conn.scalar(sa.select(sa.func.count()).select_from(assets))
        charged = await conn.scalar(sa.select(ledger.c.amount_usd).where(ledger.c.kind == "charge"))
    assert tuple(row) == (CHAT, 2) and stored == 2 and Decimal(str(charged)) < 0


async def test_earlier_images_feed_an_edit_the_latest_first(gateway: Gateway) -> None:
    earlier = data_uri(picture((256, 256)))
    messages = [
        user("draw a square"),
        {"role": "assistant", "content": "", "images": [image_part(earlier)]},
        user("now make it blue"),
    ]
    response = await gateway.client.post(
        CHAT,
        json={"model": "sketch", "messages": messages, "size": "256x256"},
        headers=gateway.auth,
    )
    assert response.status_code == 200, response.text
    assert "x-imagegate-ignored-params" not in response.headers
    broken = [messages[0], {**messages[1], "images": [image_part("data:image/png;base64,!!!")]}]
    response = await gateway.client.post(
        CHAT,
        json={"model": "sketch", "messages": [*broken, messages[2]]},
        headers=gateway.auth,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "messages[1].images[0].image_url"


async def test_a_model_that_only_draws_ignores_input_images(gateway: Gateway) -> None:
    messages = [user("a red kite", image_part("data:image/png;base64,!!!"))]
    response = await gateway.client.post(
        CHAT, json={"model": "plain", "messages": messages}, headers=gateway.auth
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-imagegate-ignored-params"] == "image_url"


@pytest.mark.parametrize(
    ("config", "size"),
    [
        ({"aspect_ratio": "16:9"}, (1344, 768)),  # sketch's free sizes: Gemini's 16:9 at 1K
        ({"aspect_ratio": "1:1", "image_size": "1K"}, (1024, 1024)),
    ],
)
async def test_image_config_picks_the_size(
    gateway: Gateway, config: dict[str, str], size: tuple[int, int]
) -> None:
    response = await gateway.client.post(
        CHAT,
        json={"model": "sketch", "messages": [user("a boat")], "image_config": config},
        headers=gateway.auth,
    )
    assert response.status_code == 200, response.text
    ((_, data),) = images_of(response.json())
    assert decode(data).size == size


async def test_free_range_models_take_the_exact_ratio(gateway: Gateway) -> None:
    response = await gateway.client.post(
        CHAT,
        json={
            "model": "plain",
            "messages": [user("a boat")],
            "image_config": {"aspect_ratio": "4:3", "image_size": "1K"},
        },
        headers=gateway.auth,
    )
    assert response.status_code == 200, response.text
    ((_, data),) = images_of(response.json())
    width, height = decode(data).size
    assert width / height == pytest.approx(4 / 3, rel=0.05)


@pytest.mark.parametrize(
    ("body", "status", "param", "code"),
    [
        ({"model": "sketch"}, 400, "messages", None),
        ({"model": "sketch", "messages": []}, 400, "messages", None),
        ({"model": "sketch", "messages": [{"role": "system", "content": "x"}]}, 400,
         "messages", None),
        ({"model": "sketch", "messages": [user(image_part("https://x.test/a.png"))]}, 400,
         "messages[0].content", None),
        ({"model": "nope", "messages": [user("x")]}, 404, "model", "model_not_found"),
        ({"model": "describer", "messages": [user("x")]}, 400, "model", "model_not_supported"),
        ({"model": "sketch", "messages": [user("x")], "size": "999x999"}, 400, "size", None),
        ({"model": "sketch", "messages": [user("x")], "modalities": ["text"]}, 400,
         "modalities", None),
        ({"model": "sketch", "messages": [user("x")], "image_config": {"image_size": "8K"}},
         400, "image_config.image_size", None),
        ({"model": "sketch", "messages": [user("x")], "image_config": {"aspect_ratio": "wide"}},
         400, "image_config.aspect_ratio", None),
        ({"model": "sketch", "messages": [user("x", image_part("data:image/png;base64,AAAA"))]},
         400, "messages[0].content[1].image_url", None),
        ({"model": "sketch", "messages": [user("x", image_part("http://127.0.0.1:9/a.png"))]},
         400, "messages[0].content[1].image_url", None),
        ({"model": "sketch", "messages": [user("x", {"type": "image_url"})]},
         400, "messages[0].content[1].image_url", None),
        ({"model": "sketch", "messages": [user("x")], "n": 11}, 400, "n", None),
    ],
)  # fmt: skip
async def test_bad_chat_requests_are_4xx_in_openais_envelope_and_free(
    gateway: Gateway, body: dict[str, Any], status: int, param: str, code: str | None
) -> None:
    response = await gateway.client.post(CHAT, json=body, headers=gateway.auth)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == param and "(request id: " in error["message"]
    if code is not None:
        assert error["code"] == code
    assert await money(gateway) == []


async def test_the_key_is_required(gateway: Gateway) -> None:
    response = await gateway.client.post(CHAT, json={"model": "sketch", "messages": [user("x")]})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


async def test_an_idempotent_retry_is_answered_once_and_charged_once(gateway: Gateway) -> None:
    headers = {**gateway.auth, "Idempotency-Key": "chat-once"}
    body = {"model": "sketch", "messages": [user("a tree")], "size": "256x256"}
    first = await gateway.client.post(CHAT, json=body, headers=headers)
    again = await gateway.client.post(CHAT, json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert await money(gateway) == ["charge"]


async def test_a_stream_sends_delta_images_then_done_and_a_failure_as_an_error_chunk(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {"model": "sketch", "messages": [user("a tree")], "size": "256x256", "stream": True}
    response = await gateway.client.post(CHAT, json=body, headers=gateway.auth)
    assert response.status_code == 200, response.text
    events = [line.removeprefix("data: ") for line in response.text.split("\n") if line]
    assert events[-1] == "[DONE]"
    first, last = (orjson.loads(event) for event in events[-3:-1])
    assert first["object"] == "chat.completion.chunk" and first["choices"][0]["delta"]["images"]
    assert last["choices"][0]["finish_reason"] == "stop" and last["usage"]["total_tokens"] > 0

    async def broken(*_: Any) -> None:
        raise UpstreamError("the upstream broke", code="upstream_bad_response")

    monkeypatch.setattr(gateway.services.images.router, "generate", broken)
    response = await gateway.client.post(CHAT, json=body, headers=gateway.auth)
    assert response.status_code == 200  # sent before the drawing started
    (event,) = [line for line in response.text.split("\n") if line.startswith("data: ")]
    error = orjson.loads(event.removeprefix("data: "))["error"]
    assert error["type"] == "upstream_error" and error["code"] == "upstream_bad_response"
    assert (await money(gateway)).count("charge") == 1  # the first stream only
