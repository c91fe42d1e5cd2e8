"""Every state-changing console request checks where it comes from and its CSRF token; pages
carry the security headers; a client key never reaches admin pages or another key's images."""

from __future__ import annotations

import re

import httpx
import pytest

from imagegate.core.usage_report import UsageFilter
from tests.conftest import ADMIN_KEY, Gateway
from tests.console.kit import ORIGIN, SAME_ORIGIN, csrf, csrf_of, sign_in

GENERATE = {"tab": "openai", "mode": "generate", "model": "sketch", "prompt": "a blue circle"}


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example"},
        {"sec-fetch-site": "cross-site", "origin": ORIGIN},
        {"sec-fetch-site": "same-site"},
        {},
    ],
    ids=["foreign-origin", "cross-site-fetch", "same-site-subdomain", "no-origin-at-all"],
)
async def test_cross_site_posts_are_refused(gateway: Gateway, headers: dict[str, str]) -> None:
    await sign_in(gateway.client, gateway.key)
    token = await csrf(gateway.client)
    before = await gateway.services.usage_report.totals(UsageFilter())
    for path, data in (
        ("/console/playground", {**GENERATE, "csrf_token": token}),
        ("/console/sign-out", {"csrf_token": token}),
        ("/console/keys", {"csrf_token": token, "name": "x"}),
    ):
        response = await gateway.client.post(path, data=data, headers=headers)
        assert response.status_code == 403, path
        assert "cross-site request refused" in response.text
    assert (await gateway.client.get("/console/gallery")).status_code == 200  # still signed in
    await gateway.services.usage.flush()
    after = await gateway.services.usage_report.totals(UsageFilter())
    assert after["totals"]["requests"] == before["totals"]["requests"]


async def test_same_origin_posts_need_the_sessions_token(gateway: Gateway) -> None:
    await sign_in(gateway.client, gateway.key)
    token = await csrf(gateway.client)
    for bad in (None, "", token[:-1] + ("a" if token[-1] != "a" else "b")):
        data = {**GENERATE} if bad is None else {**GENERATE, "csrf_token": bad}
        response = await gateway.client.post("/console/playground", data=data, headers=SAME_ORIGIN)
        assert response.status_code == 403 and "CSRF" in response.text
    ok = await gateway.client.post(
        "/console/playground", data={**GENERATE, "csrf_token": token}, headers=SAME_ORIGIN
    )
    assert ok.status_code == 200
    assert re.search(r'<img src="/files/asset_[^"]+"', ok.text)
    header_only = await gateway.client.post(
        "/console/playground", data=GENERATE, headers={**SAME_ORIGIN, "x-csrf-token": token}
    )
    assert header_only.status_code == 200


async def test_sign_in_form_needs_its_token_and_origin(gateway: Gateway) -> None:
    form = await gateway.client.get("/console/sign-in")
    token = csrf_of(form.text)
    no_token = await gateway.client.post(
        "/console/sign-in", data={"api_key": gateway.key}, headers=SAME_ORIGIN
    )
    assert no_token.status_code == 403
    cross = await gateway.client.post(
        "/console/sign-in",
        data={"api_key": gateway.key, "csrf_token": token},
        headers={"origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    other_browser = httpx.AsyncClient(transport=gateway.client._transport, base_url=ORIGIN)
    async with other_browser:  # a token from someone else's form is not this browser's
        stolen = await other_browser.post(
            "/console/sign-in", data={"api_key": gateway.key, "csrf_token": token},
            headers=SAME_ORIGIN,
        )  # fmt: skip
    assert stolen.status_code == 403


async def test_pages_carry_csp_and_no_key(gateway: Gateway) -> None:
    await sign_in(gateway.client, gateway.key)
    for path in ("/console/sign-in", "/console/playground", "/console/models", "/console/usage"):
        response = await gateway.client.get(path, follow_redirects=True)
        csp = response.headers["content-security-policy"]
        assert (
            "script-src 'self'" in csp
            and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        )
        assert "frame-ancestors 'none'" in csp
        assert response.headers["cache-control"] == "no-store"
        assert gateway.key not in response.text


async def test_client_key_gets_403_on_admin_pages_and_posts(gateway: Gateway) -> None:
    await sign_in(gateway.client, gateway.key)
    token = await csrf(gateway.client)
    for path in ("/console/keys", "/console/providers", "/console/keys/key_x"):
        assert (await gateway.client.get(path)).status_code == 403, path
    created = await gateway.client.post(
        "/console/keys", data={"csrf_token": token, "name": "sneaky"}, headers=SAME_ORIGIN
    )
    assert created.status_code == 403
    assert [k.name for k in await gateway.services.keys.list()] == ["test client"]


async def test_another_keys_images_stay_hidden(gateway: Gateway) -> None:
    other = await gateway.client.post(
        "/v1/images/generations",
        json={"model": "sketch", "prompt": "a secret red square", "response_format": "url"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert other.status_code == 200
    asset_id = other.json()["data"][0]["url"].split("/files/")[1].split("?")[0]
    await sign_in(gateway.client, gateway.key)
    gallery = await gateway.client.get("/console/gallery")
    assert asset_id not in gallery.text and "secret red square" not in gallery.text
    for suffix in ("thumb", "open"):
        response = await gateway.client.get(f"/console/gallery/{asset_id}/{suffix}")
        assert response.status_code == 404, suffix
