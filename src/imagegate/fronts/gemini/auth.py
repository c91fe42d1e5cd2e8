"""Who is calling a Gemini route: Google's key header and query parameter, or a bearer token."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, APIKeyQuery, HTTPAuthorizationCredentials

from imagegate.core.keys import ApiKey
from imagegate.fronts.http.auth import bearer, key_from

goog_api_key = APIKeyHeader(
    name="x-goog-api-key",
    scheme_name="GoogleApiKeyHeader",
    auto_error=False,
    description="An imagegate API key (Google's header)",
)
key_param = APIKeyQuery(
    name="key",
    scheme_name="GoogleApiKeyQuery",
    auto_error=False,
    description="An imagegate API key (Google's query parameter)",
)
HOW = "'x-goog-api-key: <key>', '?key=<key>' or 'Authorization: Bearer <key>'"


async def require_gemini_key(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    header: str | None = Depends(goog_api_key),
    query: str | None = Depends(key_param),
) -> ApiKey:
    """The caller's key from ``Authorization: Bearer``, ``x-goog-api-key`` or ``?key=``, in that
    order; 401 when none is sent or the one sent is unknown."""
    presented = (credentials.credentials if credentials else None) or header or query
    return await key_from(request, presented, how=HOW)
