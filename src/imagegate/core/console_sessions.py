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
from typing import Protocol

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


class SessionRepository(Protocol):
    """Where console sessions are kept, by the hash of their id (``storage/`` holds the SQL
    one)."""

    async def insert(self, session: ConsoleSession) -> None:
        """Keep a new session."""
        ...

    async def get(self, id_hash: str) -> ConsoleSession | None:
        """The session with this id hash (expired or not), or ``None``."""
        ...

    async def touch(self, id_hash: str, now: float) -> None:
        """Set the session's ``last_seen_at`` to ``now``."""
        ...

    async def delete(self, id_hash: str) -> None:
        """Forget the session with this id hash (if any)."""
        ...

    async def delete_of_key(self, key_id: str) -> int:
        """Forget every session of a key; how many there were."""
        ...

    async def delete_stale(self, seen_before: float, created_before: float) -> int:
        """Forget every session last seen at or before ``seen_before`` or created at or before
        ``created_before``; how many there were."""
        ...


class SessionStore:
    """Creates, looks up, touches and ends console sessions."""

    def __init__(
        self,
        repository: SessionRepository,
        *,
        idle_seconds: float = IDLE_SECONDS,
        absolute_seconds: float = ABSOLUTE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = repository
        self.idle_seconds = idle_seconds
        self.absolute_seconds = absolute_seconds
        self._clock = clock

    async def create(self, key_id: str) -> tuple[str, ConsoleSession]:
        """A new session for ``key_id``; returns the cookie value (shown only here)."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        session = ConsoleSession(_digest(token), key_id, secrets.token_urlsafe(32), now, now)
        await self._sessions.insert(session)
        return token, session

    async def get(self, token: str | None) -> ConsoleSession | None:
        """The live session for a cookie value; an expired one is deleted and ``None``."""
        if not token or len(token) > 128:
            return None
        digest = _digest(token)
        session = await self._sessions.get(digest)
        if session is None:
            return None
        now = self._clock()
        if self.expired(session, now):
            await self._sessions.delete(digest)
            return None
        if now - session.last_seen_at >= TOUCH_EVERY_SECONDS:
            await self._sessions.touch(digest, now)
        return session

    def expired(self, session: ConsoleSession, now: float) -> bool:
        return (
            now - session.last_seen_at >= self.idle_seconds
            or now - session.created_at >= self.absolute_seconds
        )

    async def end(self, token: str | None) -> None:
        """Sign out: the session is gone, whatever the cookie still says."""
        if token:
            await self._sessions.delete(_digest(token))

    async def end_all(self, key_id: str) -> int:
        """End every session of a key (it was revoked)."""
        return await self._sessions.delete_of_key(key_id)

    async def sweep(self) -> int:
        """Delete expired sessions."""
        now = self._clock()
        return await self._sessions.delete_stale(
            now - self.idle_seconds, now - self.absolute_seconds
        )
