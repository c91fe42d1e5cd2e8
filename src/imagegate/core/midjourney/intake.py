"""What every Midjourney submission does: resolve the model, check the queue, validate through
the one generation flow (which loads inputs safely and holds the quote), and queue the plan as
an ``mj`` task that takes the hold over — or refuses the hold if it cannot be queued."""

from __future__ import annotations

import asyncio
import secrets
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

from imagegate.core.assets import Asset, AssetService, NewAsset
from imagegate.core.catalog import GenerateSpec, InputSpec
from imagegate.core.generation import ImageService, Prepared
from imagegate.core.inputs import InputLoader
from imagegate.core.keys import ApiKey
from imagegate.core.midjourney import pixels
from imagegate.core.midjourney.errors import QueueFull
from imagegate.core.midjourney.flags import MAX_SEED
from imagegate.core.midjourney.handler import KIND
from imagegate.core.midjourney.plans import Plan, dump_plan, load_plan
from imagegate.core.params import GenerationParams, ImageSource
from imagegate.core.requests import InputImage
from imagegate.core.task_model import PARKED, TaskRecord
from imagegate.core.tasks import TaskEngine
from imagegate.errors import NotFound, ServerError
from imagegate.imaging.limits import ImageLimits

ROUTE = "mj"
SUBMITTED, MODAL, QUEUED = 1, 21, 22
GAUGE_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class Caller:
    """Who submits, and what every submission carries besides its own fields."""

    key: ApiKey
    request_id: str
    tier: str = "fast"
    bot_type: str | None = None
    notify_hook: str | None = None
    state: str | None = None
    base_url: str = ""


@dataclass(frozen=True, slots=True)
class Accepted:
    """A task the client can poll: ``code`` 1 (submitted), 21 (waits in MODAL), 22 (queued)."""

    task: TaskRecord
    code: int


@dataclass(frozen=True, slots=True)
class Deps:
    """The services a Midjourney front runs on."""

    images: ImageService
    assets: AssetService
    tasks: TaskEngine
    inputs: InputLoader
    queue: TaskQueueRepository


class Intake:
    """The steps every submission shares, on one configured model: the submits
    (:class:`~.submissions.Submissions`) and the buttons (:class:`~.presses.Presses`) are
    written with them."""

    def __init__(self, deps: Deps, *, model: str, queue_limit: int, concurrency: int) -> None:
        self._deps = deps
        self.model = model
        self._queue_limit = queue_limit
        self._concurrency = concurrency
        self._gauge = QueueGauge(deps.queue, concurrency, queue_limit)

    async def task(self, key: ApiKey, task_id: str) -> TaskRecord:
        """The caller's Midjourney task; 404 for another key's or another front's."""
        task = await self._deps.tasks.get(task_id, key.id)
        if task.kind != KIND:
            raise NotFound(f"no such task: {task_id!r}", param="id", code="task_not_found")
        return task

    def model_spec(self, key: ApiKey) -> tuple[str, GenerateSpec]:
        """The model's id and generation spec, if ``key`` may use it."""
        entry = self._deps.images.resolve_model(key, self.model)
        if entry.spec.generate is None:
            raise ServerError(f"mj_model {self.model!r} does not generate images")
        return entry.spec.id, entry.spec.generate

    async def prepare(self, caller: Caller, params: GenerationParams) -> Prepared:
        """Validate ``params`` and hold their quote (see :meth:`ImageService.prepare`)."""
        return await self._deps.images.prepare(
            caller.key, params, request_id=caller.request_id, route=ROUTE
        )

    async def load(self, caller: Caller, source: ImageSource) -> InputImage:
        """One image through the safe pipeline, with the model's input limits."""
        entry = self._deps.images.resolve_model(caller.key, self.model)
        spec = entry.spec.edit or InputSpec()
        limits = ImageLimits(max_bytes=spec.max_image_bytes, formats=frozenset(spec.formats))
        return await self._deps.inputs.load(source, owner_key_id=caller.key.id, limits=limits)

    async def mask(self, caller: Caller, mask: str, size: tuple[int, int]) -> bytes:
        """The client's mask (white = repaint) as the domain's (alpha 0 = change), at ``size``."""
        loaded = await self.load(caller, ImageSource("maskBase64", mask))
        return await asyncio.to_thread(
            lambda: pixels.mask_to_alpha(pixels.decode(loaded.data), size)
        )

    async def store(self, caller: Caller, items: list[NewAsset]) -> list[Asset]:
        """Store images as the caller's assets."""
        return await self._deps.assets.store(
            items, owner_key_id=caller.key.id, request_id=caller.request_id
        )

    async def image_of(self, task: TaskRecord) -> bytes:
        """The stored image of a finished task."""
        return await self._deps.assets.read(task.asset_ids[0])

    async def plan_of(self, task: TaskRecord) -> Plan:
        """The plan ``task`` ran."""
        return await load_plan(task.request, self._deps.assets)

    async def queue_code(self, caller: Caller) -> int:
        """1 when a worker is free, 22 when the task will wait; :class:`QueueFull` (23) when
        the caller already has ``queue_limit`` tasks waiting."""
        waiting, own = await self._gauge.read(caller.key.id)
        if own >= self._queue_limit:
            raise QueueFull(f"{own} of your tasks are waiting; retry when some have run")
        self._gauge.count(caller.key.id)
        return QUEUED if waiting >= self._concurrency else SUBMITTED

    async def submit(
        self,
        caller: Caller,
        plan: Plan,
        meta: dict[str, Any],
        *,
        code: int,
        prepared: Prepared | None = None,
        parent_id: str | None = None,
    ) -> Accepted:
        """Queue ``plan``; the task takes ``prepared``'s hold over, or it is refused."""
        handing = prepared.hold.handed_over() if prepared else nullcontext(None)
        async with handing as reservation_id:
            task = await self._deps.tasks.submit(
                kind=KIND,
                owner_key_id=caller.key.id,
                request=await dump_plan(plan, self._deps.assets),
                meta=meta,
                model=self.model,
                parent_id=parent_id,
                webhook_url=caller.notify_hook,
                reservation_id=reservation_id,
            )
        return Accepted(task, code)

    async def park(self, caller: Caller, parent: TaskRecord, meta: dict[str, Any]) -> Accepted:
        """A task for the button ``meta["custom_id"]`` of ``parent``, parked until
        :meth:`resume` gives it its modal's input; it holds nothing until then."""
        task = await self._deps.tasks.submit(
            kind=KIND,
            owner_key_id=caller.key.id,
            request={"pending": {"custom_id": meta["custom_id"], "parent_id": parent.id}},
            meta=meta,
            model=self.model,
            parent_id=parent.id,
            webhook_url=caller.notify_hook,
            status=PARKED,
        )
        return Accepted(task, MODAL)

    async def resume(
        self, caller: Caller, task: TaskRecord, plan: Plan, meta: dict[str, Any], prepared: Prepared
    ) -> Accepted:
        """Queue a parked task with its plan; it takes ``prepared``'s hold over, or the hold is
        refused."""
        async with prepared.hold.handed_over() as reservation_id:
            resumed = await self._deps.tasks.resume(
                task.id,
                caller.key.id,
                await dump_plan(plan, self._deps.assets),
                meta,
                reservation_id=reservation_id,
            )
        return Accepted(resumed, SUBMITTED)


class TaskQueueRepository(Protocol):
    """What the queue gauge reads: how many tasks wait to be run."""

    async def waiting(self, key_id: str, *, all_up_to: int, own_up_to: int) -> tuple[int, int]:
        """How many tasks are queued, counted up to ``all_up_to``, and how many of them are
        ``key_id``'s, counted up to ``own_up_to`` (no more rows are read than that)."""
        ...


class QueueGauge:
    """How many tasks wait: all of them (up to ``concurrency``) and one key's (up to
    ``limit``). Read from the database at most every :data:`GAUGE_SECONDS` per key; submits in
    between are counted here, so a burst cannot slip past the limit, and the queue check
    costs no query on the hot path."""

    def __init__(self, queue: TaskQueueRepository, concurrency: int, limit: int) -> None:
        self._queue = queue
        self._concurrency = concurrency
        self._limit = limit
        self._seen: dict[str, tuple[float, int, int]] = {}
        self._reading: dict[str, asyncio.Future[None]] = {}

    async def read(self, key_id: str) -> tuple[int, int]:
        now = time.monotonic()
        seen = self._seen.get(key_id)
        if seen is not None and now - seen[0] < GAUGE_SECONDS:
            return seen[1], seen[2]
        # One query per key at a time: a burst of submits shares it instead of each asking.
        reading = self._reading.get(key_id)
        if reading is None:
            reading = asyncio.ensure_future(self._query(key_id, now))
            self._reading[key_id] = reading
            reading.add_done_callback(lambda _: self._reading.pop(key_id, None))
        await asyncio.shield(reading)
        # What was read, plus what the callers that resumed first have counted since.
        _, waiting, own = self._seen[key_id]
        return waiting, own

    async def _query(self, key_id: str, now: float) -> None:
        waiting, own = await self._queue.waiting(
            key_id, all_up_to=self._concurrency, own_up_to=self._limit
        )
        self._seen[key_id] = (now, waiting, own)

    def count(self, key_id: str) -> None:
        """One more task of ``key_id`` is waiting."""
        seen = self._seen.get(key_id)
        if seen is not None:
            self._seen[key_id] = (seen[0], seen[1] + 1, seen[2] + 1)


def pick_seed(spec: GenerateSpec, given: int | None) -> int | None:
    """The seed to run with when the model takes one: ``given`` or a fresh one."""
    if "seed" not in spec.extras:
        return None
    return given if given is not None else secrets.randbelow(MAX_SEED + 1)


def seed_extras(seed: int | None) -> dict[str, Any]:
    return {} if seed is None else {"seed": seed}


def new_meta(caller: Caller, action: str, **values: Any) -> dict[str, Any]:
    """The front's record of a task: what the task object shows besides the engine's state."""
    meta: dict[str, Any] = {
        "front": "mj",
        "action": action,
        "custom_id": "",
        "prompt": "",
        "prompt_en": "",
        "final_prompt": "",
        "description": "Submit success",
        "state": caller.state,
        "tier": caller.tier,
        "bot_type": caller.bot_type or "MID_JOURNEY",
        "base_url": caller.base_url,
    }
    meta.update({name: value for name, value in values.items() if value is not None})
    return meta
