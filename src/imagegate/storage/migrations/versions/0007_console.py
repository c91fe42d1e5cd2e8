"""Web console: server-side sessions; what the gallery shows of an asset (its prompt) and the
indexes that join an asset to its usage row.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.String(40), nullable=False, index=True),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_seen_at", sa.Float, nullable=False, index=True),
    )
    with op.batch_alter_table("assets") as assets:
        assets.add_column(sa.Column("prompt", sa.Text, nullable=True))
        assets.create_index("ix_assets_request_id", ["request_id"])
    op.create_index("ix_usage_request_id", "usage", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_usage_request_id", "usage")
    with op.batch_alter_table("assets") as assets:
        assets.drop_index("ix_assets_request_id")
        assets.drop_column("prompt")
    op.drop_table("console_sessions")
