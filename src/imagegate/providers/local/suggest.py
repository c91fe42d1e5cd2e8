"""``describe``: four prompt suggestions for an input picture, from simple pixel statistics.

The picture is looked at as a 64×64 thumbnail in HSV. Its dominant colours are named with the
renderer's own vocabulary (the nearest of the colour words, plain or with ``light``/``dark``,
mixed as the prompt parser mixes them). A few honest heuristics name subjects:

* a compact bright orange-to-yellow patch in the upper half: the sun (a pale one at night:
  the moon);
* a mostly blue upper band: a blue sky; a mostly warm one: a sunset sky;
* a mostly blue lower band darker than the upper one: the sea; a mostly green one under a
  band that is not: a meadow;
* a dark picture: night.

Nothing else is guessed: text, faces and objects are not recognised, and a picture with no
such pattern is called an abstract composition. Brightness, saturation and contrast choose
style words. The four lines differ in style (digital painting, watercolour, photograph, flat
vector) and start with the number emojis 1️⃣ to 4️⃣. The same picture always gives the same
text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image, ImageStat

from imagegate.providers.local.describe import listed
from imagegate.providers.local.palette import dominant_colours
from imagegate.providers.local.scene import RGB, mix
from imagegate.providers.local.vocab import COLOURS, MODIFIERS

__all__ = ["NUMBER_EMOJIS", "name_colour", "suggest_prompts"]

NUMBER_EMOJIS = ("1\ufe0f\u20e3", "2\ufe0f\u20e3", "3\ufe0f\u20e3", "4\ufe0f\u20e3")
_SIDE = 64
_UPPER, _LOWER = 0.45, 0.65
"""Bands: rows above _UPPER of the height are the upper band, rows below _LOWER the lower."""
_BAND_SHARE = 0.4
_SEA_DARKER = 8
_BLOB_BOTTOM = 0.55
"""A sun or moon lies above this fraction of the height."""
_BLOB_MIN = 6
_BLOB_SPAN = 0.4
_BLOB_FILL = 0.35
"""The patch covers at least this share of its bounding box (a disc covers 0.79)."""
_NIGHT = 75
"""Mean brightness (0–255) below which a picture is a night scene."""
_COLOURS = 3
_TINTED = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "grey", "teal")
"""The colours that also get ``light`` and ``dark`` forms (common words, not "light ivory")."""
_PixelTest = Callable[[int, int, int], bool]
Point = tuple[int, int]


def _vocabulary() -> dict[str, RGB]:
    names: dict[str, RGB] = {}
    for name, colour in COLOURS.items():
        if colour not in names.values():  # "gray" after "grey", "golden" after "gold"
            names[name] = colour
    for name in _TINTED:
        for modifier in ("light", "dark"):
            amount = MODIFIERS[modifier]
            target = (255, 255, 255) if amount > 0 else (0, 0, 0)
            names[f"{modifier} {name}"] = mix(COLOURS[name], target, abs(amount))
    return names


_VOCABULARY = _vocabulary()


def name_colour(colour: RGB) -> str:
    """The renderer's word for the named colour nearest to ``colour``."""
    return min(
        _VOCABULARY,
        key=lambda name: sum((a - b) ** 2 for a, b in zip(_VOCABULARY[name], colour, strict=True)),
    )


@dataclass
class _Look:
    """What the heuristics found."""

    colours: list[str]
    subjects: list[str] = field(default_factory=list)
    mood: str = ""
    style: list[str] = field(default_factory=list)


def suggest_prompts(image: Image.Image) -> str:
    """Four numbered prompt suggestions for ``image`` (any mode), one per line."""
    look = _look(image.convert("RGB").resize((_SIDE, _SIDE), Image.Resampling.BOX))
    colours = listed(look.colours)
    what = listed(look.subjects) if look.subjects else "an abstract composition"
    mood = {"night": " at night", "sunset": " at sunset"}.get(look.mood, "")
    style = " ".join(look.style)
    lines = (
        f"{_article(style or 'digital')} {style + ' ' if style else ''}digital painting of {what}"
        f"{mood}, in {colours}, detailed",
        f"A watercolour illustration of {what}{mood}, soft washes of {colours}, paper texture",
        f"A photograph of {what}{mood}, natural light, {look.colours[0]} tones, high detail",
        f"A minimalist flat vector illustration of {what}, {colours} palette, clean shapes",
    )
    return "\n".join(f"{emoji} {line}" for emoji, line in zip(NUMBER_EMOJIS, lines, strict=True))


def _article(word: str) -> str:
    return "An" if word[:1] in "aeiou" else "A"


def _look(thumb: Image.Image) -> _Look:
    hsv = thumb.convert("HSV").tobytes()
    rgb = thumb.tobytes()
    brightness = ImageStat.Stat(thumb.convert("HSV")).mean
    look = _Look([name_colour(c) for c in dominant_colours(thumb, _COLOURS)])
    look.colours = list(dict.fromkeys(look.colours))
    look.mood = "night" if brightness[2] < _NIGHT else ""
    scan = _Scan(hsv, rgb)
    body = _blob(scan, _pale if look.mood else _warm_bright)
    if body is not None:
        look.subjects.append(_named("the", body, "moon") if look.mood else _named("a", body, "sun"))
    look.subjects += _bands(scan, look)
    look.style = _style(thumb, brightness)
    return look


@dataclass(frozen=True, slots=True)
class _Scan:
    hsv: bytes
    rgb: bytes

    def rows(self, top: float, bottom: float) -> range:
        return range(round(top * _SIDE), round(bottom * _SIDE))

    def passes(self, x: int, y: int, test: _PixelTest) -> bool:
        at = 3 * (y * _SIDE + x)
        return test(self.hsv[at], self.hsv[at + 1], self.hsv[at + 2])

    def brightness(self, rows: range) -> float:
        values = self.hsv[3 * rows.start * _SIDE + 2 : 3 * rows.stop * _SIDE : 3]
        return sum(values) / max(1, len(values))

    def share(self, rows: range, test: _PixelTest) -> float:
        hits = sum(
            test(*self.hsv[3 * (y * _SIDE + x) : 3 * (y * _SIDE + x) + 3])
            for y in rows
            for x in range(_SIDE)
        )
        return hits / max(1, len(rows) * _SIDE)

    def mean_colour(self, rows: range, test: _PixelTest) -> RGB:
        picked = [
            self.rgb[3 * i : 3 * i + 3]
            for y in rows
            for i in range(y * _SIDE, (y + 1) * _SIDE)
            if test(*self.hsv[3 * i : 3 * i + 3])
        ]
        count = max(1, len(picked))
        r, g, b = (round(sum(p[c] for p in picked) / count) for c in range(3))
        return r, g, b


def _blob(scan: _Scan, test: _PixelTest) -> RGB | None:
    """The mean colour of a compact patch passing ``test`` in the upper half, if there is one.

    Only the largest connected patch above the middle counts; one that reaches the middle
    (a large shape rather than a sun) or is too big or too ragged does not.
    """
    limit = round(_BLOB_BOTTOM * _SIDE)
    patch = _largest_patch(scan, test, limit)
    if len(patch) < _BLOB_MIN:
        return None
    xs, ys = [x for x, _ in patch], [y for _, y in patch]
    width, height = max(xs) - min(xs) + 1, max(ys) - min(ys) + 1
    compact = max(width, height) <= _BLOB_SPAN * _SIDE and len(patch) >= _BLOB_FILL * width * height
    if not compact or max(ys) >= limit - 1:
        return None
    picked = [scan.rgb[3 * (y * _SIDE + x) : 3 * (y * _SIDE + x) + 3] for x, y in patch]
    r, g, b = (round(sum(p[c] for p in picked) / len(picked)) for c in range(3))
    return r, g, b


def _largest_patch(scan: _Scan, test: _PixelTest, rows: int) -> list[Point]:
    """The largest 4-connected set of pixels passing ``test`` in the first ``rows`` rows."""
    todo = {(x, y) for y in range(rows) for x in range(_SIDE) if scan.passes(x, y, test)}
    best: list[Point] = []
    while todo:
        start = min(todo)  # min, not pop: the same picture must always give the same patch
        todo.discard(start)
        patch, frontier = [start], [start]
        while frontier:
            x, y = frontier.pop()
            for near in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
                if near in todo:
                    todo.discard(near)
                    patch.append(near)
                    frontier.append(near)
        if len(patch) > len(best):
            best = patch
    return best


def _bands(scan: _Scan, look: _Look) -> list[str]:
    """Sky, sea and meadow from the colours of the upper and lower bands.

    A blue lower band is the sea only when it is darker than the upper band: a sky grows
    lighter toward the horizon, water darker toward the viewer. A green lower band is a
    meadow only under a band that is not green itself (not a green backdrop).
    """
    found = []
    upper, lower = scan.rows(0, _UPPER), scan.rows(_LOWER, 1)
    if not look.mood and scan.share(upper, _blue) > _BAND_SHARE:
        found.append(_named("a", scan.mean_colour(upper, _blue), "sky"))
    elif not look.mood and scan.share(upper, _warm) > _BAND_SHARE:
        look.mood = "sunset"
    darker = scan.brightness(lower) < scan.brightness(upper) - _SEA_DARKER
    if darker and scan.share(lower, _blue) > _BAND_SHARE:
        found.append(_named("the", scan.mean_colour(lower, _blue), "sea"))
    elif scan.share(lower, _green) > _BAND_SHARE and scan.share(upper, _green) < _BAND_SHARE:
        found.append(_named("a", scan.mean_colour(lower, _green), "meadow"))
    return found


def _named(article: str, colour: RGB, noun: str) -> str:
    """``a blue sky``: the colour's name before ``noun``, without repeating it ("sky blue")."""
    name = " ".join(word for word in name_colour(colour).split() if word != noun)
    if article == "a" and name[:1] in "aeiou":
        article = "an"
    return f"{article} {name} {noun}"


def _style(thumb: Image.Image, brightness: list[float]) -> list[str]:
    words = []
    saturation, value = brightness[1], brightness[2]
    if value >= 170:
        words.append("bright")
    elif value <= 80:
        words.append("dark")
    if saturation >= 110:
        words.append("vivid")
    elif saturation <= 40:
        words.append("muted")
    if ImageStat.Stat(thumb.convert("L")).stddev[0] >= 70:
        words.append("high-contrast")
    return words


def _warm_bright(h: int, s: int, v: int) -> bool:
    # Orange to yellow only: a red patch is more often a shape than a sun.
    return v >= 200 and s >= 90 and 10 <= h <= 45


def _pale(h: int, s: int, v: int) -> bool:
    return v >= 170 and s < 90


def _warm(h: int, s: int, v: int) -> bool:
    return v >= 120 and s >= 60 and (h <= 45 or h >= 200)


def _blue(h: int, s: int, v: int) -> bool:
    return 120 <= h <= 190 and s >= 60 and v >= 70


def _green(h: int, s: int, v: int) -> bool:
    return 45 < h < 120 and s >= 50 and v >= 40
