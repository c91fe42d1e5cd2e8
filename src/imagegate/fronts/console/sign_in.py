"""Signing in and out, the console's entry (``/console``, and ``/`` for browsers) and the API
docs served from local files."""

from __future__ import annotations

import math

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from imagegate.errors import NotFound
from imagegate.fronts.console.render import SIGN_IN, error_page, html, redirect
from imagegate.fronts.console.security import (
    CSRF_FIELD,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    Forbidden,
    clear_cookie,
    new_sign_in_token,
    same_origin,
    set_cookie,
    token_matches,
    viewer_of,
)
from imagegate.fronts.console.state import SIGN_IN_ATTEMPTS_PER_MINUTE, console_state
from imagegate.fronts.console.static_files import static_url
from imagegate.fronts.http.deps import services_of

router = APIRouter(include_in_schema=False)
HOME = "/console/playground"
INVALID_KEY = "That API key is invalid or has been revoked."


@router.get("/")
async def root(request: Request) -> Response:
    """Browsers go to the console; API clients keep their JSON 404."""
    if "text/html" in request.headers.get("accept", ""):
        return redirect("/console")
    raise NotFound("no route for GET /")


@router.get("/console")
async def console_home(request: Request) -> Response:
    return redirect(HOME if await viewer_of(request) else SIGN_IN)


@router.get(SIGN_IN)
async def sign_in_form(request: Request) -> Response:
    if await viewer_of(request) is not None:
        return redirect(HOME)
    return _form(request, None)


def _form(request: Request, error: str | None, status: int = 200) -> Response:
    token = new_sign_in_token()
    response = html(request, "sign_in.html", None, status=status, csrf=token, error=error)
    set_cookie(request, response, SIGN_IN_COOKIE, token)
    return response


@router.post(SIGN_IN)
async def sign_in(request: Request) -> Response:
    if not same_origin(request):
        return error_page(request, None, 403, "cross-site request refused")
    form = await request.form(max_files=0)
    given = form.get(CSRF_FIELD)
    expected = request.cookies.get(SIGN_IN_COOKIE)
    if expected is None or not isinstance(given, str) or not token_matches(expected, given):
        return error_page(request, None, 403, "missing or invalid CSRF token; reload the page")
    services = services_of(request)
    address = request.client.host if request.client else "unknown"
    decision = await services.rate.hit(
        f"console-sign-in:{address}", 1, SIGN_IN_ATTEMPTS_PER_MINUTE, 60
    )
    if not decision.allowed:
        wait = max(1, math.ceil(decision.reset_seconds))
        return _form(request, f"Too many sign-in attempts; try again in {wait} s.", 429)
    secret = form.get("api_key")
    key = await services.keys.authenticate(secret.strip()) if isinstance(secret, str) else None
    if key is None:
        return _form(request, INVALID_KEY, 401)
    sessions = console_state(request).sessions
    await sessions.sweep()  # expired sessions go as new ones come (one delete)
    token, _session = await sessions.create(key.id)
    response = redirect(HOME)
    set_cookie(request, response, SESSION_COOKIE, token)
    clear_cookie(request, response, SIGN_IN_COOKIE)
    return response


@router.post("/console/sign-out")
async def sign_out(request: Request) -> Response:
    if not same_origin(request):
        return error_page(request, None, 403, "cross-site request refused")
    viewer = await viewer_of(request)
    if viewer is not None:
        form = await request.form(max_files=0)
        given = form.get(CSRF_FIELD)
        if not isinstance(given, str) or not token_matches(viewer.csrf, given):
            return error_page(request, viewer, 403, str(Forbidden("invalid CSRF token")))
        await console_state(request).sessions.end(request.cookies.get(SESSION_COOKIE))
    response = redirect(SIGN_IN)
    clear_cookie(request, response, SESSION_COOKIE)
    return response


@router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    """Swagger UI from this package's own files (works offline)."""
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url or "/openapi.json",
        title=f"{request.app.title} – API docs",
        swagger_js_url=static_url("vendor/swagger-ui/swagger-ui-bundle.js"),
        swagger_css_url=static_url("vendor/swagger-ui/swagger-ui.css"),
        swagger_favicon_url=static_url("favicon.svg"),
    )
