"""Builds and closes everything a running gateway holds: engine, stores, catalogue, workers."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.aio import wait_set
from imagegate.core import task_images
from imagegate.core.access import AccessControl
from imagegate.core.assets import AssetService
from imagegate.core.billing import Billing
from imagegate.core.blobs import BlobStore
from imagegate.core.catalog import Catalog, load_catalog
from imagegate.core.console_sessions import SessionStore
from imagegate.core.console_views import ConsoleViews
from imagegate.core.files import FileService
from imagegate.core.generation import ImageService
from imagegate.core.idempotency import IdempotencyStore
from imagegate.core.inputs import InputLoader
from imagegate.core.key_settings import KeySettings
from imagegate.core.keys import KeyService
from imagegate.core.leases import LeaseKeeper
from imagegate.core.limits import ConcurrencyLimiter, MemoryRateLimiter, RateLimiter
from imagegate.core.midjourney.handler import KIND as MIDJOURNEY_KIND
from imagegate.core.midjourney.intake import Deps as MidjourneyDeps
from imagegate.core.midjourney.service import MidjourneyService
from imagegate.core.rate_fallback import FallbackRateLimiter
from imagegate.core.redis_limits import RedisRateLimiter, redis_client
from imagegate.core.routing import RouterSettings
from imagegate.core.secret import load_or_create_secret
from imagegate.core.task_events import PartialImages
from imagegate.core.tasks import EngineSettings, TaskEngine
from imagegate.core.usage import UsageRecorder
from imagegate.core.usage_report import UsageReport
from imagegate.core.webhooks import WebhookSender
from imagegate.imaging.budget import DECODE_BUDGET
from imagegate.imaging.fetch import ImageFetcher
from imagegate.observability.exposition import FleetFigures
from imagegate.outbound import OutboundGuard
from imagegate.pacing import Pacer
from imagegate.providers.downloads import ResultDownloader
from imagegate.providers.registry import ProviderRegistry
from imagegate.providers.upstream_client import UpstreamClient
from imagegate.settings import Settings
from imagegate.storage import db
from imagegate.storage.fleet import read_fleet
from imagegate.storage.group_commit import GroupCommit
from imagegate.storage.repositories.assets import SqlAssetRepository
from imagegate.storage.repositories.billing import SqlHoldRepository, SqlLedgerRepository
from imagegate.storage.repositories.console_sessions import SqlSessionRepository
from imagegate.storage.repositories.console_views import SqlConsoleViewRepository
from imagegate.storage.repositories.files import SqlFileRepository
from imagegate.storage.repositories.idempotency import SqlIdempotencyRepository
from imagegate.storage.repositories.key_settings import SqlKeySettingsRepository
from imagegate.storage.repositories.keys import SqlKeyRepository
from imagegate.storage.repositories.task_queue import SqlTaskQueueRepository
from imagegate.storage.repositories.usage_report import SqlUsageRepository
from imagegate.storage.repositories.usage_rows import SqlUsageRowRepository
from imagegate.storage.repositories.webhook_deliveries import SqlWebhookDeliveryRepository
from imagegate.storage.repositories.webhooks import SqlWebhookOutbox
from imagegate.storage.stores import open_blob_store
from imagegate.storage.task_store import TaskStore

log = logging.getLogger("imagegate")

FIRST_SWEEP_SECONDS = 5.0
FLEET_QUERY_SECONDS = 5.0


@dataclass(slots=True)
class Services:
    settings: Settings
    engine: AsyncEngine
    http: UpstreamClient
    outbound_http: httpx.AsyncClient
    """For client-chosen URLs only: no proxies from the environment, no shared connections."""
    catalog: Catalog
    keys: KeyService
    key_settings: KeySettings
    billing: Billing
    writer: GroupCommit
    access: AccessControl
    rate: RateLimiter
    usage_report: UsageReport
    console_sessions: SessionStore
    console_views: ConsoleViews
    idempotency: IdempotencyStore
    assets: AssetService
    files: FileService
    usage: UsageRecorder
    images: ImageService
    tasks: TaskEngine
    webhooks: WebhookSender
    partials: PartialImages
    """Previews of running tasks for the clients watching them (in this process)."""
    midjourney: MidjourneyService
    leases: LeaseKeeper
    blobs: BlobStore
    _sweeper: asyncio.Task[None] | None = None
    _stopping: asyncio.Event | None = None

    @classmethod
    async def start(cls, settings: Settings, pacer: Pacer | None = None) -> Services:
        """Everything the gateway needs, built but idle: front ends register their task kinds,
        then :meth:`run_background` starts the workers. ``pacer``: the process's (see
        :mod:`imagegate.pacing`); a new one by default."""
        pacer = pacer if pacer is not None else Pacer()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        DECODE_BUDGET.configure(
            int(settings.decode_budget_megapixels * 1_000_000), settings.decode_wait_seconds
        )
        engine = db.create_engine(settings.resolved_database_url)
        if settings.auto_migrate:
            await db.upgrade(engine)
        secret = (
            bytes.fromhex(settings.secret.get_secret_value())
            if settings.secret
            else load_or_create_secret(settings.secret_path)
        )
        registry = ProviderRegistry()
        catalog = load_catalog(registry, settings.config)
        http = UpstreamClient(max_connections=settings.upstream_max_connections, pacer=pacer)
        blobs = open_blob_store(settings.storage_url, settings.assets_dir)
        assets = AssetService(
            SqlAssetRepository(engine),
            blobs,
            secret,
            link_ttl=settings.url_ttl_seconds,
            retention_seconds=settings.asset_retention_days * 86400,
            redirect=settings.storage_redirect,
        )
        files = FileService(SqlFileRepository(engine), blobs)
        guard = OutboundGuard(settings.outbound_allow)
        outbound_http = httpx.AsyncClient(trust_env=False, follow_redirects=False)
        inputs = InputLoader(files, ImageFetcher(outbound_http, guard))
        usage_rows = SqlUsageRowRepository(engine)
        usage = UsageRecorder(usage_rows)
        admin = settings.admin_key.get_secret_value() if settings.admin_key else None
        writer = GroupCommit(engine, pacer=pacer)
        instance = f"p-{uuid.uuid4().hex[:16]}"
        """Names what this process holds under a lease (tasks have their worker's own id)."""
        lease = settings.task_lease_seconds
        billing = Billing(
            SqlHoldRepository(engine),
            SqlLedgerRepository(engine, writer),
            writer,
            owner=instance,
            lease_seconds=lease,
        )
        idempotency = IdempotencyStore(
            SqlIdempotencyRepository(engine), owner=instance, lease_seconds=lease
        )
        rate: RateLimiter = (
            FallbackRateLimiter(RedisRateLimiter(redis_client(settings.redis_url)))
            if settings.redis_url
            else MemoryRateLimiter()
        )
        access = AccessControl(
            billing,
            rate,
            ConcurrencyLimiter(settings.concurrency_queue_seconds),
            default_rpm=settings.default_rpm,
        )
        images = ImageService(
            catalog=catalog,
            registry=registry,
            assets=assets,
            inputs=inputs,
            usage=usage,
            usage_rows=usage_rows,
            billing=billing,
            access=access,
            writer=writer,
            http=http,
            downloader=ResultDownloader(http, guard, outbound=outbound_http),
            router_settings=RouterSettings(
                max_attempts=settings.upstream_attempts,
                deadline=settings.upstream_deadline_seconds,
                max_wait=settings.upstream_max_wait_seconds,
                cooldown=settings.upstream_cooldown_seconds,
            ),
            default_model=settings.default_model or None,
        )
        webhooks = WebhookSender(
            SqlWebhookDeliveryRepository(engine),
            outbound_http,
            guard,
            secret,
            backoff=settings.webhook_backoff_seconds,
        )
        tasks = TaskEngine(
            TaskStore(engine, writer),
            writer,
            assets,
            webhooks,
            EngineSettings(
                concurrency=settings.task_concurrency,
                lease_seconds=settings.task_lease_seconds,
                poll_interval=settings.task_poll_seconds,
                retention_seconds=settings.asset_retention_days * 86400,
            ),
            billing,
            outbox=SqlWebhookOutbox(),
            usage=usage_rows,
            limits=access.limits_of,
        )
        partials = PartialImages()
        tasks.register(task_images.KIND, task_images.ImageTaskHandler(images, assets, partials))
        midjourney = MidjourneyService.build(
            MidjourneyDeps(
                images=images,
                assets=assets,
                tasks=tasks,
                inputs=inputs,
                queue=SqlTaskQueueRepository(engine),
            ),
            model=settings.mj_model or None,
            queue_limit=settings.mj_queue_limit,
            concurrency=settings.task_concurrency,
        )
        tasks.register(MIDJOURNEY_KIND, midjourney.handler)
        return cls(
            settings=settings,
            engine=engine,
            http=http,
            outbound_http=outbound_http,
            catalog=catalog,
            keys=KeyService(SqlKeyRepository(engine), writer, billing, admin_secret=admin),
            key_settings=KeySettings(SqlKeySettingsRepository(engine)),
            billing=billing,
            writer=writer,
            access=access,
            rate=rate,
            usage_report=UsageReport(SqlUsageRepository(engine)),
            console_sessions=SessionStore(
                SqlSessionRepository(engine),
                idle_seconds=settings.console_idle_seconds,
                absolute_seconds=settings.console_session_seconds,
            ),
            console_views=ConsoleViews(SqlConsoleViewRepository(engine)),
            idempotency=idempotency,
            assets=assets,
            files=files,
            usage=usage,
            images=images,
            tasks=tasks,
            webhooks=webhooks,
            partials=partials,
            midjourney=midjourney,
            leases=LeaseKeeper(billing, idempotency, lease),
            blobs=blobs,
        )

    def run_background(self) -> None:
        """Start the usage flusher, the task workers, the webhook sender, the lease keeper and
        the sweeper."""
        self.usage.start()
        self.leases.start()
        self.tasks.start()
        self.webhooks.start()
        self._stopping = asyncio.Event()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="asset-sweeper")

    async def _sweep_forever(self) -> None:
        """Sweep every ``retention_sweep_seconds`` (the first a few seconds after start), and
        stop only between sweeps, never in the middle of a database call."""
        assert self._stopping is not None
        delay = min(FIRST_SWEEP_SECONDS, self.settings.retention_sweep_seconds)
        while not await wait_set(self._stopping, delay):
            delay = self.settings.retention_sweep_seconds
            try:
                removed = await self.assets.sweep()
                tasks = await self.tasks.sweep()
                await self.idempotency.sweep()
                if removed or tasks:
                    log.info("retention sweep removed %d assets and %d tasks", removed, tasks)
            except Exception:
                log.exception("retention sweep failed")

    async def check_database(self) -> None:
        """Raise unless the database answers (the readiness probe's first check)."""
        await db.ping(self.engine)

    async def fleet_figures(self) -> FleetFigures | None:
        """The fleet's backlog for ``/metrics``, or ``None`` while the database does not answer:
        the process's own series matter most exactly then."""
        try:
            async with asyncio.timeout(FLEET_QUERY_SECONDS):
                return await read_fleet(self.engine)
        except (OSError, TimeoutError, SQLAlchemyError) as exc:
            log.warning("/metrics without the fleet's backlog: %s", type(exc).__name__)
            return None

    async def close(self) -> None:
        """Stop everything; each step runs even when an earlier one failed (a failed task
        hand-back must not cost the usage flush, nor leave the engine open)."""
        steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("sweeper", self._stop_sweeper),
            ("task engine", self.tasks.close),
            ("webhook sender", self.webhooks.close),
            ("lease keeper", self.leases.close),
            ("usage flush", self.usage.close),
            ("group commit", self.writer.close),
            ("rate limiter", self.rate.close),
            ("upstream client", self.http.aclose),
            ("outbound client", self.outbound_http.aclose),
            ("blob store", self.blobs.close),
            ("database engine", self.engine.dispose),
        ]
        for name, step in steps:
            try:
                await step()
            except Exception:
                log.exception("closing the %s failed; closing the rest", name)

    async def _stop_sweeper(self) -> None:
        if self._sweeper is not None and self._stopping is not None:
            self._stopping.set()
            await self._sweeper
