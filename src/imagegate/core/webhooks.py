"""Webhooks (Standard Webhooks scheme): an outbox row per try, signed, retried with backoff,
sent only through the SSRF guard (a target it refuses is refused when the client submits it,
see :meth:`WebhookSender.check_target`).

A task's webhooks are delivered one at a time, in the order they were queued: a delivery waits
while an earlier one of its task is pending, and a retry keeps its message's place (its row
keeps the message's ``created_at``), so ``SUCCESS`` never overtakes ``IN_PROGRESS``."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from imagegate.aio import wait_set
from imagegate.core.unit_of_work import UnitOfWork
from imagegate.errors import ImagegateError, InvalidRequest
from imagegate.observability import tracing
from imagegate.outbound import UNRESOLVED, OutboundGuard
from imagegate.storage.claims import claim_update
from imagegate.storage.tables import webhook_deliveries as deliveries

log = logging.getLogger("imagegate.webhooks")

DEFAULT_BACKOFF: tuple[float, ...] = (5, 30, 120, 300, 600, 1800)
"""Seconds before each retry: 7 tries over about 48 minutes."""
SEND_TIMEOUT = 15.0
LEASE_SECONDS = 60.0


def signing_key(secret: str) -> bytes:
    """A ``whsec_<base64>`` secret decodes to its key bytes; any other string is used as is."""
    if secret.startswith("whsec_"):
        with contextlib.suppress(ValueError):
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    return secret.encode()


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value: ``v1,<base64 HMAC-SHA256 of id.timestamp.body>``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


class WebhookOutbox(Protocol):
    """The outbox the sender delivers from; a delivery is queued inside the transaction that
    decided it, so it is sent if and only if that transaction commits."""

    async def enqueue(
        self,
        uow: UnitOfWork,
        *,
        url: str,
        secret: str | None,
        payload: dict[str, object],
        task_id: str | None,
        now: float,
    ) -> str:
        """Add a delivery, due at ``now``, in ``uow``; returns its message id."""
        ...


class WebhookSender:
    """Delivers due outbox rows; a failed try is recorded and the next one scheduled."""

    def __init__(
        self,
        engine: AsyncEngine,
        http: httpx.AsyncClient,
        guard: OutboundGuard,
        server_secret: bytes,
        *,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
        poll_interval: float = 1.0,
    ) -> None:
        self._engine = engine
        self._http = http
        self._guard = guard
        self._server_key = hmac.new(server_secret, b"webhooks", hashlib.sha256).digest()
        self._backoff = tuple(backoff)
        self._poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def max_tries(self) -> int:
        return len(self._backoff) + 1

    def server_signing_secret(self) -> str:
        """The key for webhooks whose request gave no secret, in ``whsec_`` form."""
        return "whsec_" + base64.b64encode(self._server_key).decode()

    def wake(self) -> None:
        self._wake.set()

    async def check_target(self, url: str | None, *, param: str) -> str | None:
        """Refuse, when a client submits it, a webhook target no delivery may reach: a URL
        that is not absolute http(s), or a host that resolves to a non-public address not
        allowed by ``IMAGEGATE_OUTBOUND_ALLOW`` (400, naming the setting). A host name that
        does not resolve is let through (DNS may be failing for a moment)."""
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidRequest(f"{param} must be an absolute http(s) URL", param=param)
        try:
            await self._guard.check_url(url, param=param)
        except InvalidRequest as exc:
            if exc.code == UNRESOLVED:  # perhaps for now only: each delivery looks again
                return url
            raise InvalidRequest(
                f"{exc.message}; webhooks go only to public addresses and to hosts or networks "
                "listed in IMAGEGATE_OUTBOUND_ALLOW",
                param=param,
                code="webhook_not_allowed",
            ) from None
        return url

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="webhook-sender")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                while await self.deliver_due():
                    pass
            except Exception:
                log.exception("webhook delivery loop failed; retrying")
            await wait_set(self._wake, self._poll_interval)
            self._wake.clear()

    async def deliver_due(self, now: float | None = None, limit: int = 20) -> int:
        """Send every delivery that is due; returns how many were tried."""
        now = time.time() if now is None else now
        due = await self._claim(now, limit)
        await asyncio.gather(*(self._deliver(row) for row in due))
        return len(due)

    async def _claim(self, now: float, limit: int) -> list[sa.RowMapping]:
        earlier = deliveries.alias("earlier")
        waits = (
            sa.exists()
            .where(
                earlier.c.task_id == deliveries.c.task_id,
                earlier.c.state == "pending",
                sa.or_(
                    earlier.c.created_at < deliveries.c.created_at,
                    sa.and_(
                        earlier.c.created_at == deliveries.c.created_at,
                        earlier.c.id < deliveries.c.id,
                    ),
                ),
            )
            .correlate(deliveries)
        )
        ready = sa.and_(
            deliveries.c.state == "pending",
            deliveries.c.due_at <= now,
            sa.or_(deliveries.c.lease_expires_at.is_(None), deliveries.c.lease_expires_at < now),
            sa.or_(deliveries.c.task_id.is_(None), ~waits),
        )
        candidates = (
            sa.select(deliveries.c.id).where(ready).order_by(deliveries.c.due_at).limit(limit)
        )
        statement = claim_update(
            deliveries,
            candidates,
            {"lease_expires_at": now + LEASE_SECONDS},
            postgres=self._engine.dialect.name == "postgresql",
            still_claimable=ready,
        )
        async with self._engine.begin() as conn:
            return list((await conn.execute(statement)).mappings().all())

    async def _deliver(self, row: sa.RowMapping) -> None:
        attributes = {
            "imagegate.webhook_id": row["message_id"],
            "imagegate.attempt": row["attempt"],
        }
        with tracing.span("webhook.deliver", **attributes) as span:
            status, error = await self._send(row)
            if span is not None:
                span.set_attribute("http.response.status_code", status or 0)
        now = time.time()
        delivered = status is not None and 200 <= status < 300
        async with self._engine.begin() as conn:
            await conn.execute(
                deliveries.update()
                .where(deliveries.c.id == row["id"])
                .values(
                    state="delivered" if delivered else "failed",
                    status_code=status,
                    error=error,
                    finished_at=now,
                )
            )
            if not delivered and row["attempt"] < self.max_tries:
                await self._schedule_retry(conn, row, now)
        if not delivered:
            log.info("webhook %s try %d failed: %s", row["message_id"], row["attempt"], error)

    async def _schedule_retry(self, conn: AsyncConnection, row: sa.RowMapping, now: float) -> None:
        delay = self._backoff[row["attempt"] - 1]
        jitter = delay * 0.1 * secrets.randbelow(1000) / 1000
        await conn.execute(
            deliveries.insert().values(
                message_id=row["message_id"],
                task_id=row["task_id"],
                url=row["url"],
                secret=row["secret"],
                payload=row["payload"],
                attempt=row["attempt"] + 1,
                state="pending",
                due_at=now + delay + jitter,
                created_at=row["created_at"],
            )
        )

    async def _send(self, row: sa.RowMapping) -> tuple[int | None, str | None]:
        body = row["payload"].encode()
        timestamp = int(time.time())
        key = signing_key(row["secret"]) if row["secret"] else self._server_key
        headers = {
            "content-type": "application/json",
            "webhook-id": row["message_id"],
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(key, row["message_id"], timestamp, body),
            "user-agent": "imagegate-webhooks",
        }
        try:
            async with asyncio.timeout(SEND_TIMEOUT):
                target = await self._guard.check_url(row["url"], param="webhook")
                request = target.build_request(
                    self._http, "POST", headers=headers, content=body, timeout=SEND_TIMEOUT
                )
                response = await self._http.send(request, follow_redirects=False)
                await response.aclose()
        except ImagegateError as exc:
            return None, exc.message[:500]
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            return None, f"{type(exc).__name__}"[:500]
        return response.status_code, None if response.is_success else f"HTTP {response.status_code}"
