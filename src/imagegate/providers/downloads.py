"""Download an upstream's result URLs at once, with a byte cap, before they expire.

Boundary: a URL an upstream handed back in; its bytes out, or an
:class:`~imagegate.errors.UpstreamError` (it is the upstream's link, never the client's fault).

* A ``data:`` URI is decoded in place (within the cap).
* A URL on the deployment's own origin (scheme, host and port of its base URL, which the
  operator chose and which may be loopback) is fetched with the shared upstream client.
* Any other URL (a CDN such as ``delivery.bfl.ai``, ``replicate.delivery``, ``fal.media``)
  goes through :class:`~imagegate.outbound.OutboundGuard`: public addresses only, each
  redirect re-checked, one deadline, the body dropped past the cap.

Logs carry the host and the size, never the path or query (they hold signatures).
"""

from __future__ import annotations

import logging
import time
from typing import Final

import httpx
import pybase64

from imagegate.core.upstream import ResultFetch
from imagegate.errors import ImagegateError, UpstreamError
from imagegate.outbound import OutboundGuard
from imagegate.providers._http import USER_AGENT
from imagegate.providers.upstream_client import TransportError, UpstreamClient

__all__ = ["DEFAULT_MAX_RESULT_BYTES", "ResultDownloader"]

log = logging.getLogger("imagegate.providers")

DEFAULT_MAX_RESULT_BYTES: Final = 64 * 1024 * 1024
DOWNLOAD_TIMEOUT: Final = 120.0


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host.lower(), url.port or default


class ResultDownloader:
    """Binds a fetch function to one deployment's origin and one deadline."""

    def __init__(
        self,
        http: UpstreamClient | None,
        guard: OutboundGuard | None = None,
        *,
        outbound: httpx.AsyncClient | None = None,
        max_bytes: int = DEFAULT_MAX_RESULT_BYTES,
    ) -> None:
        self._http = http
        self._guard = guard or OutboundGuard()
        self._outbound = outbound
        """The guarded client for other hosts' URLs (the guard pins each resolved address)."""
        self.max_bytes = max_bytes
        self._origins: dict[str, tuple[str, str, int | None]] = {}

    def bind(self, base_url: str | None, deadline: float | None) -> ResultFetch:
        """A fetch function for results of the deployment at ``base_url``."""
        origin = None
        if base_url:
            origin = self._origins.get(base_url)
            if origin is None:
                origin = self._origins.setdefault(base_url, _origin(httpx.URL(base_url)))

        async def fetch(url: str) -> bytes:
            remaining = DOWNLOAD_TIMEOUT
            if deadline is not None:
                remaining = max(0.001, min(remaining, deadline - time.monotonic()))
            return await self.fetch(url, origin=origin, seconds=remaining)

        return fetch

    async def fetch(
        self, url: str, *, origin: tuple[str, str, int | None] | None, seconds: float
    ) -> bytes:
        if url.startswith("data:"):
            return self._data_uri(url)
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise _failed("the result URL is not a valid URL") from None
        started = time.perf_counter()
        if origin is not None and parsed.scheme in ("http", "https") and _origin(parsed) == origin:
            data = await self._own_origin(parsed, seconds)
        else:
            data = await self._guarded(url, seconds)
        elapsed = (time.perf_counter() - started) * 1000
        log.info("result from %s: %d bytes in %.0f ms", parsed.host, len(data), elapsed)
        return data

    def _data_uri(self, url: str) -> bytes:
        header, _, payload = url.partition(",")
        if not header.endswith(";base64"):
            raise _failed("the result data URI is not base64")
        if len(payload) > self.max_bytes * 4 // 3 + 4:
            raise _too_large(self.max_bytes)
        try:
            return bytes(pybase64.b64decode(payload, validate=True))
        except ValueError:
            raise _failed("the result data URI is not valid base64") from None

    async def _own_origin(self, url: httpx.URL, seconds: float) -> bytes:
        if self._http is None:
            raise _failed("no HTTP client to download the result with")
        try:
            async with self._http.open(
                "GET",
                str(url),
                seconds=seconds,
                connect_seconds=seconds,
                headers={"user-agent": USER_AGENT},
            ) as response:
                if response.status_code != 200:
                    raise _failed(f"the result URL answered {response.status_code}")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise _too_large(self.max_bytes)
                    chunks.append(chunk)
                return b"".join(chunks)
        except TransportError:
            raise _failed("the connection broke while downloading the result") from None

    async def _guarded(self, url: str, seconds: float) -> bytes:
        if self._outbound is None:
            raise _failed("no HTTP client to download the result with")
        try:
            return await self._guard.get(
                self._outbound,
                url,
                param="the upstream's result URL",
                max_bytes=self.max_bytes,
                deadline=seconds,
                headers={"user-agent": USER_AGENT},
            )
        except ImagegateError as exc:
            # The guard blames "the client's field"; here the URL is the upstream's.
            raise _failed(exc.message) from None


def _failed(message: str) -> UpstreamError:
    return UpstreamError(
        f"could not download the upstream's result: {message}", code="upstream_result_unavailable"
    )


def _too_large(max_bytes: int) -> UpstreamError:
    return UpstreamError(
        f"the upstream's result is larger than {max_bytes} bytes",
        code="upstream_response_too_large",
    )
