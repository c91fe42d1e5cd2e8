"""``imagegate keys`` and ``imagegate db``: the same keys the server accepts."""

from __future__ import annotations

import asyncio
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from typer.testing import CliRunner

from imagegate.cli import app
from imagegate.cli._common import key_service
from imagegate.core.usage import UsageRecorder, UsageRow
from imagegate.settings import Settings
from imagegate.storage import db
from imagegate.storage.repositories.usage_rows import SqlUsageRowRepository

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
            async with key_service(engine) as keys:
                return await keys.authenticate(secret) is not None
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


def test_keys_with_credit_top_up_update_and_show(data_dir: Path) -> None:
    dd = ["--data-dir", str(data_dir)]
    created = runner.invoke(
        app, ["keys", "create", "--credit", "5", "--images-per-minute", "10", *dd]
    )
    assert created.exit_code == 0, created.output
    key_id = created.output.split()[1]
    wide = {"COLUMNS": "200"}
    shown = runner.invoke(app, ["keys", "show", key_id, *dd], env=wide)
    assert "balance_usd" in shown.output and "5.0" in shown.output
    assert "images_per_minute" in shown.output and "10" in shown.output
    topped = runner.invoke(app, ["keys", "topup", key_id, "2.5", "--note", "gift", *dd], env=wide)
    assert topped.exit_code == 0 and "7.5" in topped.output
    updated = runner.invoke(app, ["keys", "update", key_id, "--rpm", "30", *dd], env=wide)
    assert updated.exit_code == 0 and "30" in updated.output
    missing = runner.invoke(app, ["keys", "show", "key_nope", *dd])
    assert missing.exit_code == 1


def test_usage_table_and_csv(data_dir: Path) -> None:
    async def seed() -> None:
        engine = db.create_engine(Settings(data_dir=data_dir).resolved_database_url)
        await db.upgrade(engine)
        recorder = UsageRecorder(SqlUsageRowRepository(engine))
        for index, model in enumerate(["sketch", "sketch", "dall-e-3"]):
            recorder.record(
                UsageRow(
                    request_id=f"req_{index}",
                    key_id="key_a",
                    model=model,
                    route="/v1/images/generations",
                    status=200,
                    latency_ms=3,
                    images=1,
                    cost_usd=Decimal("0.25"),
                )
            )
        await recorder.flush()
        await engine.dispose()

    data_dir.mkdir(parents=True)
    asyncio.run(seed())
    table = runner.invoke(
        app, ["usage", "--by", "model", "--data-dir", str(data_dir)], env={"COLUMNS": "200"}
    )
    assert table.exit_code == 0, table.output
    assert "sketch" in table.output and "0.500000" in table.output and "0.750000" in table.output
    csv = runner.invoke(app, ["usage", "--csv", "--data-dir", str(data_dir)])
    assert csv.output.count("\n") == 4 and csv.output.startswith("created_at,")
    bad = runner.invoke(app, ["usage", "--by", "color", "--data-dir", str(data_dir)])
    assert bad.exit_code != 0


def test_keys_output_for_people(data_dir: Path) -> None:
    """Whole ids at any width, ISO dates, "never" for unset times, top-up notes, JSON."""
    dd = ["--data-dir", str(data_dir)]
    created = runner.invoke(app, ["keys", "create", "--name", "a-rather-long-key-name", *dd])
    key_id = created.output.split()[1]
    narrow = runner.invoke(app, ["keys", "list", *dd], env={"COLUMNS": "60"})
    assert narrow.exit_code == 0 and key_id in narrow.output
    listed = runner.invoke(app, ["keys", "list", "--json", *dd])
    assert [key["id"] for key in json.loads(listed.output)] == [key_id]

    runner.invoke(app, ["keys", "topup", key_id, "3", "--note", "November", *dd])
    shown = runner.invoke(app, ["keys", "show", key_id, *dd], env={"COLUMNS": "60"})
    assert shown.exit_code == 0, shown.output
    assert re.search(r"created_at\s*│\s*\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", shown.output)
    assert re.search(r"revoked_at\s*│\s*never", shown.output)
    assert re.search(r"expires_at\s*│\s*never", shown.output)
    assert "November" in shown.output and "unlimited" in shown.output
    as_json = json.loads(runner.invoke(app, ["keys", "show", key_id, "--json", *dd]).output)
    assert as_json["top_ups"][0]["note"] == "November" and as_json["balance_usd"] == 3.0
