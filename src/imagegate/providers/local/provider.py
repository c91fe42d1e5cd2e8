"""The ``local`` provider: serves model ``sketch`` with no network.

Every image-producing operation is painted by the function :data:`~.operations.PAINTERS`
names for it (``generate`` draws the prompt, ``edit`` changes ``images[0]``, ``upscale``,
``outpaint``, … see :mod:`.operations`); ``generate`` with ``output_format="svg"`` writes a
vector document instead (:mod:`.svg`); ``describe`` answers text (:mod:`.suggest`).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from PIL import Image

from imagegate.core.requests import (
    GeneratedImage,
    ImageRequest,
    ImageResult,
    PartialImage,
    StreamEvent,
)
from imagegate.core.upstream import ProviderContext
from imagegate.imaging.budget import DECODE_BUDGET
from imagegate.imaging.encode import encode_image
from imagegate.providers.local.describe import describe
from imagegate.providers.local.inputs import Inputs, input_seed, prepare
from imagegate.providers.local.operations import KEEPS_ALPHA, PAINTERS, Job, check
from imagegate.providers.local.suggest import suggest_prompts
from imagegate.providers.local.svg import render_svg
from imagegate.providers.local.usage import estimate_usage, text_usage

__all__ = ["LocalProvider"]


@dataclass(frozen=True, slots=True)
class _Encoded:
    final: GeneratedImage
    partials: list[GeneratedImage]


class LocalProvider:
    """A deterministic procedural renderer behind the :class:`ImageProvider` interface.

    Decoding inputs, rendering and encoding are CPU work and always run in worker threads
    (:func:`asyncio.to_thread`), never on the event loop. ``extras["seed"]`` (default 0),
    the image's index within the request and, for every operation but ``generate``, the
    input images select the picture.
    """

    name = "local"

    def has_credentials(self, credentials: Mapping[str, str]) -> bool:
        """Always true: the renderer needs no credentials."""
        return True

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ImageResult:
        """Render and encode all ``request.n`` images concurrently in worker threads."""
        check(request)
        inputs = await _prepare(request)
        if request.operation == "describe":
            return await asyncio.to_thread(_describe, request, inputs)
        encoded = await asyncio.gather(
            *(
                asyncio.to_thread(_render_one, request, inputs, index, 0)
                for index in range(request.n)
            )
        )
        return _result(request, [item.final for item in encoded])

    async def stream(
        self, request: ImageRequest, ctx: ProviderContext
    ) -> AsyncIterator[StreamEvent]:
        """Yield ``request.partial_images`` partials per image, then one :class:`ImageResult`.

        ``describe`` makes no image and yields its result only.
        """
        check(request)
        inputs = await _prepare(request)
        if request.operation == "describe":
            yield await asyncio.to_thread(_describe, request, inputs)
            return
        finals = []
        for index in range(request.n):
            encoded = await asyncio.to_thread(
                _render_one, request, inputs, index, request.partial_images
            )
            for partial_index, partial in enumerate(encoded.partials):
                yield PartialImage(image=partial, image_index=index, partial_index=partial_index)
            finals.append(encoded.final)
        yield _result(request, finals)


def _seed(request: ImageRequest) -> int:
    value = request.extras.get("seed", 0)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"seed must be an integer, not {value!r}")
    return int(value)


async def _prepare(request: ImageRequest) -> Inputs | None:
    if request.operation == "generate":
        return None
    # Decoding the inputs is the memory-heavy part (a PNG decodes at full size); the result
    # is at most the output size, so only this step holds the process's decode budget.
    pixels = sum(image.width * image.height for image in request.images)
    if request.mask is not None:
        pixels += request.mask.width * request.mask.height
    async with DECODE_BUDGET.hold(pixels):
        return await asyncio.to_thread(prepare, request)


def _job(request: ImageRequest, inputs: Inputs | None, index: int, stages: int) -> Job:
    seed = _seed(request)
    key = input_seed(request, inputs.digest, seed, index) if inputs is not None else seed
    return Job(request, inputs, index, stages, seed, random.Random(key))


def _render_one(request: ImageRequest, inputs: Inputs | None, index: int, stages: int) -> _Encoded:
    output_format = request.output_format
    if output_format == "svg":
        return _vector_one(request, index, stages)
    rendered = PAINTERS[request.operation](_job(request, inputs, index, stages))
    keep_alpha = request.background == "transparent" or request.operation in KEEPS_ALPHA

    def encode(image: Image.Image) -> GeneratedImage:
        if not keep_alpha and image.mode == "RGBA":  # flattened onto white already
            image = image.convert("RGB")
        data = encode_image(image, output_format, request.output_compression)
        width, height = image.size
        return GeneratedImage(data, output_format, width, height)

    return _Encoded(
        final=encode(rendered.final), partials=[encode(stage) for stage in rendered.stages]
    )


def _vector_one(request: ImageRequest, index: int, stages: int) -> _Encoded:
    vector = render_svg(
        request.prompt,
        request.width,
        request.height,
        seed=_seed(request),
        variant=index,
        transparent=request.background == "transparent",
        stages=stages,
    )

    def wrap(data: bytes) -> GeneratedImage:
        return GeneratedImage(data, "svg", request.width, request.height)

    return _Encoded(final=wrap(vector.final), partials=[wrap(stage) for stage in vector.stages])


def _describe(request: ImageRequest, inputs: Inputs | None) -> ImageResult:
    if inputs is None:
        raise ValueError("describe needs an input image")
    text = suggest_prompts(inputs.base)
    return ImageResult(
        images=[],
        usage=text_usage(request.prompt, request.images, text),
        quality=request.quality,
        text=text,
    )


def _transparent(request: ImageRequest) -> bool:
    if request.operation in KEEPS_ALPHA:
        return request.output_format != "jpeg"
    return request.background == "transparent"


def _result(request: ImageRequest, images: list[GeneratedImage]) -> ImageResult:
    return ImageResult(
        images=images,
        usage=estimate_usage(
            request.prompt,
            request.width,
            request.height,
            request.quality,
            request.n,
            request.images if request.operation != "generate" else (),
        ),
        background="transparent" if _transparent(request) else "opaque",
        quality=request.quality,
        text=describe(request),
    )
