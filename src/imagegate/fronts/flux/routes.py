"""Flux (Black Forest Labs) wire format: ``POST /flux/v1/{model}`` queues a task and answers
its id and polling URL; ``GET /flux/v1/get_result`` reports it (also for Replicate ids).

Any image model in the catalogue can be asked; what it cannot take is dropped and listed in
``x-imagegate-ignored-params``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from imagegate.core.keys import ApiKey
from imagegate.core.task_model import TaskRecord
from imagegate.errors import InvalidRequest, NotFound
from imagegate.fronts.common import tasks as front
from imagegate.fronts.flux.wire import FluxBody, flux_params
from imagegate.fronts.http.auth import FLUX_KEY
from imagegate.fronts.http.body import parse_json_body
from imagegate.fronts.http.deps import public_base_url, services_of
from imagegate.fronts.http.direct import keyed
from imagegate.fronts.http.responses import json_response
from imagegate.services import Services

router = APIRouter(tags=["Flux"])

FRONT = "flux"
ANSWERS_FOR = frozenset({FRONT, "replicate"})
"""Fronts whose tasks ``get_result`` reports (the reference answers for Replicate ids too)."""
GET_RESULT = "/flux/v1/get_result"
CREATE = "/flux/v1/{model}"
_MODERATED = {"content_policy_violation": "Content Moderated"}


def install(services: Services) -> None:
    """Flux webhooks carry the ``get_result`` body of the finished task."""
    services.tasks.register_webhook_renderer(FRONT, lambda task: result_body(services, task))


MAX_ID_LENGTH = 64


@router.get(GET_RESULT, summary="Poll a Flux (or Replicate) task")
async def get_result(
    request: Request,
    task_id: str = Query(
        ..., alias="id", max_length=MAX_ID_LENGTH, description="The id create answered"
    ),
    key: ApiKey = Depends(FLUX_KEY.require),
) -> Response:
    services = services_of(request)
    try:
        task = await services.tasks.get(task_id, key.id)
    except NotFound:
        return json_response(_not_found(task_id))
    if task.meta.get("front") not in ANSWERS_FOR:
        return json_response(_not_found(task_id))
    return json_response(result_body(services, task))


async def _get_result_direct(request: Request, key: ApiKey) -> Response:
    """:func:`get_result` without dependency injection (polls are most of a task's requests)."""
    task_id = request.query_params.get("id")
    if task_id is None or len(task_id) > MAX_ID_LENGTH:
        problem = "required" if task_id is None else f"at most {MAX_ID_LENGTH} characters"
        raise InvalidRequest(f"invalid value for id: {problem}", param="id")
    return await get_result(request, task_id, key)


DIRECT_ROUTES = {("GET", GET_RESULT): keyed(_get_result_direct, FLUX_KEY.direct)}


@router.post(
    "/flux/v1/{model:path}",
    summary="Queue a Flux-style generation or Kontext edit on any image model",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": FluxBody.model_json_schema()}},
        }
    },
)
async def create(model: str, request: Request, key: ApiKey = Depends(FLUX_KEY.require)) -> Response:
    async with front.metered(request, key, route=CREATE):
        body = await parse_json_body(request, FluxBody)
        entry = front.resolve(request, key, model)
        await front.check_webhook_url(request, body.webhook_url, param="webhook_url")
        adjusted: list[str] = []
        params, dropped = flux_params(body, entry, front.pick_seed(entry, body.seed), adjusted)
    prepared = await front.prepare(request, key, params, route=CREATE)
    ignored = sorted({*dropped, *prepared.validated.ignored})
    task = await front.submit(
        request,
        prepared,
        meta={"front": FRONT, "webhook_statuses": list(front.TERMINAL_STATUSES)},
        webhook_url=body.webhook_url,
        webhook_secret=body.webhook_secret if body.webhook_url else None,
    )
    polling_url = public_base_url(request) + GET_RESULT + "?" + urlencode({"id": task.id})
    headers = {**front.ignored_headers(ignored), **front.adjusted_headers(adjusted)}
    return json_response({"id": task.id, "polling_url": polling_url}, headers=headers)


def _not_found(task_id: str) -> dict[str, Any]:
    return {"id": task_id, "status": "Task not found", "result": None, "progress": None}


def result_body(services: Services, task: TaskRecord) -> dict[str, Any]:
    """The ``get_result`` answer for a task (also the body of its webhook)."""
    body: dict[str, Any] = {
        "id": task.id,
        "status": _status(task),
        "result": None,
        "progress": round(task.progress / 100, 2),
    }
    if task.status == "succeeded":
        body["result"] = _result(services, task)
    elif task.status in ("failed", "canceled"):
        error = task.error or {"code": "canceled", "message": "the task was canceled"}
        body["details"] = {"code": error.get("code"), "message": error.get("message")}
    return body


def _status(task: TaskRecord) -> str:
    if task.status == "succeeded":
        return "Ready"
    if task.status == "failed":
        return _MODERATED.get(str((task.error or {}).get("code")), "Error")
    if task.status == "canceled":
        return "Error"
    return "Pending"


def _result(services: Services, task: TaskRecord) -> dict[str, Any]:
    urls = front.output_urls(services, task)
    started = task.started_at or task.created_at
    finished = task.finished_at or started
    seed = (task.result or {}).get("seed")
    return {
        "sample": urls[0] if urls else None,
        "prompt": task.request.get("prompt", ""),
        "seed": seed,
        "start_time": started,
        "end_time": finished,
        "duration": round(finished - started, 3),
    }
