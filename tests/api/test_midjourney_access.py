"""Midjourney routes: key variants, speed prefixes, ownership, signed image links, polling
routes and business codes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from PIL import Image

from imagegate.app import create_app
from imagegate.core.generation import ImageService
from imagegate.errors import ContentPolicyViolation
from imagegate.settings import Settings
from tests.api.mj_kit import SMALL, data_uri, image_of, imagine, submit, wait
from tests.conftest import ADMIN_KEY, Gateway

IMAGINE = "/mj/submit/imagine"


async def other_key(gateway: Gateway) -> dict[str, str]:
    _, secret = await gateway.services.keys.create(name="someone else")
    return {"Authorization": f"Bearer {secret}"}


@pytest.mark.parametrize(
    "header",
    [
        lambda key: {"Authorization": f"Bearer {key}"},
        lambda key: {"Authorization": key},
        lambda key: {"mj-api-secret": key},
    ],
    ids=["bearer", "bare", "mj-api-secret"],
)
async def test_every_key_variant_is_accepted(gateway: Gateway, header: object) -> None:
    headers = header(gateway.key)  # type: ignore[operator]
    task = await imagine(gateway.client, f"a sun {SMALL}", headers)
    fetched = await gateway.client.get(f"/mj/task/{task['id']}/fetch", headers=headers)
    assert fetched.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "nope"}, {"mj-api-secret": "x"}],
)
async def test_a_missing_or_unknown_key_is_401(gateway: Gateway, headers: dict[str, str]) -> None:
    response = await gateway.client.post(IMAGINE, json={"prompt": "a sun"}, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


@pytest.mark.parametrize(
    ("prefix", "tier"),
    [("", "fast"), ("/mj-fast", "fast"), ("/mj-turbo", "turbo"), ("/mj-relax", "relax")],
)
async def test_the_prefix_sets_the_speed_tier(gateway: Gateway, prefix: str, tier: str) -> None:
    client, auth = gateway.client, gateway.auth
    answer = await submit(client, f"{prefix}/mj/submit/imagine", {"prompt": f"a sun {SMALL}"}, auth)
    task_id = answer["result"]
    fetched = (await client.get(f"{prefix}/mj/task/{task_id}/fetch", headers=auth)).json()
    assert fetched["properties"]["speed"] == tier
    done = await wait(client, task_id, auth)
    assert done["status"] == "SUCCESS"
    assert (await gateway.services.tasks.get(task_id, None)).meta["tier"] == tier
    image = await client.get(f"{prefix}/mj/image/{task_id}", headers=auth)
    assert image.status_code == 200


async def test_a_speed_flag_in_the_prompt_wins(gateway: Gateway) -> None:
    task = await imagine(gateway.client, f"a sun {SMALL} --relax", gateway.auth)
    assert task["properties"]["speed"] == "relax"


async def test_another_key_sees_nothing(gateway: Gateway) -> None:
    client, auth = gateway.client, gateway.auth
    task = await imagine(client, f"a moon {SMALL}", auth)
    stranger = await other_key(gateway)
    for path in (f"/mj/task/{task['id']}/fetch", f"/mj/task/{task['id']}/image-seed"):
        assert (await client.get(path, headers=stranger)).status_code == 404
    assert (await client.get(f"/mj/image/{task['id']}", headers=stranger)).status_code == 404
    body = {"taskId": task["id"], "customId": task["buttons"][0]["customId"]}
    assert (await client.post("/mj/submit/action", json=body, headers=stranger)).status_code == 404
    listed = await client.post(
        "/mj/task/list-by-condition", json={"ids": [task["id"]]}, headers=stranger
    )
    assert listed.json() == []


async def test_image_links_are_signed_and_private(gateway: Gateway) -> None:
    client, auth = gateway.client, gateway.auth
    task = await imagine(client, f"a star {SMALL}", auth)
    url = task["imageUrl"]
    assert url.startswith(f"http://gateway.test/mj/image/{task['id']}?exp=")
    assert (await image_of(client, task)).format == "PNG"  # the signature is enough
    path = f"/mj/image/{task['id']}"
    assert (await client.get(path, headers=auth)).status_code == 200  # so is the owner's key
    assert (await client.get(path, headers={"mj-api-secret": gateway.key})).status_code == 200
    assert (await client.get(path)).status_code == 401
    forged = url[: url.rindex("sig=") + 4] + "0" * 64
    assert (await client.get(forged)).status_code == 403
    assert (await client.get(forged, headers=await other_key(gateway))).status_code == 404
    other_id = task["id"][:-1] + ("1" if task["id"].endswith("0") else "0")
    assert (await client.get(f"/mj/image/{other_id}", headers=auth)).status_code == 404


async def test_list_by_condition_returns_the_callers_tasks_in_order(gateway: Gateway) -> None:
    client, auth = gateway.client, gateway.auth
    first = await imagine(client, f"a tree {SMALL}", auth)
    second = await imagine(client, f"a sea {SMALL}", auth)
    theirs = await imagine(client, f"a hill {SMALL}", await other_key(gateway))
    ids = [second["id"], "missing", theirs["id"], first["id"]]
    response = await client.post("/mj/task/list-by-condition", json={"ids": ids}, headers=auth)
    assert response.status_code == 200
    assert [task["id"] for task in response.json()] == [second["id"], first["id"]]
    assert all(task["status"] == "SUCCESS" for task in response.json())


async def test_image_seed_is_the_seed_used(gateway: Gateway) -> None:
    client, auth = gateway.client, gateway.auth
    task = await imagine(client, f"a cloud {SMALL} --seed 424242", auth)
    seed = (await client.get(f"/mj/task/{task['id']}/image-seed", headers=auth)).json()
    assert seed == {"code": 1, "description": "success", "result": "424242"}
    fresh = await imagine(client, f"a cloud {SMALL}", auth)
    answer = (await client.get(f"/mj/task/{fresh['id']}/image-seed", headers=auth)).json()
    assert answer["result"].isdigit()
    again = await imagine(client, f"a cloud {SMALL} --seed {answer['result']}", auth)
    assert (await image_of(client, again)).tobytes() == (await image_of(client, fresh)).tobytes()


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"prompt": "a cat --foo"}, "--foo"),
        ({"prompt": "a cat --ar 3"}, "--ar"),
        ({"prompt": "a cat --ar 3:0"}, "--ar"),
        ({"prompt": "a cat --seed -1"}, "--seed"),
        ({"prompt": "a cat --chaos 101"}, "--chaos"),
        ({"prompt": "a cat --q 3"}, "--q"),
        ({"prompt": "a cat --zoom 2"}, "--zoom"),
        ({"prompt": "a cat --v 6 --niji 6"}, "--niji"),
        ({"prompt": "a cat --tile now"}, "--tile"),
        ({}, "prompt"),
        ({"prompt": 5}, "prompt"),
        ({"prompt": "a cat", "notifyHook": "ftp://x"}, "notifyHook"),
        ({"prompt": "a cat", "base64Array": ["data:image/png;base64,AAAA"]}, "base64Array[0]"),
    ],
)
async def test_parameter_errors_are_code_4_naming_the_flag(
    gateway: Gateway, body: dict[str, object], named: str
) -> None:
    answer = await submit(gateway.client, IMAGINE, body, gateway.auth)
    assert answer["code"] == 4 and answer["result"] is None
    assert named in answer["description"]


async def test_action_errors(gateway: Gateway) -> None:
    client, auth = gateway.client, gateway.auth
    task = await imagine(client, f"a heart {SMALL}", auth)
    hash_ = task["id"].replace("-", "")
    cases = {
        "MJ::JOB::upsample::5::" + hash_: 4,  # no fifth quadrant
        "MJ::JOB::upsample::1::" + "0" * 32: 4,  # another task's button
        "MJ::JOB::upsample_v6_2x_subtle::1::" + hash_ + "::SOLO": 4,  # not offered on a grid
        "nonsense": 4,
    }
    for custom_id, code in cases.items():
        body = {"taskId": task["id"], "customId": custom_id}
        answer = await submit(client, "/mj/submit/action", body, auth)
        assert answer["code"] == code and "customId" in answer["description"], custom_id
    missing = {"taskId": "no-such-task", "customId": "MJ::JOB::upsample::1::" + hash_}
    assert (await client.post("/mj/submit/action", json=missing, headers=auth)).status_code == 404
    modal = await submit(client, "/mj/submit/modal", {"taskId": task["id"]}, auth)
    assert modal["code"] == 4 and "taskId" in modal["description"]


async def test_queued_and_queue_full_codes(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        admin_key=ADMIN_KEY,
        task_concurrency=1,
        mj_queue_limit=2,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        services = app.state.services
        await services.tasks.close()  # no worker: everything stays queued
        _, secret = await services.keys.create(name="queue")
        auth = {"Authorization": f"Bearer {secret}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
            codes = [
                (await submit(client, IMAGINE, {"prompt": f"a sun {SMALL}"}, auth))["code"]
                for _ in range(3)
            ]
    assert codes == [1, 22, 23]


async def test_moderation_refusals_are_code_24(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(*_args: object, **_kwargs: object) -> object:
        raise ContentPolicyViolation("the prompt was refused", stage="prompt")

    monkeypatch.setattr(ImageService, "prepare", refuse)
    answer = await submit(gateway.client, IMAGINE, {"prompt": "something"}, gateway.auth)
    assert answer["code"] == 24 and answer["description"] == "the prompt was refused"


async def test_image_prompts_and_references(gateway: Gateway) -> None:
    picture = Image.new("RGB", (256, 256), "orange")
    task = await imagine(
        gateway.client, f"a blue circle {SMALL}", gateway.auth, base64Array=[data_uri(picture)]
    )
    grid = await image_of(gateway.client, task)
    assert grid.size == (512, 512)


async def test_describe_links_go_through_the_outbound_guard(gateway: Gateway) -> None:
    body = {"link": "http://127.0.0.1:9/secret.png"}
    answer = await submit(gateway.client, "/mj/submit/describe", body, gateway.auth)
    assert answer["code"] == 4 and "link" in answer["description"]
    nothing = await submit(gateway.client, "/mj/submit/describe", {}, gateway.auth)
    assert nothing["code"] == 4 and "base64" in nothing["description"]
