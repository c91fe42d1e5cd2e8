"""What the Midjourney front end needs from an upstream to relay it 1:1: the midjourney-proxy
task API's answers and the :class:`Relaying` capability an adapter declares by having it.

The relay speaks the same task API as imagegate's own ``/mj`` routes, so its answers are
described here, once, for the adapter that calls the relay and the service that relays to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from imagegate.core.upstream import JobStatus, ProviderContext
from imagegate.errors import ImagegateError

__all__ = ["ACCEPTED", "QUEUE_FULL", "MJTask", "RelayRoute", "Relaying", "SubmitAnswer"]

RelayRoute = Literal["imagine", "action", "modal", "blend", "describe", "shorten", "edits"]
ACCEPTED: Final = frozenset({1, 21, 22})
"""Business codes of an accepted submit: submitted, waits for a modal, queued."""
QUEUE_FULL: Final = 23


class SubmitAnswer(BaseModel):
    """``{"code", "description", "result", "properties"}`` of every submit route."""

    model_config = ConfigDict(extra="allow")

    code: int
    description: str = ""
    result: str | int | None = None
    properties: dict[str, Any] = {}


class MJTask(BaseModel):
    """A task object as ``/mj/task/{id}/fetch`` returns it (extra fields are kept)."""

    model_config = ConfigDict(extra="allow")

    id: str
    action: str | None = None
    status: str | None = None
    progress: str | None = None
    imageUrl: str | None = None  # noqa: N815 - the wire name
    failReason: str | None = None  # noqa: N815
    promptEn: str | None = None  # noqa: N815
    prompt: str | None = None
    buttons: list[dict[str, Any]] = []
    properties: dict[str, Any] = {}


@runtime_checkable
class Relaying(Protocol):
    """An adapter that can relay the Midjourney task API 1:1 (a midjourney-proxy relay)."""

    def poll_interval(self, ctx: ProviderContext) -> float:
        """Seconds between polls of a relayed task."""
        ...

    async def relay_submit(
        self, route: RelayRoute, body: Mapping[str, Any], ctx: ProviderContext
    ) -> SubmitAnswer:
        """``POST /mj/submit/{route}`` with ``body`` as given."""
        ...

    async def relay_fetch(self, task_id: str, ctx: ProviderContext) -> MJTask:
        """``GET /mj/task/{id}/fetch``."""
        ...

    async def relay_image_seed(self, task_id: str, ctx: ProviderContext) -> SubmitAnswer:
        """``GET /mj/task/{id}/image-seed``."""
        ...

    async def outcome(self, task: MJTask, ctx: ProviderContext) -> JobStatus:
        """What a fetched task means (its result, progress, or its failure raised)."""
        ...

    def refusal(self, answer: SubmitAnswer, ctx: ProviderContext) -> ImagegateError:
        """The domain error for a submit the relay did not accept."""
        ...
