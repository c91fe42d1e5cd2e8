"""The console's session store: opaque ids, idle and absolute expiry, sign-out, revocation."""

from __future__ import annotations

import asyncio
import hashlib

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.console_sessions import TOUCH_EVERY_SECONDS, SessionStore
from imagegate.settings import Settings
from imagegate.storage.repositories.console_sessions import SqlSessionRepository
from imagegate.storage.tables import console_sessions
from tests.conftest import Gateway, running_gateway
from tests.console.kit import sign_in


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_the_database_keeps_only_a_hash_of_the_id(engine: AsyncEngine) -> None:
    store = SessionStore(SqlSessionRepository(engine))
    token, session = await store.create("key_a")
    async with engine.connect() as conn:
        stored = (await conn.execute(sa.select(console_sessions.c.id_hash))).scalars().all()
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]
    assert token not in stored
    found = await store.get(token)
    assert found is not None and found.key_id == "key_a" and found.csrf_token == session.csrf_token
    assert await store.get(token + "x") is None
    assert await store.get("") is None


async def test_idle_sessions_expire_and_activity_keeps_them(engine: AsyncEngine) -> None:
    clock = Clock()
    store = SessionStore(
        SqlSessionRepository(engine), idle_seconds=600, absolute_seconds=10_000, clock=clock
    )
    token, _ = await store.create("key_a")
    for _ in range(3):  # activity every 5 minutes keeps it alive past the idle limit
        clock.now += 300
        assert await store.get(token) is not None
    clock.now += 600 + TOUCH_EVERY_SECONDS
    assert await store.get(token) is None
    clock.now -= 600  # expired sessions are deleted, not just hidden
    assert await store.get(token) is None


async def test_sessions_end_at_the_absolute_limit_whatever_the_activity(
    engine: AsyncEngine,
) -> None:
    clock = Clock()
    store = SessionStore(
        SqlSessionRepository(engine), idle_seconds=600, absolute_seconds=1000, clock=clock
    )
    token, _ = await store.create("key_a")
    clock.now += 500
    assert await store.get(token) is not None
    clock.now += 499
    assert await store.get(token) is not None
    clock.now += 1
    assert await store.get(token) is None


async def test_sign_out_sweep_and_end_all(engine: AsyncEngine) -> None:
    clock = Clock()
    store = SessionStore(
        SqlSessionRepository(engine), idle_seconds=600, absolute_seconds=10_000, clock=clock
    )
    first, _ = await store.create("key_a")
    second, _ = await store.create("key_a")
    other, _ = await store.create("key_b")
    await store.end(first)
    assert await store.get(first) is None and await store.get(second) is not None
    assert await store.end_all("key_a") == 1
    assert await store.get(second) is None
    clock.now += 700
    assert await store.sweep() == 1
    assert await store.get(other) is None


async def test_cookie_is_opaque_httponly_strict_and_ends_with_sign_out(gateway: Gateway) -> None:
    response = await sign_in(gateway.client, gateway.key)
    assert response.status_code == 303 and response.headers["location"] == "/console/playground"
    cookie = next(
        value for name, value in response.headers.multi_items()
        if name == "set-cookie" and value.startswith("ig_console=")
    )  # fmt: skip
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    assert gateway.key not in cookie
    page = await gateway.client.get("/console/playground")
    assert page.status_code == 200 and gateway.key not in page.text
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    out = await gateway.client.post(
        "/console/sign-out",
        data={"csrf_token": token},
        headers={"origin": "http://gateway.test"},
    )
    assert out.status_code == 303 and out.headers["location"] == "/console/sign-in"
    again = await gateway.client.get("/console/playground")
    assert again.status_code == 303 and again.headers["location"] == "/console/sign-in"


async def test_cookie_is_secure_behind_https(gateway: Gateway) -> None:
    form = await gateway.client.get("/console/sign-in", headers={"x-forwarded-proto": "https"})
    assert "Secure" in form.headers["set-cookie"]


async def test_a_revoked_key_loses_its_sessions(gateway: Gateway) -> None:
    services = gateway.services
    key, secret = await services.keys.create(name="short-lived")
    await sign_in(gateway.client, secret)
    assert (await gateway.client.get("/console/gallery")).status_code == 200
    await services.keys.revoke(key.id)
    refused = await gateway.client.get("/console/gallery")
    assert refused.status_code == 303 and refused.headers["location"] == "/console/sign-in"


async def test_sign_in_attempts_are_rate_limited_per_address(gateway: Gateway) -> None:
    statuses = [(await sign_in(gateway.client, "ig-wrong")).status_code for _ in range(11)]
    assert statuses[:10] == [401] * 10
    assert statuses[10] == 429
    limited = await sign_in(gateway.client, gateway.key)  # even a good key waits
    assert limited.status_code == 429 and "Too many sign-in attempts" in limited.text


async def test_the_idle_limit_is_a_setting(settings: Settings) -> None:
    settings.console_idle_seconds = 0.5  # read when the gateway starts
    async with running_gateway(settings) as gateway:
        await sign_in(gateway.client, gateway.key)
        assert (await gateway.client.get("/console/gallery")).status_code == 200
        await asyncio.sleep(0.6)
        expired = await gateway.client.get("/console/gallery")
        assert expired.status_code == 303 and expired.headers["location"] == "/console/sign-in"
