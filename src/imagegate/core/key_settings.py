"""Small per-key settings a wire format keeps between requests (which model the
AUTOMATIC1111 API's ``sd_model_checkpoint`` selects), stored durably and read through a
short cache."""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.storage.tables import key_settings

MAX_VALUE_CHARS = 512
CACHE_SECONDS = 10.0


class KeySettings:
    """``(key id, name) → value``; another gateway process sees a change within
    :data:`CACHE_SECONDS`, this one at once."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._cache: dict[tuple[str, str], tuple[float, str | None]] = {}

    async def get(self, key_id: str, name: str) -> str | None:
        cached = self._cache.get((key_id, name))
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        query = sa.select(key_settings.c.value).where(
            key_settings.c.key_id == key_id, key_settings.c.name == name
        )
        async with self._engine.connect() as conn:
            value = (await conn.execute(query)).scalar_one_or_none()
        self._cache[(key_id, name)] = (time.monotonic(), value)
        return value

    async def set(self, key_id: str, name: str, value: str) -> None:
        if len(value) > MAX_VALUE_CHARS:
            raise ValueError(f"a key setting holds at most {MAX_VALUE_CHARS} characters")
        now = time.time()
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
        self._cache[(key_id, name)] = (time.monotonic(), value)
