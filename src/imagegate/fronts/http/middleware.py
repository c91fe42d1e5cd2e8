"""Raw ASGI middleware: request ids, the body-size limits and one access-log line per request
(which also feeds the request metrics and, when tracing is on, the request's server span).

Bodies are counted as they stream: a declared ``Content-Length`` over the route's limit is
refused before anything is read, and a chunked body is cut off as soon as its bytes pass the
limit (an endless body costs at most the limit). Routes that take no images (``small_prefixes``)
have a small limit, so an endless body there costs ~1 MB rather than the image routes' 64 MB;
after refusing a large body the freed buffers are handed back to the system."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagegate.errors import ImagegateError, PayloadTooLarge
from imagegate.fronts.http.errors import Envelopes
from imagegate.fronts.http.responses import header_value
from imagegate.imaging.budget import release_memory
from imagegate.observability import metrics, tracing

log = logging.getLogger("imagegate.access")

CLIENT_CLOSED_REQUEST = 499
"""The access log's status for a request that got no answer because its client went away
(nginx's convention)."""

DIRECT_ROUTE = "imagegate.route"
"""Scope key ``api._direct`` sets to the path of the hot route that answered."""


class GatewayMiddleware:
    """Gives each request an id (``x-request-id``), refuses oversize bodies, logs one line."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        envelopes: Envelopes,
        small_body_bytes: int | None = None,
        small_prefixes: tuple[str, ...] = (),
        outage: Callable[[BaseException], ImagegateError | None] = lambda _exc: None,
    ) -> None:
        """``outage``: the retryable error for an exception that means a storage service is
        down (the composition root knows which those are), else None."""
        self.app = app
        self.outage = outage
        self.max_body_bytes = max_body_bytes
        self.small_body_bytes = min(small_body_bytes or max_body_bytes, max_body_bytes)
        self.small_prefixes = small_prefixes
        self.envelopes = envelopes

    def limit(self, path: str) -> int:
        """The body limit of ``path``."""
        return (
            self.small_body_bytes if path.startswith(self.small_prefixes) else self.max_body_bytes
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req_" + secrets.token_hex(12)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        traced = tracing.start_request(scope)
        status = CLIENT_CLOSED_REQUEST
        answered = False
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status, answered = message["status"], True
                extra = [
                    (k.encode(), header_value(v).encode())
                    for k, v in state.get("response_headers", {}).items()
                ]
                message["headers"] = [*message.get("headers", []), header, *extra]
            await send(message)

        limit = self.limit(scope["path"])
        trim = False
        try:
            if self._declared_too_large(scope, limit):
                await self._refuse(scope, receive, send_with_id, request_id, limit)
                return
            await self.app(scope, self._limited(receive, limit), send_with_id)
        except _BodyTooLarge:
            await self._refuse(scope, receive, send_with_id, request_id, limit)
            trim = limit >= _TRIM_AFTER_BYTES
        except Exception as exc:
            unavailable = None if answered else self.outage(exc)
            if unavailable is None:
                status = 500
                raise
            log.warning("storage unavailable on %s: %s", scope["path"], type(exc).__name__)
            response = self.envelopes.response(scope["path"], unavailable, request_id)
            await response(scope, receive, send_with_id)
        finally:
            release = state.get("release")
            if release is not None:
                release()
            self._log(scope, state, status, started, traced)
        if trim:
            # Here, not in the except clause: until it ends, the exception's traceback holds
            # the frames that hold the body read so far, and that memory is not free yet.
            release_memory()

    @staticmethod
    def _declared_too_large(scope: Scope, limit: int) -> bool:
        for name, value in scope["headers"]:
            if name == b"content-length":
                return not value.isdigit() or len(value) > 18 or int(value) > limit
        return False

    @staticmethod
    def _limited(receive: Receive, limit: int) -> Receive:
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        return limited

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, request_id: str, limit: int
    ) -> None:
        error = PayloadTooLarge(
            f"request body exceeds the {limit} byte limit", code="body_too_large"
        )
        response = self.envelopes.response(scope["path"], error, request_id)
        await response(scope, receive, send)

    @staticmethod
    def _log(
        scope: Scope,
        state: dict[str, Any],
        status: int,
        started: float,
        traced: tracing.RequestSpan | None,
    ) -> None:
        seconds = time.perf_counter() - started
        route = route_of(scope)
        metrics.request(route, status, seconds)
        if traced is not None:
            traced.finish(scope["method"], route, status)
        if not log.isEnabledFor(logging.INFO):
            return  # the access log is off: no line is built
        line = {
            "request_id": state["request_id"],
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "ms": round(seconds * 1000, 2),
            **state.get("log", {}),
        }
        if traced is not None:
            line["trace_id"] = traced.trace_id
        log.info(orjson.dumps(line).decode())


def route_of(scope: Scope) -> str:
    """The template of the route that answered (``DIRECT_ROUTE`` for the hot routes, which
    are exact paths; FastAPI's matched route otherwise), never the raw path."""
    direct = scope.get(DIRECT_ROUTE)
    if direct is not None:
        return str(direct)
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else metrics.UNMATCHED_ROUTE


_TRIM_AFTER_BYTES = 8 * 1024 * 1024


class _BodyTooLarge(Exception):
    pass
