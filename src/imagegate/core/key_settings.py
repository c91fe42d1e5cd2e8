"""Small per-key settings a wire format keeps between requests (which model the
AUTOMATIC1111 API's ``sd_model_checkpoint`` selects), stored durably and read through a
short cache."""

from __future__ import annotations

import time
from typing import Protocol

MAX_VALUE_CHARS = 512
CACHE_SECONDS = 10.0


class KeySettingsRepository(Protocol):
    """Where ``(key id, name) → value`` is kept (``storage/`` holds the SQL one)."""

    async def get(self, key_id: str, name: str) -> str | None:
        """The stored value, or ``None`` when none is set."""
        ...

    async def put(self, key_id: str, name: str, value: str, now: float) -> None:
        """Set the value (insert or replace; concurrent first writes must not fail)."""
        ...


class KeySettings:
    """``(key id, name) → value``; another gateway process sees a change within
    :data:`CACHE_SECONDS`, this one at once."""

    def __init__(self, repository: KeySettingsRepository) -> None:
        self._settings = repository
        self._cache: dict[tuple[str, str], tuple[float, str | None]] = {}

    async def get(self, key_id: str, name: str) -> str | None:
        cached = self._cache.get((key_id, name))
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        value = await self._settings.get(key_id, name)
        self._cache[(key_id, name)] = (time.monotonic(), value)
        return value

    async def set(self, key_id: str, name: str, value: str) -> None:
        if len(value) > MAX_VALUE_CHARS:
            raise ValueError(f"a key setting holds at most {MAX_VALUE_CHARS} characters")
        await self._settings.put(key_id, name, value, time.time())
        self._cache[(key_id, name)] = (time.monotonic(), value)
