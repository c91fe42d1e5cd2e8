"""Edits without a mask: the picture keeps its composition; what the prompt names changes.

The picture's horizon is found (:mod:`.regions`). Sky words (``sky``, ``background``) and free
colours ("make it purple") recolour the sky: the pixels above the horizon that look like the
sky's commonest colours, keeping their shading. Sea and grass words (``sea``, ``hills``, …)
recolour the ground below it the same way (with the word's own colour when it has none). Every
other subject (sun, boat, house, stars, text, …) is drawn on a clear layer laid out on the
picture's own horizon, so a boat floats where the water is, and composited over the picture.
Nothing else is touched: no global tint.

``input_fidelity`` sets how much of the input survives: ``high`` recolours half way and draws
the new elements half transparent; ``low`` (or none) recolours fully and draws them opaque. A
prompt that names nothing to recolour or draw gets a gentle enhancement (:mod:`.enhance`), so
an edit always shows.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from imagegate.providers.local.draw import render_scene
from imagegate.providers.local.enhance import render_enhance
from imagegate.providers.local.regions import ABOVE, BELOW, Band, find_horizon, recolour, region
from imagegate.providers.local.scene import RGB, Scene

__all__ = ["ADDED_SKIP", "REGION_DEFAULTS", "Region", "render_overlay", "split_scene"]


@dataclass(frozen=True, slots=True)
class _Fidelity:
    recolour: float
    """How far a named region moves toward its colour."""
    opacity: float
    """How opaque the drawn elements are."""


_FIDELITY = {
    "high": _Fidelity(recolour=0.5, opacity=0.55),
    "low": _Fidelity(recolour=0.9, opacity=1.0),
}
REGION_DEFAULTS: dict[str, RGB] = {"sea": (38, 104, 186), "hills": (96, 164, 74)}
"""The colour a region word gives when the prompt binds none to it."""
ADDED_SKIP = frozenset({"sea", "gradient"})
"""Elements a landscape brings along (its water, its grass) that an edit never paints over the
picture: those are recoloured in place instead."""


@dataclass(frozen=True, slots=True)
class Region:
    """A part of the picture the prompt names: the sky (``above`` the horizon) or the sea or
    grass (``below`` it), and the colour it asks for."""

    band: Band
    kind: str
    colour: RGB


def split_scene(scene: Scene) -> tuple[Scene, list[Region]]:
    """The scene's drawable subjects (as a scene) and the regions it names, one per band (the
    first named wins); free colours recolour the sky."""
    regions: dict[str, Region] = {}
    for subject in scene.subjects:
        if subject.kind in ABOVE and subject.colour is not None:
            regions.setdefault("above", Region("above", subject.kind, subject.colour))
        elif subject.kind in BELOW:
            colour = subject.colour or REGION_DEFAULTS[subject.kind]
            regions.setdefault("below", Region("below", subject.kind, colour))
    if scene.palette:
        regions.setdefault("above", Region("above", "sky", scene.palette[0]))
    drawn = tuple(s for s in scene.subjects if s.kind not in ABOVE | BELOW)
    return Scene(subjects=drawn, texts=scene.texts, mood=scene.mood), list(regions.values())


def render_overlay(
    base: Image.Image,
    scene: Scene,
    borrowed: Sequence[RGB],
    fidelity: str | None,
    rng: random.Random,
) -> Image.Image:
    """``base`` (RGBA) with the regions the prompt names recoloured and its subjects drawn.

    ``borrowed`` colours (from reference images) recolour the sky when the prompt names none.
    """
    profile = _FIDELITY["high" if fidelity == "high" else "low"]
    drawn, regions = split_scene(scene)
    if borrowed and not regions:
        regions = [Region("above", "sky", borrowed[0])]
    horizon = find_horizon(base)
    result = base
    for named in regions:
        where = region(result, horizon, "all" if horizon is None else named.band)
        result = recolour(result, where, named.colour, profile.recolour)
    layer = _elements(drawn, base.size, rng, horizon)
    if layer is not None:
        result = Image.alpha_composite(result, _fade(layer, profile.opacity))
    if layer is None and not regions:
        enhanced = render_enhance(base).final
        return Image.blend(base, enhanced, profile.recolour)
    return result


def _elements(
    scene: Scene, size: tuple[int, int], rng: random.Random, horizon: int | None
) -> Image.Image | None:
    """The scene's subjects and texts on a clear layer, or None if the prompt draws nothing."""
    if not (scene.subjects or scene.texts):
        return None
    drawn = render_scene(
        scene, *size, rng, transparent=True, horizon=horizon, skip=ADDED_SKIP
    ).final
    return drawn if drawn.getchannel("A").getbbox() is not None else None


def _fade(layer: Image.Image, opacity: float) -> Image.Image:
    if opacity >= 1:
        return layer
    faded = layer.copy()
    faded.putalpha(layer.getchannel("A").point(lambda alpha: round(alpha * opacity)))
    return faded
