"""Who is calling: API keys from the ``Authorization`` header (and each format's variants)."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from imagegate.api._deps import services_of
from imagegate.core.keys import ApiKey
from imagegate.errors import AuthenticationFailed, PermissionDenied

bearer = HTTPBearer(auto_error=False, description="An imagegate API key")


async def require_key(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> ApiKey:
    """The caller's key from ``Authorization: Bearer <key>``; 401 when missing or unknown."""
    if credentials is None:
        raise AuthenticationFailed(
            "missing API key: send 'Authorization: Bearer <key>'", code="missing_api_key"
        )
    key = await services_of(request).keys.authenticate(credentials.credentials)
    if key is None:
        raise AuthenticationFailed("invalid or revoked API key")
    request.state.log = {"key_id": key.id}
    return key


async def require_admin(key: ApiKey = Depends(require_key)) -> ApiKey:
    """The caller's key when it is an admin key; 403 otherwise."""
    if not key.is_admin:
        raise PermissionDenied("this route needs an admin key", code="admin_required")
    return key
