"""``create_app(settings)`` builds the ASGI app; its lifespan owns every long-lived resource."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from types import ModuleType
from typing import cast

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from imagegate import __version__
from imagegate.api import (
    admin,
    assets,
    billing,
    bria,
    files,
    flux,
    gemini,
    health,
    midjourney,
    models,
    openai_images,
    replicate,
)
from imagegate.api._direct import DirectRoutes, Endpoint
from imagegate.api._errors import error_response_for_path
from imagegate.api._idempotency import IdempotencyMiddleware
from imagegate.api._middleware import GatewayMiddleware
from imagegate.errors import (
    ImagegateError,
    InvalidRequest,
    NotFound,
    ServerError,
)
from imagegate.pacing import Pacer
from imagegate.services import Services
from imagegate.settings import Settings
from imagegate.storage.outage import OUTAGES, outage_error

log = logging.getLogger("imagegate")

DESCRIPTION = "One API key and one base URL for every image model."

FRONT_ENDS: tuple[ModuleType, ...] = (
    openai_images,
    gemini,
    flux,
    bria,
    replicate,
    midjourney,
    files,
    models,
    assets,
    admin,
    billing,
    health,
)
"""API modules: each has a ``router``, may have ``install(services)``, called before the
workers start, to register its task kinds and webhook renderers, and may have
``DIRECT_ROUTES``, ``{(method, path): endpoint}`` for its hot routes (see ``api._direct``)."""


GC_GEN0_THRESHOLD = 10_000


def tune_garbage_collector() -> None:
    """Once per process, after start-up: what start-up built lives as long as the process, so
    it is frozen out of the collector's sight (a full collection walked ~170,000 objects, a
    ~100 ms pause under load); and the youngest generation is collected every 10,000
    allocations instead of 700 (reference counting frees almost everything a request makes;
    the collector only finds cycles). Together: ~15% more requests per second, p99 far lower."""
    if gc.get_threshold()[0] == GC_GEN0_THRESHOLD:
        return
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 20)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The gateway; with no settings they are read from the ``IMAGEGATE_*`` environment."""
    settings = settings if settings is not None else Settings()
    pacer = Pacer()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await Services.start(settings, pacer)
        for module in FRONT_ENDS:
            install = getattr(module, "install", None)
            if install is not None:
                install(services)
        services.run_background()
        app.state.services = services
        if settings.gc_tuning:
            tune_garbage_collector()
        try:
            yield
        finally:
            await services.close()

    app = FastAPI(
        title="imagegate", version=__version__, description=DESCRIPTION, lifespan=lifespan
    )
    for module in FRONT_ENDS:
        app.include_router(module.router)
    _install_error_handlers(app)
    direct = {route: endpoint for module in FRONT_ENDS for route, endpoint in _direct_of(module)}
    app.add_middleware(
        DirectRoutes, routes=direct, on_error=render_error, handles=HANDLED, pacer=pacer
    )
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(GatewayMiddleware, max_body_bytes=settings.max_body_bytes)
    return app


def _direct_of(module: ModuleType) -> Iterable[tuple[tuple[str, str], Endpoint]]:
    return cast(dict[tuple[str, str], Endpoint], getattr(module, "DIRECT_ROUTES", {})).items()


HANDLED = (ImagegateError, HTTPException, RequestValidationError, ClientDisconnect, *OUTAGES)
"""What a route may raise as an answer (an outage of the database or the asset store is a
503); anything else is a crash (500, logged)."""


def render_error(request: Request, exc: Exception) -> Response:
    """Any exception a route raised, as an error in the envelope of the route's wire format."""
    path = request.scope["path"]
    error: ImagegateError
    if isinstance(exc, ImagegateError):
        error = exc
    elif isinstance(exc, HTTPException):
        if exc.status_code == 404:
            error = NotFound(f"no route for {request.method} {path}")
        else:
            error = InvalidRequest(str(exc.detail))
            error.status = exc.status_code
    elif isinstance(exc, ClientDisconnect):
        log.debug("client disconnected before its body arrived on %s", path)
        error = InvalidRequest("the client disconnected before its request body arrived")
    elif isinstance(exc, RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        location = [str(part) for part in first.get("loc", ())[1:]]
        error = InvalidRequest(
            f"invalid value for {'.'.join(location) or 'the request'}: {first.get('msg', '')}",
            param=".".join(location) or None,
        )
    elif (unavailable := outage_error(exc)) is not None:
        log.warning("storage unavailable on %s: %s", path, type(exc).__name__)
        error = unavailable
    else:
        log.exception("unhandled error on %s", path)
        error = ServerError("internal error")
    return error_response_for_path(path, error, request.state.request_id)


def _install_error_handlers(app: FastAPI) -> None:
    async def handler(request: Request, exc: Exception) -> Response:
        return render_error(request, exc)

    for kind in (*HANDLED, Exception):
        app.add_exception_handler(kind, handler)
