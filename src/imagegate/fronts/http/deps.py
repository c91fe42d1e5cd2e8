"""Small request helpers shared by the API modules."""

from __future__ import annotations

from typing import cast

from starlette.requests import Request

from imagegate.services import Services


def services_of(request: Request) -> Services:
    return cast(Services, request.app.state.services)


def request_id_of(request: Request) -> str:
    return cast(str, request.state.request_id)


def public_base_url(request: Request) -> str:
    """Where clients reach this gateway: ``IMAGEGATE_PUBLIC_URL`` or the request's own base."""
    configured = services_of(request).settings.public_url
    return (configured or str(request.base_url)).rstrip("/")
