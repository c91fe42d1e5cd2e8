"""The OpenAI Images dialect, host-independent: request bodies, response models, SSE events and
the error envelope. Shared by every host that speaks it (OpenAI, Azure, xAI, relays, another
imagegate); :mod:`imagegate.providers.openai` binds it to a host.

Boundary: domain request in, JSON/multipart payload out; upstream bytes in, domain result or
domain error out. No HTTP and no host knowledge here.

Which fields each model family takes (the OpenAI API reference, ``images.generate``, ``edit``
and ``create_variation``): the gpt-image family takes ``quality`` (auto/low/medium/high),
``background``, ``moderation``, ``output_format``, ``output_compression``, ``partial_images``,
``stream`` and (edits) ``input_fidelity``, and always answers ``b64_json``; dall-e-3 takes
``quality`` (standard/hd), ``style`` and ``response_format``; dall-e-2 takes ``response_format``.
Fields a family does not take are never sent: the gateway converts formats itself, and what it
cannot honour is reported by :func:`dropped_params`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict

from imagegate.core.requests import GeneratedImage, ImageRequest, ImageResult, Usage
from imagegate.errors import ContentPolicyViolation, ImagegateError, InvalidRequest

Family = Literal["gpt-image", "dall-e-3", "dall-e-2"]

FAMILY_PARAMS: Final[dict[str, frozenset[str]]] = {
    "gpt-image": frozenset(
        {
            "size",
            "quality",
            "background",
            "moderation",
            "output_format",
            "output_compression",
            "input_fidelity",
            "partial_images",
            "stream",
            "user",
        }
    ),
    "dall-e-3": frozenset({"size", "quality", "style", "response_format", "user"}),
    "dall-e-2": frozenset({"size", "response_format", "user"}),
}
_EDIT_ONLY: Final = frozenset({"input_fidelity"})
_SAFETY_CODES: Final = frozenset(
    {
        "content_policy_violation",
        "moderation_blocked",
        "content_filter",
        "contentfilter",
        "responsibleaipolicyviolation",
    }
)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TokenDetails(_Lenient):
    image_tokens: int = 0
    text_tokens: int = 0


class ImagesUsage(_Lenient):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_tokens_details: TokenDetails | None = None
    output_tokens_details: TokenDetails | None = None

    def domain(self) -> Usage:
        inp, out = self.input_tokens_details, self.output_tokens_details
        return Usage(
            input_text_tokens=inp.text_tokens if inp else self.input_tokens,
            input_image_tokens=inp.image_tokens if inp else 0,
            output_image_tokens=out.image_tokens if out else self.output_tokens,
            output_text_tokens=out.text_tokens if out else 0,
        )


class ImageData(_Lenient):
    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str | None = None


class ImagesResponse(_Lenient):
    """``ImagesResponse`` of the OpenAI API (``data`` may be null or missing)."""

    created: int | None = None
    data: list[ImageData] | None = None
    background: str | None = None
    output_format: str | None = None
    quality: str | None = None
    size: str | None = None
    usage: ImagesUsage | None = None


class StreamEvent(_Lenient):
    """One SSE ``data:`` payload of a streamed generation or edit."""

    type: str
    b64_json: str | None = None
    partial_image_index: int | None = None
    background: str | None = None
    quality: str | None = None
    usage: ImagesUsage | None = None
    error: ErrorBody | None = None


class ErrorBody(_Lenient):
    message: str | None = None
    type: str | None = None
    param: str | None = None
    code: str | int | None = None
    inner_error: dict[str, Any] | None = None


class ErrorEnvelope(_Lenient):
    error: ErrorBody


StreamEvent.model_rebuild()


def family_of(upstream_model: str, configured: str | None = None) -> Family:
    """The model family: the deployment's ``family`` option, else read from the model name."""
    if configured in FAMILY_PARAMS:
        return configured  # type: ignore[return-value]
    if upstream_model.startswith("dall-e-2"):
        return "dall-e-2"
    if upstream_model.startswith("dall-e-3"):
        return "dall-e-3"
    return "gpt-image"


def _set_params(request: ImageRequest) -> dict[str, object]:
    """The optional client parameters a request carries, by their OpenAI names."""
    return {
        "size": request.size,
        "quality": request.quality,
        "background": request.background if request.background != "auto" else None,
        "moderation": request.moderation,
        "output_format": request.output_format,
        "output_compression": request.output_compression,
        "style": request.style,
        "user": request.user,
        "input_fidelity": request.input_fidelity if request.operation == "edit" else None,
    }


def dropped_params(request: ImageRequest, accepted: frozenset[str]) -> list[str]:
    """What the client set that this host cannot take and the gateway cannot honour itself.

    Output format and compression are not listed: the gateway converts the images it gets."""
    honoured_here = {"output_format", "output_compression", "quality", "background", "user"}
    return sorted(
        name
        for name, value in _set_params(request).items()
        if value is not None and name not in accepted and name not in honoured_here
    )


def generation_body(
    request: ImageRequest,
    model: str,
    accepted: frozenset[str],
    *,
    stream: bool = False,
    b64: bool = True,
) -> dict[str, Any]:
    """The JSON body of ``POST /images/generations``."""
    body: dict[str, Any] = {"model": model, "prompt": request.prompt, "n": request.n}
    body.update(_optional(request, accepted))
    if b64 and "response_format" in accepted:
        body["response_format"] = "b64_json"
    if stream:
        body["stream"] = True
        body["partial_images"] = request.partial_images
    body.update(request.extras)
    return body


def _optional(request: ImageRequest, accepted: frozenset[str]) -> dict[str, Any]:
    fields = {
        name: value
        for name, value in _set_params(request).items()
        if value is not None and name in accepted
    }
    if request.operation != "edit":
        for name in _EDIT_ONLY:
            fields.pop(name, None)
    return fields


def edit_form(
    request: ImageRequest,
    model: str,
    accepted: frozenset[str],
    *,
    stream: bool = False,
    b64: bool = True,
) -> tuple[dict[str, str], list[tuple[str, tuple[str, bytes, str]]]]:
    """The multipart fields and files of ``POST /images/edits`` or ``/images/variations``.

    One image goes as ``image``, several as ``image[]`` (as the official SDK sends them)."""
    variation = request.operation == "variation"
    fields: dict[str, str] = {"model": model, "n": str(request.n)}
    if "size" in accepted:
        fields["size"] = request.size
    if not variation:
        fields["prompt"] = request.prompt
        fields.update({k: _form_text(v) for k, v in _optional(request, accepted).items()})
        fields.pop("moderation", None)  # not an edit parameter
    elif request.user is not None:
        fields["user"] = request.user
    if b64 and "response_format" in accepted:
        fields["response_format"] = "b64_json"
    if stream:
        fields["stream"] = "true"
        fields["partial_images"] = str(request.partial_images)
    fields.update({k: _form_text(v) for k, v in request.extras.items()})
    name = "image" if len(request.images) == 1 or variation else "image[]"
    images = request.images[:1] if variation else request.images
    files = [
        (name, (f"image_{i}.{image.format}", image.data, image.mime_type))
        for i, image in enumerate(images)
    ]
    if request.mask is not None and not variation:
        files.append(("mask", ("mask.png", request.mask.data, "image/png")))
    return fields, files


def _form_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def images_of(response: ImagesResponse) -> Iterable[ImageData]:
    return response.data or ()


def result_of(
    response: ImagesResponse, images: list[GeneratedImage], request: ImageRequest
) -> ImageResult:
    transparent = response.background == "transparent" or (
        response.background is None and request.background == "transparent"
    )
    return ImageResult(
        images=images,
        usage=response.usage.domain() if response.usage else None,
        background="transparent" if transparent else "opaque",
        quality=response.quality,
    )


def error_of(envelope: ErrorEnvelope | None) -> tuple[str, str | None, str | None]:
    """(message, code, param) of an OpenAI error envelope."""
    if envelope is None:
        return "", None, None
    error = envelope.error
    code = str(error.code) if error.code is not None else error.type
    inner = error.inner_error or {}
    if isinstance(inner.get("code"), str):
        code = code if code and code.lower() in _SAFETY_CODES else inner["code"]
    return error.message or "", code, error.param


def client_error(
    status: int, message: str, code: str | None, param: str | None
) -> ImagegateError | None:
    """The error to pass on as the client's own (a safety block, a bad parameter), if it is."""
    if code is not None and code.lower() in _SAFETY_CODES:
        return ContentPolicyViolation(
            message or "the upstream's safety system refused this request",
            stage="prompt",
            reason=code,
        )
    if status == 400 and param:
        return InvalidRequest(message, param=param, code=code)
    return None
