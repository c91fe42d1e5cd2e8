"""The one domain error tree; each API module renders it into its own envelope.

ImagegateError
├── ServerError                      500 server_error        (a gateway bug)
│   └── StorageUnavailable           503 code storage_unavailable (the blob store is down)
├── ClientError                      4xx: the caller must change something
│   ├── InvalidRequest               400 invalid_request_error
│   │   └── ContentPolicyViolation   400 code content_policy_violation (a safety block)
│   ├── AuthenticationFailed         401 authentication_error
│   ├── PermissionDenied             403 permission_error
│   ├── NotFound                     404 not_found_error
│   ├── Conflict                     409 invalid_request_error
│   ├── PayloadTooLarge              413 invalid_request_error
│   ├── IdempotencyMismatch          422 invalid_request_error
│   ├── RateLimited                  429 rate_limit_error
│   └── QuotaExceeded                429 insufficient_quota
└── UpstreamError                    502 upstream_error      (the provider failed)
    ├── UpstreamRejected             502 (the deployment's credentials/configuration: fail over)
    ├── Unavailable                  503 upstream_error      (no healthy deployment)
    └── UpstreamTimeout              504 upstream_error

:attr:`ImagegateError.should_retry` tells clients whether the same request may succeed later
(rendered as ``x-should-retry``, the header the official OpenAI/Anthropic SDKs obey): yes for
429, 5xx and anything with a ``retry_after`` (a 409 on an idempotency key still running), except
refusals that only a change of request, configuration or credit fixes (:data:`PERMANENT_CODES`).
"""

from __future__ import annotations

from typing import Literal

PERMANENT_CODES = frozenset(
    {"model_not_available", "content_policy_violation", "insufficient_quota"}
)
"""Codes no retry can fix whatever their status: the operator must configure a provider, the
prompt must change, or the key needs credit (a budget's reset is hours away, past any client's
backoff)."""


class ImagegateError(Exception):
    """Base of every error a client may see."""

    status: int = 500
    type: str = "server_error"
    default_code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.retry_after = retry_after
        self.retryable: bool | None = None
        """Overrides :attr:`should_retry` for this error when set."""
        self.headers: dict[str, str] = {}
        """Extra response headers (e.g. the rate-limit headers of a 429)."""

    @property
    def should_retry(self) -> bool:
        """Whether sending the same request again may succeed (see the module docstring)."""
        if self.retryable is not None:
            return self.retryable
        if self.code in PERMANENT_CODES:
            return False
        return self.status == 429 or self.status >= 500 or self.retry_after is not None


class ServerError(ImagegateError):
    """Something went wrong inside the gateway."""


class StorageUnavailable(ServerError):
    """The blob store cannot be reached; nothing was accepted, the client retries later."""

    status = 503
    default_code = "storage_unavailable"

    def __init__(self, message: str = "the asset store is unavailable; retry shortly") -> None:
        super().__init__(message, retry_after=5)


class ClientError(ImagegateError):
    status = 400
    type = "invalid_request_error"


class InvalidRequest(ClientError):
    pass


class ContentPolicyViolation(InvalidRequest):
    """The upstream refused the prompt (``stage="prompt"``) or withheld the images it made
    (``stage="output"``) for safety reasons. ``reason`` keeps the upstream's own word for it
    (e.g. ``IMAGE_SAFETY``, ``PROHIBITED_CONTENT``) so a front end that speaks the same dialect
    can pass it on unchanged."""

    default_code = "content_policy_violation"

    def __init__(
        self,
        message: str,
        *,
        stage: Literal["prompt", "output"] = "output",
        reason: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message, param=param)
        self.stage = stage
        self.reason = reason


class AuthenticationFailed(ClientError):
    status = 401
    type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDenied(ClientError):
    status = 403
    type = "permission_error"


class NotFound(ClientError):
    status = 404
    type = "not_found_error"


class Conflict(ClientError):
    status = 409


class PayloadTooLarge(ClientError):
    status = 413


class IdempotencyMismatch(ClientError):
    status = 422


class RateLimited(ClientError):
    status = 429
    type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class QuotaExceeded(ClientError):
    status = 429
    type = "insufficient_quota"
    default_code = "insufficient_quota"


class UpstreamError(ImagegateError):
    status = 502
    type = "upstream_error"


class UpstreamRejected(UpstreamError):
    """The upstream refused this deployment's credentials or configuration (502): fail over,
    never retry the same deployment; the operator has to fix it."""


class Unavailable(UpstreamError):
    status = 503


class UpstreamTimeout(UpstreamError):
    status = 504
