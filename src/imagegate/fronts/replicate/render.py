"""Render a task as a Replicate prediction object (for polls, creates and webhooks)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any

from imagegate.core.task_model import TaskRecord
from imagegate.fronts.common.tasks import output_urls
from imagegate.services import Services

PREDICTIONS = "/replicate/v1/predictions"
STATUSES = {
    "queued": "starting",
    "parked": "starting",
    "running": "processing",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
}
MAX_ECHOED_CHARS = 512
"""Longer strings (inline images) are echoed as a short digest, never stored whole."""


def new_prediction_id() -> str:
    """A Replicate-style id: 26 lowercase base32 characters."""
    return base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()


def echo_input(data: dict[str, Any]) -> dict[str, Any]:
    """The input as the prediction shows it, with inline images replaced by their digest."""
    return {name: _echo(value) for name, value in data.items()}


def _echo(value: Any) -> Any:
    if isinstance(value, list):
        return [_echo(item) for item in value]
    if isinstance(value, str) and len(value) > MAX_ECHOED_CHARS:
        digest = hashlib.sha256(value.encode()).hexdigest()
        return f"<{len(value)} characters, sha256 {digest}>"
    return value


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def prediction(services: Services, task: TaskRecord) -> dict[str, Any]:
    """The prediction object for ``task``."""
    meta = task.meta
    get_url = f"{meta.get('base_url', '')}{PREDICTIONS}/{task.id}"
    succeeded = task.status == "succeeded"
    return {
        "id": task.id,
        "model": meta.get("model"),
        "version": meta.get("version", "hidden"),
        "input": meta.get("input", {}),
        "logs": meta.get("logs", ""),
        "output": output_urls(services, task) if succeeded else None,
        "error": _error(task),
        "status": STATUSES[task.status],
        "created_at": _iso(task.created_at),
        "started_at": _iso(task.started_at),
        "completed_at": _iso(task.finished_at),
        "urls": {"get": get_url, "cancel": f"{get_url}/cancel"},
        "metrics": _metrics(task),
        "data_removed": False,
        "source": "api",
    }


def _error(task: TaskRecord) -> str | None:
    if task.status != "failed":
        return None
    return str((task.error or {}).get("message", "the prediction failed"))


def _metrics(task: TaskRecord) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    if task.status == "succeeded":
        metrics["image_count"] = len(task.asset_ids)
    if task.started_at is not None and task.finished_at is not None:
        metrics["predict_time"] = round(task.finished_at - task.started_at, 6)
    return metrics
