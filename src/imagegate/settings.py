"""Typed settings from ``IMAGEGATE_*`` environment variables; nothing is read at import time."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Gateway settings. Build one with ``Settings()`` (reads the environment) or pass values."""

    model_config = SettingsConfigDict(env_prefix="IMAGEGATE_", extra="ignore")

    data_dir: Path = Field(default=Path("imagegate-data"))
    database_url: str | None = None
    """SQLAlchemy async URL; default: SQLite in the data dir."""
    admin_key: SecretStr | None = None
    """Accepted as an admin key, this exact string."""
    secret: SecretStr | None = None
    """Hex server secret that signs links; default: generated once into the data dir. Replicas
    behind one load balancer must share it."""
    config: Path | None = None
    """An operator's TOML file that extends or overrides the built-in catalogue."""
    public_url: str | None = None
    """Base URL used in links handed to clients; default: derived from each request."""
    default_model: str | None = "sketch"
    """Used when a request names no model; empty to require one."""
    bria_model: str | None = None
    """The model Bria routes use when a request names none. Default: ``bria-fibo`` on Bria's
    own API when ``BRIA_API_TOKEN`` is set, else ``sketch``."""
    mj_model: str | None = None
    """The model that serves Midjourney tasks (``/mj/*``); each task records it. Default: the
    built-in ``midjourney`` when its relay is configured (``MIDJOURNEY_PROXY_URL`` and
    ``MIDJOURNEY_PROXY_SECRET``), else ``sketch``. A model served by a midjourney-proxy relay
    is relayed 1:1; any other draws each picture of a grid itself."""
    mj_queue_limit: int = Field(default=200, ge=1)
    """Midjourney tasks one key may have waiting; more are refused with code 23."""
    url_ttl_seconds: int = Field(default=3600, ge=1)
    storage_url: str | None = None
    """Where images, uploads and task inputs live: ``file://<dir>`` (default: ``<data dir>/assets``)
    or ``s3://<bucket>/<prefix>`` on any S3-compatible store, configured by the standard AWS
    variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_REGION``). Replicas without a shared disk need a bucket."""
    storage_redirect: bool = False
    """A valid signed link answers 302 to a short-lived presigned URL of the bucket instead of
    streaming the image through the gateway (an ``s3://`` store only)."""
    asset_retention_days: float = Field(default=7, gt=0)
    retention_sweep_seconds: float = Field(default=3600, gt=0)
    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    max_small_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Body limit of the routes that take no images (``/admin/*``, ``/api/models``,
    ``/api/usage``)."""
    decode_budget_megapixels: float = Field(default=64, gt=0, le=1_000_000)
    """Client-image pixels decoded at once in one process; more wait (see
    ``imagegate.imaging.budget``). Resident memory grows by about 8 bytes a pixel of it."""
    decode_wait_seconds: float = Field(default=30, ge=0, le=3600)
    """How long a decode waits for the budget before its 429."""
    outbound_allow: list[str] = Field(default_factory=list)
    """Hosts or CIDRs that image URLs and webhooks may reach even though they are private or
    loopback (JSON list in the environment, e.g. ``'["127.0.0.1/32", "images.internal"]'``)."""
    max_file_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    """Largest upload to ``POST /v1/files``."""
    redis_url: str | None = None
    """Rate limits shared by every replica (``redis://host:6379/0``); default: per process."""
    default_rpm: int = Field(default=6000, ge=1)
    """Requests per minute for keys without their own limit."""
    concurrency_queue_seconds: float = Field(default=2.0, ge=0)
    """How long a request waits for a concurrency slot before its 429."""
    gc_tuning: bool = True
    """After start-up, freeze what it built and collect the young generation every 10,000
    allocations (see ``imagegate.app.tune_garbage_collector``)."""
    upstream_max_connections: int = Field(default=1000, ge=1)
    """Connections the shared upstream client keeps open at most, all providers together."""
    upstream_attempts: int = Field(default=3, ge=1, le=10)
    """Upstream calls per image (per fanned-out part), retries and failovers included."""
    upstream_deadline_seconds: float = Field(default=600.0, gt=0)
    """The whole upstream side of a request: every call, wait and poll."""
    upstream_max_wait_seconds: float = Field(default=30.0, ge=0)
    """The longest single wait the router sits out (an upstream's ``retry-after``, an rpm
    slot, a retry's backoff); when the next try needs longer, the client gets the error (a
    429 or 503 with ``Retry-After``) instead."""
    upstream_cooldown_seconds: float = Field(default=10.0, gt=0)
    """How long a deployment that failed 3 times in a row is skipped before a probe; doubles
    while probes fail, up to 300 s."""
    task_concurrency: int = Field(default=8, ge=1)
    """Tasks one server process runs at once."""
    task_lease_seconds: float = Field(default=30.0, gt=0)
    """A task whose worker stops heart-beating for this long is picked up by another."""
    task_poll_seconds: float = Field(default=0.5, gt=0)
    webhook_backoff_seconds: list[float] = Field(default=[5, 30, 120, 300, 600, 1800])
    """Delays before each webhook retry (tries = len + 1)."""
    console_idle_seconds: float = Field(default=1800.0, gt=0)
    """A web console session ends after this long without a request."""
    console_session_seconds: float = Field(default=43200.0, gt=0)
    """A web console session ends this long after sign-in, however active."""
    auto_migrate: bool = True
    """Run database migrations when the app starts (``serve`` runs them once before workers)."""
    log_level: str = "info"
    metrics_public: bool = False
    """Serve ``GET /metrics`` without an admin key (for a scraper on a private network)."""

    @field_validator("storage_url")
    @classmethod
    def _storage_url(cls, value: str | None) -> str | None:
        if value:
            parse_storage_url(value)
        return value or None

    @field_validator("secret")
    @classmethod
    def _hex_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value()
        try:
            if len(bytes.fromhex(text)) < 16:
                raise ValueError
        except ValueError:
            raise ValueError("IMAGEGATE_SECRET must be at least 32 hex characters") from None
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'imagegate.db').resolve()}"

    @property
    def assets_dir(self) -> Path:
        return self.data_dir / "assets"

    @property
    def secret_path(self) -> Path:
        return self.data_dir / "server-secret"


def parse_storage_url(url: str) -> tuple[str, str, str]:
    """``("file", <dir>, "")`` or ``("s3", <bucket>, <prefix>)``; ``ValueError`` otherwise."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        directory = url[len("file://") :]
        if not directory:
            raise ValueError("file:// needs a directory, e.g. file:///var/lib/imagegate/assets")
        return "file", directory, ""
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError("s3:// needs a bucket, e.g. s3://my-bucket/imagegate")
        return "s3", parts.netloc, parts.path.strip("/")
    raise ValueError("the storage URL must start with file:// or s3://")
