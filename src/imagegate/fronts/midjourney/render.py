"""The Midjourney task object (polls and ``notifyHook`` payloads) and its signed image links."""

from __future__ import annotations

import hmac
import time
from typing import Any
from urllib.parse import urlencode

from imagegate.core.assets import AssetService, LinkExpired, link_expiry
from imagegate.core.midjourney.buttons import buttons_for
from imagegate.core.midjourney.shorten import KEYCAPS, suggestion
from imagegate.core.requests import MIME_TYPES
from imagegate.core.task_model import TaskRecord

STATUS = {
    "queued": "NOT_START",
    "parked": "MODAL",
    "running": "IN_PROGRESS",
    "succeeded": "SUCCESS",
    "failed": "FAILURE",
    "canceled": "CANCEL",
}
"""Engine status → Midjourney status: a task no worker has taken yet has not started."""
IMAGE_PATH = "/mj/image/"


class ImageLinks:
    """``/mj/image/<id>?exp=…&sig=…``: HMAC-SHA256 with the server secret (as asset links are),
    valid until the task's retention ends."""

    def __init__(self, assets: AssetService, retention_seconds: float) -> None:
        self._assets = assets
        self._retention = retention_seconds

    def _sign(self, task_id: str, expires_at: int) -> str:
        return self._assets.sign(f"mj-image:{task_id}", expires_at)

    def url(self, base_url: str, task: TaskRecord) -> str:
        expires_at = int(task.created_at + self._retention)
        query = urlencode({"exp": expires_at, "sig": self._sign(task.id, expires_at)})
        return f"{base_url}{IMAGE_PATH}{task.id}?{query}"

    def valid(self, task_id: str, exp: str | None, sig: str | None) -> bool:
        """Whether ``exp``/``sig`` sign ``task_id``; :class:`LinkExpired` (410) when they did
        but the link has run out."""
        expires_at = link_expiry(exp, sig)
        if expires_at is None or sig is None:
            return False
        if not hmac.compare_digest(self._sign(task_id, expires_at).encode(), sig.encode()):
            return False
        if expires_at < time.time():
            raise LinkExpired("this link has expired")
        return True


def task_object(task: TaskRecord, links: ImageLinks, base_url: str) -> dict[str, Any]:
    """The task as Midjourney clients read it (times in ms). A task that stood for a relay's
    shows the relay's action, prompts, description, buttons and properties once it is done;
    its id, state, times, status and image link are imagegate's."""
    meta = task.meta
    action = str(meta.get("action", "IMAGINE"))
    done = task.status == "succeeded"
    text = str((task.result or {}).get("text") or "")
    prompt_en = text if action == "DESCRIBE" else str(meta.get("prompt_en") or "")
    shown = {
        "id": task.id,
        "action": action,
        "customId": meta.get("custom_id") or "",
        "botType": meta.get("bot_type") or "MID_JOURNEY",
        "prompt": (prompt_en if action == "DESCRIBE" else meta.get("prompt")) or "",
        "promptEn": prompt_en,
        "description": meta.get("description") or "Submit success",
        "state": meta.get("state"),
        "submitTime": _ms(task.created_at),
        "startTime": _ms(task.started_at),
        "finishTime": _ms(task.finished_at),
        "imageUrl": links.url(base_url, task) if done and _has_image(task) else "",
        "status": STATUS[task.status],
        "progress": f"{100 if done else task.progress}%",
        "failReason": _fail_reason(task),
        "buttons": [button.wire() for button in buttons_for(action, task.id)] if done else [],
        "properties": _properties(task, action, text),
    }
    relayed: dict[str, Any] | None = (task.result or {}).get("relay")
    if relayed is not None:
        kept = {name: value for name, value in relayed.items() if value is not None}
        kept["properties"] = {**kept.get("properties", {}), **_local_properties(task)}
        shown |= kept
    return shown


def _has_image(task: TaskRecord) -> bool:
    return bool(task.asset_ids) or described_image(task) is not None


def described_image(task: TaskRecord) -> tuple[str, str] | None:
    """A DESCRIBE task's input image (its stored digest and MIME type), as the reference
    shows the described image in ``imageUrl``; ``None`` for other tasks."""
    if task.meta.get("action") != "DESCRIBE":
        return None
    requests = task.request.get("requests") or [{}]
    images = requests[0].get("images") or []
    if not images or "sha256" not in images[0]:
        return None
    image = images[0]
    return str(image["sha256"]), MIME_TYPES.get(str(image.get("format")), "image/png")


def _properties(task: TaskRecord, action: str, text: str) -> dict[str, Any]:
    meta = task.meta
    properties: dict[str, Any] = {
        "finalPrompt": meta.get("final_prompt") or "",
        "finalZhPrompt": "",
        **_local_properties(task),
    }
    if action in ("DESCRIBE", "SHORTEN") and text:
        found = (suggestion(text, i) for i in range(1, len(KEYCAPS) + 1))
        properties["prompts"] = [line for line in found if line]
    return properties


def _local_properties(task: TaskRecord) -> dict[str, Any]:
    """What only imagegate knows: the speed tier, the model, the parent task's id."""
    local: dict[str, Any] = {"speed": task.meta.get("tier", "fast"), "model": task.model}
    if task.meta.get("parent_id"):
        local["parentId"] = task.meta["parent_id"]
    return local


def _fail_reason(task: TaskRecord) -> str:
    if task.status == "failed":
        return str((task.error or {}).get("message") or "failed")
    return "canceled" if task.status == "canceled" else ""


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)
