"""Core services wired to their SQL repositories, as ``services.py`` wires them, for tests
that build one service alone."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.assets import AssetService
from imagegate.core.billing import Billing
from imagegate.core.tasks import EngineSettings, TaskEngine
from imagegate.core.webhooks import WebhookSender
from imagegate.storage.group_commit import GroupCommit
from imagegate.storage.repositories.billing import sql_billing
from imagegate.storage.repositories.usage_rows import SqlUsageRowRepository
from imagegate.storage.repositories.webhooks import SqlWebhookOutbox
from imagegate.storage.task_store import TaskStore


def task_engine(
    engine: AsyncEngine,
    assets: AssetService,
    webhooks: WebhookSender | None,
    settings: EngineSettings,
    *,
    billing: Billing | None = None,
    writer: GroupCommit | None = None,
) -> TaskEngine:
    """A :class:`TaskEngine` on ``engine``; one group commit for its tasks and its billing."""
    writer = writer or GroupCommit(engine)
    return TaskEngine(
        TaskStore(engine, writer),
        writer,
        assets,
        webhooks,
        settings,
        billing or sql_billing(engine, writer),
        outbox=SqlWebhookOutbox(),
        usage=SqlUsageRowRepository(engine),
    )
