"""What a task is: its record, its statuses, and what a handler hands back."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from imagegate.core.requests import GeneratedImage, Usage

TaskStatus = Literal["queued", "parked", "running", "succeeded", "failed", "canceled"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "canceled"})
PARKED: TaskStatus = "parked"
"""Waiting for more input from its client before it can be queued (e.g. the mask of a
Midjourney Vary (Region)); each front names this state in its own words."""
WAITING: tuple[TaskStatus, ...] = ("queued", PARKED)
"""Not running yet: a task in these states may still be changed (see ``TaskEngine.resume``)."""
UNFINISHED: tuple[TaskStatus, ...] = (*WAITING, "running")
"""Every status a task can still leave; its hold is still held."""
CLAIMABLE = "queued"


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """A persisted task. ``request`` is what the handler of ``kind`` needs to run it; ``meta``
    belongs to the front end that created it; ``result`` lists the stored outputs."""

    id: str
    kind: str
    owner_key_id: str
    model: str | None
    status: TaskStatus
    progress: int
    request: dict[str, Any]
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    meta: dict[str, Any]
    parent_id: str | None
    webhook_url: str | None
    webhook_secret: str | None
    reservation_id: str | None
    attempts: int
    cancel_requested: bool
    lease_owner: str | None
    lease_expires_at: float | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    updated_at: float
    upstream_jobs: dict[str, Any] | None = None
    """The task upstreams' jobs a run submitted, by slot (see :class:`TaskRun`)."""

    @property
    def asset_ids(self) -> list[str]:
        return list((self.result or {}).get("assets", []))

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(slots=True)
class TaskOutput:
    """What a handler produced: images to store, their usage and cost, extra result fields."""

    images: list[GeneratedImage]
    usage: Usage | None = None
    cost: Decimal = Decimal(0)
    model: str | None = None
    result: dict[str, Any] = field(default_factory=dict)


NEW_TASK_DEFAULTS: dict[str, Any] = {
    "progress": 0,
    "result": None,
    "error": None,
    "parent_id": None,
    "webhook_url": None,
    "webhook_secret": None,
    "reservation_id": None,
    "upstream_jobs": None,
    "attempts": 0,
    "cancel_requested": False,
    "lease_owner": None,
    "lease_expires_at": None,
    "started_at": None,
    "finished_at": None,
}
"""What a new task holds in the fields its submission leaves out."""
