"""What a Midjourney task runs: a :class:`Plan` of validated domain requests, kept in the task's
JSON (input images by content in the blob store, as ``core.task_images`` keeps them).

Modes:

- ``grid``: the requests make four pictures (one request with ``n=4`` when the model takes
  it, else four), composed into one 2×2 grid, the task's image.
- ``single``: one request, one picture, the task's image.
- ``describe``: one ``describe`` request; its text (four numbered prompts) is the result.
- ``text``: nothing to run; ``text`` was worked out at submit time (shorten).

``--chaos`` makes the four grid pictures differ more: at 0 they share the prompt and differ
only by seed; above 0 each of pictures 2–4 gets, with probability chaos/100 per word, words
dropped from its prompt and subjects or colours added, drawn from the seed (so rerunning the
same prompt and seed gives the same grid).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import Any, Literal

from imagegate.core.assets import AssetService
from imagegate.core.catalog import GenerateSpec
from imagegate.core.midjourney.flags import MAX_SEED, PromptFlags
from imagegate.core.params import GenerationParams, ImageSource, fit_size
from imagegate.core.requests import ImageRequest
from imagegate.core.task_images import dump_request, load_request

Mode = Literal["grid", "single", "describe", "text"]
GRID_PICTURES = 4
BASE_SIDE = 1024
"""``--q 1`` renders pictures of about this many pixels a side, before fitting to the model."""

_CHAOS_WORDS = (
    "sun", "moon", "stars", "clouds", "mountains", "sea", "trees", "flowers", "house",
    "circle", "square", "triangle", "heart", "red", "blue", "green", "yellow", "purple",
    "orange", "pink", "night", "sunset",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Plan:
    mode: Mode
    requests: tuple[ImageRequest, ...] = ()
    tile: bool = False
    text: str | None = None

    @property
    def seed(self) -> int | None:
        """The seed of the first picture, when the model takes seeds."""
        if not self.requests:
            return None
        seed = self.requests[0].extras.get("seed")
        return seed if isinstance(seed, int) else None


async def dump_plan(plan: Plan, assets: AssetService) -> dict[str, Any]:
    """The plan as JSON for the task's ``request`` column."""
    return {
        "mode": plan.mode,
        "requests": [await dump_request(request, assets) for request in plan.requests],
        "tile": plan.tile,
        "text": plan.text,
    }


async def load_plan(data: dict[str, Any], assets: AssetService) -> Plan:
    return Plan(
        mode=data["mode"],
        requests=tuple([await load_request(item, assets) for item in data["requests"]]),
        tile=bool(data.get("tile")),
        text=data.get("text"),
    )


def grid_n(spec: GenerateSpec) -> int:
    """``n`` for the request behind a grid: all four pictures at once when the model can."""
    return GRID_PICTURES if spec.max_n >= GRID_PICTURES else 1


def grid_requests(
    request: ImageRequest, seed: int | None, chaos: int = 0
) -> tuple[ImageRequest, ...]:
    """Requests for the four pictures of a grid, from one request validated with
    ``n = grid_n(spec)``: itself when it makes all four, else four of one picture each."""
    if seed is not None:
        request = replace(request, extras={**request.extras, "seed": seed})
    if chaos == 0 and request.n >= GRID_PICTURES:
        return (request,)
    rng = random.Random(f"{seed}:{chaos}:{request.prompt}")
    return tuple(
        replace(
            request,
            n=1,
            prompt=_chaotic(request.prompt, chaos, rng) if i else request.prompt,
            extras=reseeded(request.extras, seed, i),
        )
        for i in range(GRID_PICTURES)
    )


def reseeded(extras: dict[str, object], seed: int | None, index: int) -> dict[str, object]:
    """``extras`` with the seed of picture ``index`` (``seed + index``), when there is one."""
    if seed is None:
        return extras
    return {**extras, "seed": (seed + index) % (MAX_SEED + 1)}


def _chaotic(prompt: str, chaos: int, rng: random.Random) -> str:
    """``prompt`` with words dropped and added, each with probability ``chaos``/100."""
    share = chaos / 100
    kept = [word for word in prompt.split() if rng.random() >= share / 2]
    added = [rng.choice(_CHAOS_WORDS) for _ in range(round(share * 4 + rng.random() * share * 4))]
    for word in added:
        kept.insert(rng.randint(0, len(kept)), word)
    return " ".join(kept) or prompt


def picture_size(spec: GenerateSpec, flags: PromptFlags) -> str:
    """The declared size closest to ``--ar`` at ``--q`` × :data:`BASE_SIDE` pixels a side."""
    ratio_w, ratio_h = flags.aspect
    side = BASE_SIDE * flags.quality
    width = side * math.sqrt(ratio_w / ratio_h)
    height = side * math.sqrt(ratio_h / ratio_w)
    fitted_w, fitted_h = fit_size(spec, max(1, round(width)), max(1, round(height)))
    return f"{fitted_w}x{fitted_h}"


def quality_for(spec: GenerateSpec, flags: PromptFlags) -> str | None:
    """The model's quality tier for ``--q`` (None: the model's default)."""
    wanted = "low" if flags.quality <= 0.25 else "medium" if flags.quality <= 0.5 else None
    if flags.quality >= 2:
        wanted = "high"
    return wanted if wanted in spec.qualities else None


def params_of(request: ImageRequest) -> GenerationParams:
    """A stored request as parameters again (to validate and hold it anew, e.g. for a reroll)."""
    mask = ImageSource("mask", request.mask.data) if request.mask else None
    return GenerationParams(
        prompt=request.prompt,
        operation=request.operation,
        model=request.model,
        n=request.n,
        size=request.size,
        quality=request.quality,
        output_format=request.output_format,
        background=request.background,
        output_compression=request.output_compression,
        style=request.style,
        extras=dict(request.extras),
        images=[ImageSource("taskId", image.data) for image in request.images],
        mask=mask,
        input_fidelity=request.input_fidelity,
        scale=request.scale,
        padding=request.padding,
        strength=request.strength,
    )
