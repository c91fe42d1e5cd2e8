"""Idempotency records: the first request with a key runs, its answer is kept for 24 hours and
replayed to every retry with the same key and body.

A running request's record names the process that runs it (``lease_owner``) and holds a lease
that process renews (:meth:`IdempotencyStore.renew`, from the lease keeper) while it lives; a
retry arriving after the lease ran out (its process died) takes the record over and runs."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.storage.tables import idempotency

log = logging.getLogger("imagegate.idempotency")

TTL_SECONDS = 24 * 3600
LEASE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class Claim:
    """``new``: run the request; ``replay``: answer ``response``; ``in_flight``/``mismatch``:
    refuse with 409/422."""

    outcome: Literal["new", "replay", "in_flight", "mismatch"]
    response: StoredResponse | None = None
    replaces: str | None = None
    """``new`` after a take-over: the request id of the attempt whose owner stopped (its answer
    never reached the client; what it charged is to be voided)."""


class IdempotencyStore:
    """``owner``: this process's id (its in-flight records carry it); ``lease_seconds``: how
    long a record outlives its owner's last renewal."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        owner: str = "local",
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self._engine = engine
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._live: set[tuple[str, str]] = set()
        """Records of requests running here: only their leases are renewed (one whose
        clean-up failed, the database being down, expires and is taken over)."""

    async def claim(
        self,
        scope: str,
        key: str,
        body_sha256: str,
        *,
        now: float | None = None,
        owner: str | None = None,
        request_id: str | None = None,
    ) -> Claim:
        """``request_id``: the attempt's (kept, so a take-over knows what it replaces);
        ``now``/``owner``: tests stand in for another process at another time."""
        now = time.time() if now is None else now
        owner = owner or self.owner
        for _ in range(3):
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(
                        idempotency.insert().values(
                            scope=scope,
                            idempotency_key=key,
                            body_sha256=body_sha256,
                            state="in_flight",
                            created_at=now,
                            lease_owner=owner,
                            lease_expires_at=now + self.lease_seconds,
                            request_id=request_id,
                        )
                    )
                self._live.add((scope, key))
                return Claim("new")
            except IntegrityError:
                existing = await self._existing(scope, key)
            if existing is None:
                continue
            if existing["created_at"] < now - TTL_SECONDS:
                await self.forget(scope, key)
                continue
            if (
                _orphaned(existing, now)
                and existing["body_sha256"] == body_sha256
                and await self._take_over(existing, owner, now, request_id)
            ):
                log.warning(
                    "took over an Idempotency-Key whose owner (%s) stopped", existing["lease_owner"]
                )
                self._live.add((scope, key))
                return Claim("new", replaces=existing["request_id"])
            return _judge(existing, body_sha256)
        return Claim("in_flight")

    async def _take_over(
        self, existing: sa.RowMapping, owner: str, now: float, request_id: str | None
    ) -> bool:
        """Make an orphaned in-flight record ours; False when another retry was first."""
        c = idempotency.c
        async with self._engine.begin() as conn:
            result = await conn.execute(
                idempotency.update()
                .where(
                    c.scope == existing["scope"],
                    c.idempotency_key == existing["idempotency_key"],
                    c.state == "in_flight",
                    c.lease_expires_at.is_(None)
                    if existing["lease_expires_at"] is None
                    else c.lease_expires_at == existing["lease_expires_at"],
                )
                .values(
                    lease_owner=owner,
                    lease_expires_at=now + self.lease_seconds,
                    request_id=request_id,
                )
            )
        return bool(result.rowcount)

    async def renew(self, now: float | None = None) -> int:
        """Extend the lease of every record of a request running here."""
        now = time.time() if now is None else now
        c = idempotency.c
        renewed = 0
        async with self._engine.begin() as conn:
            for scope, key in list(self._live):
                result = await conn.execute(
                    idempotency.update()
                    .where(
                        c.scope == scope,
                        c.idempotency_key == key,
                        c.lease_owner == self.owner,
                        c.state == "in_flight",
                    )
                    .values(lease_expires_at=now + self.lease_seconds)
                )
                renewed += int(result.rowcount or 0)
        return renewed

    async def _existing(self, scope: str, key: str) -> sa.RowMapping | None:
        query = idempotency.select().where(
            idempotency.c.scope == scope, idempotency.c.idempotency_key == key
        )
        async with self._engine.connect() as conn:
            return (await conn.execute(query)).mappings().first()

    async def store(self, scope: str, key: str, response: StoredResponse) -> None:
        self._live.discard((scope, key))
        async with self._engine.begin() as conn:
            await conn.execute(
                idempotency.update()
                .where(idempotency.c.scope == scope, idempotency.c.idempotency_key == key)
                .values(
                    state="done",
                    lease_owner=None,
                    lease_expires_at=None,
                    status=response.status,
                    headers=[list(pair) for pair in response.headers],
                    body=response.body,
                )
            )

    async def forget(self, scope: str, key: str) -> None:
        self._live.discard((scope, key))
        async with self._engine.begin() as conn:
            await conn.execute(
                idempotency.delete().where(
                    idempotency.c.scope == scope, idempotency.c.idempotency_key == key
                )
            )

    async def sweep(self, now: float | None = None) -> int:
        cutoff = (time.time() if now is None else now) - TTL_SECONDS
        async with self._engine.begin() as conn:
            result = await conn.execute(
                idempotency.delete().where(idempotency.c.created_at < cutoff)
            )
        return int(result.rowcount or 0)


def _orphaned(existing: sa.RowMapping, now: float) -> bool:
    """An in-flight record whose owner stopped renewing it (a record from before leases has
    none: it is orphaned once it is older than a lease)."""
    if existing["state"] != "in_flight":
        return False
    expires = existing["lease_expires_at"]
    return bool(expires is None and existing["created_at"] < now - LEASE_SECONDS) or bool(
        expires is not None and expires < now
    )


def _judge(existing: sa.RowMapping, body_sha256: str) -> Claim:
    if existing["body_sha256"] != body_sha256:
        return Claim("mismatch")
    if existing["state"] != "done":
        return Claim("in_flight")
    headers = [(str(name), str(value)) for name, value in existing["headers"] or []]
    return Claim("replay", StoredResponse(existing["status"], headers, existing["body"] or b""))
