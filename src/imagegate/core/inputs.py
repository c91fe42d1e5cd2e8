"""Load a request's input images (uploads, data URIs, URLs, file ids) through the safe pipeline,
with the model's limits, and check what edits require of them (mask rules, square inputs)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from imagegate.core.catalog import InputSpec
from imagegate.core.files import FileService
from imagegate.core.params import FileRef, ImageSource
from imagegate.core.requests import InputImage
from imagegate.errors import InvalidRequest, NotFound
from imagegate.imaging.fetch import ImageFetcher
from imagegate.imaging.limits import ImageLimits
from imagegate.imaging.sources import load_image


class InputLoader:
    """Turns :class:`ImageSource` values into checked :class:`InputImage` objects."""

    def __init__(self, files: FileService, fetcher: ImageFetcher) -> None:
        self._files = files
        self._fetcher = fetcher

    async def load(
        self, source: ImageSource, *, owner_key_id: str, limits: ImageLimits
    ) -> InputImage:
        value = source.value
        if isinstance(value, FileRef):
            try:
                value = await self._files.read(value.file_id, owner_key_id)
            except NotFound as exc:
                raise NotFound(exc.message, param=source.param, code=exc.code) from None
        return await load_image(value, param=source.param, limits=limits, fetcher=self._fetcher)

    async def load_inputs(
        self,
        spec: InputSpec,
        images: Sequence[ImageSource],
        mask: ImageSource | None,
        *,
        owner_key_id: str,
    ) -> tuple[tuple[InputImage, ...], InputImage | None]:
        """Every image (concurrently) and the mask, checked against ``spec``."""
        limits = ImageLimits(max_bytes=spec.max_image_bytes, formats=frozenset(spec.formats))
        sources = [*images, *([mask] if mask else [])]
        loaded = await asyncio.gather(
            *(self.load(source, owner_key_id=owner_key_id, limits=limits) for source in sources)
        )
        inputs = tuple(loaded[: len(images)])
        if spec.square:
            for source, image in zip(images, inputs, strict=True):
                if image.width != image.height:
                    raise InvalidRequest(
                        f"{source.param} must be square for this model; "
                        f"it is {image.width}x{image.height}",
                        param=source.param,
                    )
        loaded_mask = loaded[-1] if mask else None
        if mask and loaded_mask:
            check_mask(loaded_mask, inputs[0], param=mask.param)
        return inputs, loaded_mask


def check_mask(mask: InputImage, first: InputImage, *, param: str) -> None:
    """A mask is a PNG with an alpha channel, the size of the first image."""
    if mask.format != "png" or not mask.has_alpha:
        raise InvalidRequest(
            "mask must be a PNG with an alpha channel (alpha 0 marks the area to edit)",
            param=param,
        )
    if (mask.width, mask.height) != (first.width, first.height):
        raise InvalidRequest(
            f"mask is {mask.width}x{mask.height} but the image is {first.width}x{first.height}; "
            "they must be the same size",
            param=param,
        )
