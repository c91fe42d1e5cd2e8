"""Whether client text is a plain decimal number ``int`` can take.

``str.isdigit`` is the wrong test for that: it is true for ``"²"`` and other Unicode digits that
``int`` refuses, and ``int`` refuses more than 4,300 digits. Each was once a 500.
"""

from __future__ import annotations

__all__ = ["is_decimal"]


def is_decimal(text: str, max_digits: int = 18) -> bool:
    """``text`` is 1 to ``max_digits`` ASCII digits (so ``int(text)`` cannot fail)."""
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()
