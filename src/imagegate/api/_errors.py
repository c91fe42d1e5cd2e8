"""Error envelopes: each wire format renders the one domain error tree in its own shape."""

from __future__ import annotations

import math

import orjson
from starlette.responses import Response

from imagegate.errors import ImagegateError

GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    422: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def openai_error_body(error: ImagegateError, request_id: str) -> dict[str, object]:
    return {
        "error": {
            "message": f"{error.message} (request id: {request_id})",
            "type": error.type,
            "param": error.param,
            "code": error.code,
        }
    }


def gemini_error_body(error: ImagegateError, request_id: str) -> dict[str, object]:
    return {
        "error": {
            "code": error.status,
            "message": f"{error.message} (request id: {request_id})",
            "status": GOOGLE_STATUS.get(error.status, "INTERNAL"),
        }
    }


MJ_RETRY_LATER = 23
"""Midjourney's business code for "queue full, retry later" (see ``_mj_wire``)."""


def mj_unavailable_body(error: ImagegateError, request_id: str) -> dict[str, object]:
    """A Midjourney submit answer for a 503: its clients read ``code`` before the status."""
    return {
        "code": MJ_RETRY_LATER,
        "description": f"{error.message} (request id: {request_id})",
        "result": None,
        "properties": {},
    }


def error_response_for_path(path: str, error: ImagegateError, request_id: str) -> Response:
    """The error in the envelope of the wire format that owns ``path``."""
    render = gemini_error_body if path.startswith("/v1beta/") else openai_error_body
    if error.status == 503 and "/mj/submit/" in path:
        render = mj_unavailable_body
    headers = dict(error.headers)
    if error.retry_after is not None:
        headers["retry-after"] = str(max(1, math.ceil(error.retry_after)))
    if error.status == 401:
        headers["www-authenticate"] = "Bearer"
    return Response(
        orjson.dumps(render(error, request_id)),
        status_code=error.status,
        media_type="application/json",
        headers=headers,
    )
