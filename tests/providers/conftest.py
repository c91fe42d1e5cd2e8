"""Fixtures shared by the adapter tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from imagegate.providers.upstream_client import UpstreamClient


@pytest.fixture
async def http() -> AsyncIterator[UpstreamClient]:
    """The shipped upstream client, closed after the test."""
    async with UpstreamClient() as client:
        yield client
