"""Who is looking at a console page, and whether a state-changing request may be trusted.

A session is an opaque id in an ``HttpOnly``, ``SameSite=Strict`` cookie (``Secure`` behind
https); the page never holds the API key. Every state-changing request must come from this
origin (``Sec-Fetch-Site``, else ``Origin``) and carry the session's CSRF token (the sign-in
form, which has no session yet, a double-submit token); otherwise 403."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from imagegate.core.console_sessions import ConsoleSession
from imagegate.core.keys import ENV_ADMIN_KEY_ID, ApiKey
from imagegate.fronts.console.state import console_state
from imagegate.fronts.http.deps import services_of

SESSION_COOKIE = "ig_console"
SIGN_IN_COOKIE = "ig_console_signin"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MAX_FORM_FILES = 4

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cache-control": "no-store",
}


@dataclass(frozen=True, slots=True)
class Viewer:
    """A signed-in person: the key they signed in with and their session."""

    key: ApiKey
    session: ConsoleSession

    @property
    def csrf(self) -> str:
        return self.session.csrf_token


class Forbidden(Exception):
    """A request the console refuses with 403 (cross-site, bad token, not an admin)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def secure_cookies(request: Request) -> bool:
    """Whether cookies get ``Secure``: the request came over https (directly or through a
    proxy that says so) or the configured public URL is https."""
    public = services_of(request).settings.public_url or ""
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or forwarded == "https" or public.startswith("https:")


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
        path="/console",
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, path="/console", httponly=True, samesite="strict", secure=secure_cookies(request)
    )


def _origins(request: Request) -> set[str]:
    own = {f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"}
    public = services_of(request).settings.public_url
    if public:
        parts = urlsplit(public)
        own.add(f"{parts.scheme}://{parts.netloc}")
    return own


def same_origin(request: Request) -> bool:
    """``Sec-Fetch-Site: same-origin`` (or ``none``: typed by the user), else an ``Origin`` of
    this gateway; a request that says neither is refused."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    return origin is not None and origin in _origins(request)


def token_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


async def trusted_form(request: Request, expected_token: str | None) -> FormData:
    """The request's form after the origin and CSRF checks (the token from the form field or
    the ``X-CSRF-Token`` header); :class:`Forbidden` otherwise."""
    if not same_origin(request):
        raise Forbidden("cross-site request refused")
    form = await request.form(max_files=MAX_FORM_FILES)
    request.state.console_form = form  # closed (its spooled uploads too) when the route ends
    given = form.get(CSRF_FIELD)
    token = given if isinstance(given, str) else request.headers.get(CSRF_HEADER)
    if expected_token is None or not token_matches(expected_token, token):
        raise Forbidden("missing or invalid CSRF token; reload the page and try again")
    return form


def new_sign_in_token() -> str:
    return secrets.token_urlsafe(24)


async def viewer_of(request: Request) -> Viewer | None:
    """The signed-in viewer, or ``None`` (no cookie, expired session, revoked key)."""
    session = await console_state(request).sessions.get(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return None
    key = await key_of(request, session.key_id)
    if key is None:
        await console_state(request).sessions.end_all(session.key_id)
        return None
    request.state.log = {"key_id": key.id}
    return Viewer(key, session)


async def key_of(request: Request, key_id: str) -> ApiKey | None:
    services = services_of(request)
    if key_id == ENV_ADMIN_KEY_ID:
        if services.settings.admin_key is None:
            return None
        return ApiKey(ENV_ADMIN_KEY_ID, "IMAGEGATE_ADMIN_KEY", "(env)", None, True, 0.0)
    key = await services.keys.get(key_id)
    return key if key is not None and key.revoked_at is None else None
