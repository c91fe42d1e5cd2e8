"""Per-key settings in the ``key_settings`` table (the SQL behind
:class:`~imagegate.core.key_settings.KeySettingsRepository`)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.storage.tables import key_settings


class SqlKeySettingsRepository:
    """``(key id, name) → value`` rows, upserted portably (SQLite and PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, key_id: str, name: str) -> str | None:
        query = sa.select(key_settings.c.value).where(
            key_settings.c.key_id == key_id, key_settings.c.name == name
        )
        async with self._engine.connect() as conn:
            value: str | None = (await conn.execute(query)).scalar_one_or_none()
        return value

    async def put(self, key_id: str, name: str, value: str, now: float) -> None:
        where = (key_settings.c.key_id == key_id, key_settings.c.name == name)
        for _ in range(2):  # a concurrent first write wins the insert; ours then updates
            try:
                async with self._engine.begin() as conn:
                    update = key_settings.update().where(*where)
                    changed = await conn.execute(update.values(value=value, updated_at=now))
                    if not changed.rowcount:
                        await conn.execute(
                            key_settings.insert().values(
                                key_id=key_id, name=name, value=value, updated_at=now
                            )
                        )
                break
            except IntegrityError:
                continue
