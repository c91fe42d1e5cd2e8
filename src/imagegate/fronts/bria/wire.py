"""Bria request bodies, the editing actions and what each one means in the domain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from imagegate.core.requests import Operation
from imagegate.fronts.common.tasks import MAX_SEED

MAX_IMAGE_BYTES = 12 * 1024 * 1024
IMAGE_FORMATS = frozenset({"png", "jpeg", "webp"})
MAX_CANVAS_SIDE = 5000
Ratio = Literal["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9"]


class _BriaFields(BaseModel):
    """Fields every Bria route takes; unknown fields are passed on as model-specific ones."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: str | None = Field(default=None, description="imagegate extension: any image model")
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    sync: bool | None = Field(default=None, description="accepted and ignored")
    num_results: int = Field(default=1, ge=1, le=4)

    def model_params(self, consumed: frozenset[str]) -> dict[str, Any]:
        """Optional fields this route does not translate itself: model-specific parameters
        (validated against the model's declared extras, or dropped and reported)."""
        common = {"model", "seed", "sync", "num_results", "prompt", "image", "mask"}
        return {
            name: value
            for name, value in self.model_dump(exclude_none=True).items()
            if name not in common | consumed
        }


class TextToImageBody(_BriaFields):
    """``POST /bria/text-to-image``."""

    prompt: str
    aspect_ratio: Ratio | None = None
    negative_prompt: str | None = None
    steps_num: int | None = Field(default=None, ge=1, le=50)
    text_guidance_scale: float | None = Field(default=None, ge=1, le=10)
    medium: Literal["photography", "art"] | None = None
    prompt_enhancement: bool | None = None
    enhance_image: bool | None = None
    content_moderation: bool | None = None
    ip_signal: bool | None = None


class TextToVectorBody(TextToImageBody):
    """``POST /bria/text-to-vector``."""

    guidance_method_2_scale: float | None = Field(default=None, ge=1, le=10)


class EditBody(_BriaFields):
    """``POST /bria/image/edit/{action}``; ``aspect_ratio`` … ``desired_increase`` belong to
    ``expand`` and ``increase_resolution``."""

    image: str
    mask: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    aspect_ratio: str | float | None = None
    canvas_size: tuple[int, int] | None = None
    original_image_size: tuple[int, int] | None = None
    original_image_location: tuple[int, int] | None = None
    desired_increase: Literal[2, 4] | None = None


EXPAND_FIELDS = frozenset(
    {"aspect_ratio", "canvas_size", "original_image_size", "original_image_location"}
)
ACTION_FIELDS = EXPAND_FIELDS | {"desired_increase"}


@dataclass(frozen=True, slots=True)
class Action:
    """What a Bria editing action is in the domain and which fields it uses."""

    operation: Operation
    mask: Literal["required", "optional", "unused"] = "unused"
    prompt: Literal["required", "optional", "unused"] = "unused"
    fields: frozenset[str] = frozenset()


ACTIONS: dict[str, Action] = {
    "erase": Action("erase", mask="required"),
    "gen_fill": Action("edit", mask="required", prompt="required"),
    "expand": Action("outpaint", mask="optional", prompt="optional", fields=EXPAND_FIELDS),
    "enhance": Action("enhance"),
    "increase_resolution": Action("upscale", fields=frozenset({"desired_increase"})),
    "replace_background": Action("replace_background", prompt="required"),
    "remove_background": Action("remove_background"),
}
