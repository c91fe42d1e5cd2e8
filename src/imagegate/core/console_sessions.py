"""Web console sessions: an opaque random id in the browser's cookie, only its SHA-256 in the
database, with the key it signed in as, a CSRF token, and idle and absolute expiry.

The API key itself is never stored here: a session names its key by id and is refused as soon
as that key is revoked."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.storage.tables import console_sessions

IDLE_SECONDS = 30 * 60.0
ABSOLUTE_SECONDS = 12 * 3600.0
TOUCH_EVERY_SECONDS = 60.0
"""``last_seen_at`` is written at most this often (idle expiry is coarse by this much)."""


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    id_hash: str
    key_id: str
    csrf_token: str
    created_at: float
    last_seen_at: float


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class SessionStore:
    """Creates, looks up, touches and ends console sessions."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        idle_seconds: float = IDLE_SECONDS,
        absolute_seconds: float = ABSOLUTE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self.idle_seconds = idle_seconds
        self.absolute_seconds = absolute_seconds
        self._clock = clock

    async def create(self, key_id: str) -> tuple[str, ConsoleSession]:
        """A new session for ``key_id``; returns the cookie value (shown only here)."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        session = ConsoleSession(_digest(token), key_id, secrets.token_urlsafe(32), now, now)
        async with self._engine.begin() as conn:
            await conn.execute(
                console_sessions.insert().values(
                    id_hash=session.id_hash,
                    key_id=key_id,
                    csrf_token=session.csrf_token,
                    created_at=now,
                    last_seen_at=now,
                )
            )
        return token, session

    async def get(self, token: str | None) -> ConsoleSession | None:
        """The live session for a cookie value; an expired one is deleted and ``None``."""
        if not token or len(token) > 128:
            return None
        digest = _digest(token)
        async with self._engine.connect() as conn:
            query = console_sessions.select().where(console_sessions.c.id_hash == digest)
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            return None
        session = ConsoleSession(
            row["id_hash"], row["key_id"], row["csrf_token"], row["created_at"], row["last_seen_at"]
        )
        now = self._clock()
        if self.expired(session, now):
            await self._delete(digest)
            return None
        if now - session.last_seen_at >= TOUCH_EVERY_SECONDS:
            async with self._engine.begin() as conn:
                await conn.execute(
                    console_sessions.update()
                    .where(console_sessions.c.id_hash == digest)
                    .values(last_seen_at=now)
                )
        return session

    def expired(self, session: ConsoleSession, now: float) -> bool:
        return (
            now - session.last_seen_at >= self.idle_seconds
            or now - session.created_at >= self.absolute_seconds
        )

    async def end(self, token: str | None) -> None:
        """Sign out: the session is gone, whatever the cookie still says."""
        if token:
            await self._delete(_digest(token))

    async def end_all(self, key_id: str) -> int:
        """End every session of a key (it was revoked)."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                console_sessions.delete().where(console_sessions.c.key_id == key_id)
            )
        return int(result.rowcount or 0)

    async def sweep(self) -> int:
        """Delete expired sessions."""
        now = self._clock()
        stale = sa.or_(
            console_sessions.c.last_seen_at <= now - self.idle_seconds,
            console_sessions.c.created_at <= now - self.absolute_seconds,
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(console_sessions.delete().where(stale))
        return int(result.rowcount or 0)

    async def _delete(self, digest: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                console_sessions.delete().where(console_sessions.c.id_hash == digest)
            )
