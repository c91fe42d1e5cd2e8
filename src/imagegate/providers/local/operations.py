"""Which module paints each operation, and the checks a request must pass first.

:data:`PAINTERS` maps every image-producing operation to a function of one :class:`Job`
(the request, its decoded inputs, the image's index, how many previews to take and its
seeded ``rng``). ``describe`` makes no image; the provider answers it with
:func:`~.suggest.suggest_prompts`. :func:`check` refuses what no painter can do, before any
work starts.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from imagegate.core.requests import ImageRequest
from imagegate.errors import InvalidRequest
from imagegate.providers.local.blend import render_blend
from imagegate.providers.local.draw import Rendered, render
from imagegate.providers.local.edit import render_edit
from imagegate.providers.local.enhance import render_enhance
from imagegate.providers.local.erase import render_erase
from imagegate.providers.local.inputs import Inputs
from imagegate.providers.local.matte import render_cutout, render_new_backdrop
from imagegate.providers.local.outpaint import render_outpaint
from imagegate.providers.local.scene import parse_prompt
from imagegate.providers.local.upscale import render_upscale
from imagegate.providers.local.variation import render_variation

__all__ = ["KEEPS_ALPHA", "PAINTERS", "Job", "check"]

KEEPS_ALPHA = frozenset({"remove_background"})
"""Operations whose result has alpha whatever the request's ``background`` says."""


@dataclass(frozen=True, slots=True)
class Job:
    """One image to paint. ``inputs`` is None only for ``generate``."""

    request: ImageRequest
    inputs: Inputs | None
    index: int
    stages: int
    seed: int
    rng: random.Random

    @property
    def given(self) -> Inputs:
        if self.inputs is None:
            raise ValueError(f"an {self.request.operation} needs input images")
        return self.inputs

    @property
    def size(self) -> tuple[int, int]:
        return self.request.width, self.request.height


def _generate(job: Job) -> Rendered:
    request = job.request
    return render(
        request.prompt,
        request.width,
        request.height,
        seed=job.seed,
        variant=job.index,
        transparent=request.background == "transparent",
        stages=job.stages,
    )


def _edit(job: Job) -> Rendered:
    request = job.request
    return render_edit(job.given, request.prompt, request.input_fidelity, job.rng, job.stages)


def _variation(job: Job) -> Rendered:
    return render_variation(job.given.base, job.rng, job.stages, job.request.strength)


def _upscale(job: Job) -> Rendered:
    strength = job.request.strength or 0.0
    return render_upscale(job.given.base, job.size, strength, job.rng, job.stages)


def _outpaint(job: Job) -> Rendered:
    padding = job.request.padding or (0, 0, 0, 0)
    scene = parse_prompt(job.request.prompt)
    return render_outpaint(job.given.base, padding, job.size, scene, job.rng, job.stages)


def _erase(job: Job) -> Rendered:
    inputs = job.given
    if inputs.keep is None:
        raise InvalidRequest("erase needs a mask", param="mask")
    return render_erase(inputs.base, inputs.keep, job.rng, job.stages)


def _remove_background(job: Job) -> Rendered:
    return render_cutout(job.given.base, job.stages)


def _replace_background(job: Job) -> Rendered:
    scene = parse_prompt(job.request.prompt)
    return render_new_backdrop(job.given.base, scene, job.rng, job.stages)


def _enhance(job: Job) -> Rendered:
    return render_enhance(job.given.base, job.stages)


def _blend(job: Job) -> Rendered:
    inputs = job.given
    images = (inputs.base, *inputs.references)
    return render_blend(images, parse_prompt(job.request.prompt), job.rng, job.stages)


PAINTERS: dict[str, Callable[[Job], Rendered]] = {
    "generate": _generate,
    "edit": _edit,
    "variation": _variation,
    "upscale": _upscale,
    "outpaint": _outpaint,
    "erase": _erase,
    "remove_background": _remove_background,
    "replace_background": _replace_background,
    "enhance": _enhance,
    "blend": _blend,
}


def check(request: ImageRequest) -> None:
    """Raise :class:`InvalidRequest` for what the renderer cannot do with ``request``."""
    operation = request.operation
    if request.output_format == "svg" and operation != "generate":
        raise InvalidRequest(
            f"output_format 'svg' is only available to generate, not to {operation}",
            param="output_format",
        )
    if operation not in PAINTERS and operation != "describe":
        raise InvalidRequest(f"unsupported operation: {operation}", param="operation")
    if operation != "generate" and not request.images:
        raise InvalidRequest(f"{operation} needs an input image", param="image")
    _CHECKS.get(operation, _fine)(request)


def _fine(request: ImageRequest) -> None:
    """Nothing more to check."""


def _check_outpaint(request: ImageRequest) -> None:
    if request.padding is None or len(request.padding) != 4 or min(request.padding) < 0:
        raise InvalidRequest(
            "outpaint needs padding: four non-negative pixel counts", param="padding"
        )


def _check_erase(request: ImageRequest) -> None:
    if request.mask is None:
        raise InvalidRequest("erase needs a mask", param="mask")


def _check_blend(request: ImageRequest) -> None:
    if len(request.images) < 2:
        raise InvalidRequest("blend needs at least two images", param="image")


_CHECKS: dict[str, Callable[[ImageRequest], None]] = {
    "outpaint": _check_outpaint,
    "erase": _check_erase,
    "blend": _check_blend,
}
