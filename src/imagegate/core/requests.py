"""The one domain request and the one domain result that every front end and adapter speaks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pybase64

from imagegate.imaging.image import MIME_TYPES, InputFormat, InputImage

__all__ = [
    "MIME_TYPES",
    "OPERATION_FEATURES",
    "Background",
    "GeneratedImage",
    "ImageRequest",
    "ImageResult",
    "InputFormat",
    "InputImage",
    "Operation",
    "OutputFormat",
    "PartialImage",
    "StreamEvent",
    "Usage",
]

Operation = Literal[
    "generate",
    "edit",
    "variation",
    "upscale",
    "outpaint",
    "erase",
    "remove_background",
    "replace_background",
    "enhance",
    "blend",
    "describe",
]
OutputFormat = Literal["png", "jpeg", "webp", "svg"]
Background = Literal["transparent", "opaque", "auto"]


OPERATION_FEATURES: dict[str, str] = {
    "generate": "text-to-image",
    "edit": "image-edit",
    "variation": "image-variation",
    "upscale": "upscale",
    "enhance": "upscale",
    "outpaint": "outpainting",
    "erase": "inpainting",
    "remove_background": "background-removal",
    "replace_background": "background-removal",
    "blend": "blend",
    "describe": "image-to-text",
}
"""The catalogue feature a model must declare to be asked for each operation."""


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """What a client asked for, after validation against the model's capabilities.

    Operations (inputs in ``images``; ``width``×``height`` is always the output size):

    - ``generate``: text only (``output_format="svg"`` asks a ``vector`` model for an SVG).
    - ``edit``: ``prompt`` applied to ``images`` (the rest are references), only inside
      ``mask`` when one is given.
    - ``variation``: new images like ``images[0]``; ``strength`` 0–1 (subtle … strong).
    - ``upscale``: ``images[0]`` enlarged by ``scale`` (2 or 4); ``strength`` > 0 adds detail
      ("creative"), 0 keeps it faithful ("subtle").
    - ``outpaint``: ``images[0]`` placed on a larger canvas, ``padding`` (left, top, right,
      bottom, in input pixels) filled from ``prompt`` and the surroundings (zoom out, pan,
      expand).
    - ``erase``: the ``mask`` area filled from its surroundings.
    - ``remove_background``: the subject kept, everything else alpha 0.
    - ``replace_background``: the subject kept, a new background drawn from ``prompt``.
    - ``enhance``: sharper, more contrast, same size.
    - ``blend``: 2–5 ``images`` combined into one.
    - ``describe``: no image out; the result's ``text`` holds four numbered prompt suggestions.

    ``width``/``height`` are resolved (``auto`` already replaced by the model's default size);
    ``quality`` and ``background`` are the model's own values. ``extras`` holds model-specific
    parameters the model declares (for example ``seed``).
    """

    operation: Operation
    model: str
    prompt: str
    n: int
    width: int
    height: int
    quality: str
    output_format: OutputFormat
    background: Background
    output_compression: int | None = None
    style: str | None = None
    moderation: str | None = None
    user: str | None = None
    partial_images: int = 0
    extras: dict[str, object] = field(default_factory=dict)
    images: tuple[InputImage, ...] = ()
    """Inputs of an edit (several are references) or the one image of a variation."""
    mask: InputImage | None = None
    """PNG with alpha, the size of ``images[0]``: alpha 0 marks the area to change."""
    input_fidelity: str | None = None
    """``high`` keeps more of the input images; ``low`` (or None) lets the prompt dominate."""
    scale: float | None = None
    padding: tuple[int, int, int, int] | None = None
    strength: float | None = None

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage in the gpt-image shape."""

    input_text_tokens: int = 0
    input_image_tokens: int = 0
    output_image_tokens: int = 0
    output_text_tokens: int = 0

    @property
    def input_tokens(self) -> int:
        return self.input_text_tokens + self.input_image_tokens

    @property
    def output_tokens(self) -> int:
        return self.output_image_tokens + self.output_text_tokens

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    """One encoded image as the client will receive it."""

    data: bytes
    output_format: OutputFormat
    width: int
    height: int
    revised_prompt: str | None = None
    b64: str | memoryview | None = field(default=None, compare=False, repr=False)
    """``data`` in base64 when an upstream sent it so, passed on instead of encoded again
    (a view of the upstream's body when it was lifted out before parsing); whatever changes
    ``data`` must drop it."""

    @property
    def mime_type(self) -> str:
        return MIME_TYPES[self.output_format]

    def base64(self) -> str:
        if isinstance(self.b64, str):
            return self.b64
        if self.b64 is not None:
            return str(self.b64, "ascii")
        return pybase64.b64encode(self.data).decode("ascii")

    def base64_ascii(self) -> bytes | memoryview:
        """:meth:`base64` as ASCII bytes, without a copy when the upstream's text is kept."""
        if isinstance(self.b64, str):
            return self.b64.encode("ascii")
        if self.b64 is not None:
            return self.b64
        return pybase64.b64encode(self.data)


@dataclass(frozen=True, slots=True)
class ImageResult:
    """What an upstream delivered for one request."""

    images: list[GeneratedImage]
    usage: Usage | None = None
    background: Background = "opaque"
    quality: str | None = None
    text: str | None = None
    """What the model said alongside the images (Gemini-style models answer with text too)."""


@dataclass(frozen=True, slots=True)
class PartialImage:
    """A streamed preview of image ``image_index``; ``partial_index`` counts from 0."""

    image: GeneratedImage
    image_index: int
    partial_index: int


StreamEvent = PartialImage | ImageResult
"""A stream yields partial images and ends with exactly one :class:`ImageResult`."""
