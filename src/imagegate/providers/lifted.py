"""Large base64 strings taken out of an upstream's JSON body before it is parsed.

A 1.5 MB ``b64_json`` answer parsed whole costs a 1.5 MB ``str`` (and the parser's pass over
it), which the gateway only decodes and passes on. :func:`lift_strings` cuts every string value
of a given key out of the raw body, leaving a short unique marker in its place: the rest of the
body is validated as usual (and costs almost nothing), and each payload stays a zero-copy
``memoryview`` of the body, which is decoded straight from there and sent on unchanged.

Only plain base64 may be used as lifted: the caller decodes every lifted value strictly, and a
value with an escape (never base64), a body cut short or anything else unusual sends it back to
the ordinary parse of the whole body, which sees exactly the bytes it always saw.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final

__all__ = ["Lifted", "lift_strings"]

MIN_LIFTED: Final = 4096
"""Shorter values are left to the parser: lifting them saves nothing."""
_WHITESPACE: Final = frozenset(b" \t\r\n")
_TOKEN: Final = secrets.token_hex(8)
"""Part of every marker, so no upstream can write one into its own body on purpose."""


@dataclass(frozen=True, slots=True)
class Lifted:
    """``body`` with the lifted values replaced by markers; ``values[marker]`` is the value
    the marker replaced (the text between its quotes), a view of the original body."""

    body: bytes
    values: dict[str, memoryview]


def lift_strings(body: bytes, key: str) -> Lifted | None:
    """Every string value of ``"key"`` of at least :data:`MIN_LIFTED` bytes, cut out of
    ``body``; None when there is none. A value holding an escape is cut at its first escaped
    quote, or whole: the caller must check each value (strict base64 has no backslash) and
    parse the body whole when one fails."""
    quoted = b'"' + key.encode() + b'"'
    size = len(body)
    spans: list[tuple[int, int]] = []
    at = body.find(quoted)
    while at >= 0:
        # A key: the literal cannot start inside a string, whose quotes are all escaped.
        i = _skip(body, at + len(quoted), size)
        if i < size and body[i] == 0x3A:  # ':'
            i = _skip(body, i + 1, size)
            if i < size and body[i] == 0x22:  # '"': a string value
                end = body.find(b'"', i + 1)
                if end < 0:
                    return None  # cut short: the parser says so
                if end - i - 1 >= MIN_LIFTED:
                    # Not searched for a backslash: one (an escape, or the start of an escaped
                    # quote that ended the span early) is not base64, and the caller, which
                    # decodes every value strictly, then parses the body whole.
                    spans.append((i + 1, end))
                at = body.find(quoted, end + 1)
                continue
        at = body.find(quoted, at + 1)
    if not spans:
        return None
    view = memoryview(body)
    parts: list[bytes] = []
    values: dict[str, memoryview] = {}
    last = 0
    for n, (start, end) in enumerate(spans):
        # In the body the marker is JSON text (NUL escaped); parsed, it is the key of values.
        name = f"lifted:{_TOKEN}:{n}"
        parts += (body[last:start], b"\\u0000" + name.encode())
        values["\x00" + name] = view[start:end]
        last = end
    parts.append(body[last:])
    return Lifted(b"".join(parts), values)


def _skip(body: bytes, i: int, size: int) -> int:
    while i < size and body[i] in _WHITESPACE:
        i += 1
    return i
