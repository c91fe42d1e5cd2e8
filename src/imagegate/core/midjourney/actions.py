"""What each button does, as a domain ask on the picture it starts from.

- U1–U4: that quadrant of the grid, ``upscale`` ×2, strength 0 (faithful) → one picture.
- V1–V4: that quadrant, ``variation`` strength 0.8 → a grid.
- Upscale (Subtle) / (Creative): the picture, ``upscale`` ×2, strength 0 / 0.6 → one picture.
- Vary (Subtle) / (Strong): the picture, ``variation`` strength 0.2 / 0.8 → a grid.
- Vary (Region): the picture, ``edit`` inside the modal's mask with the modal's prompt → a grid.
- Zoom Out 2× / 1.5× / Custom Zoom N: ``outpaint`` with padding (N − 1)/2 of the picture's
  width and height on every side, at the picture's size (the picture shrinks into the middle
  of a canvas N times as large) → a grid.
- Pan ⬅️➡️⬆️⬇️: ``outpaint`` with half the picture's width (height) added on that side; the
  output is the declared size closest to the larger canvas → a grid.

Output sizes are the model's declared sizes closest to the wanted one (``core.params.fit_size``),
so an upscale is exactly ×2 when the model declares that size.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO

from imagegate.core.catalog import GenerateSpec
from imagegate.core.midjourney import pixels
from imagegate.core.midjourney.buttons import Press
from imagegate.core.midjourney.plans import Mode
from imagegate.core.params import GenerationParams, ImageSource, fit_size

ACTIONS: dict[str, str] = {
    "upsample": "UPSCALE",
    "upscale_subtle": "UPSCALE",
    "upscale_creative": "UPSCALE",
    "variation": "VARIATION",
    "vary_subtle": "VARIATION",
    "vary_strong": "VARIATION",
    "reroll": "REROLL",
    "inpaint": "INPAINT",
    "zoom": "ZOOM",
    "custom_zoom": "ZOOM",
    "pan_left": "PAN",
    "pan_right": "PAN",
    "pan_up": "PAN",
    "pan_down": "PAN",
    "describe": "IMAGINE",
    "shorten": "IMAGINE",
}
"""Button kind → the action of the task it makes."""
MODAL_KINDS = frozenset({"inpaint", "custom_zoom"})
"""Buttons whose task waits in ``MODAL`` for a mask or a prompt."""
REMIX_KINDS = frozenset(
    {"variation", "vary_subtle", "vary_strong", "reroll", "zoom"}
    | {f"pan_{side}" for side in ("left", "right", "up", "down")}
)
"""Buttons that wait for a new prompt when the client asks for remix (``enableRemix``)."""
UPSCALE_STRENGTH = {"upsample": 0.0, "upscale_subtle": 0.0, "upscale_creative": 0.6}
VARIATION_STRENGTH = {"variation": 0.8, "vary_subtle": 0.2, "vary_strong": 0.8}


@dataclass(frozen=True, slots=True)
class Picture:
    """The picture a button works on (PNG bytes)."""

    data: bytes
    width: int
    height: int


def picture_for(press: Press, image: bytes, *, grid: bool) -> Picture:
    """The parent's image, or quadrant ``press.index`` of it for U1–U4 / V1–V4 (CPU work)."""
    if not (grid and press.kind in ("upsample", "variation")):
        width, height = pixels.size_of(image)
        return Picture(image, width, height)
    quadrant = pixels.crop_quadrant(pixels.decode(image), press.index)
    buffer = BytesIO()
    quadrant.save(buffer, "PNG", compress_level=1)
    return Picture(buffer.getvalue(), quadrant.width, quadrant.height)


def action_params(
    press: Press,
    picture: Picture,
    *,
    prompt: str,
    spec: GenerateSpec,
    model: str,
    mask: bytes | None = None,
    zoom: float | None = None,
) -> tuple[Mode, GenerationParams]:
    """The domain ask for ``press`` on ``picture``, and whether it makes a grid or one picture."""
    kind, width, height = press.kind, picture.width, picture.height
    params = GenerationParams(
        prompt=prompt,
        model=model,
        images=[ImageSource("taskId", picture.data)],
        size=_fitted(spec, width, height),
    )
    if kind in UPSCALE_STRENGTH:
        params.operation, params.scale = "upscale", 2
        params.strength = UPSCALE_STRENGTH[kind]
        params.size = _fitted(spec, width * 2, height * 2)
        return "single", params
    if kind in VARIATION_STRENGTH:
        params.operation, params.strength = "variation", VARIATION_STRENGTH[kind]
    elif kind == "inpaint":
        params.operation = "edit"
        params.mask = ImageSource("maskBase64", mask or b"")
    elif kind in ("zoom", "custom_zoom"):
        factor = zoom if zoom is not None else 100 / press.index
        pad_x, pad_y = round(width * (factor - 1) / 2), round(height * (factor - 1) / 2)
        params.operation, params.padding = "outpaint", (pad_x, pad_y, pad_x, pad_y)
    elif kind.startswith("pan_"):
        params.operation, params.padding = "outpaint", _pan(kind, width, height)
        left, top, right, bottom = params.padding
        params.size = _fitted(spec, width + left + right, height + top + bottom)
    else:
        raise ValueError(f"no domain ask for button {kind!r}")
    return "grid", params


def _pan(kind: str, width: int, height: int) -> tuple[int, int, int, int]:
    side = kind.removeprefix("pan_")
    return {
        "left": (width // 2, 0, 0, 0),
        "right": (0, 0, width // 2, 0),
        "up": (0, height // 2, 0, 0),
        "down": (0, 0, 0, height // 2),
    }[side]


def _fitted(spec: GenerateSpec, width: int, height: int) -> str:
    fitted_w, fitted_h = fit_size(spec, width, height)
    return f"{fitted_w}x{fitted_h}"
