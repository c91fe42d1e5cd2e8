"""What the web console reads that no API route lists: a key's images with what made them
(the gallery), tasks across every front with their webhook deliveries, and deployment health.

Read-only queries; each takes the key whose data it may show (``None`` only for an admin's
view of every key)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from imagegate.core.task_model import TaskRecord


@dataclass(frozen=True, slots=True)
class GalleryItem:
    asset_id: str
    content_type: str
    width: int | None
    height: int | None
    created_at: float
    prompt: str
    model: str | None
    cost_usd: Decimal | None
    """This image's share of its request's charge."""
    route: str | None
    task_id: str | None
    parent_task_id: str | None
    action: str | None


@dataclass(frozen=True, slots=True)
class GalleryRow:
    """One of a key's images as stored, with the usage row and the task that made it (each
    ``None`` where there is none)."""

    asset_id: str
    content_type: str
    width: int | None
    height: int | None
    created_at: float
    prompt: str | None
    request_model: str | None
    """The usage row's model."""
    request_cost_usd: Decimal | None
    """The whole request's charge."""
    request_images: int | None
    route: str | None
    task_id: str | None
    parent_id: str | None
    meta: Any
    request: Any
    task_model: str | None

    def item(self) -> GalleryItem:
        """The gallery's view: the image's share of the charge, the prompt and model from the
        task where the asset and usage rows lack them."""
        cost = self.request_cost_usd
        share = Decimal(cost) / max(1, int(self.request_images or 1)) if cost is not None else None
        meta = self.meta if isinstance(self.meta, dict) else {}
        return GalleryItem(
            asset_id=self.asset_id,
            content_type=self.content_type,
            width=self.width,
            height=self.height,
            created_at=self.created_at,
            prompt=self.prompt or _task_prompt(meta, self.request),
            model=self.request_model or self.task_model,
            cost_usd=share,
            route=self.route,
            task_id=self.task_id,
            parent_task_id=self.parent_id or meta.get("parent_id"),
            action=meta.get("action"),
        )


@dataclass(frozen=True, slots=True)
class UsageBucket:
    """Usage rows of one day (``YYYY-MM-DD``, UTC), model and key, summed."""

    day: str
    model: str | None
    key_id: str | None
    requests: int
    images: int
    cost_usd: Decimal
    errors: int


@dataclass(frozen=True, slots=True)
class Delivery:
    attempt: int
    state: str
    status_code: int | None
    error: str | None
    url: str
    created_at: float


def _task_prompt(meta: Any, request: Any) -> str:
    for source in (meta, request, (request or {}).get("params") if request else None):
        if isinstance(source, dict) and isinstance(source.get("prompt"), str):
            return str(source["prompt"])
    return ""


@dataclass(slots=True)
class Totals:
    requests: int = 0
    images: int = 0
    cost_usd: Decimal = Decimal(0)
    errors: int = 0

    def add(self, requests: int, images: int, cost: Decimal, errors: int) -> None:
        self.requests += requests
        self.images += images
        self.cost_usd += cost
        self.errors += errors


@dataclass(frozen=True, slots=True)
class UsageSummary:
    """Totals overall and by day, model and key, from one grouped scan of the usage log."""

    totals: Totals
    by_day: dict[str, Totals]
    by_model: dict[str | None, Totals]
    by_key: dict[str | None, Totals]


class ConsoleViewRepository(Protocol):
    """The read queries behind the console (``storage/`` holds the SQL ones)."""

    async def gallery(
        self, owner_key_id: str, *, limit: int, offset: int
    ) -> tuple[list[GalleryRow], int]:
        """One page of the key's images, newest first, and how many it has in all."""
        ...

    async def tasks(self, owner_key_id: str | None, *, limit: int, offset: int) -> list[TaskRecord]:
        """Tasks of every kind, newest first; ``None``: every key's."""
        ...

    async def usage_buckets(self, start: float, key_id: str | None) -> list[UsageBucket]:
        """Usage since ``start`` (of one key, or every key's for ``None``) grouped by day, model
        and key, in one scan."""
        ...

    async def cost_of(self, request_id: str) -> Decimal | None:
        """The sum charged for a request id, or ``None`` while it has no usage row."""
        ...

    async def deliveries(self, task_id: str) -> list[Delivery]:
        """Every webhook try for a task, oldest first."""
        ...


class ConsoleViews:
    """The console's read models over the gateway's data."""

    def __init__(self, repository: ConsoleViewRepository) -> None:
        self._views = repository

    async def gallery(
        self, owner_key_id: str, *, limit: int = 48, offset: int = 0
    ) -> tuple[list[GalleryItem], int]:
        """One page of the key's images, newest first, and how many it has in all."""
        rows, total = await self._views.gallery(owner_key_id, limit=limit, offset=offset)
        return [row.item() for row in rows], total

    async def tasks(
        self, owner_key_id: str | None, *, limit: int = 50, offset: int = 0
    ) -> list[TaskRecord]:
        """Tasks of every kind (every front), newest first; ``None``: every key's."""
        return await self._views.tasks(owner_key_id, limit=limit, offset=offset)

    async def usage_summary(self, start: float, key_id: str | None) -> UsageSummary:
        """Usage since ``start`` (of one key, or every key's for ``None``) from one query grouped
        by day, model and key, summed here: the usage page's four views cost one scan."""
        summary = UsageSummary(Totals(), {}, {}, {})
        for bucket in await self._views.usage_buckets(start, key_id):
            values = (bucket.requests, bucket.images, bucket.cost_usd, bucket.errors)
            summary.totals.add(*values)
            summary.by_day.setdefault(bucket.day, Totals()).add(*values)
            summary.by_model.setdefault(bucket.model, Totals()).add(*values)
            summary.by_key.setdefault(bucket.key_id, Totals()).add(*values)
        return summary

    async def cost_of(self, request_id: str) -> Decimal | None:
        """What a request (or task: its id) was charged, once its usage row is written."""
        return await self._views.cost_of(request_id)

    async def deliveries(self, task_id: str) -> list[Delivery]:
        """Every webhook try for a task, oldest first (the secret never leaves here)."""
        return await self._views.deliveries(task_id)
