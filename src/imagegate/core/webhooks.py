"""Webhooks (Standard Webhooks scheme): an outbox row per try, signed, retried with backoff,
sent only through the SSRF guard (a target it refuses is refused when the client submits it,
see :meth:`WebhookSender.check_target`).

A task's webhooks are delivered one at a time, in the order they were queued: a delivery waits
while an earlier one of its task is pending, and a retry keeps its message's place (its row
keeps the message's ``created_at``), so ``SUCCESS`` never overtakes ``IN_PROGRESS``.

The sender's tries are claimed and recorded through a :class:`WebhookDeliveryRepository`
(``storage/repositories/webhook_deliveries.py``)."""

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
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from imagegate.aio import wait_set
from imagegate.core.unit_of_work import UnitOfWork
from imagegate.errors import ImagegateError, InvalidRequest
from imagegate.observability import tracing
from imagegate.outbound import UNRESOLVED, OutboundGuard

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


@dataclass(frozen=True, slots=True)
class Delivery:
    """One try of one message (an outbox row): its ``attempt``, and what every try of the
    message shares (``created_at`` is the message's, and keeps its place in its task's order)."""

    id: int
    message_id: str
    task_id: str | None
    url: str
    secret: str | None
    payload: str
    attempt: int
    created_at: float


class WebhookDeliveryRepository(Protocol):
    """The outbox as the sender sees it: claims due tries, records their outcome."""

    async def claim_due(self, now: float, limit: int, lease_expires_at: float) -> list[Delivery]:
        """Lease until ``lease_expires_at``, and return, up to ``limit`` pending tries due by
        ``now`` (earliest due first) whose lease (if any) has run out and whose task has no
        earlier message pending; a try another sender holds is never returned twice."""
        ...

    async def finish(
        self,
        delivery: Delivery,
        *,
        delivered: bool,
        status_code: int | None,
        error: str | None,
        now: float,
        retry_due_at: float | None,
    ) -> None:
        """Record the try's outcome (``delivered`` or failed, at ``now``) and, given
        ``retry_due_at``, queue the message's next try, due then, in the same transaction."""
        ...


class WebhookSender:
    """Delivers due outbox rows; a failed try is recorded and the next one scheduled."""

    def __init__(
        self,
        deliveries: WebhookDeliveryRepository,
        http: httpx.AsyncClient,
        guard: OutboundGuard,
        server_secret: bytes,
        *,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
        poll_interval: float = 1.0,
    ) -> None:
        self._deliveries = deliveries
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
        due = await self._deliveries.claim_due(now, limit, now + LEASE_SECONDS)
        await asyncio.gather(*(self._deliver(delivery) for delivery in due))
        return len(due)

    async def _deliver(self, delivery: Delivery) -> None:
        attributes = {
            "imagegate.webhook_id": delivery.message_id,
            "imagegate.attempt": delivery.attempt,
        }
        with tracing.span("webhook.deliver", **attributes) as span:
            status, error = await self._send(delivery)
            if span is not None:
                span.set_attribute("http.response.status_code", status or 0)
        now = time.time()
        delivered = status is not None and 200 <= status < 300
        retry = not delivered and delivery.attempt < self.max_tries
        await self._deliveries.finish(
            delivery,
            delivered=delivered,
            status_code=status,
            error=error,
            now=now,
            retry_due_at=self._retry_due_at(delivery, now) if retry else None,
        )
        if not delivered:
            log.info("webhook %s try %d failed: %s", delivery.message_id, delivery.attempt, error)

    def _retry_due_at(self, delivery: Delivery, now: float) -> float:
        """When the try after ``delivery`` is due: its backoff, plus up to 10% jitter."""
        delay = self._backoff[delivery.attempt - 1]
        jitter = delay * 0.1 * secrets.randbelow(1000) / 1000
        return now + delay + jitter

    async def _send(self, delivery: Delivery) -> tuple[int | None, str | None]:
        body = delivery.payload.encode()
        timestamp = int(time.time())
        key = signing_key(delivery.secret) if delivery.secret else self._server_key
        headers = {
            "content-type": "application/json",
            "webhook-id": delivery.message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(key, delivery.message_id, timestamp, body),
            "user-agent": "imagegate-webhooks",
        }
        try:
            async with asyncio.timeout(SEND_TIMEOUT):
                target = await self._guard.check_url(delivery.url, param="webhook")
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
