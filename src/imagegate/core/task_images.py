"""The ``image`` task kind: any validated image request, run later by the task engine.

Input images are kept in the blob store by content and referenced from the task's JSON, so a
task survives restarts without holding image bytes in the database."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, fields, replace
from typing import Any

from imagegate.core.assets import AssetService
from imagegate.core.generation import ImageService
from imagegate.core.requests import ImageRequest, InputImage
from imagegate.core.task_model import TaskOutput, TaskRecord
from imagegate.core.tasks import TaskRun

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
    """Runs a stored image request on the model's deployment."""

    def __init__(self, images: ImageService, assets: AssetService) -> None:
        self._images = images
        self._assets = assets

    async def __call__(self, task: TaskRecord, run: TaskRun) -> TaskOutput:
        request = await load_request(task.request, self._assets)
        await run.progress(10)
        result = await self._images.execute(request.model, request, task.id)
        return TaskOutput(
            images=result.images,
            usage=result.usage,
            cost=self._images.cost(request.model, request, result),
            model=request.model,
            result={"seed": request.extras.get("seed")},
        )
