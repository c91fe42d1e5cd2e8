"""Helpers for the Midjourney tests: submit, press a button, poll until done, read images."""

from __future__ import annotations

import asyncio
import base64
import io
import time
from typing import Any

import httpx
from PIL import Image, ImageChops, ImageStat

DONE = ("SUCCESS", "FAILURE", "CANCEL")
SMALL = "--q .25"
"""Smallest pictures: 256×256 quadrants on the sketch model, so tests stay fast."""


async def submit(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    """A submit's answer (always HTTP 200 for request problems)."""
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert set(answer) == {"code", "description", "result", "properties"}
    return answer


async def wait(
    client: httpx.AsyncClient, task_id: str, headers: dict[str, str], timeout: float = 30
) -> dict[str, Any]:
    """Poll ``fetch`` until the task is finished; the finished task object."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(f"/mj/task/{task_id}/fetch", headers=headers)
        assert response.status_code == 200, response.text
        task: dict[str, Any] = response.json()
        if task["status"] in DONE:
            return task
        assert time.monotonic() < deadline, f"task stuck in {task['status']}"
        await asyncio.sleep(0.03)


async def imagine(
    client: httpx.AsyncClient, prompt: str, headers: dict[str, str], **body: Any
) -> dict[str, Any]:
    """Submit an imagine and wait for it to succeed."""
    answer = await submit(client, "/mj/submit/imagine", {"prompt": prompt, **body}, headers)
    assert answer["code"] in (1, 22), answer
    task = await wait(client, answer["result"], headers)
    assert task["status"] == "SUCCESS", task
    return task


def button(task: dict[str, Any], name: str) -> str:
    """The customId of the button labelled (or with the emoji) ``name``."""
    for item in task["buttons"]:
        if name in (item["label"], item["emoji"]):
            return str(item["customId"])
    raise AssertionError(f"no button {name!r} in {[b['label'] for b in task['buttons']]}")


async def press(
    client: httpx.AsyncClient, task: dict[str, Any], name: str, headers: dict[str, str]
) -> dict[str, Any]:
    """Press a button; the submit answer."""
    body = {"taskId": task["id"], "customId": button(task, name)}
    return await submit(client, "/mj/submit/action", body, headers)


async def run_button(
    client: httpx.AsyncClient, task: dict[str, Any], name: str, headers: dict[str, str]
) -> dict[str, Any]:
    """Press a button and wait for the task it made to succeed."""
    answer = await press(client, task, name, headers)
    assert answer["code"] in (1, 22), answer
    done = await wait(client, answer["result"], headers)
    assert done["status"] == "SUCCESS", done
    return done


async def image_of(client: httpx.AsyncClient, task: dict[str, Any]) -> Image.Image:
    """The task's image, fetched through its signed ``imageUrl`` without a key."""
    response = await client.get(task["imageUrl"])
    assert response.status_code == 200, response.text
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


def data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def quadrant(grid: Image.Image, index: int) -> Image.Image:
    width, height = grid.width // 2, grid.height // 2
    left, top = ((index - 1) % 2) * width, ((index - 1) // 2) * height
    return grid.crop((left, top, left + width, top + height))


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel value (0–255) of two same-size images."""
    assert a.size == b.size
    channels = ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean
    return sum(channels) / len(channels)
