"""Enhancing: the same picture at the same size, with more contrast and crisper detail.

Levels are stretched per luminance so that the darkest and lightest half percent reach black
and white without shifting hues (:func:`PIL.ImageOps.autocontrast` with ``preserve_tone``),
contrast and saturation get a gentle lift, and an unsharp mask scaled to the image size
brings out edges. The input's alpha is kept.
"""

from __future__ import annotations

from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from imagegate.providers.local.draw import Rendered
from imagegate.providers.local.inputs import blend_stages

__all__ = ["render_enhance"]

_CUTOFF = 0.5
"""Percent of the darkest and of the lightest pixels clipped by the levels stretch."""
_CONTRAST = 1.12
_COLOUR = 1.1
_SHARPEN = 90
"""Unsharp-mask percent."""
_RADIUS_SIDE = 600
"""The unsharp radius is the shorter side over this (at least one pixel)."""


def render_enhance(base: Image.Image, stages: int = 0) -> Rendered:
    """``base`` (RGBA) enhanced; previews go from the input toward the result."""
    rgb = ImageOps.autocontrast(base.convert("RGB"), cutoff=_CUTOFF, preserve_tone=True)
    rgb = ImageEnhance.Contrast(rgb).enhance(_CONTRAST)
    rgb = ImageEnhance.Color(rgb).enhance(_COLOUR)
    radius = max(1.0, min(base.size) / _RADIUS_SIDE)
    rgb = rgb.filter(ImageFilter.UnsharpMask(radius=radius, percent=_SHARPEN, threshold=2))
    final = rgb.convert("RGBA")
    final.putalpha(base.getchannel("A"))
    return Rendered(final, blend_stages(base, final, stages))
