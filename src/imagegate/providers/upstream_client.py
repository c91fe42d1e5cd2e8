"""The shared, pooled HTTP client that adapters use to call upstream providers.

Boundary: a request (method, URL, headers, a body or a multipart form, a deadline) in; an open
:class:`UpstreamResponse` out, or a :class:`TransportError` saying what broke below HTTP. It
knows no provider, maps no status and logs nothing. aiohttp does the work: on this path it costs
a fraction of the CPU of other Python clients, and every image request passes through here.
Redirects are never followed (credentials stay with the host the operator configured), and
no cookie is kept from one call to the next.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit
from urllib.request import proxy_bypass

if TYPE_CHECKING:
    import aiohttp

    from imagegate.pacing import Pacer

__all__ = [
    "BadUrl",
    "ConnectFailed",
    "ConnectionBroken",
    "TimedOut",
    "TransportError",
    "UpstreamClient",
    "UpstreamResponse",
]

DEFAULT_MAX_CONNECTIONS: Final = 1000
READ_BUFFER: Final = 1 << 20

FileField = tuple[str, tuple[str, bytes, str]]
"""``(field, (filename, bytes, content type))``: one file of a multipart form."""


class TransportError(Exception):
    """A failure below HTTP; the message names no URL (URLs may hold ids or signatures)."""


class ConnectFailed(TransportError):
    """No connection could be made (refused, unresolvable, or the connect timed out)."""


class TimedOut(TransportError):
    """Connected, but the answer did not come within the deadline."""


class BadUrl(TransportError):
    """The URL cannot be requested (malformed, or not http/https)."""


class ConnectionBroken(TransportError):
    """The connection broke, or the answer was not valid HTTP."""


class UpstreamResponse:
    """An open answer: status and headers now, the body as it arrives."""

    __slots__ = ("_response",)

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    @property
    def status_code(self) -> int:
        return self._response.status

    @property
    def headers(self) -> Mapping[str, str]:
        """Case-insensitive."""
        return self._response.headers

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        with _mapped():
            # Whatever has arrived, in one piece: far fewer iterations than fixed-size chunks.
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def read(self) -> bytes:
        with _mapped():
            return await self._response.read()

    async def aiter_lines(self) -> AsyncIterator[str]:
        """Lines without their ending (for server-sent events)."""
        with _mapped():
            async for line in self._response.content:
                yield line.decode("utf-8", "replace").rstrip("\r\n")


class UpstreamClient:
    """One per process; its connection pool is shared by every upstream call."""

    def __init__(
        self, *, max_connections: int = DEFAULT_MAX_CONNECTIONS, pacer: Pacer | None = None
    ) -> None:
        """``pacer``: each answer waits for its turn before its caller reads it (see
        :mod:`imagegate.pacing`)."""
        self._max_connections = max_connections
        self._pacer = pacer
        self._session: aiohttp.ClientSession | None = None
        self._proxies: _EnvProxies | None = None

    def _open_session(self) -> aiohttp.ClientSession:
        # Imported on first use: it costs ~0.2 s of start-up, and a gateway serving only the
        # built-in renderer never calls an upstream.
        import aiohttp

        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0)
            # Not trust_env: aiohttp would then re-read the environment and ~/.netrc in a
            # thread on every request (a third of this path's CPU); _EnvProxies reads them once.
            # read_bufsize: a 1.5 MB image answer is buffered without pausing the socket every
            # 128 KB (aiohttp's default), which cost a pause/resume pair and a parser pass each.
            # DummyCookieJar: this one session serves every key and tenant, so a cookie from
            # one answer (a CDN's bot cookie, a relay's login) must never ride on the next call.
            self._session = aiohttp.ClientSession(
                connector=connector,
                read_bufsize=READ_BUFFER,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            self._proxies = _EnvProxies()
        return self._session

    @asynccontextmanager
    async def open(
        self,
        method: str,
        url: str,
        *,
        seconds: float,
        connect_seconds: float,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        files: Sequence[FileField] | None = None,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> AsyncIterator[UpstreamResponse]:
        """Send the request and yield the open response (any status); closed on exit."""
        body: Any = (
            _form(data, files) if files is not None else (data if data is not None else content)
        )
        session = self._open_session()
        timeout = _client_timeout(seconds, connect_seconds)
        assert self._proxies is not None
        with _mapped():
            proxy, proxy_auth = self._proxies.for_url(url)
            response = await session.request(
                method,
                url,
                headers=dict(headers) if headers else None,
                data=body,
                params=dict(params) if params else None,
                timeout=timeout,
                allow_redirects=False,
                proxy=proxy,
                proxy_auth=proxy_auth,
            )
        if self._pacer is not None:
            await self._pacer.turn()
        try:
            yield UpstreamResponse(response)
        finally:
            response.release()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            # Transports finish closing on the next loop iteration; without it a loop that
            # stops right after leaves their sockets to the garbage collector (aiohttp's advice).
            await asyncio.sleep(0)

    async def __aenter__(self) -> UpstreamClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()


class _EnvProxies:
    """``HTTP(S)_PROXY``/``NO_PROXY`` as any HTTP client honours them, read once per client.

    The answer per scheme and host is remembered: upstream hosts are the operator's few.
    """

    __slots__ = ("_by_host", "_proxies")

    def __init__(self) -> None:
        from aiohttp.helpers import proxies_from_env

        self._proxies = proxies_from_env()
        self._by_host: dict[tuple[str, str], tuple[Any, Any]] = {}

    def for_url(self, url: str) -> tuple[Any, Any]:
        """``(proxy URL, proxy auth)`` for this URL, or ``(None, None)`` to go direct."""
        if not self._proxies:
            return None, None
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname or "")
        found = self._by_host.get(key)
        if found is None:
            info = self._proxies.get(parts.scheme)
            bypass = not parts.hostname or proxy_bypass(parts.hostname)
            found = (None, None) if info is None or bypass else (info.proxy, info.proxy_auth)
            if len(self._by_host) < 1024:
                self._by_host[key] = found
        return found


def _client_timeout(seconds: float, connect_seconds: float) -> aiohttp.ClientTimeout:
    import aiohttp

    return aiohttp.ClientTimeout(total=seconds, sock_connect=connect_seconds)


def _form(data: Mapping[str, str] | None, files: Sequence[FileField]) -> aiohttp.FormData:
    import aiohttp

    # files=[] still means multipart/form-data (Ideogram wants it for text-only forms)
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value in (data or {}).items():
        form.add_field(name, value)
    for name, (filename, content, content_type) in files:
        form.add_field(name, content, filename=filename, content_type=content_type)
    return form


@contextmanager
def _mapped() -> Iterator[None]:
    """Turns aiohttp's and the socket layer's exceptions into :class:`TransportError`."""
    import aiohttp

    try:
        yield
    except TransportError:
        raise
    except (aiohttp.ConnectionTimeoutError, aiohttp.ClientConnectorError):
        raise ConnectFailed("cannot connect") from None
    except TimeoutError:
        raise TimedOut("no answer in time") from None
    except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError, ValueError):
        raise BadUrl("the URL cannot be requested") from None
    except (aiohttp.ClientError, OSError):
        raise ConnectionBroken("the connection broke") from None
