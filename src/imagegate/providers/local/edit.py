"""Edits: ``images[0]`` changed by the prompt, inside ``mask`` when there is one.

With a mask see :mod:`.masked`; without one see :mod:`.overlay`. Further images are
references (:mod:`.references`). Streamed previews go from the input toward the result.
"""

from __future__ import annotations

import random

from imagegate.providers.local.draw import Rendered
from imagegate.providers.local.inputs import Inputs, blend_stages
from imagegate.providers.local.masked import render_masked
from imagegate.providers.local.overlay import render_overlay
from imagegate.providers.local.references import (
    add_insets,
    colour_subjects,
    reference_colours,
)
from imagegate.providers.local.scene import parse_prompt

__all__ = ["render_edit"]


def render_edit(
    inputs: Inputs,
    prompt: str,
    fidelity: str | None,
    rng: random.Random,
    stages: int = 0,
) -> Rendered:
    """Apply ``prompt`` to ``inputs.base``; the result is RGBA at the base's size.

    ``stages`` previews blend from the input toward the result, the first being the input.
    """
    borrowed = reference_colours(inputs.references)
    scene = colour_subjects(parse_prompt(prompt), borrowed)
    if inputs.keep is not None:
        final = render_masked(inputs.base, inputs.keep, scene, borrowed, rng)
    else:
        final = render_overlay(inputs.base, scene, borrowed, fidelity, rng)
        final = add_insets(final, inputs.references)
    return Rendered(final, blend_stages(inputs.base, final, stages))
