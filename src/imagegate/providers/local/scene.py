"""Prompt parsing: turn free text into a :class:`Scene` of subjects, colours, texts and a mood.

Parsing is a single left-to-right pass over lower-cased word tokens. A colour word (optionally
after ``light``/``dark``/…) binds to the next subject word if one follows within a few words
and no preposition, conjunction or punctuation intervenes ("a red house", "blue circle");
otherwise it joins the scene palette, which tints the sky or the abstract fallback. Text in
double, single or curly quotes is kept verbatim to be drawn as a banner. Parsing never fails:
an empty or unknown prompt simply yields a scene with no subjects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from imagegate.digits import is_decimal
from imagegate.providers.local.vocab import (
    BREAKERS,
    COLOURS,
    MODIFIERS,
    MOODS,
    NUMBERS,
    RGB,
    SUBJECT_WORDS,
    Word,
)

__all__ = ["RGB", "Scene", "Subject", "mix", "parse_prompt"]

_QUOTED = re.compile(r"\"([^\"]+)\"|“([^”]+)”|‘([^’]+)’|(?<![\w'])'([^']+)'(?![\w'])")
_TOKEN = re.compile(r"[a-z]+|\d+|[,.;:!?]")
_BIND_REACH = 3
_MAX_TEXT = 120
# Kinds that name one thing however often the prompt mentions them ("the sun ... the sun").
_SINGLETONS = frozenset({"sun", "moon", "sky", "sea", "background", "rainbow", "hills"})


@dataclass(frozen=True, slots=True)
class Subject:
    """One thing to draw: ``count`` is None for an unquantified plural ("trees")."""

    kind: str
    colour: RGB | None = None
    count: int | None = 1


@dataclass(frozen=True, slots=True)
class Scene:
    """What a prompt asks for, in prompt order."""

    subjects: tuple[Subject, ...] = ()
    palette: tuple[RGB, ...] = ()
    texts: tuple[str, ...] = ()
    mood: str | None = None

    def has(self, *kinds: str) -> bool:
        """Whether any subject is of one of ``kinds``."""
        return any(subject.kind in kinds for subject in self.subjects)

    def colour_of(self, kind: str) -> RGB | None:
        """The colour bound to the first subject of ``kind`` that has one."""
        return next((s.colour for s in self.subjects if s.kind == kind and s.colour), None)

    def colours(self) -> tuple[RGB, ...]:
        """Every colour the prompt names, once each: the palette, then subjects' colours."""
        named = (*self.palette, *(s.colour for s in self.subjects if s.colour is not None))
        return tuple(dict.fromkeys(named))


def mix(a: RGB, b: RGB, t: float) -> RGB:
    """Blend ``a`` toward ``b`` by ``t`` (0 keeps ``a``, 1 gives ``b``)."""
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def parse_prompt(prompt: str) -> Scene:
    """Parse ``prompt`` into a :class:`Scene`; never raises."""
    texts = tuple(_quoted_texts(prompt))
    parser = _Parser()
    tokens = _TOKEN.findall(_QUOTED.sub(" , ", prompt).lower())
    index = 0
    while index < len(tokens):
        index = parser.feed(tokens, index)
    return parser.finish(texts)


def _quoted_texts(prompt: str) -> list[str]:
    texts = []
    for match in _QUOTED.finditer(prompt):
        text = " ".join(next(group for group in match.groups() if group).split())
        if text:
            texts.append(text[:_MAX_TEXT])
    return texts


def _tint(colour: RGB, amount: float) -> RGB:
    return mix(colour, (255, 255, 255) if amount > 0 else (0, 0, 0), abs(amount))


@dataclass
class _Parser:
    subjects: list[Subject] = field(default_factory=list)
    palette: list[RGB] = field(default_factory=list)
    mood: str | None = None
    colour: RGB | None = None
    colour_age: int = 0
    count: int | None = None
    compound: int | None = None
    compound_number: bool = False

    def feed(self, tokens: list[str], index: int) -> int:
        """Consume the token(s) at ``index``; return the index of the next unread token."""
        colour, used = _colour_at(tokens, index)
        if colour is not None:
            self.compound = None
            self._hold_colour(colour)
            return index + used
        token = tokens[index]
        word = SUBJECT_WORDS.get(token)
        if word is not None:
            self._add_subject(word)
            return index + 1
        self.compound = None
        if token in NUMBERS or is_decimal(token, 64):
            self.count = NUMBERS[token] if token in NUMBERS else min(int(token[:3]), 200)
        elif token in MOODS:
            self.mood = MOODS[token]
        elif token in BREAKERS:
            self._release_colour()
            self.count = None
        else:
            self._age_colour()
        return index + 1

    def finish(self, texts: tuple[str, ...]) -> Scene:
        self._release_colour()
        return Scene(tuple(self.subjects), tuple(self.palette), texts, self.mood)

    def _hold_colour(self, colour: RGB) -> None:
        self._release_colour()
        self.colour, self.colour_age = colour, 0

    def _age_colour(self) -> None:
        self.colour_age += 1
        if self.colour_age >= _BIND_REACH:
            self._release_colour()

    def _release_colour(self) -> None:
        if self.colour is not None and self.colour not in self.palette:
            self.palette.append(self.colour)
        self.colour = None

    def _add_subject(self, word: Word) -> None:
        number, self.count = self.count, None
        count = word.implied or number or (None if word.plural else 1)
        if word.plural and count == 1:  # "a few trees": the article is not a count
            count = None
        if self.compound is not None and self.subjects[self.compound].kind == word.kind:
            # "pine trees", "ocean waves": the first noun only qualifies the second.
            earlier = self.subjects[self.compound]
            explicit = earlier.count if self.compound_number else None
            colour = earlier.colour or self.colour
            self.subjects[self.compound] = Subject(word.kind, colour, explicit or count)
            self.colour = None
            return
        self.compound_number = number is not None and number > 1
        subject = Subject(word.kind, self.colour, count)
        self.colour = None
        for position, earlier in enumerate(self.subjects):
            if earlier.kind == subject.kind and word.kind in _SINGLETONS:
                if earlier.colour is None and subject.colour is not None:
                    self.subjects[position] = Subject(earlier.kind, subject.colour, earlier.count)
                self.compound = position
                return
        self.subjects.append(subject)
        self.compound = len(self.subjects) - 1


def _colour_at(tokens: list[str], index: int) -> tuple[RGB | None, int]:
    """The colour named at ``index`` (with an optional modifier) and how many tokens it uses."""
    amount = MODIFIERS.get(tokens[index])
    start = index + 1 if amount is not None else index
    pair = " ".join(tokens[start : start + 2])
    if pair in COLOURS:
        colour, end = COLOURS[pair], start + 2
    elif start < len(tokens) and tokens[start] in COLOURS:
        colour, end = COLOURS[tokens[start]], start + 1
    else:
        return None, 0
    return (_tint(colour, amount) if amount else colour), end - index
