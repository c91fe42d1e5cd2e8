"""The adapter interface and the context injected into every call.

An adapter answers in one call (:class:`ImageProvider`: ``generate``/``stream``) or is a task
upstream (:class:`TaskProvider`: ``submit``/``poll``/``cancel``). Retries, failover, deadlines,
concurrency caps and output conversion wrap adapters (:mod:`imagegate.core.routing`); adapters
never touch the database, billing or storage, and never log credentials or image bytes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError

from imagegate.core.requests import ImageRequest, ImageResult, StreamEvent
from imagegate.errors import ServerError
from imagegate.providers.upstream_client import UpstreamClient

ResultFetch = Callable[[str], Awaitable[bytes]]
"""Downloads an upstream's result URL (or data URI) at once, with the gateway's byte cap."""


OptionsT = TypeVar("OptionsT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ProviderContext:
    """Everything an adapter may use: a shared HTTP client, credentials, a deadline, an id.

    ``base_url`` is the operator's choice (the deployment's ``base_url`` or its
    ``base_url_env``), never a client's; ``options`` holds the deployment's host data
    (auth header, api version, model-name map …); ``deadline`` is a :func:`time.monotonic`
    time; ``fetch`` downloads result URLs safely.
    """

    http: UpstreamClient | None
    request_id: str
    upstream_model: str
    deadline: float | None = None
    credentials: Mapping[str, str] = field(default_factory=dict)
    base_url: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    fetch: ResultFetch | None = None

    def options_as(self, model: type[OptionsT], provider: str) -> OptionsT:
        """``options`` validated by the adapter's ``model``; invalid options are the operator's
        mistake in the configuration, a 500 naming the provider."""
        try:
            return model.model_validate(dict(self.options))
        except ValidationError as exc:
            raise ServerError(f"invalid options for a {provider} deployment: {exc}") from None

    def remaining(self, default: float = 300.0) -> float:
        """Seconds left before the deadline (``default`` without one), never below 1 ms."""
        if self.deadline is None:
            return default
        return max(0.001, self.deadline - time.monotonic())


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


@dataclass(frozen=True, slots=True)
class UpstreamJob:
    """A task accepted by a task upstream: its id and the adapter's own handles (URLs)."""

    id: str
    handles: Mapping[str, str] = field(default_factory=dict)
    poll_after: float = 1.0
    """Seconds to wait before the first poll."""


@dataclass(frozen=True, slots=True)
class JobStatus:
    """One poll's answer: ``result`` when finished, otherwise progress and when to ask again.

    A failed job is not a status: :meth:`TaskProvider.poll` raises the mapped domain error."""

    result: ImageResult | None = None
    progress: int | None = None
    poll_after: float = 1.0


@runtime_checkable
class TaskProvider(Protocol):
    """An upstream that takes a task and is polled for its result (BFL, fal, Replicate, …)."""

    name: str

    def has_credentials(self, credentials: Mapping[str, str]) -> bool:
        """Whether this adapter can serve with these credentials."""

    async def submit(
        self, request: ImageRequest, ctx: ProviderContext
    ) -> UpstreamJob | ImageResult:
        """Start the work; an upstream that finished at once may answer with the result."""

    async def poll(self, job: UpstreamJob, ctx: ProviderContext) -> JobStatus:
        """Ask once how the job is doing; download its images (at once) when it is done."""

    async def cancel(self, job: UpstreamJob, ctx: ProviderContext) -> None:
        """Best effort: stop a job nobody waits for any more."""


@runtime_checkable
class Capabilities(Protocol):
    """Optional: what an adapter takes per call, declared before anything is sent."""

    def images_per_call(self, request: ImageRequest, ctx: ProviderContext) -> int:
        """Most images one upstream call returns (the router fans ``n`` out above it)."""

    def dropped_params(self, request: ImageRequest, ctx: ProviderContext) -> list[str]:
        """Client parameters set on ``request`` that this upstream cannot take (never sent)."""


@runtime_checkable
class Checkable(Protocol):
    """Optional: the upstream's cheapest authenticated call, for ``imagegate providers check``."""

    async def check(self, ctx: ProviderContext) -> str:
        """A short description of what answered; raises a domain error when it does not work."""
