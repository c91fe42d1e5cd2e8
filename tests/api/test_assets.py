"""Signed, expiring asset links: tampering is 403, expiry 410, unknown ids never reach the disk."""

from __future__ import annotations

import time

import httpx

from imagegate.core.assets import NewAsset
from tests.conftest import Gateway


async def stored_asset(gateway: Gateway) -> str:
    (asset,) = await gateway.services.assets.store(
        [NewAsset(b"\x89PNG fake", "image/png")], owner_key_id=None, request_id=None
    )
    return asset.id


async def test_valid_link_downloads(gateway: Gateway) -> None:
    asset_id = await stored_asset(gateway)
    response = await gateway.client.get(gateway.services.assets.signed_path(asset_id))
    assert response.status_code == 200
    assert response.content == b"\x89PNG fake"
    assert response.headers["content-type"] == "image/png"


async def test_tampered_signature_is_403(gateway: Gateway) -> None:
    asset_id = await stored_asset(gateway)
    url = httpx.URL(gateway.services.assets.signed_path(asset_id))
    sig = url.params["sig"]
    forged = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    for params in (
        {"exp": url.params["exp"], "sig": forged},
        {"exp": str(int(url.params["exp"]) + 3600), "sig": sig},
        {"exp": url.params["exp"]},
        {},
    ):
        response = await gateway.client.get(url.path, params=params)
        assert response.status_code == 403, params
        assert response.json()["error"]["type"] == "permission_error"


async def test_expired_link_is_410(gateway: Gateway) -> None:
    asset_id = await stored_asset(gateway)
    path = gateway.services.assets.signed_path(asset_id, now=time.time() - 7200)
    response = await gateway.client.get(path)
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "link_expired"


async def test_signed_link_for_unknown_or_hostile_ids(gateway: Gateway) -> None:
    assets = gateway.services.assets
    missing = await gateway.client.get(assets.signed_path("asset_" + "A" * 24))
    assert missing.status_code == 404
    hostile = await gateway.client.get(assets.signed_path("..%2F..%2Fserver-secret"))
    assert hostile.status_code in (403, 404)


async def test_link_lifetime_is_configurable(gateway: Gateway) -> None:
    asset_id = await stored_asset(gateway)
    url = httpx.URL(gateway.services.assets.signed_path(asset_id, ttl=60))
    assert abs(int(url.params["exp"]) - (time.time() + 60)) < 5
