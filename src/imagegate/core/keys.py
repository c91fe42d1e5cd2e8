"""API keys: random secrets stored only as SHA-256 hashes, shown by prefix, cached in memory."""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any, Protocol

from imagegate.core.billing import Billing
from imagegate.core.single_flight import SingleFlight
from imagegate.core.unit_of_work import Committer, UnitOfWork

KEY_PREFIX = "ig-"
SHOWN_PREFIX_LENGTH = 10
MAX_PRESENTED_KEY_LENGTH = 256
CACHE_SECONDS = 10.0
ENV_ADMIN_KEY_ID = "env-admin"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as the gateway knows it (never the secret itself)."""

    id: str
    name: str
    prefix: str
    models: tuple[str, ...] | None
    is_admin: bool
    created_at: float
    revoked_at: float | None = None

    def may_use_model(self, model_id: str, aliases: tuple[str, ...] = ()) -> bool:
        if self.models is None:
            return True
        names = (model_id, *aliases)
        return any(fnmatch.fnmatchcase(name, glob) for glob in self.models for name in names)

    def public(self) -> dict[str, object]:
        return {
            "id": self.id,
            "object": "api_key",
            "name": self.name,
            "prefix": self.prefix,
            "models": list(self.models) if self.models is not None else None,
            "admin": self.is_admin,
            "created_at": int(self.created_at),
            "revoked_at": int(self.revoked_at) if self.revoked_at else None,
        }


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def parse_globs(text: str | None) -> tuple[str, ...] | None:
    """``"gpt-image-*, sketch"`` → ``("gpt-image-*", "sketch")``; empty or ``*`` → all models."""
    if text is None:
        return None
    globs = tuple(part.strip() for part in text.split(",") if part.strip())
    return None if not globs or globs == ("*",) else globs


class KeyRepository(Protocol):
    """Where keys are kept: by id, with only the SHA-256 of each secret (``storage/`` holds the
    SQL one)."""

    async def insert(self, uow: UnitOfWork, key: ApiKey, key_hash: str) -> None:
        """Write a new key in the caller's unit of work."""
        ...

    async def list(self, *, include_revoked: bool) -> list[ApiKey]:
        """Every key, oldest first; without the revoked ones unless ``include_revoked``."""
        ...

    async def get(self, key_id: str) -> ApiKey | None:
        """The key with this id (revoked or not), or ``None``."""
        ...

    async def count_active(self) -> int:
        """How many keys are not revoked."""
        ...

    async def revoke(self, key_id: str, now: float) -> ApiKey | None:
        """Mark the key revoked at ``now`` unless it already is; the key as it now stands, or
        ``None`` when there is no such key."""
        ...

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        """The key whose secret hashes to ``key_hash`` (revoked or not), or ``None``."""
        ...


class KeyService:
    """Creates, lists, revokes and authenticates keys."""

    def __init__(
        self,
        repository: KeyRepository,
        committer: Committer,
        billing: Billing,
        *,
        admin_secret: str | None = None,
    ) -> None:
        """``committer`` runs a new key's row and its limits as one transaction."""
        self._keys = repository
        self._committer = committer
        self._billing = billing
        self._admin_hash = hash_key(admin_secret) if admin_secret else None
        self._cache: dict[str, tuple[ApiKey, float]] = {}
        self._reads: SingleFlight[str, ApiKey | None] = SingleFlight()

    async def create(
        self,
        *,
        name: str = "",
        models: tuple[str, ...] | None = None,
        admin: bool = False,
        limits: dict[str, Any] | None = None,
    ) -> tuple[ApiKey, str]:
        """Make a key with ``limits`` (see :class:`~imagegate.core.billing.KeyLimits`; omitted =
        unlimited); the secret is returned here once and never stored."""
        secret = new_secret()
        key = ApiKey(
            id="key_" + secrets.token_hex(8),
            name=name,
            prefix=secret[:SHOWN_PREFIX_LENGTH],
            models=models,
            is_admin=admin,
            created_at=time.time(),
        )

        async def write(uow: UnitOfWork) -> None:
            await self._keys.insert(uow, key, hash_key(secret))
            await self._billing.create_limits(uow, key.id, limits or {}, key.created_at)

        await self._committer.run(write)
        return key, secret

    async def list(self, *, include_revoked: bool = True) -> list[ApiKey]:
        return await self._keys.list(include_revoked=include_revoked)

    async def get(self, key_id: str) -> ApiKey | None:
        return await self._keys.get(key_id)

    async def count_active(self) -> int:
        return await self._keys.count_active()

    async def revoke(self, key_id: str) -> ApiKey | None:
        """Revoke a key; ``None`` when no such key exists."""
        key = await self._keys.revoke(key_id, time.time())
        self._cache = {h: entry for h, entry in self._cache.items() if entry[0].id != key_id}
        self._reads.forget()
        return key

    async def authenticate(self, presented: str) -> ApiKey | None:
        """The active key for a presented secret, or ``None``. Work does not depend on the input."""
        if not presented or len(presented) > MAX_PRESENTED_KEY_LENGTH:
            return None
        digest = hash_key(presented)
        if self._admin_hash is not None and hmac.compare_digest(digest, self._admin_hash):
            return ApiKey(ENV_ADMIN_KEY_ID, "IMAGEGATE_ADMIN_KEY", "(env)", None, True, 0.0)
        cached = self._cache.get(digest)
        now = time.monotonic()
        if cached is not None and now - cached[1] < CACHE_SECONDS:
            return cached[0]
        return await self._reads.load(digest, lambda: self._read(digest, now))

    async def _read(self, digest: str, now: float) -> ApiKey | None:
        """The key of ``digest`` from the repository (one read shared by concurrent misses)."""
        key = await self._keys.by_hash(digest)
        if key is None or key.revoked_at is not None:
            self._cache.pop(digest, None)
            return None
        if self._reads.current(digest, asyncio.current_task()):
            self._cache[digest] = (key, now)  # not when a revocation came meanwhile
        return key
