"""Download a client's image URL through the SSRF guard.

Boundary: a URL in, the raw bytes out (not yet inspected: that is
:func:`imagegate.imaging.inspect.inspect_image`). All the network safety lives in
:class:`imagegate.outbound.OutboundGuard`; this module only adds what an image fetch asks for.
"""

from __future__ import annotations

import logging
import time
from typing import Final

import httpx

from imagegate.outbound import DEFAULT_TIMEOUT, OutboundGuard

__all__ = ["ImageFetcher"]

log = logging.getLogger("imagegate.imaging")

_HEADERS: Final = {"Accept": "image/png, image/jpeg, image/webp, image/gif;q=0.8"}


class ImageFetcher:
    """Fetches image URLs with a shared HTTP client, through ``guard``, within ``timeout``."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        guard: OutboundGuard,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._client = client
        self._guard = guard
        self._timeout = timeout

    async def fetch(self, url: str, *, max_bytes: int, param: str) -> bytes:
        """The body at ``url``: at most ``max_bytes``, or an error naming ``param``."""
        started = time.perf_counter()
        data = await self._guard.get(
            self._client,
            url,
            param=param,
            max_bytes=max_bytes,
            deadline=self._timeout,
            headers=_HEADERS,
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        # Never the URL: query strings carry signatures and tokens.
        log.info("fetched %s: %d bytes in %.0f ms", param, len(data), elapsed_ms)
        return data
