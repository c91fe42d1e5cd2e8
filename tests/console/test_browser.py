"""The console in a real browser: sign-in, every page by its accessible names, a generation,
a Midjourney imagine and its U1 upscale, a masked edit, a key made in the form and used on the
API, admin pages refused to a client key, a cross-site post refused, /docs offline; each page
with its CSP and without a console error."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Route, StorageState, expect

from tests.conftest import ADMIN_KEY, LiveServer
from tests.console.browser_kit import Watched, screenshot, sign_in, watch

TIMEOUT_MS = 30_000
LOADED = "img => img.decode().then(() => img.naturalWidth > 0)"
"""Waits for the image to load and decode; false when it is broken."""


@pytest.fixture(scope="module")
def client_state(browser: Browser, live_server: LiveServer) -> Iterator[StorageState]:
    """One sign-in per role for the module (sign-ins are rate-limited per address)."""
    context = browser.new_context()
    watched = watch(context, live_server.base_url)
    sign_in(watched, live_server.key)
    yield context.storage_state()
    context.close()


@pytest.fixture(scope="module")
def admin_state(browser: Browser, live_server: LiveServer) -> Iterator[StorageState]:
    context = browser.new_context()
    watched = watch(context, live_server.base_url)
    sign_in(watched, ADMIN_KEY)
    yield context.storage_state()
    context.close()


def _context(browser: Browser, state: StorageState | None = None) -> BrowserContext:
    context = browser.new_context(
        storage_state=state,
        viewport={"width": 1280, "height": 860},
    )
    context.set_default_timeout(TIMEOUT_MS)
    return context


@pytest.fixture
def client(
    browser: Browser, client_state: StorageState, live_server: LiveServer
) -> Iterator[Watched]:
    context = _context(browser, client_state)
    watched = watch(context, live_server.base_url)
    yield watched
    context.close()
    watched.assert_clean()


@pytest.fixture
def admin(
    browser: Browser, admin_state: StorageState, live_server: LiveServer
) -> Iterator[Watched]:
    context = _context(browser, admin_state)
    watched = watch(context, live_server.base_url)
    yield watched
    context.close()
    watched.assert_clean()


def test_sign_in_with_a_bad_key_then_a_good_one(browser: Browser, live_server: LiveServer) -> None:
    context = _context(browser)
    watched = watch(context, live_server.base_url)
    page = watched.page
    response = watched.goto("/")
    assert page.url.endswith("/console/sign-in"), response.url
    page.get_by_label("API key").fill("ig-not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("invalid")
    page.get_by_label("API key").fill(live_server.key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/playground")
    expect(page.get_by_role("heading", name="Playground")).to_be_visible()
    assert live_server.key not in page.content()
    assert page.evaluate("JSON.stringify(localStorage) + document.cookie") == "{}"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/sign-in")
    watched.goto("/console/gallery")
    assert page.url.endswith("/console/sign-in")
    context.close()
    # the failed sign-in answers 401 with its page: Chromium logs that one as a resource error
    watched.errors = [e for e in watched.errors if "401" not in e]
    watched.assert_clean()


def test_each_page_by_its_accessible_names(client: Watched) -> None:
    page = client.page
    client.goto("/console/playground")
    nav = page.get_by_role("navigation", name="Console")
    for name in ("Playground", "Models", "Gallery", "Tasks", "Usage"):
        expect(nav.get_by_role("link", name=name, exact=True)).to_be_visible()
    for name in ("Keys", "Providers"):
        expect(nav.get_by_role("link", name=name, exact=True)).to_have_count(0)
    for name in ("OpenAI", "Gemini", "Midjourney", "Flux", "Bria"):
        expect(page.get_by_role("tab", name=name)).to_be_visible()
    expect(page.get_by_role("tab", name="OpenAI")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_label("Model")).to_be_visible()
    expect(page.get_by_label("Prompt")).to_be_visible()
    expect(page.get_by_role("button", name="Generate")).to_be_visible()
    expect(page.get_by_role("region", name="Results")).to_be_visible()
    expect(page.locator("#quote")).to_contain_text("$")
    for tab in ("Gemini", "Midjourney", "Flux", "Bria"):
        page.get_by_role("tab", name=tab).click()
        expect(page.get_by_role("tab", name=tab)).to_have_attribute("aria-selected", "true")
        expect(page.get_by_role("button", name="Generate")).to_be_visible()

    nav.get_by_role("link", name="Models", exact=True).click()
    search = page.get_by_role("searchbox", name="Search models")
    expect(search).to_be_visible()
    search.fill("sketch")
    search.press("Enter")
    expect(page.get_by_role("row")).to_have_count(2)  # header + sketch
    page.get_by_label("Feature").select_option("vector")
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name="sketch").first.click()
    expect(page.get_by_role("heading", name="Prices")).to_be_visible()
    expect(page.get_by_role("link", name="Try it in the Playground")).to_be_visible()

    nav.get_by_role("link", name="Gallery", exact=True).click()
    expect(page.get_by_role("heading", name="Gallery")).to_be_visible()
    nav.get_by_role("link", name="Tasks", exact=True).click()
    expect(page.get_by_role("table")).to_be_visible()
    nav.get_by_role("link", name="Usage", exact=True).click()
    expect(page.get_by_role("img", name="Spend and images per day")).to_be_visible()
    expect(page.get_by_role("link", name="Download CSV")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename.endswith(".csv")


def test_a_generation_shows_its_image_cost_and_gallery_entry(
    client: Watched, tmp_path: Path
) -> None:
    page = client.page
    client.goto("/console/playground")
    page.get_by_label("Prompt").fill("a red house under a yellow sun by the blue sea")
    page.get_by_role("button", name="Generate").click()
    results = page.get_by_role("region", name="Results")
    image = results.get_by_role("img").first
    expect(image).to_be_visible()
    assert image.evaluate(LOADED)
    expect(results.get_by_role("link", name="Download image 1")).to_be_visible()
    expect(results).to_contain_text("Cost: $")
    screenshot(page, "playground", tmp_path)
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Gallery").click()
    thumb = page.get_by_role("img", name="a red house under a yellow sun by the blue sea").first
    expect(thumb).to_be_visible()
    assert thumb.evaluate(LOADED) and thumb.get_attribute("loading") == "lazy"
    with page.expect_navigation():
        page.get_by_role("link", name="Open full image").first.click()
    assert "/files/asset_" in page.url and "sig=" in page.url
    client.goto("/console/gallery")
    screenshot(page, "gallery", tmp_path)


def test_midjourney_imagine_then_u1_upscales_in_the_page(client: Watched) -> None:
    page = client.page
    client.goto("/console/playground?tab=midjourney")
    page.get_by_label("Prompt").fill("a lighthouse on a cliff at night, stars")
    page.get_by_role("button", name="Generate").click()
    results = page.get_by_role("region", name="Results")
    u1 = results.get_by_role("button", name="U1", exact=True)
    expect(u1).to_be_visible()
    for label in ("U2", "U3", "U4", "V1", "V4"):
        expect(results.get_by_role("button", name=label, exact=True)).to_be_visible()
    expect(results).to_contain_text("IMAGINE")
    u1.click()
    expect(results).to_contain_text("UPSCALE")
    expect(results.get_by_role("button", name="Vary (Strong)")).to_be_visible()
    image = results.get_by_role("img").first
    expect(image).to_be_visible()
    assert image.evaluate(LOADED)
    client.goto("/console/tasks")
    imagine = page.get_by_role("row").filter(has_text="IMAGINE").first
    expect(imagine).to_contain_text("succeeded")
    imagine.get_by_role("link").first.click()
    expect(
        page.get_by_role("group", name="Task buttons").get_by_role("button", name="U2")
    ).to_be_visible()
    expect(page.get_by_role("heading", name="Webhook deliveries")).to_be_visible()


def _png(width: int = 256, height: int = 256) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (40, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_masked_edit(client: Watched, tmp_path: Path) -> None:
    page = client.page
    client.goto("/console/playground?tab=openai&mode=edit")
    source = tmp_path / "photo.png"
    source.write_bytes(_png())
    page.get_by_label("Image", exact=True).set_input_files(str(source))
    canvas = page.get_by_label("Mask painter")
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.6, steps=8)
    page.mouse.up()
    canvas.focus()
    for key in ("ArrowRight", "ArrowRight", "ArrowDown"):  # keyboard painting from the centre
        page.keyboard.press(key)
    pixel = "([x, y]) => Array.from(document.getElementById('mask-painter')"
    pixel += ".getContext('2d').getImageData(x, y, 1, 1).data.slice(0, 3))"
    assert page.evaluate(pixel, [20, 230]) == [40, 120, 200]  # untouched
    assert page.evaluate(pixel, [195, 120]) != [40, 120, 200]  # painted by the arrow keys only
    page.get_by_label("Prompt").fill("a yellow sun")
    page.get_by_role("button", name="Generate").click()
    results = page.get_by_role("region", name="Results")
    image = results.get_by_role("img").first
    expect(image).to_be_visible()
    assert image.evaluate(LOADED)
    src = image.get_attribute("src")
    assert src is not None
    edited = httpx.get(client.base_url + src, timeout=30)
    with Image.open(io.BytesIO(edited.content)) as result:
        rgb = result.convert("RGB").resize((256, 256))
        assert rgb.getpixel((5, 5)) == (40, 120, 200)  # outside the painted mask: kept
        assert rgb.getpixel((128, 110)) != (40, 120, 200)  # painted: redrawn


def test_a_key_created_in_the_form_works_on_the_api(
    admin: Watched, live_server: LiveServer, tmp_path: Path
) -> None:
    page = admin.page
    admin.goto("/console/keys")
    page.get_by_label("Name", exact=True).fill("teammate")
    page.get_by_label("Credit (USD)").fill("2")
    page.get_by_label("Model globs").fill("sketch")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key").inner_text().strip()
    assert secret.startswith("ig-")
    made = httpx.post(
        f"{live_server.base_url}/v1/images/generations",
        json={"model": "sketch", "prompt": "a green tree"},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=30,
    )
    assert made.status_code == 200, made.text
    admin.goto("/console/keys")
    assert secret not in page.content()  # shown once
    row = page.get_by_role("row").filter(has_text="teammate")
    row.get_by_label("Top-up amount for teammate").fill("3")
    row.get_by_role("button", name="Top up").click()
    # $2 + $3: sketch is free, so the generation took nothing from the credit.
    expect(page.get_by_role("row").filter(has_text="teammate")).to_contain_text("$5.00")
    admin.goto("/console/providers")
    expect(page.get_by_role("heading", name="Providers")).to_be_visible()
    page.get_by_role("button", name="Check").first.click()
    expect(page.get_by_role("status")).to_contain_text("Check of")
    admin.goto("/console/usage")
    screenshot(page, "usage", tmp_path)
    admin.goto("/console/keys")
    page.get_by_role("button", name="Revoke teammate").click()
    expect(page.get_by_role("row").filter(has_text="teammate")).to_contain_text("revoked")
    refused = httpx.post(
        f"{live_server.base_url}/v1/images/generations",
        json={"model": "sketch", "prompt": "a green tree"},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=30,
    )
    assert refused.status_code == 401


def test_a_client_key_is_refused_on_admin_pages(client: Watched) -> None:
    for path in ("/console/keys", "/console/providers"):
        response = client.goto(path)
        assert response.status == 403, path
        expect(client.page.get_by_role("alert")).to_contain_text("admin")
    # a 403 page is a resource error to Chromium's console: expected here, nothing else is
    client.errors = [e for e in client.errors if "403" not in e]


def test_a_cross_site_form_post_is_refused(client: Watched) -> None:
    page = client.page
    target = client.base_url + "/console/playground"
    attacker = "http://attacker.test/"
    page.route(
        attacker,
        lambda route: route.fulfill(
            content_type="text/html",
            body=f'<form method="post" action="{target}"><input name="prompt" value="x">'
            '<input name="tab" value="openai"><button>go</button></form>',
        ),
    )
    page.goto(attacker)
    with page.expect_response(target) as answer:
        page.get_by_role("button", name="go").click()
    assert answer.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text("cross-site")
    client.errors = [e for e in client.errors if "403" not in e]


def test_docs_work_offline(client: Watched) -> None:
    page = client.page
    outside: list[str] = []

    def only_local(route: Route) -> None:
        if route.request.url.startswith(client.base_url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    client.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("imagegate")
    expect(page.get_by_text("/v1/images/generations").first).to_be_visible()
    assert outside == []


def test_phone_width_and_dark_mode(
    browser: Browser,
    client_state: StorageState,
    live_server: LiveServer,
) -> None:
    context = browser.new_context(
        storage_state=client_state,
        viewport={"width": 390, "height": 844},
        color_scheme="dark",
        is_mobile=True,
    )
    watched = watch(context, live_server.base_url)
    page = watched.page
    for path in ("/console/playground", "/console/models", "/console/usage", "/console/tasks"):
        watched.goto(path)
        assert page.evaluate("document.body.scrollWidth") <= 390, path  # tables scroll inside
        expect(page.get_by_role("navigation", name="Console")).to_be_visible()
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(18, 21, 28)"
    context.close()
    watched.assert_clean()
