"""Who is calling a Midjourney route: ``Authorization: Bearer <key>``, a bare
``Authorization: <key>`` (midjourney-proxy clients send it that way) or ``mj-api-secret``."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from imagegate.core.keys import ApiKey
from imagegate.fronts.http.auth import key_from

authorization = APIKeyHeader(
    name="Authorization",
    auto_error=False,
    description="An imagegate API key, as 'Bearer <key>' or bare",
)
mj_api_secret = APIKeyHeader(
    name="mj-api-secret", auto_error=False, description="An imagegate API key"
)
HOW = "'Authorization: Bearer <key>', 'Authorization: <key>' or 'mj-api-secret: <key>'"


def presented(header: str | None, secret: str | None) -> str | None:
    """The key in ``Authorization`` (with or without ``Bearer``), else ``mj-api-secret``."""
    if header and header.strip():
        scheme, _, rest = header.strip().partition(" ")
        return rest.strip() if scheme.lower() == "bearer" else header.strip()
    return secret.strip() if secret and secret.strip() else None


async def require_mj_key(
    request: Request,
    header: str | None = Depends(authorization),
    secret: str | None = Depends(mj_api_secret),
) -> ApiKey:
    """The caller's key; 401 when none is sent or the one sent is unknown."""
    return await key_from(request, presented(header, secret), how=HOW)


async def mj_key(request: Request) -> ApiKey:
    """:func:`require_mj_key` for routes called without dependency injection."""
    header, secret = request.headers.get("authorization"), request.headers.get("mj-api-secret")
    return await key_from(request, presented(header, secret), how=HOW)


async def optional_mj_key(
    request: Request,
    header: str | None = Depends(authorization),
    secret: str | None = Depends(mj_api_secret),
) -> ApiKey | None:
    """The caller's key when one is sent (401 if it is unknown); None when none is."""
    value = presented(header, secret)
    return None if value is None else await key_from(request, value, how=HOW)
