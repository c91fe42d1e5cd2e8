"""Layout: place a :class:`Scene`'s subjects on a canvas as a list of drawing instructions.

Sky things (sun, moon, stars, clouds, birds, rainbow) go above the horizon; mountains and the
sea sit on it; houses, trees and flowers stand on the ground (or on a shore beside the sea);
shapes are centred or spread on a grid; quoted text becomes a banner. Every random choice comes
from the ``rng`` passed in, so a layout is a pure function of (scene, size, rng state).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from imagegate.providers.local.scene import RGB, Scene, Subject, mix
from imagegate.providers.local.vocab import LANDSCAPE, SHAPES

__all__ = ["Box", "Element", "Layout", "Point", "compose"]

Box = tuple[int, int, int, int]
Point = tuple[int, int]

WHITE: RGB = (255, 255, 255)
BLACK: RGB = (0, 0, 0)

_SKIES: dict[str, tuple[RGB, ...]] = {
    "day": ((62, 124, 214), (126, 184, 238), (204, 228, 246)),
    "night": ((6, 10, 34), (20, 30, 74), (48, 58, 108)),
    "sunset": ((58, 42, 112), (214, 92, 96), (255, 172, 84)),
    "dawn": ((92, 122, 190), (238, 160, 172), (255, 214, 160)),
    "storm": ((58, 63, 74), (106, 112, 124), (150, 154, 160)),
}
_SHADE: dict[str, tuple[RGB, float]] = {
    "night": ((16, 22, 60), 0.45),
    "sunset": ((120, 50, 80), 0.15),
    "storm": ((90, 95, 105), 0.25),
}
_THEMES: tuple[tuple[RGB, RGB], ...] = (
    ((255, 94, 98), (255, 195, 113)),
    ((67, 206, 162), (24, 90, 157)),
    ((142, 45, 226), (74, 0, 224)),
    ((252, 92, 125), (106, 130, 251)),
    ((247, 151, 30), (255, 210, 0)),
    ((0, 176, 155), (150, 201, 61)),
    ((238, 156, 167), (255, 221, 225)),
)
_SHAPE_COLOURS: tuple[RGB, ...] = (
    (231, 76, 60),
    (52, 152, 219),
    (46, 204, 113),
    (155, 89, 182),
    (241, 196, 15),
    (230, 126, 34),
    (26, 188, 156),
)
_FLOWER_COLOURS: tuple[RGB, ...] = (
    (230, 57, 70),
    (255, 183, 3),
    (244, 114, 182),
    (155, 93, 229),
    (255, 255, 255),
)
_WALLS: tuple[RGB, ...] = ((245, 232, 200), (180, 210, 235), (250, 220, 120), (240, 170, 150))
_RAINBOW: tuple[RGB, ...] = (
    (230, 40, 40),
    (250, 140, 20),
    (250, 220, 30),
    (60, 180, 75),
    (40, 120, 230),
    (80, 60, 180),
    (150, 70, 200),
)
_PLURAL_DEFAULTS: dict[str, tuple[int, int]] = {
    "stars": (45, 80),
    "clouds": (2, 4),
    "birds": (3, 6),
    "trees": (3, 5),
    "house": (2, 3),
    "flowers": (6, 10),
    "boat": (2, 3),
}
_SLOT_WEIGHT = {"house": 2.6, "trees": 1.0}
_CAPS: dict[str, int] = {
    "stars": 150,
    "clouds": 8,
    "birds": 16,
    "trees": 24,
    "house": 8,
    "flowers": 40,
    "boat": 5,
    "circle": 24,
    "square": 24,
    "triangle": 24,
    "heart": 24,
}


@dataclass(frozen=True, slots=True)
class Element:
    """One drawing instruction; ``kind`` selects the drawing routine in :mod:`.draw`.

    ``colours`` are the routine's colours in its documented order; ``points``, ``size`` and
    ``style`` carry kind-specific geometry. ``backdrop`` elements (sky, implied ground,
    decoration) are skipped when the background is transparent.
    """

    kind: str
    box: Box
    colours: tuple[RGB, ...]
    points: tuple[Point, ...] = ()
    size: int = 0
    style: int = 0
    text: str = ""
    alpha: int = 255
    backdrop: bool = False


@dataclass(frozen=True, slots=True)
class Layout:
    """Everything to draw, back to front."""

    width: int
    height: int
    elements: tuple[Element, ...]


@dataclass
class _Frame:
    """The scene plus the geometry every placer shares."""

    scene: Scene
    width: int
    height: int
    rng: random.Random
    mood: str = "day"
    horizon: int = 0
    sky: tuple[RGB, ...] = ()
    land: tuple[int, int] = (0, 0)
    sea_span: tuple[int, int] = (0, 0)
    coast: tuple[Point, ...] = ()
    sides: dict[str, float] = field(default_factory=dict)

    @property
    def unit(self) -> int:
        return min(self.width, self.height)

    def of(self, kind: str) -> list[Subject]:
        return [subject for subject in self.scene.subjects if subject.kind == kind]

    def count(self, subject: Subject) -> int:
        low, high = _PLURAL_DEFAULTS.get(subject.kind, (3, 3))
        wanted = subject.count if subject.count is not None else self.rng.randint(low, high)
        return max(1, min(wanted, _CAPS.get(subject.kind, 1)))

    def shade(self, colour: RGB) -> RGB:
        tone = _SHADE.get(self.mood)
        return mix(colour, tone[0], tone[1]) if tone else colour

    def between(self, low: float, high: float, total: int) -> int:
        return round(self.rng.uniform(low, high) * total)

    @property
    def foreground(self) -> bool:
        return self.scene.has("house", "trees", "flowers")

    @property
    def has_sea(self) -> bool:
        return self.scene.has("sea", "boat")


def compose(
    scene: Scene, width: int, height: int, rng: random.Random, *, horizon: int | None = None
) -> Layout:
    """Place ``scene`` on a ``width`` × ``height`` canvas, drawing every choice from ``rng``
    (``horizon``: the row where land or sea begins, instead of one drawn from ``rng``)."""
    frame = _frame(scene, width, height, rng, horizon)
    elements: list[Element] = []
    for place in _LAYERS:
        elements.extend(place(frame))
    return Layout(width, height, tuple(elements))


def _frame(
    scene: Scene, width: int, height: int, rng: random.Random, horizon: int | None
) -> _Frame:
    frame = _Frame(scene, width, height, rng)
    frame.mood = scene.mood or (
        "night" if scene.has("moon", "stars") and not scene.has("sun") else "day"
    )
    grounded = frame.has_sea or scene.has("mountains", "hills") or frame.foreground
    if not grounded:
        frame.horizon = height
    elif horizon is not None:
        frame.horizon = max(0, min(height, horizon))
    else:
        frame.horizon = frame.between(0.56, 0.66, height)
    frame.sky = _sky_stops(frame)
    frame.land = (round(width * 0.03), round(width * 0.97))
    frame.sea_span = (0, width)
    if frame.has_sea and frame.foreground:
        _split_coast(frame)
    return frame


def _sky_stops(frame: _Frame) -> tuple[RGB, ...]:
    scene = frame.scene
    bound = scene.colour_of("sky") or scene.colour_of("background")
    if bound is not None:
        return (mix(bound, BLACK, 0.25), bound, mix(bound, WHITE, 0.45))
    stops = _SKIES[frame.mood]
    if scene.palette:
        return tuple(mix(stop, scene.palette[0], 0.4) for stop in stops)
    return stops


def _split_coast(frame: _Frame) -> None:
    """Give the left or right part of the view to land, sloping outward toward the viewer."""
    width, height, horizon = frame.width, frame.height, frame.horizon
    top = frame.between(0.36, 0.44, width)
    bottom = frame.between(0.5, 0.58, width)
    if frame.rng.random() < 0.5:
        frame.coast = ((0, horizon), (top, horizon), (bottom, height), (0, height))
        frame.land = (round(width * 0.02), top - round(width * 0.02))
        frame.sea_span = (top, width)
    else:
        frame.coast = ((width, horizon), (width - top, horizon), (width - bottom, height))
        frame.coast += ((width, height),)
        frame.land = (width - top + round(width * 0.02), round(width * 0.98))
        frame.sea_span = (0, width - top)


# --- backdrop ---------------------------------------------------------------------------


def _backdrop(frame: _Frame) -> list[Element]:
    scene, full = frame.scene, (0, 0, frame.width, frame.height)
    if any(subject.kind in LANDSCAPE for subject in scene.subjects):
        return [Element("gradient", full, frame.sky, backdrop=True)]
    if any(subject.kind in SHAPES for subject in scene.subjects):
        return [Element("gradient", full, _plain_stops(scene), backdrop=True)]
    return _abstract(frame)


def _plain_stops(scene: Scene) -> tuple[RGB, ...]:
    bound = scene.colour_of("background")
    if bound is not None:
        return (mix(bound, WHITE, 0.1), mix(bound, BLACK, 0.15))
    if scene.palette:
        return (mix(scene.palette[0], WHITE, 0.7), mix(scene.palette[-1], WHITE, 0.5))
    return ((246, 244, 238), (222, 228, 240))


def _abstract(frame: _Frame) -> list[Element]:
    """A corner gradient with soft shapes in the prompt's colours, for prompts with no subject."""
    rng, width, height = frame.rng, frame.width, frame.height
    first, second = _theme(frame)
    corners = (first, mix(first, second, 0.5), mix(first, WHITE, 0.3), second)
    elements = [Element("corners", (0, 0, width, height), corners, backdrop=True)]
    decoration = bool(frame.scene.texts)
    colours = [
        first,
        second,
        mix(first, WHITE, 0.5),
        mix(second, BLACK, 0.3),
        mix(first, second, 0.5),
    ]
    for _ in range(rng.randint(4, 6) if decoration else rng.randint(6, 10)):
        radius = frame.between(0.05, 0.22, frame.unit)
        x, y = rng.randint(0, width), rng.randint(0, height)
        box = (x - radius, y - radius, x + radius, y + radius)
        kind = rng.choice(("orb", "orb", "ring", "pill"))
        alpha = rng.randint(110, 200) if decoration else rng.randint(170, 235)
        elements.append(
            Element(kind, box, (rng.choice(colours),), alpha=alpha, backdrop=decoration)
        )
    return elements


def _theme(frame: _Frame) -> tuple[RGB, RGB]:
    palette = frame.scene.palette or tuple(s.colour for s in frame.scene.subjects if s.colour)
    if len(palette) >= 2:
        return palette[0], palette[1]
    if palette:
        return mix(palette[0], WHITE, 0.35), mix(palette[0], BLACK, 0.35)
    return frame.rng.choice(_THEMES)


# --- sky --------------------------------------------------------------------------------


def _stars(frame: _Frame) -> list[Element]:
    elements = []
    top = max(frame.horizon * 0.85, frame.height * 0.3)
    for subject in frame.of("stars"):
        colour = subject.colour or (255, 248, 214)
        count = frame.count(subject)
        if subject.count is not None and count <= 12:
            elements.extend(_big_stars(frame, count, colour, top))
            continue
        dots = tuple(
            (frame.rng.randint(0, frame.width), frame.rng.randint(0, round(top)))
            for _ in range(count)
        )
        small, large = max(1, frame.unit // 300), max(2, frame.unit // 140)
        split = len(dots) * 3 // 4
        elements.append(Element("stars", (0, 0, 0, 0), (colour,), points=dots[:split], size=small))
        elements.append(Element("stars", (0, 0, 0, 0), (colour,), points=dots[split:], size=large))
    return elements


def _big_stars(frame: _Frame, count: int, colour: RGB, top: float) -> list[Element]:
    elements = []
    radius = round(frame.unit * min(0.08, 0.3 / (count + 2)))
    for index in range(count):
        x = round((index + 0.5) / count * frame.width + frame.rng.uniform(-0.3, 0.3) * radius)
        y = frame.rng.randint(radius, max(radius + 1, round(top) - radius))
        box = (x - radius, y - radius, x + radius, y + radius)
        elements.append(Element("star", box, (colour, mix(colour, BLACK, 0.3))))
    return elements


def _rainbow(frame: _Frame) -> list[Element]:
    if not frame.of("rainbow"):
        return []
    base = frame.horizon if frame.horizon < frame.height else round(frame.height * 0.8)
    radius = frame.between(0.34, 0.46, frame.width)
    x = frame.between(0.3, 0.7, frame.width)
    box = (x - radius, base - radius, x + radius, base + radius)
    return [Element("rainbow", box, _RAINBOW, size=max(2, radius // 16))]


def _sun(frame: _Frame) -> list[Element]:
    subjects = frame.of("sun")
    if not subjects and frame.mood in ("sunset", "dawn") and frame.horizon < frame.height:
        subjects = [Subject("sun")]
    elements = []
    for subject in subjects:
        radius = frame.between(0.07, 0.1, frame.unit)
        x = frame.between(0.15, 0.85, frame.width)
        frame.sides["sun"] = x / frame.width
        low = frame.mood in ("sunset", "dawn") and frame.horizon < frame.height
        y = frame.horizon - radius // 3 if low else frame.between(0.12, 0.26, frame.height)
        body = subject.colour or {"sunset": (255, 120, 50), "dawn": (255, 170, 80)}.get(
            frame.mood, (255, 214, 64)
        )
        glow = mix(body, frame.sky[-1], 0.45)
        elements.append(
            Element("sun", (x - radius, y - radius, x + radius, y + radius), (body, glow))
        )
    return elements


def _moon(frame: _Frame) -> list[Element]:
    elements = []
    for subject in frame.of("moon"):
        radius = frame.between(0.06, 0.085, frame.unit)
        sun_side = frame.sides.get("sun", frame.rng.random())
        low, high = (0.12, 0.4) if sun_side > 0.5 else (0.6, 0.88)
        x = frame.between(low, high, frame.width)
        y = frame.between(0.1, 0.24, frame.height)
        body = subject.colour or (246, 240, 214)
        shadow = mix(body, frame.sky[0], 0.35)
        style = frame.rng.randint(0, 1)
        box = (x - radius, y - radius, x + radius, y + radius)
        elements.append(Element("moon", box, (body, shadow), style=style))
    return elements


def _clouds(frame: _Frame) -> list[Element]:
    default = {"night": (96, 106, 138), "storm": (150, 152, 162), "sunset": (255, 214, 204)}
    elements = []
    limit = min(frame.horizon, frame.height) * 0.4
    for subject in frame.of("clouds"):
        colour = subject.colour or default.get(frame.mood, (255, 255, 255))
        for _ in range(frame.count(subject)):
            width = frame.between(0.16, 0.3, frame.width)
            height = round(width * 0.42)
            x = frame.rng.randint(-width // 4, frame.width - width * 3 // 4)
            y = frame.rng.randint(round(frame.height * 0.03), max(1, round(limit)))
            shadow = mix(colour, BLACK, 0.12)
            box = (x, y, x + width, y + height)
            elements.append(Element("cloud", box, (colour, shadow), style=frame.rng.randint(0, 2)))
    return elements


def _birds(frame: _Frame) -> list[Element]:
    elements = []
    for subject in frame.of("birds"):
        colour = subject.colour or ((220, 220, 230) if frame.mood == "night" else (40, 40, 52))
        for _ in range(frame.count(subject)):
            span = frame.between(0.025, 0.05, frame.unit)
            x = frame.between(0.1, 0.9, frame.width)
            y = frame.between(0.08, 0.4, min(frame.horizon, frame.height))
            box = (x - span, y - span // 2, x + span, y + span // 2)
            elements.append(Element("bird", box, (colour,), size=max(2, span // 8)))
    return elements


# --- horizon ----------------------------------------------------------------------------


def _mountains(frame: _Frame) -> list[Element]:
    subjects = frame.of("mountains")
    if not subjects:
        return []
    default = {"night": (34, 40, 68), "sunset": (110, 70, 112), "storm": (80, 86, 98)}
    main = subjects[0].colour or default.get(frame.mood, (92, 104, 136))
    below_filled = frame.has_sea or frame.scene.has("hills") or frame.foreground
    base = frame.horizon + round(frame.height * 0.03) if below_filled else frame.height
    far = mix(main, frame.sky[-1], 0.45)
    snow = 1 if sum(main) < 600 and frame.mood != "night" and frame.rng.random() < 0.7 else 0
    return [
        Element("mountains", (0, 0, 0, 0), (far, WHITE), _ridge(frame, 0.22, 0.34, base)),
        Element(
            "mountains", (0, 0, 0, 0), (main, WHITE), _ridge(frame, 0.1, 0.24, base), style=snow
        ),
    ]


def _ridge(frame: _Frame, low: float, high: float, base: int) -> tuple[Point, ...]:
    """Alternating valley/peak points across the width, then the two base corners."""
    width, horizon, rng = frame.width, frame.horizon, frame.rng
    points: list[Point] = []
    x = -round(width * rng.uniform(0.02, 0.12))
    peak = False
    while x < width * 1.1:
        rise = rng.uniform(low, high) if peak else rng.uniform(0.0, low * 0.4)
        points.append((x, round(horizon - rise * frame.height)))
        x += round(width * rng.uniform(0.08, 0.16))
        peak = not peak
    return (*points, (points[-1][0], base), (points[0][0], base))


def _sea(frame: _Frame) -> list[Element]:
    if not frame.has_sea:
        return []
    default = {"night": (18, 34, 78), "sunset": (72, 78, 140), "storm": (60, 80, 100)}
    colour = frame.scene.colour_of("sea") or default.get(frame.mood, (38, 104, 186))
    top, bottom = mix(colour, frame.sky[-1], 0.2), mix(colour, BLACK, 0.3)
    wave = mix(colour, WHITE, 0.35)
    depth = frame.height - frame.horizon
    count = max(8, frame.width * depth // 9000)
    waves = tuple(
        (
            frame.rng.randint(0, frame.width),
            frame.horizon + round(depth * frame.rng.random() ** 1.6),
        )
        for _ in range(count)
    )
    box = (0, frame.horizon, frame.width, frame.height)
    length = max(4, frame.width // 40)
    return [Element("sea", box, (top, bottom, wave), points=waves, size=length)]


def _land(frame: _Frame) -> list[Element]:
    grass = frame.shade((96, 164, 74))
    if frame.scene.has("hills"):
        return _hills(frame, frame.scene.colour_of("hills") or grass)
    if frame.coast:
        sand = frame.shade((226, 204, 150))
        shift = round(frame.width * 0.025) * (1 if frame.coast[0][0] == 0 else -1)
        beach = tuple((x + shift if x not in (0, frame.width) else x, y) for x, y in frame.coast)
        return [
            Element("polygon", (0, 0, 0, 0), (sand,), points=beach, backdrop=True),
            Element("polygon", (0, 0, 0, 0), (grass,), points=frame.coast, backdrop=True),
        ]
    if frame.foreground:
        box = (0, frame.horizon, frame.width, frame.height)
        return [Element("gradient", box, (grass, mix(grass, BLACK, 0.3)), backdrop=True)]
    return []


def _hills(frame: _Frame, colour: RGB) -> list[Element]:
    width, height, horizon = frame.width, frame.height, frame.horizon
    far = mix(colour, frame.sky[-1], 0.3)
    elements = [Element("gradient", (0, horizon, width, height), (colour, mix(colour, BLACK, 0.3)))]
    for index, tone in enumerate((far, colour, mix(colour, BLACK, 0.12))):
        x = frame.between(-0.1, 1.1, width)
        span = frame.between(0.5, 0.9, width)
        top = horizon - frame.between(0.02, 0.07, height) + index * round(height * 0.04)
        box = (x - span, top, x + span, top + 2 * (height - horizon))
        elements.append(Element("ellipse", box, (tone,)))
    return elements


# --- foreground -------------------------------------------------------------------------


def _boats(frame: _Frame) -> list[Element]:
    elements = []
    left, right = frame.sea_span
    depth = frame.height - frame.horizon
    for subject in frame.of("boat"):
        hull = subject.colour or (150, 62, 44)
        for _ in range(frame.count(subject)):
            width = frame.between(0.1, 0.16, frame.unit)
            x = frame.rng.randint(left + width // 2, max(left + width // 2 + 1, right - width // 2))
            y = frame.horizon + round(depth * frame.rng.uniform(0.2, 0.55))
            box = (x - width // 2, y - width, x + width // 2, y)
            elements.append(Element("boat", box, (frame.shade(hull), frame.shade(WHITE))))
    return elements


def _standing(frame: _Frame) -> list[Element]:
    """Houses and trees share the land in slots, drawn far to near."""
    items: list[tuple[str, Subject]] = []
    for subject in frame.scene.subjects:
        if subject.kind in ("house", "trees"):
            items.extend((subject.kind, subject) for _ in range(frame.count(subject)))
    if not items:
        return []
    frame.rng.shuffle(items)
    left, right = frame.land
    weights = [_SLOT_WEIGHT[kind] for kind, _ in items]
    unit = (right - left) / sum(weights)
    depth = frame.height - frame.horizon
    elements = []
    start = float(left)
    for (kind, subject), weight in zip(items, weights, strict=True):
        slot = weight * unit
        centre = round(start + slot * (0.5 + frame.rng.uniform(-0.15, 0.15)))
        start += slot
        base = frame.horizon + round(depth * frame.rng.uniform(0.3, 0.62))
        build = _house if kind == "house" else _tree
        elements.append(build(frame, subject, centre, base, slot))
    return sorted(elements, key=lambda element: element.box[3])


def _house(frame: _Frame, subject: Subject, centre: int, base: int, slot: float) -> Element:
    width = round(min(slot * 0.9, frame.unit * frame.rng.uniform(0.26, 0.32)))
    height = round(width * 0.95)
    wall = subject.colour or frame.rng.choice(_WALLS)
    roof = (
        mix(wall, BLACK, 0.5) if subject.colour else frame.rng.choice(((150, 52, 42), (90, 70, 70)))
    )
    window = (255, 220, 120) if frame.mood == "night" else (170, 210, 240)
    colours = (frame.shade(wall), frame.shade(roof), frame.shade((110, 70, 40)), window)
    box = (centre - width // 2, base - height, centre + width // 2, base)
    return Element("house", box, colours)


def _tree(frame: _Frame, subject: Subject, centre: int, base: int, slot: float) -> Element:
    height = frame.between(0.22, 0.34, frame.unit) * base // frame.height
    width = round(min(height * 0.6, slot * 1.4))
    green = subject.colour or frame.rng.choice(((46, 125, 50), (67, 150, 60), (34, 110, 70)))
    colours = (frame.shade(green), frame.shade((110, 72, 40)))
    box = (centre - width // 2, base - height, centre + width // 2, base)
    return Element("tree", box, colours, style=int(frame.rng.random() < 0.35))


def _flowers(frame: _Frame) -> list[Element]:
    elements = []
    left, right = frame.land
    depth = frame.height - frame.horizon
    for subject in frame.of("flowers"):
        for index in range(frame.count(subject)):
            petals = subject.colour or _FLOWER_COLOURS[(index + frame.rng.randint(0, 4)) % 5]
            radius = frame.between(0.028, 0.05, frame.unit)
            x = frame.rng.randint(left + radius, max(left + radius + 1, right - radius))
            base = frame.height - round(depth * frame.rng.uniform(0.02, 0.3))
            top = base - radius * frame.rng.randint(3, 5)
            centre = (120, 72, 30) if petals[1] > 170 and petals[2] < 100 else (255, 204, 40)
            colours = (frame.shade(petals), centre, frame.shade((60, 140, 60)))
            elements.append(Element("flower", (x - radius, top, x + radius, base), colours))
    return sorted(elements, key=lambda element: element.box[3])


def _shapes(frame: _Frame) -> list[Element]:
    items: list[Subject] = []
    for subject in frame.scene.subjects:
        if subject.kind in SHAPES:
            items.extend(subject for _ in range(frame.count(subject)))
    items = items[:24]
    elements = []
    palette = frame.scene.palette
    for index, (subject, box) in enumerate(zip(items, _grid(frame, len(items)), strict=True)):
        colour = subject.colour or (
            palette[index % len(palette)] if palette else frame.rng.choice(_SHAPE_COLOURS)
        )
        elements.append(Element(subject.kind, box, (colour, mix(colour, BLACK, 0.28))))
    return elements


def _grid(frame: _Frame, count: int) -> list[Box]:
    """``count`` square boxes spread over the canvas, rows centred."""
    if count == 0:
        return []
    width, height, rng = frame.width, frame.height, frame.rng
    columns = max(1, min(count, math.ceil(math.sqrt(count * width / height))))
    rows = math.ceil(count / columns)
    cell_w, cell_h = width / columns, height / rows
    side = min(cell_w, cell_h) * (0.62 if count > 1 else 0.52)
    boxes = []
    for index in range(count):
        row, column = divmod(index, columns)
        in_row = min(columns, count - row * columns)
        x = (column + 0.5 + (columns - in_row) / 2) * cell_w + rng.uniform(-0.06, 0.06) * cell_w
        y = (row + 0.5) * cell_h + rng.uniform(-0.06, 0.06) * cell_h
        half = side / 2 * rng.uniform(0.9, 1.05)
        boxes.append((round(x - half), round(y - half), round(x + half), round(y + half)))
    return boxes


def _texts(frame: _Frame) -> list[Element]:
    texts = frame.scene.texts[:3]
    if not texts:
        return []
    width, height = frame.width, frame.height
    band = round(height * (0.2 if len(texts) == 1 else 0.14))
    alone = not frame.scene.subjects
    centre = height // 2 if alone else round(height * 0.84)
    top = max(0, min(centre - band * len(texts) // 2, height - band * len(texts)))
    margin = round(width * 0.06)
    return [
        Element(
            "text", (margin, top + i * band, width - margin, top + (i + 1) * band), (WHITE,), text=t
        )
        for i, t in enumerate(texts)
    ]


_LAYERS: tuple[Callable[[_Frame], list[Element]], ...] = (
    _backdrop,
    _stars,
    _rainbow,
    _sun,
    _moon,
    _clouds,
    _birds,
    _mountains,
    _sea,
    _land,
    _boats,
    _standing,
    _flowers,
    _shapes,
    _texts,
)
