"""Midjourney flows over HTTP on the built-in renderer: every button does what it says."""

from __future__ import annotations

import io
import itertools
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from PIL import Image, ImageChops, ImageDraw

from imagegate.storage.tables import usage
from tests.api.mj_kit import (
    SMALL,
    button,
    data_uri,
    image_of,
    imagine,
    mean_difference,
    press,
    quadrant,
    run_button,
    submit,
    wait,
)
from tests.conftest import Gateway

GRID_BUTTONS = ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
UPSCALE_BUTTONS = [
    "Upscale (Subtle)",
    "Upscale (Creative)",
    "Vary (Subtle)",
    "Vary (Strong)",
    "Vary (Region)",
    "Zoom Out 2x",
    "Zoom Out 1.5x",
    "Custom Zoom",
    "⬅️",
    "➡️",
    "⬆️",
    "⬇️",
]


def names(task: dict[str, Any]) -> list[str]:
    buttons: list[dict[str, str]] = task["buttons"]
    return [b["label"] or b["emoji"] for b in buttons]


async def test_imagine_then_u2_then_vary_region_repaints_only_the_masked_area(
    gateway: Gateway,
) -> None:
    client, auth = gateway.client, gateway.auth
    grid_task = await imagine(client, f"a red house under a yellow sun {SMALL} --seed 7", auth)
    assert grid_task["action"] == "IMAGINE" and grid_task["progress"] == "100%"
    assert names(grid_task) == GRID_BUTTONS
    assert button(grid_task, "U1") == f"MJ::JOB::upsample::1::{grid_task['id'].replace('-', '')}"
    assert grid_task["properties"]["finalPrompt"].endswith("--q 0.25 --seed 7")
    assert grid_task["submitTime"] <= grid_task["startTime"] <= grid_task["finishTime"]
    grid = await image_of(client, grid_task)
    assert grid.size == (512, 512)

    upscaled_task = await run_button(client, grid_task, "U2", auth)
    assert upscaled_task["action"] == "UPSCALE" and names(upscaled_task) == UPSCALE_BUTTONS
    upscaled = await image_of(client, upscaled_task)
    assert upscaled.size == (512, 512)  # quadrant 2 (256×256) at twice the size
    second = quadrant(grid, 2).resize((512, 512))
    third = quadrant(grid, 3).resize((512, 512))
    assert mean_difference(upscaled, second) < mean_difference(upscaled, third)

    answer = await press(client, upscaled_task, "Vary (Region)", auth)
    assert answer["code"] == 21
    modal_id = answer["result"]
    waiting = (await client.get(f"/mj/task/{modal_id}/fetch", headers=auth)).json()
    assert waiting["status"] == "MODAL" and waiting["action"] == "INPAINT"

    mask = Image.new("L", upscaled.size, 0)  # white = repaint, black = keep
    ImageDraw.Draw(mask).rectangle((128, 128, 383, 383), fill=255)
    body = {"taskId": modal_id, "prompt": "a big blue circle", "maskBase64": data_uri(mask)}
    assert (await submit(client, "/mj/submit/modal", body, auth))["code"] == 1
    inpainted = await wait(client, modal_id, auth)
    assert inpainted["status"] == "SUCCESS" and names(inpainted) == GRID_BUTTONS
    result = await image_of(client, inpainted)
    assert result.size == (1024, 1024)
    keep = ImageChops.invert(mask).convert("1")
    for index in range(1, 5):
        picture = quadrant(result, index).convert("RGB")
        changed = ImageChops.difference(picture, upscaled.convert("RGB")).convert("L")
        assert ImageChops.multiply(changed, keep.convert("L")).getbbox() is None  # kept exactly
        inside = picture.crop((136, 136, 376, 376))
        assert mean_difference(inside, upscaled.crop((136, 136, 376, 376))) > 5


async def test_grid_buttons_make_what_they_say(gateway: Gateway) -> None:
    client, auth = gateway.client, gateway.auth
    grid_task = await imagine(client, f"green hills and a blue sea {SMALL}", auth)
    grid = await image_of(client, grid_task)

    varied = await run_button(client, grid_task, "V3", auth)
    assert varied["action"] == "VARIATION" and names(varied) == GRID_BUTTONS
    variations = await image_of(client, varied)
    assert variations.size == grid.size
    third = quadrant(grid, 3)
    assert mean_difference(quadrant(variations, 1), third) < mean_difference(
        quadrant(variations, 1), Image.new("RGB", third.size, "black")
    )

    rerolled = await run_button(client, grid_task, "🔄", auth)
    assert rerolled["action"] == "REROLL" and rerolled["customId"].endswith("::SOLO")
    assert rerolled["properties"]["finalPrompt"] != grid_task["properties"]["finalPrompt"]
    assert mean_difference(await image_of(client, rerolled), grid) > 1


async def test_upscale_buttons_make_what_they_say(gateway: Gateway) -> None:
    client, auth = gateway.client, gateway.auth
    grid_task = await imagine(client, f"a white moon over snowy mountains {SMALL}", auth)
    upscaled_task = await run_button(client, grid_task, "U1", auth)
    upscaled = await image_of(client, upscaled_task)

    for name in ("Upscale (Subtle)", "Upscale (Creative)"):
        bigger = await image_of(client, await run_button(client, upscaled_task, name, auth))
        assert bigger.size == (1024, 1024)
    for name in ("Vary (Subtle)", "Vary (Strong)"):
        vary = await run_button(client, upscaled_task, name, auth)
        assert vary["action"] == "VARIATION"
        assert (await image_of(client, vary)).size == (1024, 1024)  # a grid of four

    zoomed = await image_of(client, await run_button(client, upscaled_task, "Zoom Out 2x", auth))
    assert zoomed.size == (1024, 1024)
    centre = quadrant(zoomed, 1).crop((128, 128, 384, 384))
    assert mean_difference(centre, upscaled.resize((256, 256))) < 40

    panned_task = await run_button(client, upscaled_task, "⬅️", auth)
    assert panned_task["action"] == "PAN"
    panned = quadrant(await image_of(client, panned_task), 1)
    assert panned.width > panned.height  # the canvas grew to the left


async def test_custom_zoom_is_a_modal_that_needs_zoom(gateway: Gateway) -> None:
    client, auth = gateway.client, gateway.auth
    grid_task = await imagine(client, f"a red square {SMALL}", auth)
    upscaled_task = await run_button(client, grid_task, "U4", auth)
    answer = await press(client, upscaled_task, "Custom Zoom", auth)
    assert answer["code"] == 21
    body = {"taskId": answer["result"], "prompt": "a red square"}
    refused = await submit(client, "/mj/submit/modal", body, auth)
    assert refused["code"] == 4 and "--zoom" in refused["description"]
    body["prompt"] = "a red square on a yellow field --zoom 1.5"
    assert (await submit(client, "/mj/submit/modal", body, auth))["code"] == 1
    zoomed = await wait(client, answer["result"], auth)
    assert zoomed["status"] == "SUCCESS" and zoomed["action"] == "ZOOM"
    assert "--zoom 1.5" in zoomed["properties"]["finalPrompt"]
    assert zoomed["promptEn"] == "a red square on a yellow field"


async def test_describe_then_button_2_imagines_that_prompt(gateway: Gateway) -> None:
    client, auth = gateway.client, gateway.auth
    picture = Image.new("RGB", (256, 256), "navy")
    ImageDraw.Draw(picture).ellipse((80, 80, 176, 176), fill="yellow")
    answer = await submit(client, "/mj/submit/describe", {"base64": data_uri(picture)}, auth)
    described = await wait(client, answer["result"], auth)
    assert described["status"] == "SUCCESS" and described["action"] == "DESCRIBE"
    lines = described["promptEn"].splitlines()
    assert [line[:3] for line in lines] == ["1️⃣", "2️⃣", "3️⃣", "4️⃣"]
    assert names(described) == ["1", "2", "3", "4"]
    assert len(described["properties"]["prompts"]) == 4
    assert described["prompt"] == described["promptEn"]  # as the reference fills it
    shown = await image_of(client, described)  # the described image, through its signed link
    assert shown.size == (256, 256) and shown.convert("RGB").getpixel((5, 5)) == (0, 0, 128)

    imagined = await run_button(client, described, "2", auth)
    assert imagined["action"] == "IMAGINE" and imagined["prompt"] == lines[1][3:].strip()
    assert imagined["properties"]["parentId"] == described["id"]


async def test_blend_follows_the_dimensions(gateway: Gateway) -> None:
    client, auth = gateway.client, gateway.auth
    images = [data_uri(Image.new("RGB", (300, 200), colour)) for colour in ("red", "blue")]
    body = {"base64Array": images, "dimensions": "PORTRAIT"}
    answer = await submit(client, "/mj/submit/blend", body, auth)
    blended = await wait(client, answer["result"], auth)
    assert blended["status"] == "SUCCESS" and blended["action"] == "BLEND"
    grid = await image_of(client, blended)
    assert grid.width * 3 == grid.height * 2  # 2:3
    assert names(blended) == GRID_BUTTONS
    one = await submit(client, "/mj/submit/blend", {"base64Array": images[:1]}, auth)
    assert one["code"] == 4 and "base64Array" in one["description"]


async def test_shorten_gives_four_shorter_prompts(gateway: Gateway) -> None:
    client, auth = gateway.client, gateway.auth
    prompt = "a very beautiful, highly detailed red house under a yellow sun by the sea --ar 3:2"
    answer = await submit(client, "/mj/submit/shorten", {"prompt": prompt}, auth)
    shortened = await wait(client, answer["result"], auth)
    assert shortened["action"] == "SHORTEN" and shortened["imageUrl"] == ""
    prompts = shortened["properties"]["prompts"]
    assert len(prompts) == 4 and "very" not in prompts[0] and "--ar" not in prompts[0]
    assert all(len(a) >= len(b) for a, b in itertools.pairwise(prompts))
    imagined = await run_button(client, shortened, "4", auth)
    assert imagined["prompt"] == prompts[3]


async def test_edits_with_a_mask_and_uploads(gateway: Gateway) -> None:
    client, auth = gateway.client, gateway.auth
    source = Image.new("RGB", (256, 256), "white")
    mask = Image.new("L", (256, 256), 0)
    ImageDraw.Draw(mask).rectangle((0, 0, 127, 255), fill=255)
    body = {"image": data_uri(source), "prompt": "a red heart", "maskBase64": data_uri(mask)}
    answer = await submit(client, "/mj/submit/edits", body, auth)
    edited = await wait(client, answer["result"], auth)
    assert edited["status"] == "SUCCESS" and edited["action"] == "EDIT"
    first = quadrant(await image_of(client, edited), 1).convert("RGB")
    assert first.crop((128, 0, 256, 256)).getextrema() == ((255, 255),) * 3  # kept white
    assert first.crop((8, 8, 120, 248)).getextrema() != ((255, 255),) * 3

    upload = await submit(
        client, "/mj/submit/upload-discord-images", {"base64Array": [data_uri(source)]}, auth
    )
    assert upload["code"] == 1 and len(upload["result"]) == 1
    stored = await client.get(upload["result"][0])
    assert stored.status_code == 200
    assert Image.open(io.BytesIO(stored.content)).size == (256, 256)


async def test_flags_shape_the_grid(gateway: Gateway) -> None:
    client, auth = gateway.client, gateway.auth
    wide = await imagine(client, "a boat on the sea --ar 16:9 --no clouds", auth)
    assert (await image_of(client, wide)).size == (3584, 2048)  # 1792×1024 quadrants
    assert wide["promptEn"] == "a boat on the sea"

    tiled_task = await imagine(client, f"red and blue circles {SMALL} --tile", auth)
    tile = quadrant(await image_of(client, tiled_task), 1).convert("RGB")
    seam = mean_difference(tile.crop((0, 0, 1, 256)), tile.crop((255, 0, 256, 256)))
    inner = mean_difference(tile.crop((100, 0, 101, 256)), tile.crop((101, 0, 102, 256)))
    assert seam <= inner + 2  # the right edge runs on into the left edge

    calm = await image_of(client, await imagine(client, f"a house {SMALL} --seed 1", auth))
    wild = await image_of(
        client, await imagine(client, f"a house {SMALL} --seed 1 --chaos 100", auth)
    )
    assert mean_difference(quadrant(calm, 1), quadrant(wild, 1)) == 0  # the first is as asked
    spread = [mean_difference(quadrant(wild, 1), quadrant(wild, i)) for i in (2, 3, 4)]
    calm_spread = [mean_difference(quadrant(calm, 1), quadrant(calm, i)) for i in (2, 3, 4)]
    assert sum(spread) > sum(calm_spread)


async def test_each_finished_task_is_charged_once_with_its_tier(priced_gateway: Gateway) -> None:
    gateway = priced_gateway
    client, auth = gateway.client, gateway.auth
    task = await imagine(client, f"a purple flower {SMALL}", auth)
    async with gateway.services.engine.connect() as conn:
        rows = (
            await conn.execute(sa.select(usage).where(usage.c.request_id == task["id"]))
        ).mappings()
        charged = list(rows)
    assert len(charged) == 1 and charged[0]["route"] == "task:mj"
    assert charged[0]["cost_usd"] > Decimal(0) and charged[0]["model"] == "sketch"
    stored = await gateway.services.tasks.get(task["id"], None)
    assert stored.meta["tier"] == "fast" and stored.meta["action"] == "IMAGINE"
    assert stored.model == "sketch"


async def test_remix_asks_for_a_new_prompt_first(gateway: Gateway) -> None:
    client, auth = gateway.client, gateway.auth
    grid_task = await imagine(client, f"a red house {SMALL}", auth)
    body = {"taskId": grid_task["id"], "customId": button(grid_task, "V1"), "enableRemix": True}
    answer = await submit(client, "/mj/submit/action", body, auth)
    assert answer["code"] == 21
    modal = {"taskId": answer["result"], "prompt": "a blue house under the moon"}
    assert (await submit(client, "/mj/submit/modal", modal, auth))["code"] == 1
    remixed = await wait(client, answer["result"], auth)
    assert remixed["status"] == "SUCCESS" and remixed["action"] == "VARIATION"
    assert remixed["promptEn"] == "a blue house under the moon"
    assert remixed["prompt"] == "a blue house under the moon"
    again = await submit(client, "/mj/submit/modal", modal, auth)
    assert again["code"] == 4  # no longer waiting


async def test_task_list_shows_the_callers_newest_tasks_under_every_prefix(
    gateway: Gateway,
) -> None:
    client, auth = gateway.client, gateway.auth
    first = await imagine(client, f"a red square {SMALL}", auth)
    second = await imagine(client, f"a blue circle {SMALL}", auth)
    for prefix in ("", "/mj-fast", "/mj-relax"):
        response = await client.get(f"{prefix}/mj/task/list", headers=auth)
        assert response.status_code == 200, response.text
        assert [task["id"] for task in response.json()] == [second["id"], first["id"]]
    other = await client.post("/admin/keys", json={}, headers=gateway.admin)
    theirs = {"Authorization": f"Bearer {other.json()['key']}"}
    assert (await client.get("/mj/task/list", headers=theirs)).json() == []
    assert (await client.get("/mj/task/list")).status_code == 401


async def test_a_task_no_worker_has_taken_is_not_start(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def idle() -> int:
        return 0

    monkeypatch.setattr(gateway.services.tasks._runner, "claim_and_start", idle)
    client, auth = gateway.client, gateway.auth
    answer = await submit(client, "/mj/submit/imagine", {"prompt": f"a sun {SMALL}"}, auth)
    task = (await client.get(f"/mj/task/{answer['result']}/fetch", headers=auth)).json()
    assert task["status"] == "NOT_START" and task["progress"] == "0%"
