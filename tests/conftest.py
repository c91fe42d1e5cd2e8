"""Shared fixtures: settings on a temp data dir, in-process and live gateways, PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.app import create_app
from imagegate.services import Services
from imagegate.settings import Settings
from imagegate.storage import db
from tests.s3_kit import S3Server, s3_bucket

__all__ = ["s3_bucket"]  # a fixture for every test module

ADMIN_KEY = "test-admin-key-0123456789"
# The test process keeps Python's default collector: a frozen heap and rarer collections would
# move where leaked sockets are reported (tests/api/test_platform.py checks the tuning itself).
os.environ.setdefault("IMAGEGATE_GC_TUNING", "false")

POSTGRES_URL = os.environ.get(
    "IMAGEGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _postgres_reachable() -> bool:
    async def probe() -> None:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    return True


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    reachable = _postgres_reachable()
    if not reachable and os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required in CI but {POSTGRES_URL} is unreachable")
    return reachable


@pytest.fixture
def postgres_url(postgres_available: bool) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (dropped afterwards)."""
    if not postgres_available:
        pytest.skip("PostgreSQL is not reachable")
    name = "imagegate_test_" + secrets.token_hex(6)

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    yield f"{base}/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """An S3-compatible server (moto) on a loopback port, shared by the session."""
    server = S3Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Runs a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated database of each kind (SQLite file, then PostgreSQL) for storage-level tests."""
    engine = db.create_engine(database_url)
    await db.upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite database migrated to head per test session: each gateway starts on a copy of
    it instead of running every migration again (a third of a gateway's start-up)."""
    path = tmp_path_factory.mktemp("template") / "imagegate.db"

    async def migrate() -> None:
        engine = db.create_engine(f"sqlite+aiosqlite:///{path}")
        try:
            await db.upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(migrate())
    return path


def data_dir_on(template: Path, data_dir: Path) -> Path:
    """``data_dir`` holding a copy of the migrated ``template`` as its database."""
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, data_dir / "imagegate.db")
    return data_dir


@pytest.fixture
def settings(tmp_path: Path, migrated_sqlite: Path) -> Settings:
    return Settings(
        data_dir=data_dir_on(migrated_sqlite, tmp_path / "data"),
        admin_key=ADMIN_KEY,
        config=None,
        public_url=None,
    )


@dataclass
class Gateway:
    """An in-process gateway with a client and a ready-made client key."""

    app: FastAPI
    client: httpx.AsyncClient
    key: str

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_KEY}"}


@asynccontextmanager
async def running_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        services: Services = app.state.services
        _, secret = await services.keys.create(name="test client")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield Gateway(app, client, secret)


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[Gateway]:
    async with running_gateway(settings) as gw:
        yield gw


PRICED_SKETCH = """
[[models]]
id = "sketch"
[models.pricing]
text_input_per_mtok = 1.0
image_output_per_mtok = 4.0
"""
"""``sketch`` is free by default; tests of charging give it a price the way an operator would."""


def priced_sketch_config(directory: Path) -> Path:
    path = directory / "priced-sketch.toml"
    path.write_text(PRICED_SKETCH)
    return path


@pytest.fixture
async def priced_gateway(settings: Settings, tmp_path: Path) -> AsyncIterator[Gateway]:
    """Like ``gateway``, with ``sketch`` priced through ``IMAGEGATE_CONFIG``."""
    priced = settings.model_copy(update={"config": priced_sketch_config(tmp_path)})
    async with running_gateway(priced) as gw:
        yield gw


@dataclass
class LiveServer:
    base_url: str
    key: str
    services: Services


@pytest.fixture(scope="module")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path
) -> Iterator[LiveServer]:
    """A real uvicorn server on a loopback port, for the official SDKs and plain HTTP clients."""
    data_dir = data_dir_on(migrated_sqlite, tmp_path_factory.mktemp("live"))
    app = create_app(Settings(data_dir=data_dir, admin_key=ADMIN_KEY))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("live server did not start")
        time.sleep(0.02)
    base_url = f"http://127.0.0.1:{port}"
    created = httpx.post(
        f"{base_url}/admin/keys",
        json={"name": "live client"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    created.raise_for_status()
    yield LiveServer(base_url, created.json()["key"], app.state.services)
    server.should_exit = True
    thread.join(10)
    sock.close()
