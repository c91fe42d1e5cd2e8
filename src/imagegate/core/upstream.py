"""The upstream side of the core: the adapter interface, the context injected into every
call, and what the core needs injected to call adapters (a registry, an HTTP client, result
downloads). ``providers/`` implements these; the core never imports a provider.

An adapter answers in one call (:class:`ImageProvider`: ``generate``/``stream``) or is a task
upstream (:class:`TaskProvider`: ``submit``/``poll``/``cancel``). Retries, failover, deadlines,
concurrency caps and output conversion wrap adapters (:mod:`imagegate.core.routing`); adapters
never touch the database, billing or storage, and never log credentials or image bytes.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError

from imagegate.core.requests import ImageRequest, ImageResult, StreamEvent
from imagegate.errors import ServerError

ResultFetch = Callable[[str], Awaitable[bytes]]
"""Downloads an upstream's result URL (or data URI) at once, with the gateway's byte cap."""

FileField = tuple[str, tuple[str, bytes, str]]
"""A multipart file field: ``(name, (filename, bytes, content type))``."""


class UpstreamAnswer(Protocol):
    """An open upstream response, as :class:`UpstreamHttp` yields it."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def aiter_bytes(self) -> AsyncIterator[bytes]: ...

    async def read(self) -> bytes:
        """The whole body at once (for a body whose declared length was checked)."""
        ...

    def aiter_lines(self) -> AsyncIterator[str]: ...


class UpstreamHttp(Protocol):
    """The process's shared HTTP client for upstream calls (one connection pool)."""

    def open(
        self,
        method: str,
        url: str,
        *,
        seconds: float,
        connect_seconds: float,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        files: Sequence[FileField] | None = None,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> AbstractAsyncContextManager[UpstreamAnswer]:
        """Send the request and yield the open response (any status); closed on exit."""
        ...


class ResultDownloads(Protocol):
    """Safe downloads of upstreams' result URLs, bound per call to a deployment and deadline."""

    def bind(self, base_url: str | None, deadline: float | None) -> ResultFetch: ...


OptionsT = TypeVar("OptionsT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ProviderContext:
    """Everything an adapter may use: a shared HTTP client, credentials, a deadline, an id.

    ``base_url`` is the operator's choice (the deployment's ``base_url`` or its
    ``base_url_env``), never a client's; ``options`` holds the deployment's host data
    (auth header, api version, model-name map …); ``deadline`` is a :func:`time.monotonic`
    time; ``fetch`` downloads result URLs safely.
    """

    http: UpstreamHttp | None
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


class JobJournal(Protocol):
    """Where a durable task keeps the upstream jobs it submitted, so that running it again (after
    a restart, or on another replica once the lease ended) polls those jobs instead of
    submitting, and paying for, the same work again. ``slot`` names one job of the task: the
    deployment's key and the part of a fanned-out request."""

    def known(self, slot: str) -> UpstreamJob | None:
        """The job an earlier run of the task submitted in ``slot``, if any."""

    async def accepted(self, slot: str, job: UpstreamJob) -> None:
        """Keep ``job``, just accepted by the upstream, for a later run of the task."""

    def forget(self, slot: str) -> None:
        """Drop the job in ``slot``: it failed or was cancelled, so a retry (in this run or a
        later one) submits afresh. Stored with the next :meth:`accepted`."""

    def keeps_jobs(self) -> bool:
        """Whether a run cancelled now will be run again (the server is stopping): its jobs
        are then left running upstream for that run, not cancelled."""


class ScopedJournal:
    """``journal``'s slots under ``prefix``: for a handler that runs several requests for one
    task (their slots would otherwise meet)."""

    __slots__ = ("_journal", "_prefix")

    def __init__(self, journal: JobJournal, prefix: str) -> None:
        self._journal = journal
        self._prefix = prefix

    def known(self, slot: str) -> UpstreamJob | None:
        return self._journal.known(self._prefix + slot)

    async def accepted(self, slot: str, job: UpstreamJob) -> None:
        await self._journal.accepted(self._prefix + slot, job)

    def forget(self, slot: str) -> None:
        self._journal.forget(self._prefix + slot)

    def keeps_jobs(self) -> bool:
        return self._journal.keeps_jobs()


def job_to_json(job: UpstreamJob) -> dict[str, Any]:
    """``job`` as JSON, for a :class:`JobJournal` to store."""
    return {"id": job.id, "handles": dict(job.handles), "poll_after": job.poll_after}


def job_from_json(data: Mapping[str, Any]) -> UpstreamJob:
    """The job :func:`job_to_json` wrote."""
    return UpstreamJob(
        id=str(data["id"]),
        handles={str(k): str(v) for k, v in dict(data.get("handles") or {}).items()},
        poll_after=float(data.get("poll_after", 1.0)),
    )


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


class AdapterRegistry(Protocol):
    """Provider name → adapter (``providers.registry`` finds them through entry points)."""

    def names(self) -> list[str]: ...

    def get(self, name: str) -> ImageProvider | None: ...


def read_credentials(env_names: Mapping[str, list[str]]) -> dict[str, str]:
    """``{"api_key": ["OPENAI_API_KEY"]}`` → the first set variable for each credential."""
    found: dict[str, str] = {}
    for credential, names in env_names.items():
        for name in names:
            value = os.environ.get(name)
            if value:
                found[credential] = value
                break
    return found
