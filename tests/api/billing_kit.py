"""A priced gateway (every sketch request costs $0.10) with settings a test chooses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from imagegate.app import create_app
from imagegate.settings import Settings
from tests.api.test_billing_api import PRICED
from tests.conftest import ADMIN_KEY, Gateway


async def priced_gateway(tmp_path: Path, **settings: Any) -> AsyncIterator[Gateway]:
    config = tmp_path / "config.toml"
    config.write_text(PRICED)
    app = create_app(
        Settings(
            data_dir=tmp_path / "data",
            admin_key=ADMIN_KEY,
            config=config,
            **settings,
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
            yield Gateway(app, client, "")
