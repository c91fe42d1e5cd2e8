"""The ``image`` task kind: any validated image request, run later by the task engine.

Input images are kept in the blob store by content and referenced from the task's JSON, so a
task survives restarts without holding image bytes in the database."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, fields, replace
from typing import Any

from imagegate.core.assets import AssetService
from imagegate.core.generation import ImageService
from imagegate.core.requests import ImageRequest, ImageResult, InputImage
from imagegate.core.task_events import PartialImages
from imagegate.core.task_model import TaskOutput, TaskRecord
from imagegate.core.tasks import TaskRun
from imagegate.errors import ServerError

KIND = "image"
_SCALARS = [f.name for f in fields(ImageRequest) if f.name not in ("images", "mask")]


async def dump_request(request: ImageRequest, assets: AssetService) -> dict[str, Any]:
    """JSON for ``request``; input images are written to the blob store and referenced."""
    inputs = [*request.images, *([request.mask] if request.mask else [])]
    await asyncio.gather(*(assets.put_blob(image.data, image.mime_type) for image in inputs))
    data = {name: getattr(request, name) for name in _SCALARS}
    data["images"] = [_image_ref(image) for image in request.images]
    data["mask"] = _image_ref(request.mask) if request.mask else None
    return data


async def load_request(data: dict[str, Any], assets: AssetService) -> ImageRequest:
    """The request :func:`dump_request` stored, with its input images read back."""
    scalars = {name: data[name] for name in _SCALARS if name in data}
    if scalars.get("padding") is not None:
        scalars["padding"] = tuple(scalars["padding"])  # JSON has no tuples
    request = ImageRequest(**scalars)
    refs = [*data.get("images", []), *([data["mask"]] if data.get("mask") else [])]
    images = await asyncio.gather(*(_image(ref, assets) for ref in refs))
    count = len(data.get("images", []))
    return replace(
        request,
        images=tuple(images[:count]),
        mask=images[count] if data.get("mask") else None,
    )


def _image_ref(image: InputImage) -> dict[str, Any]:
    ref = asdict(image)
    del ref["data"]
    return ref


async def _image(ref: dict[str, Any], assets: AssetService) -> InputImage:
    return InputImage(data=await assets.blob(ref["sha256"]), **ref)


class ImageTaskHandler:
    """Runs a stored image request on the model's deployment. With ``partials``, a request
    that asks for partial images streams them to whoever watches the task."""

    def __init__(
        self, images: ImageService, assets: AssetService, partials: PartialImages | None = None
    ) -> None:
        self._images = images
        self._assets = assets
        self._partials = partials

    async def __call__(self, task: TaskRecord, run: TaskRun) -> TaskOutput:
        request = await load_request(task.request, self._assets)
        await run.progress(10)
        if request.partial_images and self._partials is not None and self._streams(request.model):
            result = await self._stream(request, task.id, run, self._partials)
        else:
            result = await self._images.execute(request.model, request, task.id, run)
        return TaskOutput(
            images=result.images,
            usage=result.usage,
            cost=self._images.cost(request.model, request, result),
            model=request.model,
            result={"seed": request.extras.get("seed"), **result_fields(result)},
        )

    def _streams(self, model_id: str) -> bool:
        """Whether the model sends partial images (others are asked for the result only)."""
        entry = self._images.catalog.resolve(model_id)
        spec = entry.spec.generate if entry is not None else None
        return spec is not None and spec.streaming

    async def _stream(
        self, request: ImageRequest, task_id: str, run: TaskRun, partials: PartialImages
    ) -> ImageResult:
        stream = self._images.execute_stream(request.model, request, task_id)
        previews = request.partial_images * request.n
        async for event in stream:
            if isinstance(event, ImageResult):
                return event
            partials.publish(task_id, event)
            seen = event.image_index * request.partial_images + event.partial_index + 1
            await run.progress(10 + 80 * seen // (previews + 1))
        raise ServerError("the upstream stream ended without a final image")


def result_fields(result: ImageResult) -> dict[str, Any]:
    """What a front needs besides the stored images to answer as a synchronous call would."""
    return {
        "background": result.background,
        "quality": result.quality,
        "text": result.text,
        "revised_prompts": [image.revised_prompt for image in result.images],
        "usage": asdict(result.usage) if result.usage is not None else None,
    }
