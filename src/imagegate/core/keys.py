"""API keys: random secrets stored only as SHA-256 hashes, shown by prefix, cached in memory."""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.billing import Billing
from imagegate.storage.group_commit import Batch
from imagegate.storage.repositories.billing import sql_billing
from imagegate.storage.tables import api_keys

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


class KeyService:
    """Creates, lists, revokes and authenticates keys."""

    def __init__(
        self, engine: AsyncEngine, admin_secret: str | None = None, billing: Billing | None = None
    ) -> None:
        self._engine = engine
        self._billing = billing or sql_billing(engine)
        self._admin_hash = hash_key(admin_secret) if admin_secret else None
        self._cache: dict[str, tuple[ApiKey, float]] = {}

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
        async with self._engine.begin() as conn:
            await conn.execute(
                api_keys.insert().values(
                    id=key.id,
                    name=key.name,
                    prefix=key.prefix,
                    key_hash=hash_key(secret),
                    models=list(models) if models is not None else None,
                    is_admin=admin,
                    created_at=key.created_at,
                )
            )
            await self._billing.create_limits(Batch(conn), key.id, limits or {}, key.created_at)
        return key, secret

    async def list(self, *, include_revoked: bool = True) -> list[ApiKey]:
        query = api_keys.select().order_by(api_keys.c.created_at)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_from_row(row) for row in rows]

    async def get(self, key_id: str) -> ApiKey | None:
        async with self._engine.connect() as conn:
            query = api_keys.select().where(api_keys.c.id == key_id)
            row = (await conn.execute(query)).mappings().first()
        return _from_row(row) if row else None

    async def count_active(self) -> int:
        query = sa.select(sa.func.count()).select_from(api_keys)
        async with self._engine.connect() as conn:
            return int(
                (await conn.execute(query.where(api_keys.c.revoked_at.is_(None)))).scalar_one()
            )

    async def revoke(self, key_id: str) -> ApiKey | None:
        """Revoke a key; ``None`` when no such key exists."""
        async with self._engine.begin() as conn:
            await conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
            row = (
                (await conn.execute(api_keys.select().where(api_keys.c.id == key_id)))
                .mappings()
                .first()
            )
        self._cache = {h: entry for h, entry in self._cache.items() if entry[0].id != key_id}
        return _from_row(row) if row else None

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
        async with self._engine.connect() as conn:
            row = (
                (await conn.execute(api_keys.select().where(api_keys.c.key_hash == digest)))
                .mappings()
                .first()
            )
        if row is None or row["revoked_at"] is not None:
            self._cache.pop(digest, None)
            return None
        key = _from_row(row)
        self._cache[digest] = (key, now)
        return key


def _from_row(row: sa.RowMapping) -> ApiKey:
    models = row["models"]
    return ApiKey(
        id=row["id"],
        name=row["name"],
        prefix=row["prefix"],
        models=tuple(models) if models is not None else None,
        is_admin=bool(row["is_admin"]),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )
