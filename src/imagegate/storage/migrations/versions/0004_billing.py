"""Key limits and balances, reservations (also held by tasks), the append-only ledger,
idempotency records.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as tasks:
        tasks.add_column(sa.Column("reservation_id", sa.String(40), nullable=True))
    op.create_table(
        "key_limits",
        sa.Column("key_id", sa.String(40), primary_key=True),
        sa.Column("balance_usd", sa.Numeric(20, 10), nullable=True),
        sa.Column("budget_daily_usd", sa.Numeric(20, 10), nullable=True),
        sa.Column("budget_monthly_usd", sa.Numeric(20, 10), nullable=True),
        sa.Column("day", sa.String(10), nullable=False, server_default=""),
        sa.Column("day_spent_usd", sa.Numeric(20, 10), nullable=False, server_default="0"),
        sa.Column("month", sa.String(7), nullable=False, server_default=""),
        sa.Column("month_spent_usd", sa.Numeric(20, 10), nullable=False, server_default="0"),
        sa.Column("routes", sa.JSON, nullable=True),
        sa.Column("rpm", sa.Integer, nullable=True),
        sa.Column("images_per_minute", sa.Integer, nullable=True),
        sa.Column("megapixels_per_day", sa.Float, nullable=True),
        sa.Column("max_concurrent", sa.Integer, nullable=True),
        sa.Column("expires_at", sa.Float, nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "reservations",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("key_id", sa.String(40), nullable=False, index=True),
        sa.Column("request_id", sa.String(64), nullable=False, index=True),
        sa.Column("amount_usd", sa.Numeric(20, 10), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False, index=True),
        sa.Column("closed_at", sa.Float, nullable=True),
    )
    op.create_table(
        "ledger",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key_id", sa.String(40), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount_usd", sa.Numeric(20, 10), nullable=False),
        sa.Column("reservation_id", sa.String(40), nullable=True),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("note", sa.String(200), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False, index=True),
    )
    op.create_table(
        "idempotency",
        sa.Column("scope", sa.String(64), primary_key=True),
        sa.Column("idempotency_key", sa.String(255), primary_key=True),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("headers", sa.JSON, nullable=True),
        sa.Column("body", sa.LargeBinary, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("idempotency")
    op.drop_table("ledger")
    op.drop_table("reservations")
    op.drop_table("key_limits")
    with op.batch_alter_table("tasks") as tasks:
        tasks.drop_column("reservation_id")
