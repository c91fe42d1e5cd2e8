"""``imagegate keys`` and ``imagegate db``: the same keys the server accepts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from typer.testing import CliRunner

from imagegate.cli import app
from imagegate.core.keys import KeyService
from imagegate.settings import Settings
from imagegate.storage import db

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("IMAGEGATE_DATA_DIR", raising=False)
    monkeypatch.delenv("IMAGEGATE_DATABASE_URL", raising=False)
    return tmp_path / "data"


def authenticate(data_dir: Path, secret: str) -> bool:
    async def run() -> bool:
        engine = db.create_engine(Settings(data_dir=data_dir).resolved_database_url)
        try:
            return await KeyService(engine).authenticate(secret) is not None
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_db_upgrade(data_dir: Path) -> None:
    result = runner.invoke(app, ["db", "upgrade", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    head = ScriptDirectory.from_config(db.alembic_config()).get_current_head()
    assert f"revision {head}" in result.output
    assert (data_dir / "imagegate.db").exists()


def test_keys_create_list_revoke(data_dir: Path) -> None:
    created = runner.invoke(
        app,
        ["keys", "create", "--name", "ci", "--models", "sketch,gpt-*", "--data-dir", str(data_dir)],
    )
    assert created.exit_code == 0, created.output
    key_id = created.output.split()[1]
    secret = created.output.strip().splitlines()[-1]
    assert secret.startswith("ig-") and authenticate(data_dir, secret)

    listed = runner.invoke(
        app, ["keys", "list", "--data-dir", str(data_dir)], env={"COLUMNS": "200"}
    )
    assert key_id in listed.output and "sketch,gpt-*" in listed.output
    assert secret not in listed.output

    revoked = runner.invoke(app, ["keys", "revoke", key_id, "--data-dir", str(data_dir)])
    assert revoked.exit_code == 0
    assert not authenticate(data_dir, secret)
    missing = runner.invoke(app, ["keys", "revoke", "key_nope", "--data-dir", str(data_dir)])
    assert missing.exit_code == 1


def test_admin_flag(data_dir: Path) -> None:
    created = runner.invoke(app, ["keys", "create", "--admin", "--data-dir", str(data_dir)])
    assert "admin key" in created.output
