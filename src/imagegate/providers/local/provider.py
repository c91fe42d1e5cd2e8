"""The ``local`` provider: serves model ``sketch`` with no network.

``generate`` draws the prompt (:func:`~.draw.render`); ``edit`` changes ``images[0]``
(:func:`~.edit.render_edit`); ``variation`` repaints it (:func:`~.variation.render_variation`).
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
from imagegate.imaging.encode import encode_image
from imagegate.providers.base import ProviderContext
from imagegate.providers.local.draw import Rendered, render
from imagegate.providers.local.edit import render_edit
from imagegate.providers.local.inputs import Inputs, input_seed, prepare
from imagegate.providers.local.usage import estimate_usage
from imagegate.providers.local.variation import render_variation

__all__ = ["LocalProvider"]


@dataclass(frozen=True, slots=True)
class _Encoded:
    final: GeneratedImage
    partials: list[GeneratedImage]


class LocalProvider:
    """A deterministic procedural renderer behind the :class:`ImageProvider` interface.

    Decoding inputs, rendering and encoding are CPU work and always run in worker threads
    (:func:`asyncio.to_thread`), never on the event loop. ``extras["seed"]`` (default 0),
    the image's index within the request and, for edits and variations, the input images
    select the picture.
    """

    name = "local"

    def has_credentials(self, credentials: Mapping[str, str]) -> bool:
        """Always true: the renderer needs no credentials."""
        return True

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ImageResult:
        """Render and encode all ``request.n`` images concurrently in worker threads."""
        inputs = await _prepare(request)
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
        """Yield ``request.partial_images`` partials per image, then one :class:`ImageResult`."""
        inputs = await _prepare(request)
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
    return await asyncio.to_thread(prepare, request)


def _draw(request: ImageRequest, inputs: Inputs | None, index: int, stages: int) -> Rendered:
    seed = _seed(request)
    if inputs is None:
        return render(
            request.prompt,
            request.width,
            request.height,
            seed=seed,
            variant=index,
            transparent=request.background == "transparent",
            stages=stages,
        )
    rng = random.Random(input_seed(request, inputs.digest, seed, index))
    if request.operation == "variation":
        return render_variation(inputs.base, rng, stages)
    return render_edit(inputs, request.prompt, request.input_fidelity, rng, stages)


def _render_one(request: ImageRequest, inputs: Inputs | None, index: int, stages: int) -> _Encoded:
    rendered = _draw(request, inputs, index, stages)
    opaque = request.background != "transparent"

    def encode(image: Image.Image) -> GeneratedImage:
        if opaque and image.mode == "RGBA":  # edits work in RGBA, already flattened onto white
            image = image.convert("RGB")
        data = encode_image(image, request.output_format, request.output_compression)
        return GeneratedImage(data, request.output_format, request.width, request.height)

    return _Encoded(
        final=encode(rendered.final), partials=[encode(stage) for stage in rendered.stages]
    )


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
        background="transparent" if request.background == "transparent" else "opaque",
        quality=request.quality,
    )
