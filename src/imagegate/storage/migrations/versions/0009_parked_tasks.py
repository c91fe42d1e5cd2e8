"""A task waiting for its client's input is ``parked``, the engine's own word, not ``modal``
(the Midjourney front's word for it, which that front still shows as ``MODAL``).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_tasks = sa.table("tasks", sa.column("status", sa.String))


def upgrade() -> None:
    op.execute(_tasks.update().where(_tasks.c.status == "modal").values(status="parked"))


def downgrade() -> None:
    op.execute(_tasks.update().where(_tasks.c.status == "parked").values(status="modal"))
