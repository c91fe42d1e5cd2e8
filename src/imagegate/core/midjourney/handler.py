"""The ``mj`` task kind: runs a stored :class:`~.plans.Plan` on the model and hands the engine
one image (a grid or a single picture) or a text, with what it cost; a task that stands for a
relay's is polled on the relay instead."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from imagegate.core.assets import AssetService
from imagegate.core.generation import ImageService
from imagegate.core.midjourney import pixels
from imagegate.core.midjourney.plans import GRID_PICTURES, Plan, load_plan
from imagegate.core.requests import GeneratedImage, ImageResult, Usage
from imagegate.core.task_model import TaskOutput, TaskRecord
from imagegate.core.tasks import TaskHandler, TaskRun
from imagegate.core.upstream import ScopedJournal
from imagegate.errors import UpstreamError

KIND = "mj"


class MidjourneyTaskHandler:
    """Runs every request of a plan concurrently, then composes what they made."""

    def __init__(
        self, images: ImageService, assets: AssetService, relayed: TaskHandler | None = None
    ) -> None:
        """``relayed`` runs the tasks that stand for a relay's (see :mod:`.relay`)."""
        self._images = images
        self._assets = assets
        self._relayed = relayed

    async def __call__(self, task: TaskRecord, run: TaskRun) -> TaskOutput:
        if "relay" in task.request:
            if self._relayed is None:
                raise UpstreamError("this task was relayed, and no relay is configured now")
            return await self._relayed(task, run)
        plan = await load_plan(task.request, self._assets)
        if plan.mode == "text":
            return TaskOutput(images=[], model=task.model, result={"text": plan.text or ""})
        results = await asyncio.gather(
            *(
                self._images.execute(r.model, r, task.id, ScopedJournal(run, f"{index}:"))
                for index, r in enumerate(plan.requests)
            )
        )
        await run.progress(80)  # pictures made; composing and storing remain
        cost = self._cost(task, plan, results)
        output = TaskOutput(
            images=[],
            usage=_total_usage(results),
            cost=cost,
            model=plan.requests[0].model,
            result={"seed": plan.seed},
        )
        if plan.mode == "describe":
            output.result["text"] = results[0].text or ""
            return output
        pictures = [image for result in results for image in result.images]
        output.images = [await asyncio.to_thread(_finish, plan, pictures)]
        return output

    def _cost(self, task: TaskRecord, plan: Plan, results: list[ImageResult]) -> Decimal:
        """What the pictures cost; a per-action price (by the task's action and speed tier) is
        charged once per task, with its first request."""
        action, tier = task.meta.get("action"), task.meta.get("tier")
        total = Decimal(0)
        for index, (request, result) in enumerate(zip(plan.requests, results, strict=True)):
            extra = {"action": action, "tier": tier} if index == 0 else {}
            total += self._images.cost(request.model, request, result, **extra)
        return total


def _finish(plan: Plan, pictures: list[GeneratedImage]) -> GeneratedImage:
    """The task's one image: the grid of four pictures, or the single picture; tiled first
    when the plan asks for it."""
    wanted = GRID_PICTURES if plan.mode == "grid" else 1
    if len(pictures) < wanted:
        raise UpstreamError(f"the model made {len(pictures)} pictures; {wanted} were needed")
    pictures = pictures[:wanted]
    if plan.mode == "single" and not plan.tile:
        return pictures[0]
    decoded = [pixels.decode(picture.data) for picture in pictures]
    if plan.tile:
        decoded = [pixels.make_tileable(picture) for picture in decoded]
    image = pixels.compose_grid(decoded) if plan.mode == "grid" else decoded[0]
    return pixels.encode(image, pictures[0].output_format)


def _total_usage(results: list[ImageResult]) -> Usage | None:
    usages = [result.usage for result in results if result.usage is not None]
    if not usages:
        return None
    return Usage(
        input_text_tokens=sum(u.input_text_tokens for u in usages),
        input_image_tokens=sum(u.input_image_tokens for u in usages),
        output_image_tokens=sum(u.output_image_tokens for u in usages),
        output_text_tokens=sum(u.output_text_tokens for u in usages),
    )
