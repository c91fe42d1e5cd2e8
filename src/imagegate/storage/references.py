"""Which blobs no row refers to any more: assets and files share one content-addressed store."""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from imagegate.storage.tables import assets, files

_REFERRING = (assets.c.sha256, files.c.sha256)


async def unreferenced(conn: AsyncConnection, digests: Collection[str]) -> set[str]:
    """The digests among ``digests`` that no asset and no file points at."""
    if not digests:
        return set()
    used: set[str] = set()
    for column in _REFERRING:
        query = sa.select(column).where(column.in_(list(digests))).distinct()
        used.update((await conn.execute(query)).scalars())
    return set(digests) - used
