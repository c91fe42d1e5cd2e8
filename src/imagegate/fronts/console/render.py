"""Rendering console pages: the Jinja2 templates shipped in this package, the security headers
every page carries, and the wrapper that signs a route in (or sends the browser to sign in)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from imagegate.errors import ImagegateError
from imagegate.fronts.console.security import (
    SECURITY_HEADERS,
    Forbidden,
    Viewer,
    same_origin,
    viewer_of,
)
from imagegate.fronts.console.static_files import static_url

SIGN_IN = "/console/sign-in"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Handler = Callable[[Request, Viewer], Awaitable[Response]]


def _money(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    return f"${Decimal(str(value)):,.{digits}f}"


def _when(value: float | None) -> str:
    if not value:
        return "—"
    return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


env = Environment(
    loader=PackageLoader("imagegate.fronts.console", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.globals["static"] = static_url
env.filters["money"] = _money
env.filters["when"] = _when


def html(
    request: Request,
    template: str,
    viewer: Viewer | None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page with the console's security headers (CSP, no framing, no caching)."""
    body = env.get_template(template).render(
        request=request, viewer=viewer, path=request.url.path, **context
    )
    return HTMLResponse(body, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


def error_page(request: Request, viewer: Viewer | None, status: int, message: str) -> HTMLResponse:
    return html(request, "error.html", viewer, status=status, status_code=status, message=message)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


def signed_in(handler: Handler, *, admin: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """The route for ``handler``: signed-in viewers only (others go to sign in), admin keys
    only when ``admin`` (others get 403); refusals and domain errors become error pages."""

    async def endpoint(request: Request) -> Response:
        if request.method not in SAFE_METHODS and not same_origin(request):
            # Before the session is looked up: a cross-site post is refused as such, even
            # when the browser kept the (SameSite=Strict) cookie back.
            return error_page(request, None, 403, "cross-site request refused")
        viewer = await viewer_of(request)
        if viewer is None:
            return redirect(SIGN_IN)
        if admin and not viewer.key.is_admin:
            return error_page(request, viewer, 403, "This page needs an admin key.")
        try:
            return await handler(request, viewer)
        except Forbidden as exc:
            return error_page(request, viewer, 403, exc.message)
        except ImagegateError as exc:
            return error_page(request, viewer, exc.status, exc.message)
        finally:
            form: FormData | None = getattr(request.state, "console_form", None)
            if form is not None:
                await form.close()

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint
