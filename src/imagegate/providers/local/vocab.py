"""The words the sketch renderer understands: colours, subjects, counts and moods."""

from __future__ import annotations

from typing import Final, NamedTuple

RGB = tuple[int, int, int]

COLOURS: Final[dict[str, RGB]] = {
    "red": (220, 38, 38),
    "orange": (249, 131, 22),
    "yellow": (250, 214, 30),
    "green": (46, 160, 67),
    "blue": (37, 99, 235),
    "purple": (130, 60, 200),
    "violet": (143, 82, 230),
    "pink": (244, 114, 182),
    "magenta": (217, 30, 170),
    "cyan": (20, 200, 225),
    "teal": (15, 130, 130),
    "turquoise": (45, 210, 190),
    "navy": (20, 35, 100),
    "indigo": (75, 50, 160),
    "brown": (130, 80, 40),
    "beige": (225, 205, 165),
    "gold": (235, 180, 30),
    "golden": (235, 180, 30),
    "silver": (192, 196, 204),
    "grey": (128, 128, 128),
    "gray": (128, 128, 128),
    "black": (20, 20, 24),
    "white": (248, 248, 246),
    "crimson": (190, 20, 50),
    "scarlet": (240, 45, 20),
    "maroon": (120, 20, 35),
    "olive": (128, 128, 40),
    "lime": (150, 225, 40),
    "mint": (150, 235, 190),
    "lavender": (190, 165, 235),
    "coral": (255, 120, 95),
    "salmon": (250, 140, 115),
    "peach": (255, 190, 150),
    "amber": (255, 175, 0),
    "emerald": (20, 170, 100),
    "azure": (40, 140, 255),
    "sky blue": (110, 190, 240),
    "ivory": (255, 252, 232),
    "cream": (255, 245, 210),
    "tan": (210, 180, 140),
    "ruby": (200, 15, 60),
    "sapphire": (20, 60, 180),
    "jade": (0, 160, 110),
    "plum": (140, 60, 130),
    "lilac": (200, 160, 220),
    "aqua": (0, 220, 220),
    "charcoal": (54, 60, 66),
    "bronze": (205, 127, 50),
    "copper": (184, 115, 51),
    "rust": (183, 65, 14),
    "khaki": (195, 176, 125),
    "chocolate": (105, 60, 30),
    "sand": (220, 195, 140),
    "forest green": (34, 100, 45),
    "sea green": (46, 139, 87),
    "hot pink": (255, 70, 170),
    "royal blue": (50, 80, 225),
    "baby blue": (160, 205, 245),
}

MODIFIERS: Final[dict[str, float]] = {
    "light": 0.45,
    "pale": 0.6,
    "pastel": 0.55,
    "bright": 0.2,
    "dark": -0.45,
    "deep": -0.3,
}
"""Colour prefixes: positive values mix toward white, negative toward black."""


class Word(NamedTuple):
    """How a subject word maps to a subject: its kind, whether it is plural, an implied count."""

    kind: str
    plural: bool = False
    implied: int | None = None


def _forms(kind: str, singular: tuple[str, ...], plural: tuple[str, ...]) -> dict[str, Word]:
    words = {word: Word(kind) for word in singular}
    words.update({word: Word(kind, plural=True) for word in plural})
    return words


SUBJECT_WORDS: Final[dict[str, Word]] = {
    **_forms("sun", ("sun", "sunshine"), ("suns",)),
    **_forms("moon", ("moon", "crescent"), ("moons",)),
    **_forms("stars", ("star",), ("stars", "starry", "starlight")),
    **_forms("sky", ("sky",), ("skies",)),
    **_forms("clouds", ("cloud",), ("clouds", "cloudy")),
    **_forms("mountains", ("mountain", "peak", "volcano"), ("mountains", "peaks", "alps")),
    **_forms(
        "sea",
        ("sea", "ocean", "water", "lake", "river", "bay", "beach", "coast", "shore"),
        ("seas", "oceans", "waters", "lakes", "waves", "rivers"),
    ),
    **_forms("trees", ("tree", "pine", "oak", "palm"), ("trees", "pines", "oaks", "palms")),
    "forest": Word("trees", plural=True, implied=10),
    "forests": Word("trees", plural=True, implied=12),
    "woods": Word("trees", plural=True, implied=9),
    "jungle": Word("trees", plural=True, implied=12),
    **_forms(
        "flowers",
        ("flower", "rose", "tulip", "daisy", "blossom", "sunflower"),
        ("flowers", "roses", "tulips", "daisies", "blossoms", "sunflowers", "garden"),
    ),
    **_forms(
        "house",
        ("house", "home", "cottage", "cabin", "hut", "barn", "building"),
        ("houses", "homes", "cottages", "cabins", "huts", "village", "buildings"),
    ),
    **_forms(
        "hills", ("hill", "meadow", "field", "grass", "valley"), ("hills", "meadows", "fields")
    ),
    **_forms("birds", ("bird", "seagull", "gull"), ("birds", "seagulls", "gulls")),
    **_forms("boat", ("boat", "ship", "sailboat", "yacht"), ("boats", "ships", "sailboats")),
    **_forms("rainbow", ("rainbow",), ("rainbows",)),
    **_forms("circle", ("circle", "ball", "dot", "disc", "disk", "sphere", "orb"), ()),
    **_forms("circle", (), ("circles", "balls", "dots", "discs", "disks", "spheres", "orbs")),
    **_forms("square", ("square", "box", "cube", "rectangle"), ()),
    **_forms("square", (), ("squares", "boxes", "cubes", "rectangles")),
    **_forms("triangle", ("triangle", "pyramid"), ("triangles", "pyramids")),
    **_forms("heart", ("heart",), ("hearts",)),
    **_forms("background", ("background", "backdrop", "wallpaper", "canvas"), ()),
}

NUMBERS: Final[dict[str, int]] = {
    "a": 1,
    "an": 1,
    "one": 1,
    "single": 1,
    "two": 2,
    "pair": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "dozen": 12,
}

MOODS: Final[dict[str, str]] = {
    "night": "night",
    "nighttime": "night",
    "midnight": "night",
    "nocturnal": "night",
    "sunset": "sunset",
    "sundown": "sunset",
    "dusk": "sunset",
    "evening": "sunset",
    "twilight": "sunset",
    "sunrise": "dawn",
    "dawn": "dawn",
    "morning": "dawn",
    "day": "day",
    "daytime": "day",
    "noon": "day",
    "sunny": "day",
    "storm": "storm",
    "stormy": "storm",
    "rainy": "storm",
    "gloomy": "storm",
}

BREAKERS: Final[frozenset[str]] = frozenset(
    {
        "and",
        "or",
        "with",
        "under",
        "over",
        "by",
        "in",
        "on",
        "of",
        "at",
        "near",
        "beside",
        "behind",
        "above",
        "below",
        "from",
        "to",
        "is",
        "are",
        "against",
        "across",
        "into",
        ",",
        ".",
        ";",
        ":",
        "!",
        "?",
    }
)
"""Words that end a colour's reach: in "red and a house" the red does not bind to the house."""

SHAPES: Final[frozenset[str]] = frozenset({"circle", "square", "triangle", "heart"})
LANDSCAPE: Final[frozenset[str]] = frozenset(
    {
        "sun",
        "moon",
        "stars",
        "sky",
        "clouds",
        "mountains",
        "sea",
        "trees",
        "flowers",
        "house",
        "hills",
        "birds",
        "boat",
        "rainbow",
    }
)
