"""Say in one sentence what the renderer drew, from the same parse of the prompt it drew from.

Models that answer with text as well as images (Gemini's) describe their picture; the sketch
renderer does the same, deterministically: "Here is a picture of a red house, a yellow sun and
the blue sea." The editing tools get a sentence about what was done to the picture; a
``describe`` request's four prompt suggestions come from :mod:`.suggest`, not from here.
"""

from __future__ import annotations

from imagegate.core.requests import ImageRequest
from imagegate.providers.local.scene import RGB, Scene, Subject, parse_prompt
from imagegate.providers.local.vocab import COLOURS

__all__ = ["colour_name", "describe", "listed"]

_NOUNS: dict[str, tuple[str, str]] = {
    "stars": ("star", "stars"),
    "clouds": ("cloud", "clouds"),
    "mountains": ("mountain", "mountains"),
    "trees": ("tree", "trees"),
    "flowers": ("flower", "flowers"),
    "hills": ("hill", "hills"),
    "birds": ("bird", "birds"),
    "house": ("house", "houses"),
    "boat": ("boat", "boats"),
}
_THE = frozenset({"sun", "moon", "sky", "sea", "rainbow", "hills"})
_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_MOODS = {
    "night": " at night",
    "sunset": " at sunset",
    "dawn": " at dawn",
    "day": " on a sunny day",
    "storm": " under a stormy sky",
}
_TOOLS = {
    "upscale": "Here is your picture, upscaled.",
    "erase": "Here is your picture with the marked area erased.",
    "remove_background": "Here is your picture with the background removed.",
    "enhance": "Here is your enhanced picture.",
}
_COLOUR_NAMES: dict[RGB, str] = {}
for _name, _rgb in COLOURS.items():
    _COLOUR_NAMES.setdefault(_rgb, _name)


def describe(request: ImageRequest) -> str:
    """One sentence about the picture ``request`` produces."""
    if request.operation == "variation":
        return "Here is a variation of your picture."
    if request.operation in _TOOLS:
        return _TOOLS[request.operation]
    if request.operation == "blend":
        return f"Here is a blend of your {_number(len(request.images))} pictures."
    if request.operation not in ("generate", "edit", "outpaint", "replace_background"):
        return "Here is your picture."
    scene = parse_prompt(request.prompt)
    what = _scene_phrase(scene)
    if request.operation == "outpaint":
        return f"Here is your picture, extended{' with ' + what if what else ''}."
    if request.operation == "replace_background":
        return f"Here is your picture on a new background{' of ' + what if what else ''}."
    if request.operation == "edit":
        return f"Here is your edited picture, now with {what}." if what else _edited(scene)
    if not what:
        return f"Here is an abstract picture{_in_colours(scene)}."
    return f"Here is a picture of {what}{_MOODS.get(scene.mood or '', '')}."


def _edited(scene: Scene) -> str:
    return f"Here is your edited picture{_in_colours(scene)}."


def _scene_phrase(scene: Scene) -> str:
    things = [subject for subject in scene.subjects if subject.kind != "background"]
    phrases = [_subject_phrase(subject) for subject in things]
    phrases += [f'the words "{text}"' for text in scene.texts]
    if not phrases:
        return ""
    phrase = listed(phrases)
    backdrop = next((s for s in scene.subjects if s.kind == "background"), None)
    if backdrop is not None:
        colour = colour_name(backdrop.colour)
        phrase += f" on {_article(colour or 'p')} {colour + ' ' if colour else ''}background"
    return phrase


def listed(words: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _subject_phrase(subject: Subject) -> str:
    singular, plural = _NOUNS.get(subject.kind, (subject.kind, subject.kind + "s"))
    colour = f"{colour_name(subject.colour)} " if subject.colour else ""
    if subject.kind in _THE:
        return f"the {colour}{plural if subject.kind == 'hills' else singular}"
    if subject.count is None:
        return f"{colour}{plural}"
    if subject.count == 1:
        return f"{_article(colour or singular)} {colour}{singular}"
    return f"{_number(subject.count)} {colour}{plural}"


def _number(count: int) -> str:
    return _NUMBER_WORDS[count] if count < len(_NUMBER_WORDS) else str(count)


def _in_colours(scene: Scene) -> str:
    names = list(dict.fromkeys(colour_name(colour) for colour in scene.colours()))
    if not names:
        return ""
    return f" in {listed(names)}"


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def colour_name(colour: RGB | None) -> str:
    """The name of ``colour``, or of the nearest named colour for tints ("light blue")."""
    if colour is None:
        return ""
    exact = _COLOUR_NAMES.get(colour)
    if exact is not None:
        return exact
    return min(
        _COLOUR_NAMES.items(),
        key=lambda item: sum((a - b) ** 2 for a, b in zip(item[0], colour, strict=True)),
    )[1]
