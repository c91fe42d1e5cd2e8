"""Builds and closes everything a running gateway holds: engine, stores, catalogue, workers."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import httpx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.aio import wait_set
from imagegate.core import task_images
from imagegate.core.access import AccessControl
from imagegate.core.assets import AssetService
from imagegate.core.billing import Billing
from imagegate.core.catalog import Catalog, load_catalog
from imagegate.core.files import FileService
from imagegate.core.generation import ImageService
from imagegate.core.idempotency import IdempotencyStore
from imagegate.core.inputs import InputLoader
from imagegate.core.key_settings import KeySettings
from imagegate.core.keys import KeyService
from imagegate.core.limits import ConcurrencyLimiter, MemoryRateLimiter, RateLimiter
from imagegate.core.redis_limits import RedisRateLimiter
from imagegate.core.routing import RouterSettings
from imagegate.core.secret import load_or_create_secret
from imagegate.core.tasks import EngineSettings, TaskEngine
from imagegate.core.usage import UsageRecorder
from imagegate.core.usage_report import UsageReport
from imagegate.core.webhooks import WebhookSender
from imagegate.imaging.fetch import ImageFetcher
from imagegate.outbound import OutboundGuard
from imagegate.pacing import Pacer
from imagegate.providers.downloads import ResultDownloader
from imagegate.providers.registry import ProviderRegistry
from imagegate.providers.upstream_client import UpstreamClient
from imagegate.settings import Settings
from imagegate.storage import db
from imagegate.storage.blobs import LocalBlobStore
from imagegate.storage.group_commit import GroupCommit

log = logging.getLogger("imagegate")

FIRST_SWEEP_SECONDS = 5.0
STALE_RESERVATION_SECONDS = 3600.0
"""A hold this old, with no unfinished task behind it, belongs to a request that crashed."""


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
    idempotency: IdempotencyStore
    assets: AssetService
    files: FileService
    usage: UsageRecorder
    images: ImageService
    tasks: TaskEngine
    webhooks: WebhookSender
    _sweeper: asyncio.Task[None] | None = None
    _stopping: asyncio.Event | None = None

    @classmethod
    async def start(cls, settings: Settings, pacer: Pacer | None = None) -> Services:
        """Everything the gateway needs, built but idle: front ends register their task kinds,
        then :meth:`run_background` starts the workers. ``pacer``: the process's (see
        :mod:`imagegate.pacing`); a new one by default."""
        pacer = pacer if pacer is not None else Pacer()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
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
        blobs = LocalBlobStore(settings.assets_dir)
        assets = AssetService(
            engine,
            blobs,
            secret,
            link_ttl=settings.url_ttl_seconds,
            retention_seconds=settings.asset_retention_days * 86400,
        )
        files = FileService(engine, blobs)
        guard = OutboundGuard(settings.outbound_allow)
        outbound_http = httpx.AsyncClient(trust_env=False, follow_redirects=False)
        inputs = InputLoader(files, ImageFetcher(outbound_http, guard))
        usage = UsageRecorder(engine)
        admin = settings.admin_key.get_secret_value() if settings.admin_key else None
        writer = GroupCommit(engine, pacer=pacer)
        billing = Billing(engine, writer)
        rate: RateLimiter = (
            RedisRateLimiter(Redis.from_url(settings.redis_url))
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
            engine, outbound_http, guard, secret, backoff=settings.webhook_backoff_seconds
        )
        tasks = TaskEngine(
            engine,
            assets,
            webhooks,
            EngineSettings(
                concurrency=settings.task_concurrency,
                lease_seconds=settings.task_lease_seconds,
                poll_interval=settings.task_poll_seconds,
                retention_seconds=settings.asset_retention_days * 86400,
            ),
            billing,
            writer,
            limits=access.limits_of,
        )
        tasks.register(task_images.KIND, task_images.ImageTaskHandler(images, assets))
        return cls(
            settings=settings,
            engine=engine,
            http=http,
            outbound_http=outbound_http,
            catalog=catalog,
            keys=KeyService(engine, admin, billing),
            key_settings=KeySettings(engine),
            billing=billing,
            writer=writer,
            access=access,
            rate=rate,
            usage_report=UsageReport(engine),
            idempotency=IdempotencyStore(engine),
            assets=assets,
            files=files,
            usage=usage,
            images=images,
            tasks=tasks,
            webhooks=webhooks,
        )

    def run_background(self) -> None:
        """Start the usage flusher, the task workers, the webhook sender and the sweeper."""
        self.usage.start()
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
                await self.billing.release_stale(time.time() - STALE_RESERVATION_SECONDS)
                if removed or tasks:
                    log.info("retention sweep removed %d assets and %d tasks", removed, tasks)
            except Exception:
                log.exception("retention sweep failed")

    async def close(self) -> None:
        if self._sweeper is not None and self._stopping is not None:
            self._stopping.set()
            await self._sweeper
        await self.tasks.close()
        await self.webhooks.close()
        await self.usage.close()
        await self.writer.close()
        if isinstance(self.rate, RedisRateLimiter):
            await self.rate.close()
        await self.http.aclose()
        await self.outbound_http.aclose()
        await self.engine.dispose()
