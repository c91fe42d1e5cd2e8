"""Google's error envelope: ``{"error": {"code", "message", "status"}}``."""

from __future__ import annotations

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


def gemini_error_body(error: ImagegateError, request_id: str) -> dict[str, object]:
    return {
        "error": {
            "code": error.status,
            "message": f"{error.message} (request id: {request_id})",
            "status": GOOGLE_STATUS.get(error.status, "INTERNAL"),
        }
    }
