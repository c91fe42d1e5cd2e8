"""A fake midjourney-proxy relay.

Routes: ``POST /mj/submit/{imagine|action|modal|blend|describe|shorten|edits}`` →
``{"code": 1, "description": "Submit success", "result": "<id>", "properties": {}}`` (an
action on Vary (Region) or Custom Zoom answers code 21 and waits in ``MODAL`` until
``/mj/submit/modal`` gives it its prompt/mask); ``GET /mj/task/{id}/fetch`` → the task object
(``SUBMITTED`` → ``IN_PROGRESS`` → ``SUCCESS`` with ``imageUrl`` on this origin and
U1–U4/V1–V4/🔄 buttons, or after an upscale Vary (Subtle)/Vary (Region)/Custom Zoom); ``GET
/mj/task/{id}/image-seed`` (a seed drawn from the id); ``POST /mj/task/list-by-condition``.
The secret must come in ``mj-api-secret``.
:class:`~.script.Blocked` answers business code 24 (banned prompt); :class:`~.script.Fail`
with status 200 and ``code`` set answers that business code.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from imagegate.providers.fakes.images import image_bytes
from imagegate.providers.fakes.script import Fail, FakeUpstream, Step, json_response

__all__ = ["FakeMidjourneyProxy", "scripted_code"]

_ACTIONS = {
    "imagine": "IMAGINE",
    "blend": "BLEND",
    "describe": "DESCRIBE",
    "action": "UPSCALE",
    "modal": "INPAINT",
    "shorten": "SHORTEN",
    "edits": "EDIT",
}
_BUTTON_ACTIONS = (
    ("::upsample", "UPSCALE"),
    ("variation::", "VARIATION"),
    ("::reroll::", "REROLL"),
    ("::Inpaint::", "INPAINT"),
    ("::CustomZoom::", "ZOOM"),
    ("::Outpaint::", "ZOOM"),
    ("::pan_", "PAN"),
)
_MODAL_BUTTONS = ("::Inpaint::", "::CustomZoom::")
"""Buttons that open a modal: the action answers code 21, ``/mj/submit/modal`` continues."""
_AR = re.compile(r"--ar\s+(\d+):(\d+)")


class FakeMidjourneyProxy(FakeUpstream):
    """See the module docstring."""

    def __init__(self, secret: str = "fake-mj-secret", pending_polls: int = 1) -> None:  # noqa: S107
        self.secret = secret
        self.pending_polls = pending_polls
        self.tasks: dict[str, dict[str, Any]] = {}
        self._polls: dict[str, int] = {}
        super().__init__()

    def reset(self) -> None:
        super().reset()
        self.tasks.clear()
        self._polls.clear()

    def pending(self, task_id: str, polls: int) -> None:
        """Task ``task_id`` answers IN_PROGRESS to its next ``polls`` fetches, then finishes."""
        self._polls[task_id] = polls

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/mj/submit/{action}", self._submit, methods=["POST"]),
            Route("/mj/task/{id}/fetch", self._fetch),
            Route("/mj/task/{id}/image-seed", self._image_seed),
            Route("/mj/task/list-by-condition", self._list, methods=["POST"]),
        ]

    def error(
        self, status: int, message: str, code: str | None, retry_after: float | None
    ) -> Response:
        if status == 200 and code is not None:
            return json_response(
                {"code": int(code), "description": message, "result": None, "properties": {}}
            )
        headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else None
        return json_response({"code": status, "description": message}, status, headers)

    def blocked(self, route: str, request: Request, reason: str) -> Response:
        return json_response(
            {
                "code": 24,
                "description": reason or "可能包含敏感词",
                "result": None,
                "properties": {"promptEn": "banned", "bannedWord": "x"},
            }
        )

    def empty(self, route: str, request: Request) -> Response:
        return json_response({"code": 1, "description": "Submit success", "result": None})

    def _denied(self, request: Request) -> Response | None:
        if request.headers.get("mj-api-secret") == self.secret:
            return None
        return json_response({"code": 401, "description": "unauthorized"}, 401)

    async def _submit(self, request: Request) -> Response:
        denied = self._denied(request)
        call = await self.record("submit", request)
        if denied is not None:
            return denied
        body: dict[str, Any] = call.json or {}
        action = request.path_params["action"]

        async def success(step: Step) -> Response:
            if action == "modal":
                return self._modal(body)
            task_id = str(secrets.randbelow(10**16)).zfill(16)
            prompt = str(body.get("prompt", ""))
            custom_id = str(body.get("customId", ""))
            modal = action == "action" and any(m in custom_id for m in _MODAL_BUTTONS)
            self.tasks[task_id] = {
                "id": task_id,
                "action": _button_action(custom_id) if action == "action" else _ACTIONS[action],
                "customId": custom_id,
                "botType": body.get("botType", "MID_JOURNEY"),
                "prompt": prompt,
                "promptEn": prompt,
                "description": f"/{action} {prompt}".strip(),
                "state": body.get("state", ""),
                "submitTime": int(time.time() * 1000),
                "startTime": 0,
                "finishTime": 0,
                "imageUrl": "",
                "status": "MODAL" if modal else "SUBMITTED",
                "progress": "0%",
                "failReason": "",
                "buttons": [],
                "properties": {"finalPrompt": prompt},
            }
            self._polls[task_id] = self.pending_polls
            code, said = (21, "Waiting for window confirm") if modal else (1, "Submit success")
            return json_response(
                {"code": code, "description": said, "result": task_id, "properties": {}}
            )

        return await self.play("submit", request, success)

    def _modal(self, body: dict[str, Any]) -> Response:
        task = self.tasks.get(str(body.get("taskId", "")))
        if task is None or task["status"] != "MODAL":
            return json_response({"code": 4, "description": "task not in MODAL", "result": None})
        task.update(status="SUBMITTED", prompt=str(body.get("prompt") or ""))
        task["properties"]["maskGiven"] = bool(body.get("maskBase64"))
        return json_response(
            {"code": 1, "description": "Submit success", "result": task["id"], "properties": {}}
        )

    async def _fetch(self, request: Request) -> Response:
        denied = self._denied(request)
        await self.record("fetch", request)
        if denied is not None:
            return denied
        task_id = request.path_params["id"]
        task = self.tasks.get(task_id)
        if task is None:
            return json_response({"code": 404, "description": "task not found"}, 404)

        async def success(step: Step) -> Response:
            assert task is not None
            if task["status"] == "MODAL":
                return json_response(task)
            if self._polls.get(task_id, 0) > 0:
                self._polls[task_id] -= 1
                task.update(status="IN_PROGRESS", progress="45%", startTime=int(time.time() * 1000))
            elif task["status"] != "SUCCESS":
                self._finish(request, task)
            return json_response(task)

        return await self.play("fetch", request, success)

    def _finish(self, request: Request, task: dict[str, Any]) -> None:
        task.update(status="SUCCESS", progress="100%", finishTime=int(time.time() * 1000))
        if task["action"] == "DESCRIBE":
            task["promptEn"] = "\n\n".join(
                f"{i}️⃣ a described picture, variant {i}" for i in range(1, 5)
            )
            return
        match = _AR.search(task["prompt"])
        across, down = (int(match.group(1)), int(match.group(2))) if match else (1, 1)
        scale = (1024 * 1024 / (across * down)) ** 0.5
        width, height = int(across * scale) // 8 * 8, int(down * scale) // 8 * 8
        task["imageUrl"] = self.publish(
            request, image_bytes(width * 2, height * 2, "png"), "image/png"
        )
        h = task["id"]
        if task["action"] == "UPSCALE":
            task["buttons"] = [
                _button(f"MJ::JOB::low_variation::1::{h}::SOLO", "Vary (Subtle)", "🪄"),
                _button(f"MJ::Inpaint::1::{h}::SOLO", "Vary (Region)", "🖌️"),
                _button(f"MJ::CustomZoom::{h}", "Custom Zoom", "🔍"),
            ]
            return
        task["buttons"] = [
            _button(f"MJ::JOB::{kind}::{i}::{h}", f"{kind[0].upper()}{i}")
            for kind in ("upsample", "variation")
            for i in range(1, 5)
        ] + [_button(f"MJ::JOB::reroll::0::{h}::SOLO", "", "🔄")]

    async def _image_seed(self, request: Request) -> Response:
        denied = self._denied(request)
        await self.record("image-seed", request)
        if denied is not None:
            return denied
        task = self.tasks.get(request.path_params["id"])
        if task is None or task["status"] != "SUCCESS":
            return json_response({"code": 4, "description": "no seed yet", "result": None})
        seed = str(int(task["id"]) % 4_294_967_296)
        return json_response({"code": 1, "description": "success", "result": seed})

    async def _list(self, request: Request) -> Response:
        denied = self._denied(request)
        call = await self.record("list", request)
        if denied is not None:
            return denied
        ids = (call.json or {}).get("ids", [])
        return json_response([self.tasks[i] for i in ids if i in self.tasks])


def _button(custom_id: str, label: str, emoji: str = "") -> dict[str, Any]:
    return {"customId": custom_id, "emoji": emoji, "label": label, "type": 2, "style": 2}


def _button_action(custom_id: str) -> str:
    for marker, name in _BUTTON_ACTIONS:
        if marker in custom_id:
            return name
    return "UPSCALE"


def scripted_code(code: int, message: str = "scripted") -> Fail:
    """A business-code answer (HTTP 200) for :meth:`FakeMidjourneyProxy.script`."""
    return Fail(200, message, str(code))
