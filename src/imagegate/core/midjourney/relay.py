"""The Midjourney front end relayed 1:1 to a relay that speaks the midjourney-proxy API.

When the front end's model is served by a ``midjourney-proxy`` deployment, each submit goes to
the relay as the client sent it, except that task ids are swapped for the relay's own and
``notifyHook`` stays here (imagegate sends it, for its own task ids). The relay's business code
is the answer. A local ``mj`` task stands for the relay's: the task engine polls the relay
(:meth:`MidjourneyRelay.run`), stores the image in the asset store as soon as it is ready, and
keeps the relay's fields (action, prompts, buttons) for the task object. Buttons pressed on a
relayed task go to the relay with the relay's own customIds.

Each task holds the model's ``per_action`` price (by speed tier) at submit and is charged once
it delivers; a task that fails or is refused costs nothing.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any, Final

from imagegate.core.catalog import CatalogEntry
from imagegate.core.holds import Hold
from imagegate.core.keys import ApiKey
from imagegate.core.midjourney.errors import ParameterError, QueueFull
from imagegate.core.midjourney.handler import KIND
from imagegate.core.midjourney.intake import MODAL, ROUTE, Accepted, Caller, Deps, new_meta
from imagegate.core.midjourney.plans import GRID_PICTURES
from imagegate.core.midjourney.relaying import (
    ACCEPTED,
    QUEUE_FULL,
    Relaying,
    RelayRoute,
    SubmitAnswer,
)
from imagegate.core.pricing import price
from imagegate.core.routing_state import Deployment
from imagegate.core.task_model import PARKED, TaskOutput, TaskRecord, TaskStatus
from imagegate.core.tasks import TaskRun
from imagegate.core.upstream import ProviderContext
from imagegate.errors import (
    NotFound,
    RateLimited,
    ServerError,
    UpstreamError,
    UpstreamTimeout,
)
from imagegate.observability import metrics
from imagegate.observability.upstream import observed_call

__all__ = ["RELAY_MODEL", "MidjourneyRelay", "default_model", "relays"]

RELAY_MODEL: Final = "midjourney"
LOCAL_MODEL: Final = "sketch"

SUBMIT_ACTIONS: Final = {
    "imagine": "IMAGINE",
    "blend": "BLEND",
    "describe": "DESCRIBE",
    "shorten": "SHORTEN",
    "edits": "EDIT",
}
_BUTTON_ACTIONS: Final = (
    ("::upsample", "UPSCALE"),
    ("variation::", "VARIATION"),
    ("::reroll::", "REROLL"),
    ("::Inpaint::", "INPAINT"),
    ("::Outpaint::", "ZOOM"),
    ("::CustomZoom::", "ZOOM"),
    ("::pan_", "PAN"),
    ("::PicReader::", "IMAGINE"),
    ("::PromptAnalyzer::", "IMAGINE"),
)
PICTURES: Final = {"UPSCALE": 1, "DESCRIBE": 0, "SHORTEN": 0}
"""Pictures a task of each action makes, counted against image quotas (a grid: 4)."""
KEPT_FIELDS: Final = ("action", "prompt", "promptEn", "description", "buttons", "properties")
"""The relay's task fields a relayed task shows as its own."""
POLL_FAILURES: Final = 5
"""Consecutive failed polls (relay unreachable, 5xx, 429) tolerated before the task fails."""


def relays(deps: Deps, model: str) -> bool:
    """Whether ``model``'s preferred deployment is a midjourney-proxy relay."""
    entry = deps.images.catalog.resolve(model)
    if entry is None or not entry.available_deployments:
        return False
    dep = deps.images.router.deployments(entry)[0]
    return isinstance(dep.adapter, Relaying)


def default_model(deps: Deps) -> str:
    """The front end's model when the operator names none: the built-in ``midjourney`` when
    its relay is configured, else the built-in renderer."""
    return RELAY_MODEL if relays(deps, RELAY_MODEL) else LOCAL_MODEL


def button_action(custom_id: str) -> str:
    """The action a button of the relay makes, by its customId's form (a form not known here:
    IMAGINE, priced as a grid; the relay's own action is shown once the task is done)."""
    for marker, action in _BUTTON_ACTIONS:
        if marker in custom_id:
            return action
    return "IMAGINE"


class MidjourneyRelay:
    """Submits to the relay and runs the local tasks that stand for the relay's."""

    def __init__(self, deps: Deps, model: str) -> None:
        self._deps = deps
        self.model = model

    async def submit(self, caller: Caller, route: RelayRoute, body: dict[str, Any]) -> Accepted:
        """Relay one submit; ``body`` is the client's JSON, already checked by the route."""
        forwarded = {name: value for name, value in body.items() if name != "notifyHook"}
        if route == "modal":
            return await self._modal(caller, forwarded)
        parent: TaskRecord | None = None
        if route == "action":
            parent = await self._relayed(caller.key, str(body["taskId"]), status="succeeded")
            custom_id = str(body["customId"])
            buttons = (parent.result or {}).get("relay", {}).get("buttons", [])
            if custom_id not in {button.get("customId") for button in buttons}:
                raise ParameterError("this task has no such button", param="customId")
            forwarded["taskId"] = parent.request["relay"]["id"]
            action = button_action(custom_id)
            meta = new_meta(
                caller,
                action,
                **{name: parent.meta.get(name) for name in ("prompt", "prompt_en", "final_prompt")},
                custom_id=custom_id,
                parent_id=parent.id,
            )
        else:
            action = SUBMIT_ACTIONS[route]
            if caller.tier != "fast" and "accountFilter" not in body:
                # The speed prefix (/mj-relax, /mj-turbo) is imagegate's; a relay takes modes.
                forwarded["accountFilter"] = {"modes": [caller.tier.upper()]}
            prompt = body.get("prompt")
            meta = new_meta(caller, action, prompt=prompt, prompt_en=prompt, final_prompt=prompt)
        entry = self._entry(caller.key)
        hold = await self._hold(caller, entry, action)
        async with hold.handed_over() as reservation_id:
            relay, code = await self._send(entry, caller, route, forwarded)
            parked = code == MODAL
            task = await self._deps.tasks.submit(
                kind=KIND,
                owner_key_id=caller.key.id,
                request={"relay": relay},
                meta=meta,
                model=entry.spec.id,
                parent_id=parent.id if parent else None,
                webhook_url=caller.notify_hook,
                status=PARKED if parked else "queued",
                reservation_id=None if parked else reservation_id,
            )
            if parked:  # held again when the modal gives the task its input
                await hold.give_back()
        return Accepted(task, code)

    async def _modal(self, caller: Caller, body: dict[str, Any]) -> Accepted:
        """Give a relayed task parked for its modal its input, on the relay, and queue it
        here."""
        task = await self._relayed(caller.key, str(body["taskId"]), status=PARKED)
        relay = task.request["relay"]
        entry = self._entry(caller.key)
        hold = await self._hold(caller, entry, str(task.meta.get("action")))
        async with hold.handed_over() as reservation_id:
            answered, code = await self._send(
                entry, caller, "modal", {**body, "taskId": relay["id"]}, relay["deployment"]
            )
            resumed = await self._deps.tasks.resume(
                task.id,
                caller.key.id,
                {"relay": answered},
                task.meta | {"prompt": body.get("prompt") or task.meta.get("prompt", "")},
                reservation_id=reservation_id,
            )
        return Accepted(resumed, code)

    async def image_seed(self, key: ApiKey, task: TaskRecord) -> SubmitAnswer:
        """The relay's answer to ``image-seed`` for the relay task ``task`` stands for."""
        relay = task.request["relay"]
        _, adapter, ctx = self._context(self._entry(key), task.id, relay["deployment"])
        return await adapter.relay_image_seed(relay["id"], ctx)

    async def run(self, task: TaskRecord, run: TaskRun) -> TaskOutput:
        """Poll the relay until its task ends; its image, downloaded at once, is the output."""
        relay = task.request["relay"]
        entry = self._deps.images.catalog.resolve(task.model or self.model)
        if entry is None:
            raise ServerError(f"model {task.model!r} is no longer in the catalogue")
        failures = 0
        while True:
            dep, adapter, ctx = self._context(entry, task.id, relay["deployment"])
            if time.time() > task.created_at + dep.spec.timeout:
                raise UpstreamTimeout(
                    f"the Midjourney relay did not finish the task in {dep.spec.timeout:g} s"
                    " (the deployment's timeout)"
                )
            try:
                async with observed_call(dep):
                    fetched = await adapter.relay_fetch(relay["id"], ctx)
            except (UpstreamError, RateLimited):
                failures += 1
                if failures >= POLL_FAILURES:
                    raise
                await asyncio.sleep(adapter.poll_interval(ctx))
                continue
            failures = 0
            status = await adapter.outcome(fetched, ctx)
            if status.result is not None:
                metrics.images(entry.spec.id, dep.name, len(status.result.images))
                kept = fetched.model_dump(include=set(KEPT_FIELDS))
                result: dict[str, Any] = {"relay": kept}
                if status.result.text is not None:
                    result["text"] = status.result.text
                return TaskOutput(
                    images=status.result.images,
                    cost=self._price(entry, str(task.meta.get("action")), task.meta.get("tier")),
                    model=entry.spec.id,
                    result=result,
                )
            if status.progress is not None:
                await run.progress(min(status.progress, 99))
            await asyncio.sleep(status.poll_after)

    # -- steps ----------------------------------------------------------------------------

    def _entry(self, key: ApiKey) -> CatalogEntry:
        return self._deps.images.resolve_model(key, self.model)

    def _context(
        self, entry: CatalogEntry, request_id: str, deployment: str | None = None
    ) -> tuple[Deployment, Relaying, ProviderContext]:
        """The relay deployment (the preferred one, or the one named), its adapter and a
        context for it."""
        dep, ctx = self._deps.images.router.context_for(entry, request_id, deployment)
        if not isinstance(dep.adapter, Relaying):
            raise ServerError(f"model {entry.spec.id!r} is no longer served by a relay")
        return dep, dep.adapter, ctx

    async def _send(
        self,
        entry: CatalogEntry,
        caller: Caller,
        route: RelayRoute,
        body: dict[str, Any],
        deployment: str | None = None,
    ) -> tuple[dict[str, str], int]:
        """Submit on the relay: where it ran and the relay's task id, and the relay's code."""
        dep, adapter, ctx = self._context(entry, caller.request_id, deployment)
        async with observed_call(dep):
            answer = await adapter.relay_submit(route, body, ctx)
        if answer.code not in ACCEPTED or answer.result in (None, ""):
            if answer.code == QUEUE_FULL:
                raise QueueFull(f"the Midjourney relay's queue is full: {answer.description}")
            raise adapter.refusal(answer, ctx)
        return {"id": str(answer.result), "deployment": dep.key}, answer.code

    async def _relayed(self, key: ApiKey, task_id: str, *, status: TaskStatus) -> TaskRecord:
        """The caller's relayed task ``task_id``, which must be in ``status``."""
        task = await self._deps.tasks.get(task_id, key.id)
        if task.kind != KIND:
            raise NotFound(f"no such task: {task_id!r}", param="taskId", code="task_not_found")
        if "relay" not in task.request:
            raise ParameterError("this task was not made through the relay", param="taskId")
        if task.status != status:
            said = "has not succeeded" if status == "succeeded" else "is not waiting for a modal"
            raise ParameterError(f"task {task_id!r} {said}", param="taskId")
        return task

    def _price(self, entry: CatalogEntry, action: str, tier: object) -> Decimal:
        return price(entry.spec.pricing, None, 1, "", "", action, str(tier or "fast")).amount

    async def _hold(self, caller: Caller, entry: CatalogEntry, action: str) -> Hold:
        """Count the task's pictures (about a megapixel each) against the key's quotas and
        hold its price."""
        started = time.perf_counter()
        pictures = PICTURES.get(action, GRID_PICTURES)
        amount = self._price(entry, action, caller.tier)
        return await self._deps.images.hold(
            caller.key,
            amount,
            caller.request_id,
            model=entry.spec.id,
            route=ROUTE,
            images=pictures,
            megapixels=float(pictures),
            started=started,
        )
