"""Width/height and aspect-ratio fields (Flux, Bria, Replicate) as the catalogue's sizes.

A model declares either a list of sizes or a free range (``size_range``); a wire format that
speaks in pixels or ratios is translated here, once, for both kinds."""

from __future__ import annotations

import math
from fractions import Fraction

from imagegate.core.catalog import CatalogEntry, GenerateSpec, SizeRange
from imagegate.core.params import fit_size
from imagegate.digits import is_decimal
from imagegate.errors import InvalidRequest

TARGET_PIXELS = 1024 * 1024
"""What a ratio-only request gets on a free-range model (the size Flux models are tuned for)."""


def parse_ratio(text: str, *, param: str) -> tuple[int, int]:
    """``"16:9"`` → (16, 9); anything else is a 400 naming ``param``."""
    width, sep, height = text.partition(":")
    if not sep or not is_decimal(width.strip()) or not is_decimal(height.strip()):
        raise InvalidRequest(f"{param} must look like '16:9'; got {text!r}", param=param)
    ratio = int(width), int(height)
    if 0 in ratio or max(ratio) / min(ratio) > 21 / 4:
        raise InvalidRequest(f"{param} {text!r} is too extreme; stay within 21:4", param=param)
    return ratio


def _generate_spec(entry: CatalogEntry) -> GenerateSpec:
    spec = entry.spec.generate
    if spec is None:
        raise InvalidRequest(
            f"model {entry.spec.id!r} does not generate images from text", param="model"
        )
    return spec


def size_for_ratio(entry: CatalogEntry, width: int, height: int) -> str:
    """The size closest to ``width``:``height``: on a free range about one megapixel, else the
    declared size nearest in shape."""
    spec = _generate_spec(entry)
    if spec.size_range is None:
        best_width, best_height = fit_size(spec, width, height)
        return f"{best_width}x{best_height}"
    return range_size(spec.size_range, width / height)


def size_for_output(entry: CatalogEntry, width: int, height: int) -> str:
    """``width``×``height`` itself when the model offers it, else the nearest size in shape."""
    spec = _generate_spec(entry)
    exact = f"{width}x{height}"
    if exact in spec.sizes or (spec.size_range and spec.size_range.allows(width, height)):
        return exact
    return size_for_ratio(entry, width, height)


def nearest_size(entry: CatalogEntry, width: int, height: int) -> tuple[str, bool]:
    """``width``×``height`` when the model takes it, else the nearest size it does take (on a
    free range each side snapped to the grid; among presets the nearest in shape, then area),
    and whether it had to change."""
    spec = _generate_spec(entry)
    exact = f"{width}x{height}"
    free = spec.size_range
    if exact in spec.sizes or (free and free.allows(width, height)):
        return exact, False
    if free is not None:
        return f"{_snap(width, free)}x{_snap(height, free)}", True
    best_width, best_height = fit_size(spec, width, height)
    return f"{best_width}x{best_height}", True


def range_size(free: SizeRange, ratio: float, pixels: int = TARGET_PIXELS) -> str:
    """A size on a free range with this ratio and about ``pixels``: the exact ratio when the
    grid has one near enough, else the nearest sides the range allows."""
    exact = _exact_ratio_size(free, ratio, pixels)
    if exact is not None:
        return exact
    width, height = math.sqrt(pixels * ratio), math.sqrt(pixels / ratio)
    shrink = min(1.0, free.max_side / width, free.max_side / height)
    grow = max(1.0, free.min_side / (width * shrink), free.min_side / (height * shrink))
    sides = [_snap(side * shrink * grow, free) for side in (width, height)]
    return f"{sides[0]}x{sides[1]}"


def _exact_ratio_size(free: SizeRange, ratio: float, pixels: int) -> str | None:
    """The size on the grid with exactly this ratio (as a fraction of small integers) nearest
    ``pixels``, when one lies within 30% of it; else ``None``."""
    fraction = Fraction(ratio).limit_denominator(32)
    across, down = fraction.numerator, fraction.denominator
    step = free.multiple
    unit = math.lcm(step // math.gcd(across, step), step // math.gcd(down, step))
    best: tuple[float, str] | None = None
    scale = round(math.sqrt(pixels / (across * down)) / unit)
    for times in (scale - 1, scale, scale + 1):
        width, height = across * unit * times, down * unit * times
        if times < 1 or not free.allows(width, height):
            continue
        distance = abs(math.log(width * height / pixels))
        if distance <= math.log(1.3) and (best is None or distance < best[0]):
            best = (distance, f"{width}x{height}")
    return best[1] if best else None


def _snap(side: float, free: SizeRange) -> int:
    step = free.multiple
    snapped = max(step, round(side / step) * step)
    lowest = math.ceil(free.min_side / step) * step
    highest = free.max_side // step * step
    return min(max(snapped, lowest), highest)


def size_for_pixels(
    entry: CatalogEntry,
    width: int | None,
    height: int | None,
    *,
    default: int,
    adjusted: list[str] | None = None,
) -> str | None:
    """``width``×``height`` (a missing side is ``default``) as a size this model takes; a 400
    names the side that does not fit a free range. On a model with presets only, a size it
    lacks is a 400 too, unless ``adjusted`` is given: then the nearest preset is used and the
    change noted there (``size=500x300->512x512``). ``None`` when neither side was given."""
    if width is None and height is None:
        return None
    spec = _generate_spec(entry)
    wide, high = width or default, height or default
    free = spec.size_range
    if free is not None:
        for param, side in (("width", wide), ("height", high)):
            if not free.min_side <= side <= free.max_side or side % free.multiple:
                raise InvalidRequest(
                    f"{param} {side} is not supported by model {entry.spec.id!r}; use "
                    f"{free.min_side}-{free.max_side} in steps of {free.multiple}",
                    param=param,
                )
        return f"{wide}x{high}"
    size = f"{wide}x{high}"
    if size not in spec.sizes and adjusted is not None:
        nearest, _ = nearest_size(entry, wide, high)
        adjusted.append(f"size={size}->{nearest}")
        return nearest
    if size not in spec.sizes:
        offered = ", ".join(s for s in spec.sizes if s != "auto")
        param = "width" if width is not None else "height"
        raise InvalidRequest(
            f"{size} is not a size model {entry.spec.id!r} offers; use one of {offered}",
            param=param,
        )
    return size
