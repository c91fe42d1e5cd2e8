"""Error envelopes: each wire format renders the one domain error tree in its own shape."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import orjson
from starlette.responses import Response

from imagegate.errors import ImagegateError

ErrorBody = Callable[[ImagegateError, str], dict[str, object]]
"""An error and the request id → the JSON body of one wire format's envelope."""


def openai_error_body(error: ImagegateError, request_id: str) -> dict[str, object]:
    return {
        "error": {
            "message": f"{error.message} (request id: {request_id})",
            "type": error.type,
            "param": error.param,
            "code": error.code,
        }
    }


class Envelopes:
    """Which wire format's error envelope a path gets: the fronts register path prefixes with
    their own body (Gemini's ``/v1beta/``); every other route answers in OpenAI's envelope."""

    def __init__(self, by_prefix: Iterable[tuple[str, ErrorBody]] = ()) -> None:
        self._by_prefix = tuple(by_prefix)

    def body(self, path: str) -> ErrorBody:
        for prefix, render in self._by_prefix:
            if path.startswith(prefix):
                return render
        return openai_error_body

    def response(self, path: str, error: ImagegateError, request_id: str) -> Response:
        """The error in the envelope of the wire format that owns ``path``."""
        headers = dict(error.headers)
        if error.retry_after is not None:
            headers["retry-after"] = str(max(1, math.ceil(error.retry_after)))
        if error.status == 401:
            headers.setdefault("www-authenticate", "Bearer")
        headers["x-should-retry"] = "true" if error.should_retry else "false"
        return Response(
            orjson.dumps(self.body(path)(error, request_id)),
            status_code=error.status,
            media_type="application/json",
            headers=headers,
        )
