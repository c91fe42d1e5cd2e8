"""A1111's error shape: FastAPI's ``{"detail": str}`` with the HTTP status."""

from __future__ import annotations

from imagegate.errors import ImagegateError


def a1111_error_body(error: ImagegateError, request_id: str) -> dict[str, object]:
    return {"detail": f"{error.message} (request id: {request_id})"}
