"""A loopback HTTP receiver for webhook tests: records requests, answers scripted statuses."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def signature_valid(self, key: bytes) -> bool:
        """Standard Webhooks: v1,<base64 HMAC-SHA256 of "id.timestamp.body">."""
        signed = f"{self.headers['webhook-id']}.{self.headers['webhook-timestamp']}.".encode()
        digest = hmac.new(key, signed + self.body, hashlib.sha256).digest()
        expected = "v1," + base64.b64encode(digest).decode()
        return any(
            hmac.compare_digest(expected, s) for s in self.headers["webhook-signature"].split()
        )


@dataclass
class Receiver:
    url: str
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, count: int, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()


@asynccontextmanager
async def receiver(statuses: list[int] | None = None) -> AsyncIterator[Receiver]:
    """A server on 127.0.0.1; answers ``statuses`` in order, then 200."""
    box = Receiver(url="", statuses=list(statuses or []))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = (await reader.readline()).decode()
        headers: dict[str, str] = {}
        while line := (await reader.readline()).decode().strip():
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        box.received.append(Received(request_line.split()[1], headers, body))
        box.arrived.set()
        status = box.statuses.pop(0) if box.statuses else 200
        writer.write(
            f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    box.url = f"http://127.0.0.1:{port}/hook"
    async with server:
        yield box
