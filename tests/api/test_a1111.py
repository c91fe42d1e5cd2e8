"""The AUTOMATIC1111 API: the exact requests Open WebUI and SillyTavern send to an A1111
server, replayed against imagegate; Basic auth; the per-key checkpoint; bad input."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from PIL import Image

from imagegate.app import create_app
from imagegate.core.key_settings import KeySettings
from imagegate.settings import Settings
from imagegate.storage.repositories.key_settings import SqlKeySettingsRepository
from imagegate.storage.tables import ledger
from tests.api.fronts_kit import TEST_MODELS, data_uri, encode, picture
from tests.conftest import ADMIN_KEY, Gateway

PRICED = """
[[models]]
id = "sketch"
[models.pricing]
text_input_per_mtok = 0.0
image_output_per_mtok = 0.0
per_request = 0.1
"""


@pytest.fixture
async def a1111(tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway with the test models, sketch at $0.10 a request, and a key with $1 credit."""
    config = tmp_path / "models.toml"
    config.write_text(TEST_MODELS + PRICED)
    settings = Settings(
        data_dir=tmp_path / "data",
        admin_key=ADMIN_KEY,
        config=config,
        default_model="sketch",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
            admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
            created = await client.post("/admin/keys", json={"credit_usd": 1.0}, headers=admin)
            assert created.status_code == 201, created.text
            yield Gateway(app, client, created.json()["key"])


def basic(secret: str, user: str = "imagegate") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{secret}".encode()).decode()
    return {"authorization": f"Basic {token}"}


def png_of(b64: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    assert image.format == "PNG"
    return image


async def balance(gateway: Gateway) -> float:
    key = await gateway.services.keys.authenticate(gateway.key)
    assert key is not None
    response = await gateway.client.get(f"/admin/keys/{key.id}", headers=gateway.admin)
    assert response.status_code == 200, response.text
    return float(response.json()["balance_usd"])


async def ledger_kinds(gateway: Gateway) -> list[str]:
    async with gateway.services.engine.connect() as conn:
        rows = (await conn.execute(sa.select(ledger.c.kind).order_by(ledger.c.id))).all()
    return [kind for (kind,) in rows]


async def test_open_webui_flow(a1111: Gateway) -> None:
    """Open WebUI's images router: verify (GET options), list models, set the model (GET the
    options, change sd_model_checkpoint, POST them all back), then txt2img."""
    client, auth = a1111.client, basic(a1111.key)
    assert (await client.get("/sdapi/v1/options", headers=auth)).status_code == 200
    models = (await client.get("/sdapi/v1/sd-models", headers=auth)).json()
    assert {"sketch", "plain", "toolbox"} <= {model["title"] for model in models}
    assert all(
        set(model) == {"title", "model_name", "hash", "sha256", "filename", "config"}
        for model in models
    )
    options = (await client.get("/sdapi/v1/options", headers=auth)).json()
    assert options["sd_model_checkpoint"] == "sketch"  # IMAGEGATE_DEFAULT_MODEL
    options["sd_model_checkpoint"] = "plain"
    saved = await client.post("/sdapi/v1/options", json=options, headers=auth)
    assert saved.status_code == 200, saved.text
    assert (await client.get("/sdapi/v1/options", headers=auth)).json()[
        "sd_model_checkpoint"
    ] == "plain"

    data = {
        "prompt": "a red sun",
        "batch_size": 2,
        "width": 512,
        "height": 384,
        "steps": 50,
        "negative_prompt": "blur",
    }
    response = await client.post("/sdapi/v1/txt2img", json=data, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["images"]) == 2
    assert all(png_of(image).size == (512, 384) for image in body["images"])
    info = orjson.loads(body["info"])
    assert info["sd_model_name"] == "plain" and info["width"] == 512 and info["height"] == 384
    assert len(info["all_seeds"]) == 2 and info["prompt"] == "a red sun"
    assert body["parameters"]["prompt"] == "a red sun"
    assert "steps" in response.headers["x-imagegate-ignored-params"].split(",")


SILLYTAVERN_TXT2IMG = {
    # public/scripts/extensions/stable-diffusion/index.js generateAutoImage, with defaults
    "url": "http://gw.test",
    "prompt": "a lighthouse at night",
    "negative_prompt": "lowres, bad anatomy",
    "sampler_name": "DDIM",
    "scheduler": "normal",
    "steps": 20,
    "cfg_scale": 7,
    "width": 512,
    "height": 384,
    "restore_faces": False,
    "enable_hr": False,
    "hr_upscaler": "Latent",
    "hr_scale": 2.0,
    "denoising_strength": 0.7,
    "hr_second_pass_steps": 0,
    "override_settings": {"CLIP_stop_at_last_layers": 1},
    "override_settings_restore_afterwards": True,
    "clip_skip": 1,
    "save_images": True,
    "send_images": True,
    "do_not_save_grid": False,
    "do_not_save_samples": False,
}


async def test_sillytavern_flow(a1111: Gateway) -> None:
    """SillyTavern's server side (src/endpoints/stable-diffusion.js): ping, the lists it
    loads, set-model with its progress wait, then generate (which sends its whole body,
    credentials included, to txt2img)."""
    client, auth = a1111.client, basic(a1111.key, user="st")
    assert (await client.get("/sdapi/v1/options", headers=auth)).status_code == 200
    for path in ("upscalers", "latent-upscale-modes", "samplers", "schedulers"):
        listed = (await client.get(f"/sdapi/v1/{path}", headers=auth)).json()
        assert listed and all(isinstance(item["name"], str) for item in listed)
    assert (await client.get("/sdapi/v1/sd-vae", headers=auth)).json() == []
    models = (await client.get("/sdapi/v1/sd-models", headers=auth)).json()
    assert "sketch" in [model["title"] for model in models]

    chosen = await client.post(
        "/sdapi/v1/options", json={"sd_model_checkpoint": "sketch"}, headers=auth
    )
    assert chosen.status_code == 200
    progress = (await client.get("/sdapi/v1/progress", headers=auth)).json()
    assert progress["progress"] == 0.0 and progress["state"]["job_count"] == 0

    options = (await client.get("/sdapi/v1/options", headers=auth)).json()
    assert "forge_preset" not in options and options["sd_model_checkpoint"] == "sketch"
    body = {**SILLYTAVERN_TXT2IMG, "auth": f"st:{a1111.key}"}
    response = await client.post("/sdapi/v1/txt2img", json=body, headers=auth)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert png_of(answer["images"][0]).size == (512, 384)  # exactly as asked
    assert "auth" not in answer["parameters"]
    assert answer["parameters"]["hr_upscaler"] == "Latent"
    assert "x-imagegate-adjusted-params" not in response.headers
    assert await balance(a1111) == pytest.approx(0.9)


async def test_auth_basic_bearer_and_the_challenge(a1111: Gateway) -> None:
    client = a1111.client
    for headers in ({}, basic("wrong-key"), {"authorization": "Basic !!!"}):
        refused = await client.get("/sdapi/v1/sd-models", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Basic realm="imagegate"'
        assert set(refused.json()) == {"detail"}
    bare = {"authorization": "Basic " + base64.b64encode(a1111.key.encode()).decode()}
    for headers in (a1111.auth, basic(a1111.key), bare):
        assert (await client.get("/sdapi/v1/sd-models", headers=headers)).status_code == 200


async def test_override_beats_the_option_which_is_per_key_and_durable(a1111: Gateway) -> None:
    client, auth = a1111.client, basic(a1111.key)
    await client.post("/sdapi/v1/options", json={"sd_model_checkpoint": "plain"}, headers=auth)
    other = await client.post("/admin/keys", json={}, headers=a1111.admin)
    other_auth = basic(other.json()["key"])
    seen = (await client.get("/sdapi/v1/options", headers=other_auth)).json()
    assert seen["sd_model_checkpoint"] == "sketch"
    # another process reads the database
    fresh = KeySettings(SqlKeySettingsRepository(a1111.services.engine))
    key_id = (await a1111.services.keys.authenticate(a1111.key)).id  # type: ignore[union-attr]
    assert await fresh.get(key_id, "a1111.sd_model_checkpoint") == "plain"

    body = {
        "prompt": "x",
        "width": 256,
        "height": 256,
        "override_settings": {"sd_model_checkpoint": "sketch"},
    }
    response = await client.post("/sdapi/v1/txt2img", json=body, headers=auth)
    assert orjson.loads(response.json()["info"])["sd_model_name"] == "sketch"


def a1111_mask(size: tuple[int, int], white: tuple[int, int, int, int]) -> bytes:
    image = Image.new("L", size, 0)
    image.paste(255, white)
    return encode(image)


async def test_img2img_with_a_mask_changes_only_the_white_area(a1111: Gateway) -> None:
    original = picture((256, 256))
    body = {
        "prompt": "a red heart",
        "init_images": [base64.b64encode(original).decode()],
        "mask": data_uri(a1111_mask((256, 256), (0, 0, 128, 256))),
        "width": 256,
        "height": 256,
        "denoising_strength": 0.75,
        "override_settings": {"sd_model_checkpoint": "sketch"},
    }
    response = await a1111.client.post("/sdapi/v1/img2img", json=body, headers=basic(a1111.key))
    assert response.status_code == 200, response.text
    answer = response.json()
    result = png_of(answer["images"][0]).convert("RGB")
    assert result.size == (256, 256)
    before = Image.open(io.BytesIO(original)).convert("RGB")
    kept = (200, 128, 256, 256)  # inside the black (keep) half
    assert result.crop(kept).tobytes() == before.crop(kept).tobytes()
    assert answer["parameters"]["init_images"] is None and answer["parameters"]["mask"] is None


async def test_a_preset_only_model_gets_the_nearest_size_and_says_so(a1111: Gateway) -> None:
    body = {
        "prompt": "x",
        "width": 1000,
        "height": 560,
        "override_settings": {"sd_model_checkpoint": "toolbox"},
    }
    response = await a1111.client.post("/sdapi/v1/txt2img", json=body, headers=basic(a1111.key))
    assert response.status_code == 200, response.text
    assert response.headers["x-imagegate-adjusted-params"] == "size=1000x560->1792x1024"
    assert png_of(response.json()["images"][0]).size == (1792, 1024)


BROKEN = base64.b64encode(b"not an image at all").decode()


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("txt2img", {"width": 512}, 400),  # no prompt
        ("txt2img", {"prompt": "x", "override_settings": {"sd_model_checkpoint": "nope"}}, 404),
        ("txt2img", {"prompt": "x", "width": 4096}, 400),
        ("txt2img", {"prompt": "x", "height": 32}, 400),
        ("txt2img", {"prompt": "x", "batch_size": 10, "n_iter": 2}, 400),
        ("txt2img", {"prompt": "x", "width": "wide"}, 400),
        ("img2img", {"prompt": "x", "init_images": ["%%%not base64%%%"]}, 400),
        ("img2img", {"prompt": "x", "init_images": [BROKEN]}, 400),
        ("img2img", {"prompt": "x", "init_images": []}, 400),
        ("img2img", {"prompt": "x"}, 400),
        (
            "img2img",
            {
                "prompt": "x",
                "init_images": [data_uri(picture((256, 256)))],
                "mask": data_uri(a1111_mask((128, 128), (0, 0, 64, 64))),
            },
            400,
        ),
        (
            "img2img",
            {
                "prompt": "x",
                "init_images": [data_uri(picture((256, 256)))],
                "override_settings": {"sd_model_checkpoint": "plain"},
            },
            400,
        ),
        ("options", {"sd_model_checkpoint": "nope"}, 404),
        ("options", {"sd_model_checkpoint": 7}, 400),
    ],
)
async def test_bad_input_is_4xx_detail_and_charges_nothing(
    a1111: Gateway, path: str, body: dict[str, Any], status: int
) -> None:
    response = await a1111.client.post(f"/sdapi/v1/{path}", json=body, headers=basic(a1111.key))
    assert response.status_code == status, response.text
    assert set(response.json()) == {"detail"} and response.json()["detail"]
    assert await balance(a1111) == 1.0
    assert "reserve" not in await ledger_kinds(a1111)


async def test_a_body_that_is_not_json_is_400(a1111: Gateway) -> None:
    for path in ("txt2img", "options"):
        response = await a1111.client.post(
            f"/sdapi/v1/{path}", content=b"{nope", headers=basic(a1111.key)
        )
        assert response.status_code == 400 and "detail" in response.json()


async def test_img2img_reports_what_the_model_cannot_take_in_a1111_names(a1111: Gateway) -> None:
    body = {
        "prompt": "a red heart",
        "init_images": [data_uri(picture((256, 256)))],
        "width": 256,
        "height": 256,
        "denoising_strength": 0.3,
        "mask_blur": 4,
        "sampler_name": "Euler a",
        "override_settings": {"sd_model_checkpoint": "toolbox"},
    }
    response = await a1111.client.post("/sdapi/v1/img2img", json=body, headers=basic(a1111.key))
    assert response.status_code == 200, response.text
    ignored = response.headers["x-imagegate-ignored-params"].split(",")
    assert {"denoising_strength", "mask_blur", "sampler_name"} <= set(ignored)


async def test_options_never_name_a_model_the_key_may_not_use(a1111: Gateway) -> None:
    limited = await a1111.client.post(
        "/admin/keys", json={"models": ["plain"]}, headers=a1111.admin
    )
    assert limited.status_code == 201, limited.text
    auth = basic(limited.json()["key"])
    options = (await a1111.client.get("/sdapi/v1/options", headers=auth)).json()
    assert options["sd_model_checkpoint"] == "plain"  # not the default, sketch
    titles = [
        m["title"] for m in (await a1111.client.get("/sdapi/v1/sd-models", headers=auth)).json()
    ]
    assert titles == ["plain"]
    refused = await a1111.client.post(
        "/sdapi/v1/options", json={"sd_model_checkpoint": "sketch"}, headers=auth
    )
    assert refused.status_code == 403 and "detail" in refused.json()
