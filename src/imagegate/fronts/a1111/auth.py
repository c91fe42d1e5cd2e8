"""Who is calling an A1111 route: HTTP Basic with the key as the password (as A1111's
``--api-auth`` takes credentials), or a bearer token."""

from __future__ import annotations

import binascii

import pybase64
from fastapi import Request
from fastapi.security.utils import get_authorization_scheme_param

from imagegate.core.keys import ApiKey
from imagegate.errors import AuthenticationFailed
from imagegate.fronts.http.auth import key_from

CHALLENGE = 'Basic realm="imagegate"'
HOW = "HTTP Basic auth with the key as the password, or 'Authorization: Bearer <key>'"


def presented_secret(authorization: str | None) -> str | None:
    """The key in a Basic (password, or the whole value without a colon) or Bearer header."""
    scheme, value = get_authorization_scheme_param(authorization)
    scheme = scheme.lower()
    if scheme == "bearer":
        return value or None
    if scheme != "basic" or not value:
        return None
    try:
        decoded = pybase64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    _, colon, password = decoded.partition(":")
    return (password if colon else decoded) or None


async def require_a1111_key(request: Request) -> ApiKey:
    """The caller's key; a 401 carries the Basic challenge A1111 clients expect."""
    try:
        return await key_from(
            request, presented_secret(request.headers.get("authorization")), how=HOW
        )
    except AuthenticationFailed as exc:
        exc.headers["www-authenticate"] = CHALLENGE
        raise
