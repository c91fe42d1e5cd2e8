"""``/shorten``: four shorter forms of a prompt, deterministic, and the numbered-list format that
describe and shorten answers share (``1️⃣ …`` one per line)."""

from __future__ import annotations

import re

KEYCAPS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣")

_FILLER = frozenset((
    "very", "really", "extremely", "highly", "incredibly", "super", "quite", "truly", "just",
    "so", "such", "absolutely", "beautiful", "beautifully", "stunning", "amazing", "awesome",
    "gorgeous", "masterpiece", "best", "quality", "detailed", "intricate", "ultra", "hyper",
    "realistic", "photorealistic", "4k", "8k", "hd", "hdr", "uhd", "trending", "artstation",
    "award", "winning",
))  # fmt: skip
"""Words that make a prompt longer without changing what is drawn."""
_FUNCTION = frozenset((
    "a", "an", "the", "of", "with", "and", "or", "in", "on", "at", "by", "for", "from", "to",
    "into", "onto", "over", "under", "near", "is", "are", "that", "which", "this", "these",
    "those", "its", "their", "some",
))  # fmt: skip
_WORD = re.compile(r"[\w'-]+|[^\w\s]")


def shorten(text: str) -> list[str]:
    """Four prompts, each no longer than the one before: filler words dropped; then articles
    and prepositions too; then about two thirds of what is left; then at most three words."""
    words = [w for w in _WORD.findall(text) if w not in ",.;:!?"]
    plain = _trimmed([w for w in words if w.lower() not in _FILLER]) or words
    core = [w for w in plain if w.lower() not in _FUNCTION] or plain
    most = core[: max(1, len(core) - max(1, len(core) // 3))]
    few = core[: max(1, min(3, len(most) - 1))]
    options = [" ".join(plain), " ".join(core), " ".join(most), " ".join(few)]
    return [option or text.strip() for option in options]


def _trimmed(words: list[str]) -> list[str]:
    """``words`` without articles or prepositions left dangling at either end."""
    while words and words[-1].lower() in _FUNCTION:
        words = words[:-1]
    return words


def numbered(lines: list[str]) -> str:
    """``1️⃣ first`` … one line each (at most four)."""
    return "\n".join(f"{cap} {line}" for cap, line in zip(KEYCAPS, lines, strict=False))


def suggestion(text: str, index: int) -> str | None:
    """Line ``index`` (1–4) of a numbered list, without its number; None when missing."""
    cap = KEYCAPS[index - 1]
    for line in text.splitlines():
        if line.strip().startswith(cap):
            return line.strip().removeprefix(cap).strip() or None
    return None
