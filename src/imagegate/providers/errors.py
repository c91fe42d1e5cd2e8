"""Upstream failures in the one domain error tree, and the helpers adapters map them with.

Boundary: an upstream's HTTP status, headers and message in; a domain error out. Each adapter
calls :func:`status_error` once for the statuses its provider shares with everyone (and adds
its own reading of its envelope first); the router only looks at the error's class:

* :class:`~imagegate.errors.ClientError` (400/413/…, a safety block): the client must change
  something. Never retried, never failed over.
* :class:`~imagegate.errors.RateLimited` (upstream 429): wait ``retry_after`` or fail over.
* :class:`UpstreamRejected` (upstream 401/402/403/404, quota gone): the operator's credentials
  or configuration are wrong for this deployment. Failed over at once, never retried there.
* :class:`~imagegate.errors.UpstreamError` and its 503/504 children: transient; retried with
  backoff, then failed over.

Messages never carry credentials: :func:`redact` removes every credential value, and upstream
text is cut to :data:`MAX_MESSAGE` characters.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Mapping
from typing import Final

from imagegate.core.conform import bad_response
from imagegate.errors import (
    ImagegateError,
    InvalidRequest,
    PayloadTooLarge,
    RateLimited,
    Unavailable,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
)

__all__ = [
    "MAX_MESSAGE",
    "bad_response",
    "parse_duration",
    "redact",
    "retry_after",
    "status_error",
]

MAX_MESSAGE: Final = 400
_GOOGLE_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def redact(text: str, credentials: Mapping[str, str]) -> str:
    """``text`` without any credential value, cut to :data:`MAX_MESSAGE` characters."""
    for value in credentials.values():
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def parse_duration(value: str | float | int | None) -> float | None:
    """Seconds from ``"1.5"``, ``"34s"`` (Google ``Duration``), an HTTP date, or a number."""
    if value is None:
        return None
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip()
        match = _GOOGLE_DURATION.match(text)
        try:
            seconds = float(match.group(1) if match else text)
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(text) if text else None
            if parsed is None:
                return None
            seconds = parsed.timestamp() - time.time()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The upstream's hint: ``retry-after-ms`` (OpenAI), else ``retry-after`` (s or a date)."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        seconds = parse_duration(millis)
        if seconds is not None:
            return seconds / 1000
    try:
        return parse_duration(headers.get("retry-after"))
    except (TypeError, ValueError):
        return None


def status_error(
    status: int,
    message: str,
    *,
    provider: str,
    credentials: Mapping[str, str],
    hint: float | None = None,
    code: str | None = None,
) -> ImagegateError:
    """The domain error for an upstream's non-2xx answer (see the module docstring)."""
    text = redact(message, credentials) or f"HTTP {status}"
    said = f"{provider} answered {status}: {text}"
    if status in (401, 403):
        # Never echo the upstream's words: an authentication error may quote the key.
        return UpstreamRejected(
            f"{provider} refused the configured credentials ({status}); check the deployment's "
            "API key",
            code="upstream_authentication_failed",
        )
    if status == 402 or code in ("insufficient_quota", "billing_hard_limit_reached"):
        return UpstreamRejected(said, code="upstream_quota_exhausted")
    if status == 404:
        return UpstreamRejected(said, code="upstream_not_found")
    if status == 429:
        return RateLimited(said, retry_after=hint, code="upstream_rate_limited")
    if status == 413:
        return PayloadTooLarge(said, code=code)
    if status in (400, 422):
        return InvalidRequest(said, code=code or "upstream_invalid_request")
    if status in (408, 504):
        return UpstreamTimeout(said, code="upstream_timeout")
    if status == 503:
        return Unavailable(said, retry_after=hint, code="upstream_unavailable")
    return UpstreamError(said, code="upstream_error", retry_after=hint)
