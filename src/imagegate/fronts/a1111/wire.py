"""The A1111 txt2img / img2img bodies and their translation to the common parameters.

A1111 clients send many fields this gateway has no use for (``restore_faces``, ``enable_hr``,
``save_images``, SillyTavern's own ``url`` and ``auth``…); they are accepted and left alone, as
A1111 itself does. Fields that ask for something a model cannot do are reported in
``x-imagegate-ignored-params``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MIN_SIDE = 64
MAX_SIDE = 2048
"""A1111's own slider limits for width and height."""
MAX_BATCH = 10
NULLED = ("init_images", "mask")
"""Inline images are echoed in ``parameters`` as null, as A1111 does."""


class Txt2ImgBody(BaseModel):
    """``POST /sdapi/v1/txt2img``."""

    model_config = ConfigDict(extra="allow")

    prompt: str = ""
    negative_prompt: str | None = None
    width: int = Field(default=512, ge=MIN_SIDE, le=MAX_SIDE)
    height: int = Field(default=512, ge=MIN_SIDE, le=MAX_SIDE)
    steps: int | None = Field(default=None, ge=1, le=150)
    cfg_scale: float | None = Field(default=None, ge=0, le=30)
    seed: int | None = Field(default=-1, ge=-1, le=4294967295)
    batch_size: int = Field(default=1, ge=1, le=MAX_BATCH)
    n_iter: int = Field(default=1, ge=1, le=MAX_BATCH)
    sampler_name: str | None = None
    scheduler: str | None = None
    override_settings: dict[str, Any] | None = None

    def checkpoint(self) -> str | None:
        """``override_settings.sd_model_checkpoint``, which beats the key's stored option."""
        value = (self.override_settings or {}).get("sd_model_checkpoint")
        return value if isinstance(value, str) and value else None

    def echo(self) -> dict[str, Any]:
        """``parameters`` of the answer: the request as received, without inline images."""
        received = self.model_dump(exclude_unset=True)
        received.pop("auth", None)  # SillyTavern sends its Basic credentials in the body
        return {**received, **{name: None for name in NULLED if name in received}}


class Img2ImgBody(Txt2ImgBody):
    """``POST /sdapi/v1/img2img``: the same plus the input image and an optional mask."""

    init_images: list[str] = Field(min_length=1, max_length=16)
    mask: str | None = None
    denoising_strength: float | None = Field(default=None, ge=0, le=1)
    inpainting_fill: int | None = Field(default=None, ge=0, le=3)
    mask_blur: int | None = Field(default=None, ge=0, le=64)
    inpaint_full_res: bool | None = None


MODEL_PARAMS = {"steps": "steps", "cfg_scale": "guidance", "negative_prompt": "negative_prompt"}
"""A1111 fields a model may declare as its own parameters (A1111 name → catalogue name)."""
SAMPLING_FIELDS = ("sampler_name", "scheduler")
"""Meaningful to A1111's samplers only; reported as ignored when a client sets them."""
EDIT_ONLY = ("inpainting_fill", "mask_blur", "inpaint_full_res")


def model_extras(body: Txt2ImgBody, declared: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The model parameters the model takes, and the A1111 fields it does not."""
    extras: dict[str, Any] = {}
    ignored: list[str] = []
    for wire, name in MODEL_PARAMS.items():
        value = getattr(body, wire)
        if value is None or value == "":
            continue
        if name in declared:
            extras[name] = value
        else:
            ignored.append(wire)
    ignored.extend(name for name in SAMPLING_FIELDS if getattr(body, name))
    if isinstance(body, Img2ImgBody):
        ignored.extend(name for name in EDIT_ONLY if getattr(body, name) is not None)
    return extras, ignored
