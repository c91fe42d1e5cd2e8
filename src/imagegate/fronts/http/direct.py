"""Hot routes answered without FastAPI's router and dependency injection.

FastAPI still declares these routes (OpenAPI, docs) with the same endpoint functions; a request
for one is answered here first. Matching a path in a dict and calling the endpoint directly
skips the router, the dependency solver and two exception middlewares, which cost a third of
the CPU of a small image request. Errors get exactly the handling FastAPI would give them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from imagegate.core.keys import ApiKey
from imagegate.fronts.http.middleware import DIRECT_ROUTE
from imagegate.pacing import Pacer

Endpoint = Callable[[Request], Awaitable[Response]]
ErrorRenderer = Callable[[Request, Exception], Response]


def keyed(
    endpoint: Callable[[Request, ApiKey], Awaitable[Response]],
    key_of: Callable[[Request], Awaitable[ApiKey]],
) -> Endpoint:
    """``endpoint(request, key)`` as a direct endpoint, the key found by ``key_of`` (what its
    FastAPI dependency does)."""

    async def serve(request: Request) -> Response:
        return await endpoint(request, await key_of(request))

    return serve


class DirectRoutes:
    """ASGI middleware: ``(method, path)`` in ``routes`` → that endpoint; else the app.

    Each request waits for its turn on ``pacer`` first (see :mod:`imagegate.pacing`).
    Exceptions of the ``handles`` types become ``on_error``'s response, as FastAPI's exception
    middleware would make them; others propagate to the outer middleware, as they would there.
    A client that disconnects before its body has arrived gets nothing: there is no one to
    answer, and nothing was done.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Mapping[tuple[str, str], Endpoint],
        on_error: ErrorRenderer,
        handles: tuple[type[Exception], ...],
        pacer: Pacer,
    ) -> None:
        self.app = app
        self.pacer = pacer
        self.routes = dict(routes)
        self.on_error = on_error
        self.handles = handles

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = (
            self.routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        scope[DIRECT_ROUTE] = scope["path"]
        request = Request(scope, receive)
        await self.pacer.turn()
        try:
            response = await endpoint(request)
        except ClientDisconnect:
            return
        except self.handles as exc:
            response = self.on_error(request, exc)
        await response(scope, receive, send)
