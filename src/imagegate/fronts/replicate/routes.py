"""Replicate wire format: predictions on ``owner/name`` models (catalogue ids and aliases),
polled, cancelled, held open with ``Prefer: wait`` and reported by webhook.

Webhooks follow ``webhook_events_filter`` and are signed with the server's webhook secret."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Query, Request
from starlette.responses import Response

from imagegate.core import task_images
from imagegate.core.catalog import CatalogEntry
from imagegate.core.keys import ApiKey
from imagegate.core.task_model import TaskRecord
from imagegate.digits import is_decimal
from imagegate.errors import InvalidRequest, NotFound
from imagegate.fronts.common import tasks as front
from imagegate.fronts.http.auth import require_key
from imagegate.fronts.http.body import parse_json_body
from imagegate.fronts.http.deps import public_base_url, services_of
from imagegate.fronts.http.responses import json_response
from imagegate.fronts.replicate.models import by_version, model_object, owner_and_name
from imagegate.fronts.replicate.pages import PAGE_SIZE, decode_cursor, encode_cursor
from imagegate.fronts.replicate.render import (
    PREDICTIONS,
    echo_input,
    new_prediction_id,
    prediction,
)
from imagegate.fronts.replicate.wire import (
    EVENT_STATUSES,
    PredictionBody,
    VersionedBody,
    replicate_params,
)
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
        entry = front.resolve(request, key, f"{owner}/{name}")
    return await _run(request, key, body, entry, f"{owner}/{name}", wait, route=CREATE)


@router.post(
    PREDICTIONS,
    status_code=201,
    summary="Create a prediction of a model version ('owner/name:version' or a version id)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": VersionedBody.model_json_schema()}},
        }
    },
)
async def create_versioned(
    request: Request, prefer: str | None = Header(default=None), key: ApiKey = Depends(require_key)
) -> Response:
    async with front.metered(request, key, route=PREDICTIONS):
        wait = wait_seconds(prefer)
        body = await parse_json_body(request, VersionedBody)
        entry, model_name = _versioned_model(request, key, body.version)
    return await _run(
        request, key, body, entry, model_name, wait, route=PREDICTIONS, version=body.version
    )


def _versioned_model(request: Request, key: ApiKey, version: str) -> tuple[CatalogEntry, str]:
    """The model a ``version`` names: ``owner/name:version`` (or ``owner/name``), or the
    version id of a catalogue model as ``GET /v1/models/{owner}/{name}`` shows it."""
    model_name, colon, _ = version.partition(":")
    if colon or "/" in model_name:
        return front.resolve(request, key, model_name), model_name
    entry = by_version(services_of(request).catalog, version)
    if entry is None:
        raise NotFound(
            f"version {version!r} does not exist; use 'owner/name:version' or the "
            "latest_version.id of GET /replicate/v1/models/{owner}/{name}",
            param="version",
            code="version_not_found",
        )
    return front.resolve(request, key, entry.spec.id), owner_and_name(entry)


async def _run(
    request: Request,
    key: ApiKey,
    body: PredictionBody,
    entry: CatalogEntry,
    model_name: str,
    wait: float,
    *,
    route: str,
    version: str | None = None,
) -> Response:
    async with front.metered(request, key, route=route):
        await front.check_webhook_url(request, body.webhook, param="webhook")
        translated = replicate_params(body.input, entry, front.pick_seed(entry, _seed(body.input)))
    prepared = await front.prepare(request, key, translated.params, route=route)
    ignored = translated.report(prepared.validated.ignored)
    meta = {
        "front": FRONT,
        "model": model_name,
        "input": echo_input(body.input),
        "logs": _logs(prepared.entry.spec.id, ignored),
    }
    if version is not None:
        meta["version"] = version.rpartition(":")[2] if ":" in version else version
    if body.webhook_events_filter is not None:
        wanted = {s for event in body.webhook_events_filter for s in EVENT_STATUSES[event]}
        meta["webhook_statuses"] = sorted(wanted)
    task = await front.submit(
        request, prepared, meta=meta, task_id=new_prediction_id(), webhook_url=body.webhook
    )
    services = services_of(request)
    if wait:
        task = await front.wait_until_done(services, task, wait)
    headers = {**front.ignored_headers(ignored), **front.adjusted_headers(translated.adjusted)}
    return json_response(prediction(services, task), status_code=201, headers=headers)


@router.get(PREDICTIONS, summary="List this key's predictions (newest first, cursor pages)")
async def list_predictions(
    request: Request,
    cursor: str | None = Query(default=None, description="from a previous page's next"),
    key: ApiKey = Depends(require_key),
) -> Response:
    services = services_of(request)
    found, more = await services.tasks.list_owned(
        key.id,
        task_images.KIND,
        shown=lambda task: task.meta.get("front") == FRONT,
        before=decode_cursor(cursor) if cursor else None,
        limit=PAGE_SIZE,
    )
    following = None
    if more and found:
        last = found[-1]
        following = f"{public_base_url(request)}{PREDICTIONS}?cursor={encode_cursor(last)}"
    return json_response(
        {
            "previous": None,
            "next": following,
            "results": [prediction(services, task) for task in found],
        }
    )


@router.get("/replicate/v1/models/{owner}/{name}", summary="A model (Replicate's model object)")
async def get_model(
    owner: str, name: str, request: Request, key: ApiKey = Depends(require_key)
) -> Response:
    entry = front.resolve(request, key, f"{owner}/{name}")
    return json_response(model_object(entry, owner, name, public_base_url(request)))


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
