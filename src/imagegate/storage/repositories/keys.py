"""API keys in the ``api_keys`` table: the SQL behind
:class:`~imagegate.core.keys.KeyRepository`."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.keys import ApiKey
from imagegate.core.unit_of_work import UnitOfWork
from imagegate.storage.group_commit import batch_of
from imagegate.storage.tables import api_keys


class SqlKeyRepository:
    """Keys by id and by the hash of their secret."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, uow: UnitOfWork, key: ApiKey, key_hash: str) -> None:
        await batch_of(uow).conn.execute(
            api_keys.insert().values(
                id=key.id,
                name=key.name,
                prefix=key.prefix,
                key_hash=key_hash,
                models=list(key.models) if key.models is not None else None,
                is_admin=key.is_admin,
                created_at=key.created_at,
            )
        )

    async def list(self, *, include_revoked: bool) -> list[ApiKey]:
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

    async def revoke(self, key_id: str, now: float) -> ApiKey | None:
        async with self._engine.begin() as conn:
            await conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            row = (
                (await conn.execute(api_keys.select().where(api_keys.c.id == key_id)))
                .mappings()
                .first()
            )
        return _from_row(row) if row else None

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        async with self._engine.connect() as conn:
            row = (
                (await conn.execute(api_keys.select().where(api_keys.c.key_hash == key_hash)))
                .mappings()
                .first()
            )
        return _from_row(row) if row else None


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
