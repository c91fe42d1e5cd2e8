"""Pressing the buttons of finished Midjourney tasks, and giving a task parked by a button its
modal's input (the mask of Vary (Region), the prompt of Custom Zoom or a remix)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from typing import Any

from imagegate.core.generation import Prepared
from imagegate.core.midjourney.actions import (
    ACTIONS,
    MODAL_KINDS,
    REMIX_KINDS,
    action_params,
    picture_for,
)
from imagegate.core.midjourney.buttons import GRID_ACTIONS, Press, offered, parse_custom_id
from imagegate.core.midjourney.errors import ParameterError
from imagegate.core.midjourney.flags import parse_prompt
from imagegate.core.midjourney.intake import (
    Accepted,
    Caller,
    Intake,
    new_meta,
    pick_seed,
    seed_extras,
)
from imagegate.core.midjourney.plans import Plan, grid_n, grid_requests, params_of
from imagegate.core.midjourney.shorten import suggestion
from imagegate.core.midjourney.submissions import Submissions
from imagegate.core.task_model import PARKED, TaskRecord

_SEED_FLAG = re.compile(r"\s*--seed \d+")


class Presses:
    """Buttons of finished tasks: each queues a task of its own, or parks one for its modal."""

    def __init__(self, intake: Intake, submissions: Submissions) -> None:
        """``submissions``: the describe and shorten buttons imagine the prompt they pick."""
        self._intake = intake
        self._submissions = submissions

    async def action(
        self, caller: Caller, task_id: str, custom_id: str, *, remix: bool = False
    ) -> Accepted:
        """Press button ``custom_id`` of finished task ``task_id``. Vary (Region), Custom Zoom
        and (with ``remix``) the buttons that take a prompt park a task for its modal."""
        parent = await self._intake.task(caller.key, task_id)
        self._intake.model_spec(caller.key)  # a key's models may have narrowed since the parent ran
        if parent.status != "succeeded":
            raise ParameterError(f"task {task_id!r} has not succeeded", param="taskId")
        press = parse_custom_id(custom_id, parent.id)
        if not offered(custom_id, parent.meta["action"], parent.id):
            raise ParameterError("this task has no such button", param="customId")
        if press.kind in ("describe", "shorten"):
            line = suggestion((parent.result or {}).get("text", ""), press.index)
            if line is None:
                raise ParameterError(f"the task has no prompt {press.index}", param="customId")
            return await self._submissions.imagine(
                caller, line, [], custom_id=custom_id, parent_id=parent.id
            )
        meta = new_meta(
            caller,
            ACTIONS[press.kind],
            **{name: parent.meta.get(name) for name in ("prompt", "prompt_en", "final_prompt")},
            tile=bool(parent.meta.get("tile")),
            custom_id=custom_id,
            parent_id=parent.id,
            bot_type=parent.meta.get("bot_type"),
        )
        if press.kind in MODAL_KINDS or (remix and press.kind in REMIX_KINDS):
            return await self._intake.park(caller, parent, meta)
        code = await self._intake.queue_code(caller)
        plan, updates, prepared = await self._button_plan(caller, parent, press)
        return await self._intake.submit(
            caller, plan, meta | updates, code=code, prepared=prepared, parent_id=parent.id
        )

    async def modal(
        self, caller: Caller, task_id: str, prompt: str | None, mask: str | None
    ) -> Accepted:
        """Give a parked task its mask (Vary Region) or prompt (Custom Zoom ``--zoom N``, a
        remix) and queue it."""
        task = await self._intake.task(caller.key, task_id)
        pending = task.request.get("pending")
        if task.status != PARKED or not isinstance(pending, dict):
            raise ParameterError(f"task {task_id!r} is not waiting for a modal", param="taskId")
        parent = await self._intake.task(caller.key, pending["parent_id"])
        press = parse_custom_id(pending["custom_id"], parent.id)
        parsed = parse_prompt(prompt or "", allow_zoom=press.kind == "custom_zoom")
        if press.kind == "inpaint" and not mask:
            raise ParameterError("Vary (Region) needs maskBase64", param="maskBase64")
        if press.kind == "custom_zoom" and parsed.flags.zoom is None:
            raise ParameterError("Custom Zoom needs --zoom N in the prompt", param="--zoom")
        plan, updates, prepared = await self._button_plan(
            caller, parent, press, prompt=parsed.text or None, mask=mask, zoom=parsed.flags.zoom
        )
        if parsed.text or parsed.given:
            updates["prompt"] = prompt
            updates["prompt_en"] = parsed.text or task.meta.get("prompt_en", "")
            updates["final_prompt"] = parsed.final_prompt(updates.get("seed"))
        return await self._intake.resume(caller, task, plan, task.meta | updates, prepared)

    async def _button_plan(
        self,
        caller: Caller,
        parent: TaskRecord,
        press: Press,
        *,
        prompt: str | None = None,
        mask: str | None = None,
        zoom: float | None = None,
    ) -> tuple[Plan, dict[str, Any], Prepared]:
        """What pressing ``press`` on ``parent`` runs, the meta it changes, and its hold."""
        if press.kind == "reroll":
            return await self._reroll(caller, parent, prompt)
        if not parent.asset_ids:
            raise ParameterError("this task has no image to work on", param="taskId")
        model, spec = self._intake.model_spec(caller.key)
        image = await self._intake.image_of(parent)
        grid = parent.meta["action"] in GRID_ACTIONS
        picture = await asyncio.to_thread(picture_for, press, image, grid=grid)
        size = (picture.width, picture.height)
        mask_png = await self._intake.mask(caller, mask, size) if mask else None
        text = prompt if prompt is not None else str(parent.meta.get("prompt_en") or "")
        mode, params = action_params(
            press, picture, prompt=text, spec=spec, model=model, mask=mask_png, zoom=zoom
        )
        seed = parent.meta.get("seed") if mode == "single" else pick_seed(spec, None)
        params.extras = seed_extras(seed)
        if mode == "grid":
            params.n = grid_n(spec)
        prepared = await self._intake.prepare(caller, params)
        request = prepared.validated.request
        requests = grid_requests(request, seed) if mode == "grid" else (request,)
        plan = Plan(mode, requests, bool(parent.meta.get("tile")))
        final = with_seed(str(parent.meta.get("final_prompt") or ""), seed)
        return plan, {"seed": seed, "final_prompt": final}, prepared

    async def _reroll(
        self, caller: Caller, parent: TaskRecord, prompt: str | None
    ) -> tuple[Plan, dict[str, Any], Prepared]:
        """The parent's ask again with a new seed (and the remix prompt, if any)."""
        model, spec = self._intake.model_spec(caller.key)
        previous = await self._intake.plan_of(parent)
        seed = pick_seed(spec, None)
        params = params_of(previous.requests[0])
        params.model, params.n = model, grid_n(spec)
        params.prompt = prompt or params.prompt
        params.extras = {**params.extras, **seed_extras(seed)}
        prepared = await self._intake.prepare(caller, params)
        chaos = int(parent.meta.get("chaos") or 0)
        plan = replace(previous, requests=grid_requests(prepared.validated.request, seed, chaos))
        final = with_seed(str(parent.meta.get("final_prompt") or ""), seed)
        return plan, {"seed": seed, "final_prompt": final}, prepared


def with_seed(final_prompt: str, seed: int | None) -> str:
    """``final_prompt`` with its ``--seed`` replaced by ``seed`` (removed when None)."""
    without = _SEED_FLAG.sub("", final_prompt).strip()
    return without if seed is None else f"{without} --seed {seed}".strip()
