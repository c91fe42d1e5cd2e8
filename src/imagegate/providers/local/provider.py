"""The ``local`` provider: serves model ``sketch`` from :func:`~.draw.render`, no network."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from imagegate.core.requests import (
    GeneratedImage,
    ImageRequest,
    ImageResult,
    PartialImage,
    StreamEvent,
)
from imagegate.imaging.encode import encode_image
from imagegate.providers.base import ProviderContext
from imagegate.providers.local.draw import render
from imagegate.providers.local.usage import estimate_usage

__all__ = ["LocalProvider"]


@dataclass(frozen=True, slots=True)
class _Encoded:
    final: GeneratedImage
    partials: list[GeneratedImage]


class LocalProvider:
    """A deterministic procedural renderer behind the :class:`ImageProvider` interface.

    Rendering and encoding are CPU work and always run in a worker thread
    (:func:`asyncio.to_thread`), never on the event loop. ``extras["seed"]`` (default 0)
    and the image's index within the request select the picture.
    """

    name = "local"

    def has_credentials(self, credentials: Mapping[str, str]) -> bool:
        """Always true: the renderer needs no credentials."""
        return True

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ImageResult:
        """Render and encode all ``request.n`` images concurrently in worker threads."""
        encoded = await asyncio.gather(
            *(asyncio.to_thread(_render_one, request, index, 0) for index in range(request.n))
        )
        return _result(request, [item.final for item in encoded])

    async def stream(
        self, request: ImageRequest, ctx: ProviderContext
    ) -> AsyncIterator[StreamEvent]:
        """Yield ``request.partial_images`` partials per image, then one :class:`ImageResult`."""
        finals = []
        for index in range(request.n):
            encoded = await asyncio.to_thread(_render_one, request, index, request.partial_images)
            for partial_index, partial in enumerate(encoded.partials):
                yield PartialImage(image=partial, image_index=index, partial_index=partial_index)
            finals.append(encoded.final)
        yield _result(request, finals)


def _seed(request: ImageRequest) -> int:
    value = request.extras.get("seed", 0)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"seed must be an integer, not {value!r}")
    return int(value)


def _render_one(request: ImageRequest, index: int, stages: int) -> _Encoded:
    rendered = render(
        request.prompt,
        request.width,
        request.height,
        seed=_seed(request),
        variant=index,
        transparent=request.background == "transparent",
        stages=stages,
    )

    def encode(image_bytes: bytes) -> GeneratedImage:
        return GeneratedImage(image_bytes, request.output_format, request.width, request.height)

    fmt, compression = request.output_format, request.output_compression
    return _Encoded(
        final=encode(encode_image(rendered.final, fmt, compression)),
        partials=[encode(encode_image(stage, fmt, compression)) for stage in rendered.stages],
    )


def _result(request: ImageRequest, images: list[GeneratedImage]) -> ImageResult:
    return ImageResult(
        images=images,
        usage=estimate_usage(
            request.prompt, request.width, request.height, request.quality, request.n
        ),
        background="transparent" if request.background == "transparent" else "opaque",
        quality=request.quality,
    )
