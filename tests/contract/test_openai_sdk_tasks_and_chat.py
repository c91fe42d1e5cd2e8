"""The official ``openai`` SDK against a live gateway for imagegate's two OpenAI extensions:
async image tasks (``Prefer: respond-async`` through ``extra_headers``, then polling and the SSE
events stream) and images through chat completions (plain and streamed)."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, cast

import httpx
import openai
import orjson
import pytest
from openai.types import ImagesResponse
from PIL import Image

from tests.conftest import LiveServer

ASYNC = {"Prefer": "respond-async"}


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{live_server.base_url}/v1", api_key=live_server.key, max_retries=0
    ) as sdk:
        yield sdk


def wait_for(client: openai.OpenAI, task_id: str) -> dict[str, Any]:
    for _ in range(300):
        # ``cast_to=object`` gives the JSON body back as parsed: a task object.
        task = cast("dict[str, Any]", client.get(f"/images/tasks/{task_id}", cast_to=object))
        if task["status"] in ("succeeded", "failed", "canceled"):
            return task
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish")


def image_of(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def test_an_async_generation_polled_with_the_sdk(client: openai.OpenAI) -> None:
    raw = client.images.with_raw_response.generate(
        model="sketch", prompt="a green hill", size="256x256", extra_headers=ASYNC
    )
    assert raw.status_code == 202
    task = orjson.loads(raw.content)
    assert task["object"] == "image.task" and task["status"] == "queued"
    done = wait_for(client, task["id"])
    assert done["status"] == "succeeded"
    result = ImagesResponse.model_validate(done["result"])
    assert result.data and result.data[0].b64_json and result.usage
    assert image_of(result.data[0].b64_json).size == (256, 256)
    assert result.size == "256x256" and result.output_format == "png"


def test_an_async_edit_with_the_sdk_body_flag(client: openai.OpenAI) -> None:
    picture = io.BytesIO()
    Image.new("RGB", (256, 256), (200, 40, 40)).save(picture, "PNG")
    raw = client.images.with_raw_response.edit(
        model="sketch",
        image=("in.png", picture.getvalue(), "image/png"),
        prompt="add a moon",
        size="256x256",
        extra_body={"async": True},
    )
    assert raw.status_code == 202, raw.content
    done = wait_for(client, orjson.loads(raw.content)["id"])
    assert done["status"] == "succeeded" and len(done["result"]["data"]) == 1


def test_the_events_stream_shows_progress_partials_and_the_result(
    client: openai.OpenAI, live_server: LiveServer
) -> None:
    engine = live_server.services.tasks
    running = engine.settings
    engine.settings = replace(running, concurrency=0)  # queued until the stream is watching
    try:
        raw = client.images.with_raw_response.generate(
            model="sketch",
            prompt="a white moon and stars",
            size="256x256",
            partial_images=2,
            extra_headers=ASYNC,
        )
        task = orjson.loads(raw.content)
        events: list[tuple[str, dict[str, Any]]] = []
        headers = {"Authorization": f"Bearer {live_server.key}"}
        with httpx.stream("GET", task["urls"]["events"], headers=headers, timeout=30) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            name = ""
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    events.append((name, orjson.loads(line.removeprefix("data: "))))
                    engine.settings = running  # watching now: let the workers claim it
    finally:
        engine.settings = running
    names = [name for name, _ in events]
    assert names[0] == "image.task.progress" and events[0][1]["status"] == "queued"
    assert names.count("image.task.partial_image") == 2
    assert names[-1] == "image.task.completed" and names.count("image.task.completed") == 1
    final = events[-1][1]
    assert final["status"] == "succeeded" and final["id"] == task["id"]
    partial = next(body for name, body in events if name == "image.task.partial_image")
    assert image_of(partial["b64_json"]).size == (256, 256)
    assert image_of(final["result"]["data"][0]["b64_json"]).size == (256, 256)


def test_another_keys_task_is_not_found_for_the_sdk(
    client: openai.OpenAI, live_server: LiveServer
) -> None:
    raw = client.images.with_raw_response.generate(
        model="sketch", prompt="x", size="256x256", extra_headers=ASYNC
    )
    task_id = orjson.loads(raw.content)["id"]
    other = httpx.post(
        f"{live_server.base_url}/admin/keys",
        json={"name": "other sdk user"},
        headers={"Authorization": "Bearer test-admin-key-0123456789"},
    ).json()["key"]
    with openai.OpenAI(
        base_url=f"{live_server.base_url}/v1", api_key=other, max_retries=0
    ) as stranger:
        with pytest.raises(openai.NotFoundError):
            stranger.get(f"/images/tasks/{task_id}", cast_to=object)
        with pytest.raises(openai.NotFoundError):
            stranger.post(f"/images/tasks/{task_id}/cancel", cast_to=object)
    wait_for(client, task_id)


def test_chat_completions_answer_images(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="sketch",
        messages=[{"role": "user", "content": "a blue square"}],
        extra_body={"modalities": ["image", "text"], "size": "256x256"},
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and completion.usage is not None
    images = (choice.message.model_extra or {})["images"]
    url = images[0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert image_of(url.partition(",")[2]).size == (256, 256)


def test_chat_completions_stream_delta_images(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="sketch",
        messages=[{"role": "user", "content": [{"type": "text", "text": "a red circle"}]}],
        stream=True,
        extra_body={"image_config": {"aspect_ratio": "1:1"}},
    )
    chunks = list(stream)
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    images = [
        image
        for chunk in chunks
        for choice in chunk.choices
        for image in (choice.delta.model_extra or {}).get("images") or []
    ]
    assert len(images) == 1
    data = images[0]["image_url"]["url"].partition(",")[2]
    assert image_of(data).size == (1024, 1024)
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].usage is not None


def test_chat_refusals_are_sdk_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(
            model="sketch",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "edit this"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,%%%"}},
                    ],
                }
            ],
        )
    assert bad.value.status_code == 400
