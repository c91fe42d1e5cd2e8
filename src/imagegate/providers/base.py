"""The adapter interface and the context injected into every call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import httpx

from imagegate.core.requests import ImageRequest, ImageResult, StreamEvent


@dataclass(frozen=True, slots=True)
class ProviderContext:
    """Everything an adapter may use: a shared HTTP client, credentials, a deadline, an id."""

    http: httpx.AsyncClient | None
    request_id: str
    upstream_model: str
    deadline: float | None = None
    credentials: Mapping[str, str] = field(default_factory=dict)
    base_url: str | None = None


@runtime_checkable
class ImageProvider(Protocol):
    """An upstream that answers an image request in one call."""

    name: str

    def has_credentials(self, credentials: Mapping[str, str]) -> bool:
        """Whether this adapter can serve with these credentials (local engines need none)."""

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ImageResult:
        """Produce every image the request asks for."""

    def stream(self, request: ImageRequest, ctx: ProviderContext) -> AsyncIterator[StreamEvent]:
        """Yield partial images, then exactly one final :class:`ImageResult`."""
