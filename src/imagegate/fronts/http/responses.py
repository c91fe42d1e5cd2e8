"""JSON responses serialised with orjson, and header values that are safe by construction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send


def json_response(
    body: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body), status_code=status_code, media_type="application/json", headers=headers
    )


class PartsResponse(Response):
    """A body sent as its parts, in order, never joined into one buffer (a large upstream's
    base64 goes out as the view of its answer that it is); the same status and headers as
    ``Response(b"".join(parts))``, Content-Length included."""

    def __init__(
        self,
        parts: Sequence[bytes | memoryview],
        *,
        media_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.parts = list(parts) or [b""]
        length = str(sum(len(part) for part in self.parts))
        super().__init__(
            None, media_type=media_type, headers={**(headers or {}), "content-length": length}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        last = len(self.parts) - 1
        for n, part in enumerate(self.parts):
            await send({"type": "http.response.body", "body": part, "more_body": n < last})


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
