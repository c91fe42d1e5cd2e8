"""Reference images (``images[1:]`` of an edit): their colours and, unmasked, their thumbnails.

Each reference lends its two dominant colours: subjects the prompt left uncoloured take them
in turn, and they tone the edit like the prompt's own colours. An edit without a mask also
shows the references as framed thumbnails along the bottom edge, right to left, as many as
fit; the rest act through their colours only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from PIL import Image, ImageOps

from imagegate.providers.local.palette import dominant_colours
from imagegate.providers.local.scene import RGB, Scene

__all__ = ["add_insets", "colour_subjects", "reference_colours"]

_COLOURS_EACH = 2
_INSET = 0.2
"""Thumbnail side as a fraction of the output's shorter side."""
_FRAME = (255, 255, 255, 255)


def reference_colours(references: Sequence[Image.Image]) -> tuple[RGB, ...]:
    """The dominant colours of every reference, in order, without repeats."""
    colours = [c for image in references for c in dominant_colours(image, _COLOURS_EACH)]
    return tuple(dict.fromkeys(colours))


def colour_subjects(scene: Scene, colours: Sequence[RGB]) -> Scene:
    """``scene`` with each uncoloured subject given the next of ``colours`` (cycling)."""
    if not colours:
        return scene
    subjects = tuple(
        subject
        if subject.colour is not None
        else replace(subject, colour=colours[i % len(colours)])
        for i, subject in enumerate(scene.subjects)
    )
    return replace(scene, subjects=subjects)


def add_insets(image: Image.Image, references: Sequence[Image.Image]) -> Image.Image:
    """``image`` (RGBA) with framed thumbnails of ``references`` along its bottom edge."""
    if not references:
        return image
    side = max(8, round(min(image.size) * _INSET))
    margin, frame = max(2, side // 10), max(1, side // 40)
    room = max(1, (image.width - margin) // (side + margin))
    result = image.copy()
    right = image.width - margin
    for reference in references[:room]:
        thumbnail = ImageOps.contain(reference, (side - 2 * frame, side - 2 * frame))
        card = Image.new(
            "RGBA", (thumbnail.width + 2 * frame, thumbnail.height + 2 * frame), _FRAME
        )
        card.alpha_composite(thumbnail, (frame, frame))
        result.alpha_composite(card, (right - card.width, image.height - margin - card.height))
        right -= card.width + margin
    return result
