"""Leases on what a crashed process leaves behind: an in-flight Idempotency-Key and a credit
hold of a request each name the process that owns them and until when; a retry takes over an
expired key (voiding what the attempt it replaces charged: its request id is kept), the lease
keeper releases an expired hold.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency") as idempotency:
        idempotency.add_column(sa.Column("lease_owner", sa.String(64), nullable=True))
        idempotency.add_column(sa.Column("lease_expires_at", sa.Float, nullable=True))
        idempotency.add_column(sa.Column("request_id", sa.String(64), nullable=True))
    with op.batch_alter_table("reservations") as reservations:
        reservations.add_column(sa.Column("lease_owner", sa.String(64), nullable=True))
        reservations.add_column(sa.Column("lease_expires_at", sa.Float, nullable=True))
        reservations.create_index("ix_reservations_lease", ["state", "lease_expires_at"])


def downgrade() -> None:
    with op.batch_alter_table("reservations") as reservations:
        reservations.drop_index("ix_reservations_lease")
        reservations.drop_column("lease_expires_at")
        reservations.drop_column("lease_owner")
    with op.batch_alter_table("idempotency") as idempotency:
        idempotency.drop_column("request_id")
        idempotency.drop_column("lease_expires_at")
        idempotency.drop_column("lease_owner")
