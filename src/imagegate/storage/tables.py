"""Table definitions (SQLAlchemy Core); migrations in ``migrations/`` must match them."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("models", sa.JSON, nullable=True),
    sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float, nullable=True),
)

assets = sa.Table(
    "assets",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("content_type", sa.String(64), nullable=False),
    sa.Column("size_bytes", sa.Integer, nullable=False),
    sa.Column("width", sa.Integer, nullable=True),
    sa.Column("height", sa.Integer, nullable=True),
    sa.Column("owner_key_id", sa.String(40), nullable=True, index=True),
    sa.Column("request_id", sa.String(64), nullable=True, index=True),
    sa.Column("prompt", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
)

usage = sa.Table(
    "usage",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(64), nullable=False, index=True),
    sa.Column("key_id", sa.String(40), nullable=True, index=True),
    sa.Column("model", sa.String(200), nullable=True, index=True),
    sa.Column("route", sa.String(200), nullable=False),
    sa.Column("n", sa.Integer, nullable=False, server_default="0"),
    sa.Column("images", sa.Integer, nullable=False, server_default="0"),
    sa.Column("size", sa.String(32), nullable=True),
    sa.Column("quality", sa.String(32), nullable=True),
    sa.Column("input_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("output_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("cost_usd", sa.Numeric(20, 10), nullable=False, server_default="0"),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("user", sa.String(256), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
)

files = sa.Table(
    "files",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("owner_key_id", sa.String(40), nullable=False, index=True),
    sa.Column("filename", sa.String(512), nullable=False),
    sa.Column("purpose", sa.String(32), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("content_type", sa.String(128), nullable=False),
    sa.Column("size_bytes", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("owner_key_id", sa.String(40), nullable=False, index=True),
    sa.Column("model", sa.String(200), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("progress", sa.Integer, nullable=False, server_default="0"),
    sa.Column("request", sa.JSON, nullable=False),
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("error", sa.JSON, nullable=True),
    sa.Column("meta", sa.JSON, nullable=False),
    sa.Column("parent_id", sa.String(64), nullable=True, index=True),
    sa.Column("webhook_url", sa.String(2048), nullable=True),
    sa.Column("webhook_secret", sa.String(256), nullable=True),
    sa.Column("reservation_id", sa.String(40), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_expires_at", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("updated_at", sa.Float, nullable=False),
    # The task upstreams' jobs a running task submitted ({slot: job}, see core.upstream's
    # JobJournal), so that a run after a restart polls them instead of submitting again.
    sa.Column("upstream_jobs", sa.JSON, nullable=True),
    sa.Index("ix_tasks_claim", "status", "lease_expires_at"),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(64), nullable=False, index=True),
    sa.Column("task_id", sa.String(64), nullable=True, index=True),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("secret", sa.String(256), nullable=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.String(500), nullable=True),
    sa.Column("due_at", sa.Float, nullable=False),
    sa.Column("lease_expires_at", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Index("ix_webhook_deliveries_due", "state", "due_at"),
)

key_limits = sa.Table(
    "key_limits",
    metadata,
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

reservations = sa.Table(
    "reservations",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("key_id", sa.String(40), nullable=False, index=True),
    sa.Column("request_id", sa.String(64), nullable=False, index=True),
    sa.Column("amount_usd", sa.Numeric(20, 10), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("closed_at", sa.Float, nullable=True),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_expires_at", sa.Float, nullable=True),
    sa.Index("ix_reservations_lease", "state", "lease_expires_at"),
)

ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key_id", sa.String(40), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("amount_usd", sa.Numeric(20, 10), nullable=False),
    sa.Column("reservation_id", sa.String(40), nullable=True),
    sa.Column("request_id", sa.String(64), nullable=True),
    sa.Column("note", sa.String(200), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
)

idempotency = sa.Table(
    "idempotency",
    metadata,
    sa.Column("scope", sa.String(64), primary_key=True),
    sa.Column("idempotency_key", sa.String(255), primary_key=True),
    sa.Column("body_sha256", sa.String(64), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("status", sa.Integer, nullable=True),
    sa.Column("headers", sa.JSON, nullable=True),
    sa.Column("body", sa.LargeBinary, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_expires_at", sa.Float, nullable=True),
    sa.Column("request_id", sa.String(64), nullable=True),
)

key_settings = sa.Table(
    "key_settings",
    metadata,
    sa.Column("key_id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(512), nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("key_id", sa.String(40), nullable=False, index=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_seen_at", sa.Float, nullable=False, index=True),
)
