"""Who is calling a Flux route: a bearer token, or BFL's own ``x-key`` header (what a BFL
client already sends)."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials
from fastapi.security.utils import get_authorization_scheme_param

from imagegate.api._auth import bearer, key_from
from imagegate.core.keys import ApiKey

x_key = APIKeyHeader(
    name="x-key",
    scheme_name="BFLKeyHeader",
    auto_error=False,
    description="An imagegate API key (Black Forest Labs' header)",
)
HOW = "'Authorization: Bearer <key>' or 'x-key: <key>'"


async def require_flux_key(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    header: str | None = Depends(x_key),
) -> ApiKey:
    """The caller's key from ``Authorization: Bearer`` or ``x-key``, in that order; 401 when
    none is sent or the one sent is unknown."""
    presented = (credentials.credentials if credentials else None) or header
    return await key_from(request, presented, how=HOW)


async def flux_key(request: Request) -> ApiKey:
    """:func:`require_flux_key` for routes called without dependency injection."""
    scheme, secret = get_authorization_scheme_param(request.headers.get("authorization"))
    presented = (secret if scheme.lower() == "bearer" else None) or request.headers.get("x-key")
    return await key_from(request, presented, how=HOW)
