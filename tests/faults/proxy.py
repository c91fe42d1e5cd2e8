"""A loopback TCP proxy a test can cut, freeze and restore: an outage of the service behind it
(PostgreSQL, Redis) without touching the shared service itself.

It runs its own event loop on a thread, so in-process gateways and ``imagegate serve``
subprocesses alike reach the service through it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")


class Proxy:
    """``127.0.0.1:<port>`` → ``target``. ``cut()``: every connection is closed and new ones are
    closed on arrival (a service that is down); ``freeze()``: connections are accepted and
    kept, nothing more is forwarded (a service that hangs); ``restore()``: back to normal."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._mode = "open"
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._frozen: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    def start(self) -> Proxy:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def cut(self) -> None:
        self._set("cut")

    def freeze(self) -> None:
        self._set("frozen")

    def restore(self) -> None:
        self._set("open")

    def stop(self) -> None:
        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            self._drop_all()
            await asyncio.sleep(0)

        self._call(shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _set(self, mode: str) -> None:
        async def apply() -> None:
            self._mode = mode
            if mode == "cut":
                self._drop_all()

        self._call(apply())

    def _drop_all(self) -> None:
        for writer in [*self._writers, *self._frozen]:
            writer.close()
        self._writers.clear()
        self._frozen.clear()

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._mode == "cut":
            writer.close()
            return
        if self._mode == "frozen":
            self._frozen.append(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                while self._mode == "frozen":
                    await asyncio.sleep(0.02)
                if self._mode == "cut":
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()


@contextmanager
def proxy_to(host: str, port: int) -> Iterator[Proxy]:
    proxy = Proxy(host, port).start()
    try:
        yield proxy
    finally:
        proxy.stop()
