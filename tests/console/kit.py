"""Helpers for the console's server tests: sign in over plain HTTP as a browser would."""

from __future__ import annotations

import re

import httpx

ORIGIN = "http://gateway.test"
SAME_ORIGIN = {"origin": ORIGIN, "sec-fetch-site": "same-origin"}
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: str) -> str:
    found = TOKEN.search(page)
    assert found, "the page has no CSRF token"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, key: str) -> httpx.Response:
    form = await client.get("/console/sign-in")
    return await client.post(
        "/console/sign-in",
        data={"csrf_token": csrf_of(form.text), "api_key": key},
        headers=SAME_ORIGIN,
    )


async def csrf(client: httpx.AsyncClient) -> str:
    """The signed-in session's CSRF token, as the pages carry it."""
    return csrf_of((await client.get("/console/playground")).text)
