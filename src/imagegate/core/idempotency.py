"""Idempotency records: the first request with a key runs, its answer is kept for 24 hours and
replayed to every retry with the same key and body.

A running request's record names the process that runs it (``lease_owner``) and holds a lease
that process renews (:meth:`IdempotencyStore.renew`, from the lease keeper) while it lives; a
retry arriving after the lease ran out (its process died) takes the record over and runs.

The rules (scopes, leases, take-overs, replays) are here; the records are kept by an
:class:`IdempotencyRepository` (``storage/repositories/idempotency.py``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal, Protocol

log = logging.getLogger("imagegate.idempotency")

TTL_SECONDS = 24 * 3600
LEASE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """One key's record in one scope: ``in_flight`` while its request runs (under a lease of
    ``lease_owner``'s until ``lease_expires_at``), ``done`` with the ``response`` to replay."""

    scope: str
    key: str
    body_sha256: str
    state: Literal["in_flight", "done"]
    created_at: float
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    request_id: str | None = None
    response: StoredResponse | None = None


class IdempotencyRepository(Protocol):
    """Where idempotency records are kept, one per (scope, key)."""

    async def add(self, record: IdempotencyRecord) -> bool:
        """Keep a new record; ``False`` (and nothing written) when its scope and key have one
        already."""
        ...

    async def get(self, scope: str, key: str) -> IdempotencyRecord | None:
        """The record of ``key`` in ``scope``, if any."""
        ...

    async def take_over(
        self,
        record: IdempotencyRecord,
        *,
        owner: str,
        lease_expires_at: float,
        request_id: str | None,
    ) -> bool:
        """Give the in-flight ``record`` to ``owner`` under a new lease, only if it is still in
        flight with the lease it was read with; ``False`` when another retry was first."""
        ...

    async def renew(
        self, keys: Collection[tuple[str, str]], owner: str, lease_expires_at: float
    ) -> int:
        """Extend to ``lease_expires_at`` the leases ``owner`` holds on the in-flight records of
        ``keys`` (``(scope, key)`` pairs), in one transaction; returns how many were renewed."""
        ...

    async def finish(self, scope: str, key: str, response: StoredResponse) -> None:
        """Mark the record done with the ``response`` to replay; its lease ends."""
        ...

    async def delete(self, scope: str, key: str) -> None:
        """Remove the record of ``key`` in ``scope`` (if any)."""
        ...

    async def delete_created_before(self, cutoff: float) -> int:
        """Remove every record created before ``cutoff``; returns how many."""
        ...


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
        records: IdempotencyRepository,
        *,
        owner: str = "local",
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self._records = records
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
            added = await self._records.add(
                IdempotencyRecord(
                    scope=scope,
                    key=key,
                    body_sha256=body_sha256,
                    state="in_flight",
                    created_at=now,
                    lease_owner=owner,
                    lease_expires_at=now + self.lease_seconds,
                    request_id=request_id,
                )
            )
            if added:
                self._live.add((scope, key))
                return Claim("new")
            existing = await self._records.get(scope, key)
            if existing is None:
                continue
            if existing.created_at < now - TTL_SECONDS:
                await self.forget(scope, key)
                continue
            if (
                _orphaned(existing, now)
                and existing.body_sha256 == body_sha256
                and await self._records.take_over(
                    existing,
                    owner=owner,
                    lease_expires_at=now + self.lease_seconds,
                    request_id=request_id,
                )
            ):
                log.warning(
                    "took over an Idempotency-Key whose owner (%s) stopped", existing.lease_owner
                )
                self._live.add((scope, key))
                return Claim("new", replaces=existing.request_id)
            return _judge(existing, body_sha256)
        return Claim("in_flight")

    async def renew(self, now: float | None = None) -> int:
        """Extend the lease of every record of a request running here."""
        now = time.time() if now is None else now
        return await self._records.renew(list(self._live), self.owner, now + self.lease_seconds)

    async def store(self, scope: str, key: str, response: StoredResponse) -> None:
        self._live.discard((scope, key))
        await self._records.finish(scope, key, response)

    async def forget(self, scope: str, key: str) -> None:
        self._live.discard((scope, key))
        await self._records.delete(scope, key)

    async def sweep(self, now: float | None = None) -> int:
        cutoff = (time.time() if now is None else now) - TTL_SECONDS
        return await self._records.delete_created_before(cutoff)


def _orphaned(existing: IdempotencyRecord, now: float) -> bool:
    """An in-flight record whose owner stopped renewing it (a record from before leases has
    none: it is orphaned once it is older than a lease)."""
    if existing.state != "in_flight":
        return False
    expires = existing.lease_expires_at
    return bool(expires is None and existing.created_at < now - LEASE_SECONDS) or bool(
        expires is not None and expires < now
    )


def _judge(existing: IdempotencyRecord, body_sha256: str) -> Claim:
    if existing.body_sha256 != body_sha256:
        return Claim("mismatch")
    if existing.state != "done" or existing.response is None:
        return Claim("in_flight")
    return Claim("replay", existing.response)
