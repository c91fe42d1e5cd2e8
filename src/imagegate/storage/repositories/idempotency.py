"""Idempotency records in SQL: :class:`~imagegate.core.idempotency.IdempotencyRepository`."""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.idempotency import IdempotencyRecord, StoredResponse
from imagegate.storage.tables import idempotency

c = idempotency.c


class SqlIdempotencyRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, record: IdempotencyRecord) -> bool:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    idempotency.insert().values(
                        scope=record.scope,
                        idempotency_key=record.key,
                        body_sha256=record.body_sha256,
                        state=record.state,
                        created_at=record.created_at,
                        lease_owner=record.lease_owner,
                        lease_expires_at=record.lease_expires_at,
                        request_id=record.request_id,
                    )
                )
        except IntegrityError:  # the primary key (scope, key) is taken
            return False
        return True

    async def get(self, scope: str, key: str) -> IdempotencyRecord | None:
        query = idempotency.select().where(c.scope == scope, c.idempotency_key == key)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _record(row)

    async def take_over(
        self,
        record: IdempotencyRecord,
        *,
        owner: str,
        lease_expires_at: float,
        request_id: str | None,
    ) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                idempotency.update()
                .where(
                    c.scope == record.scope,
                    c.idempotency_key == record.key,
                    c.state == "in_flight",
                    c.lease_expires_at.is_(None)
                    if record.lease_expires_at is None
                    else c.lease_expires_at == record.lease_expires_at,
                )
                .values(lease_owner=owner, lease_expires_at=lease_expires_at, request_id=request_id)
            )
        return bool(result.rowcount)

    async def renew(
        self, keys: Collection[tuple[str, str]], owner: str, lease_expires_at: float
    ) -> int:
        renewed = 0
        async with self._engine.begin() as conn:
            for scope, key in keys:
                result = await conn.execute(
                    idempotency.update()
                    .where(
                        c.scope == scope,
                        c.idempotency_key == key,
                        c.lease_owner == owner,
                        c.state == "in_flight",
                    )
                    .values(lease_expires_at=lease_expires_at)
                )
                renewed += int(result.rowcount or 0)
        return renewed

    async def finish(self, scope: str, key: str, response: StoredResponse) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                idempotency.update()
                .where(c.scope == scope, c.idempotency_key == key)
                .values(
                    state="done",
                    lease_owner=None,
                    lease_expires_at=None,
                    status=response.status,
                    headers=[list(pair) for pair in response.headers],
                    body=response.body,
                )
            )

    async def delete(self, scope: str, key: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                idempotency.delete().where(c.scope == scope, c.idempotency_key == key)
            )

    async def delete_created_before(self, cutoff: float) -> int:
        async with self._engine.begin() as conn:
            result = await conn.execute(idempotency.delete().where(c.created_at < cutoff))
        return int(result.rowcount or 0)


def _record(row: sa.RowMapping) -> IdempotencyRecord:
    response = None
    if row["state"] == "done" and row["status"] is not None:
        headers = [(str(name), str(value)) for name, value in row["headers"] or []]
        response = StoredResponse(row["status"], headers, row["body"] or b"")
    return IdempotencyRecord(
        scope=row["scope"],
        key=row["idempotency_key"],
        body_sha256=row["body_sha256"],
        state=row["state"],
        created_at=row["created_at"],
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
        request_id=row["request_id"],
        response=response,
    )
