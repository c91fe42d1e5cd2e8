"""Edits without a mask: the prompt's elements composed over the whole input image.

The scene is drawn on a clear layer (no sky or ground, so the photo stays visible) and
composited over the input, which is first toned toward the prompt's colours. ``input_fidelity``
sets how much of the input survives: ``high`` gives a light tone and a half-transparent
overlay; ``low`` (or none) a stronger tone and opaque elements. A prompt that names nothing
drawable gets the renderer's abstract shapes instead, lighter still, so an edit always shows.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from imagegate.providers.local.draw import render_scene
from imagegate.providers.local.palette import dominant_colours, tone
from imagegate.providers.local.scene import RGB, Scene

__all__ = ["render_overlay"]


@dataclass(frozen=True, slots=True)
class _Fidelity:
    tone: float
    """How far the input moves toward the prompt's colours."""
    opacity: float
    """How opaque the drawn elements are."""


_FIDELITY = {"high": _Fidelity(tone=0.1, opacity=0.55), "low": _Fidelity(tone=0.35, opacity=1.0)}
_SHAPES_OPACITY = 0.5
"""Abstract shapes stand in for subjects nobody asked for, so they stay in the background."""
_SHAPES_TONE = 0.1


def render_overlay(
    base: Image.Image,
    scene: Scene,
    borrowed: Sequence[RGB],
    fidelity: str | None,
    rng: random.Random,
) -> Image.Image:
    """``base`` (RGBA) toned toward the prompt's colours with ``scene`` drawn over it.

    ``borrowed`` colours (from reference images) join the prompt's for toning.
    """
    profile = _FIDELITY["high" if fidelity == "high" else "low"]
    colours = tuple(dict.fromkeys((*scene.colours(), *borrowed)))
    layer = _elements(scene, base.size, rng)
    opacity, amount = profile.opacity, profile.tone
    if layer is None:
        palette = colours or tuple(dominant_colours(base, 2))
        layer = render_scene(Scene(palette=palette), *base.size, rng, transparent=True).final
        opacity, amount = opacity * _SHAPES_OPACITY, amount + _SHAPES_TONE
    return Image.alpha_composite(tone(base, colours, amount), _fade(layer, opacity))


def _elements(scene: Scene, size: tuple[int, int], rng: random.Random) -> Image.Image | None:
    """The scene's subjects and texts on a clear layer, or None if the prompt draws nothing."""
    if not (scene.subjects or scene.texts):
        return None
    drawn = render_scene(scene, *size, rng, transparent=True).final
    return drawn if drawn.getchannel("A").getbbox() is not None else None


def _fade(layer: Image.Image, opacity: float) -> Image.Image:
    if opacity >= 1:
        return layer
    faded = layer.copy()
    faded.putalpha(layer.getchannel("A").point(lambda alpha: round(alpha * opacity)))
    return faded
