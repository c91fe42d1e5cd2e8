"""Replicate's error shape (RFC 7807 problem details: ``{"title", "detail", "status"}``), which
the official SDKs turn into their exception message."""

from __future__ import annotations

from imagegate.errors import ImagegateError

TITLES = {
    400: "Invalid input",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Request entity too large",
    422: "Unprocessable entity",
    429: "Too many requests",
    500: "Internal server error",
    502: "Upstream error",
    503: "Service unavailable",
    504: "Upstream timeout",
}


def replicate_error_body(error: ImagegateError, request_id: str) -> dict[str, object]:
    title = "Insufficient credit" if error.code == "insufficient_quota" else None
    return {
        "title": title or TITLES.get(error.status, "Error"),
        "detail": f"{error.message} (request id: {request_id})",
        "status": error.status,
    }
