"""Reading an upstream's answer: whole when its length is declared, capped either way, and a
connection cut short is a transport error, not a truncated body."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from imagegate.core.upstream import ProviderContext
from imagegate.errors import UpstreamError
from imagegate.providers._http import send
from imagegate.providers.upstream_client import UpstreamClient


@contextlib.asynccontextmanager
async def answering(raw: bytes) -> AsyncIterator[str]:
    """A loopback server that answers every request with ``raw`` and closes."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(raw)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/images"


async def _send(url: str, max_bytes: int) -> bytes:
    async with UpstreamClient() as client:
        ctx = ProviderContext(
            http=client, request_id="req_1", upstream_model="m", deadline=time.monotonic() + 5
        )
        answer = await send(ctx, "GET", url, provider="fakeco", max_bytes=max_bytes)
        return answer.body


def _declared(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def _chunked(*chunks: bytes) -> bytes:
    framed = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks)
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + framed + b"0\r\n\r\n"


async def test_a_declared_length_within_the_cap_is_read_whole() -> None:
    body = bytes(range(256)) * 1000
    async with answering(_declared(body)) as url:
        assert await _send(url, max_bytes=len(body)) == body


async def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    async with answering(_declared(b"x" * 101)) as url:
        with pytest.raises(UpstreamError) as caught:
            await _send(url, max_bytes=100)
    assert caught.value.code == "upstream_response_too_large"


async def test_an_undeclared_length_is_counted_as_it_arrives() -> None:
    async with answering(_chunked(b"a" * 60, b"b" * 60)) as url:
        with pytest.raises(UpstreamError) as caught:
            await _send(url, max_bytes=100)
        assert caught.value.code == "upstream_response_too_large"
        assert await _send(url, max_bytes=120) == b"a" * 60 + b"b" * 60


async def test_a_body_shorter_than_declared_is_a_broken_connection() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10
    async with answering(raw) as url:
        with pytest.raises(UpstreamError) as caught:
            await _send(url, max_bytes=10_000)
    assert caught.value.code == "upstream_connection_error"
