"""SQL of :class:`~imagegate.core.assets.AssetRepository`: the asset rows."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.assets import Asset
from imagegate.core.unit_of_work import UnitOfWork
from imagegate.storage.group_commit import batch_of
from imagegate.storage.references import unreferenced
from imagegate.storage.tables import assets

_FIELDS = tuple(field.name for field in dataclasses.fields(Asset))


class SqlAssetRepository:
    """Asset rows in the ``assets`` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def add(
        self, uow: UnitOfWork, stored: list[Asset], *, request_id: str | None, prompt: str | None
    ) -> None:
        batch_of(uow).insert(assets, *_rows(stored, request_id, prompt))

    async def insert(self, stored: list[Asset], *, request_id: str | None) -> None:
        if not stored:
            return
        async with self._engine.begin() as conn:
            await conn.execute(assets.insert(), _rows(stored, request_id, None))

    async def get(self, asset_id: str) -> Asset | None:
        async with self._engine.connect() as conn:
            query = assets.select().where(assets.c.id == asset_id)
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _from_row(row)

    async def delete_older_than(self, cutoff: float) -> tuple[int, set[str]]:
        async with self._engine.begin() as conn:
            old = await conn.execute(sa.select(assets.c.sha256).where(assets.c.created_at < cutoff))
            digests = set(old.scalars())
            result = await conn.execute(assets.delete().where(assets.c.created_at < cutoff))
            orphans = await unreferenced(conn, digests)
        return int(result.rowcount or 0), orphans


def _rows(
    stored: list[Asset], request_id: str | None, prompt: str | None
) -> list[dict[str, object]]:
    # Not dataclasses.asdict: it deep-copies every value, a measurable cost per request.
    return [
        {
            **{name: getattr(asset, name) for name in _FIELDS},
            "request_id": request_id,
            "prompt": prompt or None,
        }
        for asset in stored
    ]


def _from_row(row: sa.RowMapping) -> Asset:
    return Asset(
        id=row["id"],
        sha256=row["sha256"],
        content_type=row["content_type"],
        size_bytes=row["size_bytes"],
        width=row["width"],
        height=row["height"],
        owner_key_id=row["owner_key_id"],
        created_at=row["created_at"],
    )
