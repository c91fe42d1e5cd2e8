"""Uploaded files' records in SQL: :class:`~imagegate.core.files.FileRepository`."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.files import StoredFile
from imagegate.storage.references import unreferenced
from imagegate.storage.tables import files

_COLUMNS = StoredFile.__slots__


class SqlFileRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, stored: StoredFile) -> None:
        values = {name: getattr(stored, name) for name in _COLUMNS}
        async with self._engine.begin() as conn:
            await conn.execute(files.insert().values(**values))

    async def get(self, file_id: str, owner_key_id: str) -> StoredFile | None:
        query = files.select().where(files.c.id == file_id, files.c.owner_key_id == owner_key_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else StoredFile(**dict(row))

    async def list(self, owner_key_id: str, purpose: str | None = None) -> list[StoredFile]:
        query = files.select().where(files.c.owner_key_id == owner_key_id)
        if purpose:
            query = query.where(files.c.purpose == purpose)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(files.c.created_at.desc()))).mappings().all()
        return [StoredFile(**dict(row)) for row in rows]

    async def delete(self, stored: StoredFile) -> set[str]:
        async with self._engine.begin() as conn:
            await conn.execute(files.delete().where(files.c.id == stored.id))
            return await unreferenced(conn, {stored.sha256})
