"""JSON responses serialised with orjson, and header values that are safe by construction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response


def json_response(
    body: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body), status_code=status_code, media_type="application/json", headers=headers
    )


def header_value(text: str) -> str:
    """``text`` as a header value that can always be sent: printable ASCII is kept, anything
    else (non-Latin-1 characters that would fail encoding, control characters such as CR/LF
    that would split the header) is percent-encoded as UTF-8, as is ``%`` itself.

    Headers are built from client input (parameter names a model ignored) after the work ran
    and was charged; a value that cannot be encoded there would turn a paid result into a 500.
    """
    if text.isascii() and text.isprintable() and "%" not in text:
        return text
    return "".join(
        char if " " <= char <= "~" and char != "%" else "".join(f"%{b:02X}" for b in char.encode())
        for char in text
    )
