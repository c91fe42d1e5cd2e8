"""Scripted behaviour shared by every fake upstream: steps, call records, file serving.

Boundary: an ASGI app (Starlette) per fake; nothing here knows a provider's wire format. Each
fake names its routes (``"generate"``, ``"poll"`` …), answers success in its provider's real
shape, and renders :class:`Fail`/:class:`RateLimit`/:class:`Blocked` in its provider's own
error envelope; this module plays the steps that look the same everywhere (slowness, a reset
connection, truncated JSON) and serves result files from the fake's own origin.

A test scripts a route with steps, consumed one per call; an unscripted call succeeds::

    fake.script("generate", Fail(500), Fail(503), Ok())
"""

from __future__ import annotations

import asyncio
import secrets
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

__all__ = [
    "Blocked",
    "Call",
    "Expired",
    "Fail",
    "FakeUpstream",
    "NoImage",
    "Ok",
    "RateLimit",
    "Reset",
    "Slow",
    "Step",
    "Truncated",
]


@dataclass(frozen=True, slots=True)
class Ok:
    """Answer as the real upstream does on success."""


@dataclass(frozen=True, slots=True)
class Fail:
    """An error status in the provider's envelope (``code`` where the provider has one)."""

    status: int
    message: str = "scripted failure"
    code: str | None = None


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A 429 carrying the provider's retry hint (a header, or Google's ``RetryInfo``)."""

    retry_after: float = 1.0


@dataclass(frozen=True, slots=True)
class Slow:
    """Wait, then play ``then``."""

    seconds: float
    then: Step = field(default_factory=Ok)


@dataclass(frozen=True, slots=True)
class Reset:
    """Send the status and part of the body, then drop the connection."""


@dataclass(frozen=True, slots=True)
class Truncated:
    """A 200 whose JSON body is cut in half."""


@dataclass(frozen=True, slots=True)
class NoImage:
    """A well-formed success that carries no image."""


@dataclass(frozen=True, slots=True)
class Blocked:
    """The provider's safety outcome (``reason`` in its own words, where it has them)."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class Expired:
    """Succeed, but the result URL is already gone when it is fetched (404)."""


Step = Ok | Fail | RateLimit | Slow | Reset | Truncated | NoImage | Blocked | Expired


@dataclass(frozen=True, slots=True)
class Call:
    """One request as the fake received it (bodies parsed; file parts by name and size)."""

    route: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, list[tuple[str, str, int]]] = field(default_factory=dict)


class _Abort(Exception):
    """Raised inside the app after a partial body: the server drops the connection."""


class _ResetResponse(Response):
    def __init__(self, body: bytes) -> None:
        super().__init__(status_code=200, media_type="application/json")
        self._partial = body[: max(1, len(body) // 3)]
        self._length = len(body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(self._length).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self._partial, "more_body": True})
        raise _Abort("scripted connection reset")


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(payload), status, headers, media_type="application/json")


class FakeUpstream:
    """Base of the fakes: routes, scripts, call records and result files."""

    files_kept = 512

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._scripts: dict[str, deque[Step]] = {}
        self._files: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._expired: set[str] = set()
        self.app = Starlette(routes=[*self.routes(), Route("/_files/{name}", self._file)])

    # -- for tests -------------------------------------------------------------------------

    def script(self, route: str, *steps: Step) -> None:
        """Steps for the next calls of ``route``, in order; afterwards calls succeed."""
        self._scripts.setdefault(route, deque()).extend(steps)

    def reset(self) -> None:
        self.calls.clear()
        self._scripts.clear()
        self._expired.clear()

    def calls_to(self, route: str) -> list[Call]:
        return [call for call in self.calls if call.route == route]

    # -- for subclasses --------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    def error(
        self, status: int, message: str, code: str | None, retry_after: float | None
    ) -> Response:
        """A failure in the provider's envelope."""
        headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else None
        return json_response({"error": {"message": message, "code": code}}, status, headers)

    def blocked(self, route: str, request: Request, reason: str) -> Response:
        return self.error(400, "blocked by the safety system", "content_policy_violation", None)

    def empty(self, route: str, request: Request) -> Response:
        raise NotImplementedError

    async def record(self, route: str, request: Request) -> Call:
        content_type = request.headers.get("content-type", "")
        payload: Any = None
        form: dict[str, str] = {}
        files: dict[str, list[tuple[str, str, int]]] = {}
        if content_type.startswith("multipart/form-data"):
            async with request.form(max_files=64, max_fields=256) as parsed:
                for name, value in parsed.multi_items():
                    if isinstance(value, str):
                        form[name] = value
                    else:
                        data = await value.read()
                        entry = (value.filename or "", value.content_type or "", len(data))
                        files.setdefault(name, []).append(entry)
        else:
            body = await request.body()
            payload = orjson.loads(body) if body else None
        call = Call(
            route=route,
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
            json=payload,
            form=form,
            files=files,
        )
        self.calls.append(call)
        return call

    async def play(
        self, route: str, request: Request, success: Callable[[Step], Awaitable[Response]]
    ) -> Response:
        """The next scripted step of ``route``, with ``success`` building the real answer."""
        queue = self._scripts.get(route)
        step: Step = queue.popleft() if queue else Ok()
        while isinstance(step, Slow):
            await asyncio.sleep(step.seconds)
            step = step.then
        if isinstance(step, Fail):
            return self.error(step.status, step.message, step.code, None)
        if isinstance(step, RateLimit):
            return self.error(
                429, "rate limit reached (scripted)", "rate_limit_exceeded", step.retry_after
            )
        if isinstance(step, Blocked):
            return self.blocked(route, request, step.reason)
        if isinstance(step, NoImage):
            return self.empty(route, request)
        response = await success(step)
        if isinstance(step, Truncated):
            return Response(
                response.body[: len(response.body) // 2], 200, media_type="application/json"
            )
        if isinstance(step, Reset):
            return _ResetResponse(bytes(response.body))
        return response

    def publish(
        self, request: Request, data: bytes, media_type: str, *, expired: bool = False
    ) -> str:
        """Serve ``data`` at a URL on this fake's origin; returns the URL."""
        name = secrets.token_urlsafe(12)
        self._files[name] = (data, media_type)
        while len(self._files) > self.files_kept:
            self._files.popitem(last=False)
        if expired:
            self._expired.add(name)
        return f"{str(request.base_url).rstrip('/')}/_files/{name}"

    async def _file(self, request: Request) -> Response:
        name = request.path_params["name"]
        found = self._files.get(name)
        if found is None or name in self._expired:
            return Response(b"<Error>expired</Error>", 404, media_type="application/xml")
        return Response(found[0], media_type=found[1])
