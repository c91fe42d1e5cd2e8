"""Tasks keep the jobs they submitted to task upstreams, so that a task run again after a
restart (or on another replica) polls those jobs instead of submitting, and paying for, the
work a second time.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as tasks:
        tasks.add_column(sa.Column("upstream_jobs", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as tasks:
        tasks.drop_column("upstream_jobs")
