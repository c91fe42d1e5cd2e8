"""Which exceptions mean "a storage service is down" (the database unreachable, its pool
exhausted, the asset directory unusable) rather than a bug: each becomes a retryable 503 with
``Retry-After`` in the route's own envelope instead of a 500."""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

from imagegate.errors import Unavailable

RETRY_AFTER_SECONDS = 5.0
OUTAGES: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
    OSError,
)
"""What a route may raise when storage is down (``OSError`` covers refused and reset
connections, socket timeouts and a full or read-only disk)."""


def outage_error(exc: BaseException) -> Unavailable | None:
    """The client's 503 for ``exc`` when it is an outage, else None."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return _database()
    if not isinstance(exc, OUTAGES):
        return None
    if isinstance(exc, OSError) and not isinstance(exc, ConnectionError | TimeoutError):
        return Unavailable(
            "the gateway's asset store is unavailable; retry shortly",
            code="storage_unavailable",
            retry_after=RETRY_AFTER_SECONDS,
        )
    return _database()


def _database() -> Unavailable:
    return Unavailable(
        "the gateway's database is unavailable; retry shortly",
        code="database_unavailable",
        retry_after=RETRY_AFTER_SECONDS,
    )
