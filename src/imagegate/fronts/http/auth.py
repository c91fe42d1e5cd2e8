"""Who is calling: API keys from the ``Authorization`` header (and each format's variants)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from imagegate.core.keys import ApiKey
from imagegate.errors import AuthenticationFailed, PermissionDenied
from imagegate.fronts.http.deps import services_of

bearer = HTTPBearer(auto_error=False, description="An imagegate API key")
BEARER_HOW = "'Authorization: Bearer <key>'"


async def require_key(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> ApiKey:
    """The caller's key from ``Authorization: Bearer <key>``; 401 when missing or unknown."""
    presented = credentials.credentials if credentials else None
    return await key_from(request, presented, how=BEARER_HOW)


async def bearer_key(request: Request) -> ApiKey:
    """:func:`require_key` for routes called without dependency injection (``fronts.http.direct``):
    the secret is found exactly as :data:`bearer` finds it."""
    scheme, secret = get_authorization_scheme_param(request.headers.get("authorization"))
    return await key_from(request, secret if scheme.lower() == "bearer" else None, how=BEARER_HOW)


async def key_from(request: Request, presented: str | None, *, how: str) -> ApiKey:
    """The active key for a secret a route found in its own place; ``how`` tells a caller who
    sent none how to send one. 401 when missing or unknown."""
    if not presented:
        raise AuthenticationFailed(f"missing API key: send {how}", code="missing_api_key")
    services = services_of(request)
    key = await services.keys.authenticate(presented)
    if key is None:
        raise AuthenticationFailed("invalid or revoked API key")
    request.state.log = {"key_id": key.id}
    admission = await services.access.admit(key, request.scope["path"])
    request.state.response_headers = admission.headers
    request.state.release = admission.release
    return key


async def require_admin(key: ApiKey = Depends(require_key)) -> ApiKey:
    """The caller's key when it is an admin key; 403 otherwise."""
    if not key.is_admin:
        raise PermissionDenied("this route needs an admin key", code="admin_required")
    return key


class BearerOrHeader:
    """A route family that also takes its provider's own key header (BFL's ``x-key``, Bria's
    ``api_token``), so that provider's clients only change their base URL.

    ``require`` is the FastAPI dependency (both schemes appear in OpenAPI); ``direct`` finds
    the same secret for routes called without dependency injection (``fronts.http.direct``). The
    bearer token wins when both are sent."""

    def __init__(self, header: str, scheme_name: str, provider: str) -> None:
        self.header = header
        self.how = f"{BEARER_HOW} or '{header}: <key>'"
        scheme = APIKeyHeader(
            name=header,
            scheme_name=scheme_name,
            auto_error=False,
            description=f"An imagegate API key ({provider}'s header)",
        )

        async def require(
            request: Request,
            credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
            value: str | None = Depends(scheme),
        ) -> ApiKey:
            presented = (credentials.credentials if credentials else None) or value
            return await key_from(request, presented, how=self.how)

        self.require: Callable[..., Awaitable[ApiKey]] = require

    async def direct(self, request: Request) -> ApiKey:
        scheme, secret = get_authorization_scheme_param(request.headers.get("authorization"))
        presented = (secret if scheme.lower() == "bearer" else None) or request.headers.get(
            self.header
        )
        return await key_from(request, presented, how=self.how)


FLUX_KEY = BearerOrHeader("x-key", "BFLKeyHeader", "Black Forest Labs")
BRIA_KEY = BearerOrHeader("api_token", "BriaTokenHeader", "Bria")
