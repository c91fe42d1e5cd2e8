"""Errors the Midjourney front answers with business codes (4 parameter, 23 queue full)."""

from __future__ import annotations

from imagegate.errors import InvalidRequest, RateLimited


class ParameterError(InvalidRequest):
    """A prompt flag or a body field is unknown, repeated or malformed; ``param`` names it
    (``--ar``, ``customId``, ``base64Array`` …)."""

    default_code = "invalid_parameter"

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(message, param=param)


class QueueFull(RateLimited):
    """The caller already has as many tasks waiting as the gateway queues per key (code 23)."""

    default_code = "queue_full"
