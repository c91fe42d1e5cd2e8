"""Console plumbing over plain HTTP: the browser redirect of ``/``, hashed static files, the
offline docs, thumbnails made once and deleted with their image, quotes and usage."""

from __future__ import annotations

import io
import re
import time

from PIL import Image

from imagegate.fronts.console.static_files import IMMUTABLE, static_url
from tests.conftest import ADMIN_KEY, Gateway
from tests.console.kit import SAME_ORIGIN, csrf_of, sign_in


async def test_browsers_are_sent_to_the_console_api_clients_get_json(gateway: Gateway) -> None:
    browser = await gateway.client.get("/", headers={"accept": "text/html,*/*;q=0.8"})
    assert browser.status_code == 303 and browser.headers["location"] == "/console"
    api = await gateway.client.get("/", headers={"accept": "application/json"})
    assert api.status_code == 404 and api.json()["error"]["type"] == "not_found_error"
    console = await gateway.client.get("/console")
    assert console.headers["location"] == "/console/sign-in"


async def test_static_files_have_hashed_names_and_long_caching(gateway: Gateway) -> None:
    page = (await gateway.client.get("/console/sign-in")).text
    css = static_url("console.css")
    assert re.fullmatch(r"/console/static/console\.[0-9a-f]{12}\.css", css) and css in page
    response = await gateway.client.get(css)
    assert response.status_code == 200 and response.headers["cache-control"] == IMMUTABLE
    assert response.headers["content-type"].startswith("text/css")
    assert (await gateway.client.get("/console/static/console.css")).status_code == 404
    assert (await gateway.client.get("/console/static/../../app.py")).status_code == 404


async def test_docs_load_swagger_from_this_gateway(gateway: Gateway) -> None:
    docs = (await gateway.client.get("/docs")).text
    sources = re.findall(r'(?:src|href)="([^"]+)"', docs)
    assert sources and all(url.startswith("/console/static/") for url in sources), sources
    bundle = await gateway.client.get(static_url("vendor/swagger-ui/swagger-ui-bundle.js"))
    assert bundle.status_code == 200 and len(bundle.content) > 1_000_000
    assert "http" not in "".join(sources)


async def test_thumbnails_are_made_once_beside_the_blob_and_swept_with_it(
    gateway: Gateway,
) -> None:
    made = await gateway.client.post(
        "/v1/images/generations",
        json={"model": "sketch", "prompt": "a green triangle", "size": "1024x1024"},
        headers=gateway.auth,
    )
    assert made.status_code == 200
    await sign_in(gateway.client, gateway.key)
    gallery = (await gateway.client.get("/console/gallery")).text
    thumb_url = re.findall(r'src="(/console/gallery/asset_[^"/]+/thumb)"', gallery)[0]
    assert "a green triangle" in gallery and "sketch" in gallery
    first = await gateway.client.get(thumb_url)
    assert first.status_code == 200 and first.headers["content-type"] == "image/webp"
    assert first.content[:4] == b"RIFF" and len(first.content) < 40_000
    asset_id = thumb_url.split("/")[3]
    services = gateway.services
    asset, body = await services.assets.open(asset_id)
    blob = body.path
    assert blob is not None  # the local store: files side by side
    rendition = blob.with_name(f"{asset.sha256}.thumb.webp")
    assert rendition.is_file()
    made_at = rendition.stat().st_mtime_ns
    again = await gateway.client.get(thumb_url)
    assert again.content == first.content and rendition.stat().st_mtime_ns == made_at
    opened = await gateway.client.get(f"/console/gallery/{asset_id}/open")
    assert opened.status_code == 303 and "sig=" in opened.headers["location"]
    assert await services.assets.sweep(now=time.time() + 10 * 86400) >= 1
    assert not blob.exists() and not rendition.exists()


async def test_the_quote_prices_the_form_before_generate(gateway: Gateway) -> None:
    await sign_in(gateway.client, gateway.key)
    for n in (1, 4):
        quote = await gateway.client.get(
            "/console/playground/quote", params={"tab": "openai", "model": "sketch", "n": str(n)}
        )
        estimate = await gateway.client.post(
            "/api/estimate", json={"model": "sketch", "prompt": "x", "n": n}, headers=gateway.auth
        )
        assert quote.json()["quote"] == f"${estimate.json()['estimated_cost']:,.4f} (estimate)"
    bad = await gateway.client.get("/console/playground/quote", params={"model": "nope"})
    assert "cannot price this yet" in bad.json()["quote"]


async def test_usage_shows_the_keys_spend_and_admins_see_every_key(gateway: Gateway) -> None:
    for auth in (gateway.auth, {"Authorization": f"Bearer {ADMIN_KEY}"}):
        made = await gateway.client.post(
            "/v1/images/generations", json={"model": "sketch", "prompt": "a moon"}, headers=auth
        )
        assert made.status_code == 200
    await sign_in(gateway.client, gateway.key)
    page = (await gateway.client.get("/console/usage")).text
    assert '<svg class="chart"' in page and '<rect class="spend"' in page
    assert "env-admin" not in page
    csv = await gateway.client.get("/console/usage.csv")
    assert csv.headers["content-type"].startswith("text/csv")
    assert len(csv.text.strip().splitlines()) == 2  # header + this key's one row
    gateway.client.cookies.clear()
    await sign_in(gateway.client, ADMIN_KEY)
    admin_page = (await gateway.client.get("/console/usage")).text
    assert "env-admin" in admin_page


async def test_bria_tools_run_on_an_uploaded_image(gateway: Gateway) -> None:
    await sign_in(gateway.client, gateway.key)
    page = await gateway.client.get("/console/playground?tab=bria&mode=remove_background")
    assert 'aria-current="true">Remove background' in page.text
    assert 'id="prompt"' not in page.text and 'id="image"' in page.text
    buffer = io.BytesIO()
    picture = Image.new("RGB", (256, 256), (250, 250, 250))
    picture.paste((200, 30, 30), (80, 80, 176, 176))
    picture.save(buffer, "PNG")
    for mode, check in (("remove_background", "RGBA"), ("upscale", (512, 512))):
        done = await gateway.client.post(
            "/console/playground",
            data={"csrf_token": csrf_of(page.text), "tab": "bria", "mode": mode, "model": "sketch"},
            files={"image": ("photo.png", buffer.getvalue(), "image/png")},
            headers=SAME_ORIGIN,
        )
        assert done.status_code == 200, done.text
        src = re.findall(r'<img src="(/files/[^"]+)"', done.text)[0].replace("&amp;", "&")
        with Image.open(io.BytesIO((await gateway.client.get(src)).content)) as result:
            assert (result.mode if isinstance(check, str) else result.size) == check, mode
    gallery = (await gateway.client.get("/console/gallery")).text
    assert "tool via console:bria:remove_background" in gallery


async def test_svg_images_are_thumbnailed_as_themselves_in_a_sandbox(gateway: Gateway) -> None:
    made = await gateway.client.post(
        "/bria/text-to-vector", json={"prompt": "a yellow star"}, headers=gateway.auth
    )
    assert made.status_code == 200, made.text
    await sign_in(gateway.client, gateway.key)
    gallery = (await gateway.client.get("/console/gallery")).text
    thumb = await gateway.client.get(
        re.findall(r'src="(/console/gallery/[^"]+/thumb)"', gallery)[0]
    )
    assert thumb.headers["content-type"].startswith("image/svg+xml")
    assert "sandbox" in thumb.headers["content-security-policy"]
