"""The OpenAI images body with an upstream's base64 spliced in is the body orjson renders."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import orjson
import pybase64
from starlette.responses import Response
from starlette.types import Message

from imagegate.core.generation import Delivery
from imagegate.core.requests import GeneratedImage
from imagegate.fronts.http.responses import PartsResponse
from imagegate.fronts.openai.render import render_images, render_images_json


def _delivery(*images: GeneratedImage) -> Delivery:
    request = SimpleNamespace(output_format="png", size="1024x1024", quality="low")
    prepared = SimpleNamespace(
        validated=SimpleNamespace(request=request, response_format="b64_json"), entry=None
    )
    result = SimpleNamespace(images=list(images), quality="low", background="opaque", usage=None)
    assets = [SimpleNamespace(id=f"asset_{i}") for i in range(len(images))]
    return cast(Delivery, SimpleNamespace(prepared=prepared, result=result, assets=assets))


def _loaded(body: bytes) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(body)
    loaded.pop("created")
    return loaded


def test_kept_text_is_spliced_where_orjson_would_write_it() -> None:
    kept = bytes(range(256)) * 30
    upstream = b'{"b64_json":"' + pybase64.b64encode(kept) + b'"}'
    view = memoryview(upstream)[13:-2]
    images = (
        GeneratedImage(kept, "png", 64, 64, 'a "quoted" \x00 prompt', view),
        GeneratedImage(b"\x89PNG other", "png", 64, 64, None, "c3Ry"),
        GeneratedImage(b"\x89PNG fresh", "png", 64, 64),
        GeneratedImage(kept[::-1], "png", 64, 64, None, memoryview(pybase64.b64encode(kept[::-1]))),
    )
    delivery = _delivery(*images)
    spliced = render_images_json(delivery, str)
    assert _loaded(spliced) == _loaded(orjson.dumps(render_images(delivery, str)))
    assert _loaded(spliced)["data"][0]["b64_json"] == bytes(view).decode()


async def test_a_parts_response_sends_what_the_joined_response_sends() -> None:
    parts: list[bytes | memoryview] = [b'{"a":"', memoryview(b"xxQUFByy")[2:6], b'"}']
    headers = {"x-imagegate-ignored-params": "style"}
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await PartsResponse(parts, media_type="application/json", headers=headers)({}, _nothing, send)
    joined = Response(b"".join(parts), media_type="application/json", headers=headers)
    assert sorted(sent[0]["headers"]) == sorted(joined.raw_headers)
    assert b"".join(m["body"] for m in sent[1:]) == joined.body == b'{"a":"QUFB"}'
    assert [m["more_body"] for m in sent[1:]] == [True, True, False]


async def _nothing() -> Message:
    return {"type": "http.disconnect"}
