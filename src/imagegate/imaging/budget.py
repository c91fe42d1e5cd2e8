"""A process-wide budget of concurrently decoded megapixels, and giving memory back after.

Boundary: callers that are about to decode pixels ask :data:`DECODE_BUDGET` for the pixels they
will hold (``async with DECODE_BUDGET.hold(pixels, param=...)``); it makes them wait while the
budget is spent and refuses with a 429 when the wait would be too long. It knows nothing of
images; it only counts.

Why a budget and not just the per-image pixel cap: a 200 KB PNG of 7000×7000 passes a 50
megapixel cap and decodes to ~150 MB, so eight at once took the server from 0.5 to 2.4 GB. The
budget bounds the pixels decoded at the same moment, hence the memory (about 4-8 bytes a pixel
while decoding and converting), whatever the number of concurrent requests.

Memory return: Pillow allocates pixels in blocks that glibc serves from its heap once its
dynamic mmap threshold has grown, and freed heap pages stay in the process. After a large
decode the budget calls glibc's ``malloc_trim(0)`` (through ctypes; a no-op elsewhere), so the
resident size falls back once the large work is over (a trim costs ~1 ms).

Allocator thresholds (:func:`tune_allocator`, called by ``imagegate serve``): glibc serves a
block over its mmap threshold with fresh pages and returns heap tops over its trim threshold at
once, and with its default, dynamic thresholds the 1-2 MB buffers of every large image answer
kept landing on one side or the other: 100-550 page faults, up to 2 ms of system CPU, per
request. Fixed thresholds above those sizes keep such buffers in the heap for reuse.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from imagegate.errors import RateLimited

__all__ = ["DECODE_BUDGET", "DecodeBudget", "release_memory", "tune_allocator"]

log = logging.getLogger("imagegate.imaging")

DEFAULT_BUDGET_PIXELS: Final = 64_000_000
"""Pixels decoded at once in the whole process: one image at the 50 MP cap plus small ones."""
DEFAULT_MAX_WAIT_SECONDS: Final = 30.0
TRIM_AFTER_PIXELS: Final = 4_000_000
"""A decode this large (≥ ~16 MB of pixels) gives its memory back to the system when done."""


class DecodeBudget:
    """Counts decoded pixels across threads and event loops; waiters are served in order.

    A single reservation larger than the whole budget is allowed alone (so no image within
    the per-image cap is ever refused for its size only).
    """

    def __init__(
        self,
        pixels: int = DEFAULT_BUDGET_PIXELS,
        *,
        max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
    ) -> None:
        self.pixels = pixels
        self.max_wait = max_wait
        self._lock = threading.Lock()
        self._held = 0
        self._waiters: deque[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    @property
    def held(self) -> int:
        """Pixels reserved right now."""
        return self._held

    def configure(self, pixels: int, max_wait: float) -> None:
        """Set the budget (from settings, at start-up)."""
        with self._lock:
            self.pixels = pixels
            self.max_wait = max_wait

    @asynccontextmanager
    async def hold(
        self, pixels: int, *, param: str | None = None, patient: bool = False
    ) -> AsyncIterator[None]:
        """Reserve ``pixels`` for the body of the ``async with``; 429 after ``max_wait``.

        ``patient`` waits for as long as it takes: for work whose refusal would waste what was
        already paid for (converting an upstream's result)."""
        if pixels <= 0:
            yield
            return
        await self._acquire(pixels, param, None if patient else self.max_wait)
        try:
            yield
        finally:
            self._release(pixels)

    async def _acquire(self, pixels: int, param: str | None, max_wait: float | None) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if not self._waiters and self._fits(pixels):
                self._held += pixels
                return
            future: asyncio.Future[None] = loop.create_future()
            entry = (pixels, loop, future)
            self._waiters.append(entry)
        started = time.monotonic()
        try:
            await asyncio.wait_for(asyncio.shield(future), max_wait)
        except TimeoutError:
            with self._lock:
                if entry in self._waiters:
                    self._waiters.remove(entry)
                    granted = False
                else:
                    granted = True  # granted while the timeout fired: keep it
            if not granted:
                waited = max_wait or 0.0
                log.warning("decode budget: waited %.1f s for %d pixels", waited, pixels)
                raise RateLimited(
                    "the server is decoding too many large images at once; retry shortly",
                    param=param,
                    code="decode_budget_exhausted",
                    retry_after=max(1.0, waited / 4),
                ) from None
        except asyncio.CancelledError:
            with self._lock:
                if entry in self._waiters:
                    self._waiters.remove(entry)
                    raise
            self._release(pixels)  # granted and then cancelled: hand it on
            raise
        log.debug("decode budget: %d pixels after %.2f s", pixels, time.monotonic() - started)

    def _fits(self, pixels: int) -> bool:
        return self._held == 0 or self._held + pixels <= self.pixels

    def _release(self, pixels: int) -> None:
        with self._lock:
            self._held -= pixels
            while self._waiters and self._fits(self._waiters[0][0]):
                wanted, loop, future = self._waiters.popleft()
                self._held += wanted
                loop.call_soon_threadsafe(_grant, future)
        if pixels >= TRIM_AFTER_PIXELS:
            release_memory()


def _grant(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


DECODE_BUDGET: Final = DecodeBudget()
"""The process's budget (configured from settings by the services at start-up)."""


def _load_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _load_trim()


def release_memory() -> None:
    """Give freed heap memory back to the system (glibc ``malloc_trim``; elsewhere nothing)."""
    if _TRIM is not None:
        _TRIM(0)


MMAP_THRESHOLD: Final = 4 * 1024 * 1024
"""Blocks up to this size come from the heap (glibc's default starts at 128 KB and moves)."""
TRIM_THRESHOLD: Final = 64 * 1024 * 1024
"""Free memory at the heap's top up to this size is kept for the next requests, not returned
at once (``release_memory`` still returns it after a large decode)."""
_M_TRIM_THRESHOLD: Final = -1
_M_MMAP_THRESHOLD: Final = -3


def tune_allocator() -> None:
    """Fix glibc's mmap and trim thresholds (see the module's docstring) in this process and,
    through the environment, in the worker processes it starts; a value the operator set in
    ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_`` is left alone. Elsewhere nothing."""
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    for variable, param, value in (
        ("MALLOC_MMAP_THRESHOLD_", _M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        ("MALLOC_TRIM_THRESHOLD_", _M_TRIM_THRESHOLD, TRIM_THRESHOLD),
    ):
        if variable not in os.environ:
            mallopt(param, value)
            os.environ[variable] = str(value)
