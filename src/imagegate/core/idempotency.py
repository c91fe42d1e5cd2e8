"""Idempotency records: the first request with a key runs, its answer is kept for 24 hours and
replayed to every retry with the same key and body."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.storage.tables import idempotency

TTL_SECONDS = 24 * 3600


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


class IdempotencyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def claim(self, scope: str, key: str, body_sha256: str) -> Claim:
        now = time.time()
        for _ in range(2):
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(
                        idempotency.insert().values(
                            scope=scope,
                            idempotency_key=key,
                            body_sha256=body_sha256,
                            state="in_flight",
                            created_at=now,
                        )
                    )
                return Claim("new")
            except IntegrityError:
                existing = await self._existing(scope, key)
            if existing is None:
                continue
            if existing["created_at"] < now - TTL_SECONDS:
                await self.forget(scope, key)
                continue
            return _judge(existing, body_sha256)
        return Claim("in_flight")

    async def _existing(self, scope: str, key: str) -> sa.RowMapping | None:
        query = idempotency.select().where(
            idempotency.c.scope == scope, idempotency.c.idempotency_key == key
        )
        async with self._engine.connect() as conn:
            return (await conn.execute(query)).mappings().first()

    async def store(self, scope: str, key: str, response: StoredResponse) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                idempotency.update()
                .where(idempotency.c.scope == scope, idempotency.c.idempotency_key == key)
                .values(
                    state="done",
                    status=response.status,
                    headers=[list(pair) for pair in response.headers],
                    body=response.body,
                )
            )

    async def forget(self, scope: str, key: str) -> None:
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


def _judge(existing: sa.RowMapping, body_sha256: str) -> Claim:
    if existing["body_sha256"] != body_sha256:
        return Claim("mismatch")
    if existing["state"] != "done":
        return Claim("in_flight")
    headers = [(str(name), str(value)) for name, value in existing["headers"] or []]
    return Claim("replay", StoredResponse(existing["status"], headers, existing["body"] or b""))
