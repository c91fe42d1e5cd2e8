"""One way for adapters to talk HTTP: the shared client, the deadline, byte caps, and transport
failures turned into domain errors.

Boundary: a request in; an :class:`Answer` (any status) or a domain error out. Mapping a non-2xx
status is each adapter's job (it knows its error envelope); this module only maps what happens
below HTTP: a refused connection is :class:`~imagegate.errors.Unavailable` (503), a timeout
:class:`~imagegate.errors.UpstreamTimeout` (504), a connection broken mid-body or a body over
its cap :class:`~imagegate.errors.UpstreamError` (502). Nothing is logged here but sizes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from imagegate import __version__
from imagegate.core.upstream import ProviderContext, UpstreamAnswer, UpstreamHttp
from imagegate.digits import is_decimal
from imagegate.errors import (
    ImagegateError,
    ServerError,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)
from imagegate.providers.errors import bad_response, retry_after, status_error
from imagegate.providers.upstream_client import (
    BadUrl,
    ConnectFailed,
    TimedOut,
    TransportError,
)

__all__ = ["MAX_RESPONSE_BYTES", "Answer", "json_body", "open_stream", "parse", "send"]

log = logging.getLogger("imagegate.providers")

MAX_RESPONSE_BYTES: Final = 256 * 1024 * 1024
"""The largest upstream answer read (16 images of 12 MB as base64, with room to spare)."""
USER_AGENT: Final = f"imagegate/{__version__}"
_CONNECT_TIMEOUT: Final = 10.0

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Answer:
    """An upstream's complete answer."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def text(self) -> str:
        return self.body[:4096].decode("utf-8", "replace")


def json_body(payload: Any) -> bytes:
    return orjson.dumps(payload)


def _client(ctx: ProviderContext) -> UpstreamHttp:
    if ctx.http is None:
        raise ServerError("no HTTP client was given to the provider adapter")
    return ctx.http


def _headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    return {"user-agent": USER_AGENT, **(headers or {})}


async def send(
    ctx: ProviderContext,
    method: str,
    url: str,
    *,
    provider: str,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    files: Any = None,
    data: Mapping[str, Any] | None = None,
    params: Mapping[str, str] | None = None,
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> Answer:
    """Send one request within the context's deadline and read the whole answer."""
    async with open_stream(
        ctx,
        method,
        url,
        provider=provider,
        headers=headers,
        content=content,
        files=files,
        data=data,
        params=params,
    ) as response:
        body = await _read(response, provider, max_bytes)
    return Answer(response.status_code, response.headers, body)


@asynccontextmanager
async def open_stream(
    ctx: ProviderContext,
    method: str,
    url: str,
    *,
    provider: str,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    files: Any = None,
    data: Mapping[str, Any] | None = None,
    params: Mapping[str, str] | None = None,
) -> AsyncIterator[UpstreamAnswer]:
    """An open streamed response (any status); read it inside the ``async with``. Transport
    failures, while connecting or reading, become domain errors (:func:`transport_error`)."""
    remaining = ctx.remaining()
    try:
        async with _client(ctx).open(
            method,
            url,
            seconds=remaining,
            connect_seconds=min(_CONNECT_TIMEOUT, remaining),
            headers=_headers(headers),
            content=content,
            files=files,
            data=data,
            params=params,
        ) as response:
            yield response
    except TransportError as exc:
        raise transport_error(exc, provider) from None


async def read_capped(response: UpstreamAnswer, provider: str, max_bytes: int) -> bytes:
    """The rest of ``response``'s body."""
    return await _read(response, provider, max_bytes)


async def _read(response: UpstreamAnswer, provider: str, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if is_decimal(declared):
        if int(declared) > max_bytes:
            raise _too_large(provider, max_bytes)
        # The parser stops at the declared length: one read, no per-chunk iteration.
        return await response.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(provider, max_bytes)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(provider: str, max_bytes: int) -> UpstreamError:
    return UpstreamError(
        f"{provider} sent more than {max_bytes} bytes", code="upstream_response_too_large"
    )


def transport_error(exc: TransportError, provider: str) -> UpstreamError:
    """The domain error for a failure below HTTP (the message names no URL: it may hold ids)."""
    if isinstance(exc, ConnectFailed):
        return Unavailable(f"cannot connect to {provider}", code="upstream_unreachable")
    if isinstance(exc, TimedOut):
        return UpstreamTimeout(f"{provider} did not answer in time", code="upstream_timeout")
    if isinstance(exc, BadUrl):
        return UpstreamError(f"{provider}'s URL is invalid", code="upstream_misconfigured")
    return UpstreamError(
        f"the connection to {provider} broke before the answer was complete",
        code="upstream_connection_error",
    )


def parse(model: type[ModelT], body: bytes, provider: str) -> ModelT:
    """Validate an upstream's JSON body with ``model``; garbage is a 502."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors()
        where = ".".join(str(part) for part in errors[0]["loc"]) if errors else ""
        invalid_json = bool(errors) and errors[0]["type"] == "json_invalid"
        what = "truncated or not JSON" if invalid_json else f"at {where or 'body'}"
        log.info("%s sent an invalid body (%d bytes): %s", provider, len(body), what)
        raise bad_response(provider, what) from None


def join(base: str, path: str) -> str:
    """``base`` (no trailing slash needed) and ``path`` (with or without a leading slash)."""
    return base.rstrip("/") + "/" + path.lstrip("/")


def answer_error(
    answer: Answer,
    message: str,
    *,
    provider: str,
    credentials: Mapping[str, str],
    code: str | None = None,
) -> ImagegateError:
    """:func:`status_error` for a non-2xx *answer*, its ``Retry-After`` as the hint."""
    return status_error(
        answer.status,
        message,
        provider=provider,
        credentials=credentials,
        hint=retry_after(answer.headers),
        code=code,
    )
