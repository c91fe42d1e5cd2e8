"""Console sessions in the ``console_sessions`` table (the SQL behind
:class:`~imagegate.core.console_sessions.SessionRepository`)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.console_sessions import ConsoleSession
from imagegate.storage.tables import console_sessions


class SqlSessionRepository:
    """Session rows by the hash of their id."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, session: ConsoleSession) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                console_sessions.insert().values(
                    id_hash=session.id_hash,
                    key_id=session.key_id,
                    csrf_token=session.csrf_token,
                    created_at=session.created_at,
                    last_seen_at=session.last_seen_at,
                )
            )

    async def get(self, id_hash: str) -> ConsoleSession | None:
        async with self._engine.connect() as conn:
            query = console_sessions.select().where(console_sessions.c.id_hash == id_hash)
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            return None
        return ConsoleSession(
            row["id_hash"], row["key_id"], row["csrf_token"], row["created_at"], row["last_seen_at"]
        )

    async def touch(self, id_hash: str, now: float) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                console_sessions.update()
                .where(console_sessions.c.id_hash == id_hash)
                .values(last_seen_at=now)
            )

    async def delete(self, id_hash: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                console_sessions.delete().where(console_sessions.c.id_hash == id_hash)
            )

    async def delete_of_key(self, key_id: str) -> int:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                console_sessions.delete().where(console_sessions.c.key_id == key_id)
            )
        return int(result.rowcount or 0)

    async def delete_stale(self, seen_before: float, created_before: float) -> int:
        stale = sa.or_(
            console_sessions.c.last_seen_at <= seen_before,
            console_sessions.c.created_at <= created_before,
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(console_sessions.delete().where(stale))
        return int(result.rowcount or 0)
