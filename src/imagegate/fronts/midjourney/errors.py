"""The Midjourney submit routes' answer to an outage: their clients read the business
``code`` before the HTTP status, so a 503 also says "retry later" (code 23) in their shape."""

from __future__ import annotations

from imagegate.errors import ImagegateError
from imagegate.fronts.http.errors import openai_error_body
from imagegate.fronts.midjourney.wire import QUEUE_FULL


def submit_error_body(error: ImagegateError, request_id: str) -> dict[str, object]:
    """A 503 as a submit answer with code 23; any other error in the OpenAI envelope (the
    submit routes answer request problems themselves, with their own codes)."""
    if error.status != 503:
        return openai_error_body(error, request_id)
    return {
        "code": QUEUE_FULL,
        "description": f"{error.message} (request id: {request_id})",
        "result": None,
        "properties": {},
    }
