"""Replicate wire format: predictions on ``owner/name`` models (catalogue ids and aliases),
polled, cancelled, held open with ``Prefer: wait`` and reported by webhook.

Webhooks follow ``webhook_events_filter`` and are signed with the server's webhook secret."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Request
from starlette.responses import Response

from imagegate.core.keys import ApiKey
from imagegate.core.task_model import TaskRecord
from imagegate.digits import is_decimal
from imagegate.errors import InvalidRequest, NotFound
from imagegate.fronts.common import tasks as front
from imagegate.fronts.http.auth import require_key
from imagegate.fronts.http.body import parse_json_body
from imagegate.fronts.http.deps import services_of
from imagegate.fronts.http.responses import json_response
from imagegate.fronts.replicate.render import (
    PREDICTIONS,
    echo_input,
    new_prediction_id,
    prediction,
)
from imagegate.fronts.replicate.wire import EVENT_STATUSES, PredictionBody, replicate_params
from imagegate.services import Services

router = APIRouter(tags=["Replicate"])

FRONT = "replicate"
CREATE = "/replicate/v1/models/{owner}/{name}/predictions"
MAX_WAIT = 60


def install(services: Services) -> None:
    """Replicate webhooks carry the prediction object."""
    services.tasks.register_webhook_renderer(FRONT, lambda task: prediction(services, task))


@router.post(
    CREATE,
    status_code=201,
    summary="Create a prediction (Prefer: wait holds the answer until it is done)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PredictionBody.model_json_schema()}},
        }
    },
)
async def create(
    owner: str,
    name: str,
    request: Request,
    prefer: str | None = Header(default=None),
    key: ApiKey = Depends(require_key),
) -> Response:
    async with front.metered(request, key, route=CREATE):
        wait = wait_seconds(prefer)
        body = await parse_json_body(request, PredictionBody)
        await front.check_webhook_url(request, body.webhook, param="webhook")
        entry = front.resolve(request, key, f"{owner}/{name}")
        translated = replicate_params(body.input, entry, front.pick_seed(entry, _seed(body.input)))
    prepared = await front.prepare(request, key, translated.params, route=CREATE)
    ignored = translated.report(prepared.validated.ignored)
    meta = {
        "front": FRONT,
        "model": f"{owner}/{name}",
        "input": echo_input(body.input),
        "logs": _logs(prepared.entry.spec.id, ignored),
    }
    if body.webhook_events_filter is not None:
        wanted = {s for event in body.webhook_events_filter for s in EVENT_STATUSES[event]}
        meta["webhook_statuses"] = sorted(wanted)
    task = await front.submit(
        request, prepared, meta=meta, task_id=new_prediction_id(), webhook_url=body.webhook
    )
    services = services_of(request)
    if wait:
        task = await front.wait_until_done(services, task, wait)
    return json_response(
        prediction(services, task), status_code=201, headers=front.ignored_headers(ignored)
    )


@router.get(PREDICTIONS + "/{prediction_id}", summary="Get a prediction")
async def get_prediction(
    prediction_id: str, request: Request, key: ApiKey = Depends(require_key)
) -> Response:
    services = services_of(request)
    task = await _own_prediction(services, prediction_id, key)
    return json_response(prediction(services, task))


@router.post(PREDICTIONS + "/{prediction_id}/cancel", summary="Cancel a prediction")
async def cancel_prediction(
    prediction_id: str, request: Request, key: ApiKey = Depends(require_key)
) -> Response:
    services = services_of(request)
    await _own_prediction(services, prediction_id, key)
    task = await services.tasks.cancel(prediction_id, key.id)
    return json_response(prediction(services, task))


async def _own_prediction(services: Services, prediction_id: str, key: ApiKey) -> TaskRecord:
    task = await services.tasks.get(prediction_id, key.id)
    if task.meta.get("front") != FRONT:
        raise NotFound(f"no such prediction: {prediction_id!r}", code="prediction_not_found")
    return task


def wait_seconds(prefer: str | None) -> float:
    """Seconds ``Prefer: wait`` / ``wait=N`` (N 1–60) asks to hold the answer; 0 without it."""
    for preference in (prefer or "").split(","):
        name, _, value = preference.strip().partition("=")
        if name.strip().lower() != "wait":
            continue
        if not value:
            return MAX_WAIT
        if not is_decimal(value.strip()) or not 1 <= int(value) <= MAX_WAIT:
            raise InvalidRequest(
                f"Prefer: wait=N takes N from 1 to {MAX_WAIT} seconds", param="Prefer"
            )
        return int(value)
    return 0


def _seed(data: dict[str, object]) -> int | None:
    seed = data.get("seed")
    if seed is None:
        return None
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= front.MAX_SEED:
        raise InvalidRequest(
            f"input.seed must be an integer from 0 to {front.MAX_SEED}", param="input.seed"
        )
    return seed


def _logs(model_id: str, ignored: list[str]) -> str:
    lines = [f"Running on {model_id}"]
    if ignored:
        lines.append(f"Ignored input (not supported by this model): {', '.join(ignored)}")
    return "\n".join(lines) + "\n"
