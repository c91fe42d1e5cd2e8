"""Midjourney prompt syntax: leading image URLs, the text, then ``--flag value`` parameters.

Recognised flags (aliases in brackets) and what they do here:

- ``--ar W:H`` [``--aspect``]: the output's aspect ratio; the model's declared size closest to
  it is used (``core.params.fit_size``).
- ``--seed N`` (0–4294967295): the seed of the first image; the others use the next ones.
- ``--no a, b c``: each comma-separated word or phrase is removed from the prompt text.
- ``--v N`` [``--version``] / ``--niji [N]``: recorded (``--niji`` sets the bot type); one of
  the two at most.
- ``--stylize N`` [``--s``] (0–1000, default 100): ``strength`` = N/1000 on every request.
- ``--chaos N`` [``--c``] (0–100): how different the four grid images are (see ``plans``).
- ``--q N`` [``--quality``] (.25, .5, 1, 2, 4): render side scale (N × 1024 px before fitting
  to a declared size) and quality tier (.25 low, .5 medium, ≥ 2 high, when declared).
- ``--tile``: each image made seamlessly tileable (``pixels.make_tileable``).
- ``--zoom N`` (1 < N ≤ 2): only in a Custom Zoom modal: zoom out by N.
- ``--fast`` / ``--turbo`` / ``--relax``: the speed tier for this task (overrides the route's).

A leading em dash (``—ar``, as phone keyboards write ``--``) counts as ``--``. Anything else
that starts with ``--``, a repeated flag, a missing or malformed value, or text after a flag's
value raises :class:`ParameterError` naming the flag.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from imagegate.core.midjourney.errors import ParameterError
from imagegate.digits import is_decimal

MAX_SEED = 4294967295
VERSIONS = frozenset({"1", "2", "3", "4", "5", "5.0", "5.1", "5.2", "6", "6.0", "6.1", "7"})
NIJI_VERSIONS = frozenset({"4", "5", "6"})
QUALITIES = (0.25, 0.5, 1.0, 2.0, 4.0)
SPEEDS = ("fast", "turbo", "relax")

_URL = re.compile(r"https?://\S+", re.IGNORECASE)
_RATIO = re.compile(r"(\d{1,4}):(\d{1,4})")
_NUMBER = re.compile(r"\d*\.?\d+")


@dataclass(frozen=True, slots=True)
class PromptFlags:
    """The flags of one prompt, with Midjourney's defaults for those not given."""

    aspect: tuple[int, int] = (1, 1)
    seed: int | None = None
    no: tuple[str, ...] = ()
    version: str | None = None
    niji: str | None = None
    stylize: int = 100
    chaos: int = 0
    quality: float = 1.0
    tile: bool = False
    zoom: float | None = None
    speed: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedPrompt:
    """A prompt taken apart: ``text`` is what the model draws (``--no`` words removed)."""

    text: str
    image_urls: tuple[str, ...]
    flags: PromptFlags
    given: tuple[str, ...] = field(default=())
    """The flags as given, normalised (``--ar 16:9``), in order."""

    def final_prompt(self, seed: int | None = None) -> str:
        """The prompt as run: URLs, text and normalised flags (``--seed`` as used)."""
        flags = [flag for flag in self.given if not flag.startswith("--seed ")]
        if seed is not None:
            flags.append(f"--seed {seed}")
        return " ".join([*self.image_urls, self.text, *flags]).strip()


def parse_prompt(prompt: str, *, allow_zoom: bool = False) -> ParsedPrompt:
    """Split ``prompt`` into image URLs, text and flags; :class:`ParameterError` on bad flags."""
    tokens = prompt.replace("—", "--").split()
    urls: list[str] = []
    while tokens and _URL.fullmatch(tokens[0]):
        urls.append(tokens.pop(0))
    first_flag = next((i for i, t in enumerate(tokens) if t.startswith("--")), len(tokens))
    text = " ".join(tokens[:first_flag])
    flags, given = _parse_flags(tokens[first_flag:], allow_zoom=allow_zoom)
    return ParsedPrompt(_without(text, flags.no), tuple(urls), flags, tuple(given))


def _parse_flags(tokens: list[str], *, allow_zoom: bool) -> tuple[PromptFlags, list[str]]:
    flags = PromptFlags()
    seen: set[str] = set()
    given: list[str] = []
    index = 0
    while index < len(tokens):
        name = tokens[index].lower()
        end = next((j for j in range(index + 1, len(tokens)) if tokens[j].startswith("--")), None)
        values = tokens[index + 1 : end]
        index = len(tokens) if end is None else end
        spec = _FLAGS.get(name)
        if spec is None:
            raise ParameterError(f"Invalid parameter: unknown flag {name}", param=name)
        if spec.field in seen:
            raise ParameterError(f"Invalid parameter: {name} is given twice", param=name)
        if spec.field == "zoom" and not allow_zoom:
            raise ParameterError(
                "Invalid parameter: --zoom is only valid in a Custom Zoom", param=name
            )
        seen.add(spec.field)
        value = spec.parse(name, values)
        flags = replace(flags, **{spec.field: value})
        given.append(_normalised(spec.field, value))
    _check_combination(flags)
    return flags, given


def _check_combination(flags: PromptFlags) -> None:
    if flags.version is not None and flags.niji is not None:
        raise ParameterError("Invalid parameter: --v and --niji cannot be combined", param="--niji")


_CANONICAL = {"aspect": "--ar", "version": "--v", "quality": "--q"}


def _normalised(field_name: str, value: Any) -> str:
    flag = _CANONICAL.get(field_name, "--" + field_name)
    if field_name == "aspect":
        return f"{flag} {value[0]}:{value[1]}"
    if field_name == "no":
        return f"{flag} " + ", ".join(value)
    if field_name == "speed":
        return f"--{value}"
    if value is True or value == "":
        return flag
    return f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}"


def _without(text: str, words: tuple[str, ...]) -> str:
    for word in words:
        text = re.sub(rf"(?<!\w){re.escape(word)}(?!\w)", " ", text, flags=re.IGNORECASE)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    text = re.sub(r"([,;:])(\s*[,;:])+", r"\1", text)
    return " ".join(text.split()).strip(" ,;:")


# --- value parsers ---------------------------------------------------------------------------
def _one(name: str, values: list[str]) -> str:
    if not values:
        raise ParameterError(f"Invalid parameter: {name} needs a value", param=name)
    if len(values) > 1:
        raise ParameterError(
            f"Invalid parameter: {name} takes one value, got {' '.join(values)!r}", param=name
        )
    return values[0]


def _none(name: str, values: list[str]) -> bool:
    if values:
        raise ParameterError(
            f"Invalid parameter: {name} takes no value, got {' '.join(values)!r}", param=name
        )
    return True


def _ratio(name: str, values: list[str]) -> tuple[int, int]:
    match = _RATIO.fullmatch(_one(name, values))
    if match is None or int(match.group(1)) == 0 or int(match.group(2)) == 0:
        raise ParameterError(
            f"Invalid parameter: {name} must be W:H with whole numbers above 0, like 16:9",
            param=name,
        )
    return int(match.group(1)), int(match.group(2))


def _integer(low: int, high: int) -> Callable[[str, list[str]], int]:
    def parse(name: str, values: list[str]) -> int:
        text = _one(name, values)
        if not is_decimal(text) or not low <= int(text) <= high:
            raise ParameterError(
                f"Invalid parameter: {name} must be a whole number from {low} to {high}",
                param=name,
            )
        return int(text)

    return parse


def _quality(name: str, values: list[str]) -> float:
    text = _one(name, values)
    if not _NUMBER.fullmatch(text) or float(text) not in QUALITIES:
        raise ParameterError(
            f"Invalid parameter: {name} must be one of .25, .5, 1, 2, 4", param=name
        )
    return float(text)


def _zoom(name: str, values: list[str]) -> float:
    text = _one(name, values)
    if not _NUMBER.fullmatch(text) or not 1 < float(text) <= 2:
        raise ParameterError(
            f"Invalid parameter: {name} must be a number above 1 and at most 2", param=name
        )
    return float(text)


def _version(name: str, values: list[str]) -> str:
    text = _one(name, values)
    if text not in VERSIONS:
        raise ParameterError(
            f"Invalid parameter: {name} must be one of {', '.join(sorted(VERSIONS))}", param=name
        )
    return text


def _niji(name: str, values: list[str]) -> str:
    if not values:
        return ""
    text = _one(name, values)
    if text not in NIJI_VERSIONS:
        raise ParameterError(
            f"Invalid parameter: {name} must be one of {', '.join(sorted(NIJI_VERSIONS))}",
            param=name,
        )
    return text


def _no(name: str, values: list[str]) -> tuple[str, ...]:
    words = tuple(w.strip() for w in " ".join(values).split(",") if w.strip())
    if not words:
        raise ParameterError(f"Invalid parameter: {name} needs the words to leave out", param=name)
    return words


def _speed(speed: str) -> Callable[[str, list[str]], str]:
    def parse(name: str, values: list[str]) -> str:
        _none(name, values)
        return speed

    return parse


@dataclass(frozen=True, slots=True)
class _Flag:
    field: str
    parse: Callable[[str, list[str]], Any]


_FLAGS: dict[str, _Flag] = {
    "--ar": _Flag("aspect", _ratio),
    "--aspect": _Flag("aspect", _ratio),
    "--seed": _Flag("seed", _integer(0, MAX_SEED)),
    "--no": _Flag("no", _no),
    "--v": _Flag("version", _version),
    "--version": _Flag("version", _version),
    "--niji": _Flag("niji", _niji),
    "--stylize": _Flag("stylize", _integer(0, 1000)),
    "--s": _Flag("stylize", _integer(0, 1000)),
    "--chaos": _Flag("chaos", _integer(0, 100)),
    "--c": _Flag("chaos", _integer(0, 100)),
    "--q": _Flag("quality", _quality),
    "--quality": _Flag("quality", _quality),
    "--tile": _Flag("tile", _none),
    "--zoom": _Flag("zoom", _zoom),
    **{f"--{speed}": _Flag("speed", _speed(speed)) for speed in SPEEDS},
}
