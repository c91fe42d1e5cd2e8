"""The shared upstream client: proxies from the environment as operators expect, answers paced,
and no cookie kept from one call to the next."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from imagegate.providers.upstream_client import UpstreamClient

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def answering(record: Callable[[bytes], object], answer: bytes = ANSWER) -> Handler:
    """A loopback server's handler: hands each request's head to ``record``, answers ``answer``."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        record(await reader.readuntil(b"\r\n\r\n"))
        writer.write(answer)
        await writer.drain()
        writer.close()

    return serve


@pytest.fixture
async def proxy() -> AsyncIterator[tuple[str, list[str]]]:
    """A loopback HTTP proxy that records each request line and answers ``ok``."""
    lines: list[str] = []
    serve = answering(lambda head: lines.append(head.split(b"\r\n", 1)[0].decode()))
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", lines


async def _get(url: str) -> int:
    async with (
        UpstreamClient() as client,
        client.open("GET", url, seconds=5, connect_seconds=5) as response,
    ):
        return response.status_code


async def test_http_proxy_from_the_environment_carries_upstream_calls(
    proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, lines = proxy
    monkeypatch.setenv("HTTP_PROXY", address)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    assert await _get("http://upstream.example/v1/models") == 200
    assert await _get("http://upstream.example/v1/images") == 200

    assert lines == [
        "GET http://upstream.example/v1/models HTTP/1.1",
        "GET http://upstream.example/v1/images HTTP/1.1",
    ]


async def test_no_proxy_hosts_are_called_directly(
    proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, lines = proxy
    direct = address.replace("127.0.0.1", "localhost")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens: must not be used
    monkeypatch.setenv("NO_PROXY", "localhost")

    assert await _get(f"{direct}/v1/models") == 200

    assert lines == ["GET /v1/models HTTP/1.1"]


async def test_answers_are_handed_to_callers_a_few_per_loop_iteration() -> None:
    from imagegate.pacing import Pacer
    from tests.test_pacing import iteration_counter

    server = await asyncio.start_server(answering(lambda _: None), "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    received: list[int] = []

    async def call(client: UpstreamClient) -> None:
        async with client.open("GET", url, seconds=5, connect_seconds=5):
            received.append(now())

    now = iteration_counter()
    async with server, UpstreamClient(pacer=Pacer(per_tick=2)) as client:
        await asyncio.gather(*(call(client) for _ in range(20)))

    assert len(received) == 20
    assert max(received.count(iteration) for iteration in received) <= 2


async def test_cookies_an_upstream_sets_are_never_sent_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One client serves every key and tenant: a cookie from one answer (a CDN's bot cookie, a
    relay's session) must not ride along on the next call, which may carry other credentials."""
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    heads: list[bytes] = []
    cookies = (
        b"HTTP/1.1 200 OK\r\nSet-Cookie: __cf_bm=tenant-a; Path=/\r\n"
        b"Set-Cookie: session=relay-login; Path=/; Max-Age=3600\r\n"
        b"Content-Length: 2\r\nConnection: close\r\n\r\nok"
    )
    server = await asyncio.start_server(answering(heads.append, cookies), "127.0.0.1", 0)
    # A host name, not an IP: cookie jars keep no cookies for bare IP addresses.
    url = f"http://localhost:{server.sockets[0].getsockname()[1]}/v1/images"
    async with server, UpstreamClient() as client:
        for _ in range(2):
            async with client.open("GET", url, seconds=5, connect_seconds=5) as response:
                assert response.status_code == 200

    assert len(heads) == 2
    assert b"cookie:" not in heads[1].lower()
