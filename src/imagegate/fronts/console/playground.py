"""The playground: a tab per front, a price quote before **Generate**, the images and their
cost after; Midjourney submits a task, shows its progress and then the result's buttons.

Everything runs through the same core operations the API routes use (the generation flow,
the Midjourney service), under the key of the signed-in viewer and its limits."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from fastapi import APIRouter
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from imagegate.core.catalog import CatalogEntry
from imagegate.core.generation import Delivery
from imagegate.core.keys import ApiKey
from imagegate.core.midjourney.buttons import buttons_for
from imagegate.core.midjourney.intake import Caller
from imagegate.core.params import GenerationParams, ImageSource
from imagegate.core.requests import Operation
from imagegate.core.task_model import TaskRecord
from imagegate.errors import ImagegateError, InvalidRequest
from imagegate.fronts.common.sizes import size_for_output
from imagegate.fronts.console.render import html, redirect, signed_in
from imagegate.fronts.console.security import SECURITY_HEADERS, Viewer, trusted_form
from imagegate.fronts.console.state import console_state
from imagegate.fronts.http.deps import public_base_url, services_of
from imagegate.fronts.http.multipart import read_upload
from imagegate.imaging.inspect import inspect_image
from imagegate.imaging.limits import ImageLimits

router = APIRouter(include_in_schema=False)
PLAYGROUND = "/console/playground"


@dataclass(frozen=True, slots=True)
class Tab:
    id: str
    label: str
    providers: frozenset[str]
    """Catalogue ``provider_code``s this front's models come from (the built-in ``local``
    renderer serves every front)."""
    route: str
    """The API route this tab stands for (what the key's route globs are checked against)."""


TABS = (
    Tab("openai", "OpenAI", frozenset({"openai", "xai"}), "/v1/images/generations"),
    Tab("gemini", "Gemini", frozenset({"google"}), "/v1beta/models"),
    Tab("midjourney", "Midjourney", frozenset({"midjourney"}), "/mj/submit/imagine"),
    Tab("flux", "Flux", frozenset({"bfl"}), "/flux/v1"),
    Tab("bria", "Bria", frozenset({"bria"}), "/bria/v1/text-to-image"),
)
TAB_BY_ID = {tab.id: tab for tab in TABS}
MODES: dict[str, tuple[tuple[Operation, str], ...]] = {
    "openai": (("generate", "Generate an image"), ("edit", "Edit an image")),
    "bria": (
        ("generate", "Text to image"),
        ("remove_background", "Remove background"),
        ("upscale", "Increase resolution"),
    ),
}
"""The operations a tab offers besides generating (Bria's tools, OpenAI's edit)."""
IMAGE_INPUT: frozenset[Operation] = frozenset({"edit", "remove_background", "upscale"})
NO_PROMPT: frozenset[Operation] = frozenset({"remove_background", "upscale"})
UPSCALE_FACTOR = 2.0


def mode_of(tab: Tab, asked: str | None) -> Operation:
    for operation, _label in MODES.get(tab.id, ()):
        if operation == asked:
            return operation
    return "generate"


def _tab(value: str | None) -> Tab:
    return TAB_BY_ID.get(value or "", TABS[0])


def models_for(request: Request, key: ApiKey, tab: Tab, operation: Operation) -> list[CatalogEntry]:
    """The models this key may try on ``tab`` for ``operation``."""
    services = services_of(request)
    if tab.id == "midjourney":
        entry = services.catalog.resolve(services.midjourney.intake.model)
        return [entry] if entry is not None else []
    found = []
    for entry in services.catalog:
        spec = entry.spec
        if not entry.available or not key.may_use_model(spec.id, tuple(spec.aliases)):
            continue
        if spec.provider_code not in tab.providers and spec.provider_code != "local":
            continue
        if (operation == "edit" and spec.edit is None) or spec.generate is None:
            continue
        if operation in NO_PROMPT and _FEATURES[operation] not in spec.features:
            continue
        found.append(entry)
    return found


_FEATURES: dict[str, str] = {"remove_background": "background-removal", "upscale": "upscale"}


def _number(form: FormData | dict[str, str], name: str) -> int | None:
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be a whole number", param=name) from None


def _text(form: FormData | dict[str, str], name: str) -> str | None:
    value = form.get(name)
    return value.strip() or None if isinstance(value, str) else None


def _params(
    form: FormData | dict[str, str], operation: Operation, **inputs: Any
) -> GenerationParams:
    seed = _number(form, "seed")
    return GenerationParams(
        prompt=_text(form, "prompt") or "",
        operation=operation,
        model=_text(form, "model"),
        n=_number(form, "n") or 1,
        size=_text(form, "size"),
        quality=_text(form, "quality"),
        extras={"seed": seed} if seed is not None else {},
        **inputs,
    )


def quote_text(request: Request, key: ApiKey, form: dict[str, str], operation: Operation) -> str:
    """``$0.0400 (estimate)`` for the form as it stands, or why it cannot be priced."""
    tab = _tab(form.get("tab"))
    action = "IMAGINE" if tab.id == "midjourney" else None
    form = {**form, "prompt": form.get("prompt") or "x"}  # the price does not depend on it
    try:
        _entry, price = services_of(request).images.estimate(
            key,
            _params(form, operation),
            input_images=1 if operation in IMAGE_INPUT else 0,
            action=action,
            tier="fast" if action else None,
        )
    except ImagegateError as exc:
        return f"cannot price this yet: {exc.message}"
    return f"${price.amount:,.4f} (estimate)"


async def _page(
    request: Request,
    viewer: Viewer,
    *,
    tab: Tab,
    mode: Operation,
    form: dict[str, str],
    delivery: Delivery | None = None,
    task: TaskRecord | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    services = services_of(request)
    entries = models_for(request, viewer.key, tab, mode)
    if not form.get("model") and entries:
        form = {**form, "model": entries[0].spec.id}
    chosen = services.catalog.resolve(form.get("model", "")) if form.get("model") else None
    images = []
    cost: Decimal | None = None
    if delivery is not None:
        images = [services.assets.signed_path(asset.id) for asset in delivery.assets]
        cost = delivery.cost
    task_view = await _task_view(request, task) if task is not None else None
    return html(
        request,
        "playground.html",
        viewer,
        status=status,
        tabs=TABS,
        tab=tab,
        mode=mode,
        modes=MODES.get(tab.id, ()),
        image_input=mode in IMAGE_INPUT,
        prompt_needed=mode not in NO_PROMPT,
        entries=entries,
        chosen=chosen,
        form=form,
        quote=quote_text(request, viewer.key, {**form, "tab": tab.id}, mode),
        images=images,
        cost=cost,
        task=task_view,
        error=error,
    )


async def _task_view(request: Request, task: TaskRecord) -> dict[str, Any]:
    services = services_of(request)
    action = str(task.meta.get("action", "IMAGINE"))
    done = task.status == "succeeded"
    return {
        "id": task.id,
        "status": task.status,
        "progress": 100 if done else task.progress,
        "terminal": task.terminal,
        "action": action,
        "prompt": task.meta.get("prompt") or "",
        "error": (task.error or {}).get("message"),
        "images": [services.assets.signed_path(asset_id) for asset_id in task.asset_ids],
        "buttons": task_buttons(task, action) if done else [],
        "cost": await console_state(request).views.cost_of(task.id) if done else None,
    }


def task_buttons(task: TaskRecord, action: str) -> list[tuple[str, str]]:
    """(customId, label) of a finished task's buttons: a relayed task's own, else ours."""
    relayed = (task.result or {}).get("relay")
    if isinstance(relayed, dict):
        return [
            (str(b.get("customId")), str(b.get("label") or b.get("emoji") or ""))
            for b in relayed.get("buttons") or []
            if isinstance(b, dict) and b.get("customId")
        ]
    return [(b.custom_id, b.label or b.emoji) for b in buttons_for(action, task.id)]


async def show(request: Request, viewer: Viewer) -> Response:
    query = request.query_params
    tab = _tab(query.get("tab"))
    mode = mode_of(tab, query.get("mode"))
    task = None
    if tab.id == "midjourney" and query.get("task"):
        task = await services_of(request).midjourney.intake.task(viewer.key, query["task"])
    form = {name: query[name] for name in ("model", "prompt") if name in query}
    return await _page(request, viewer, tab=tab, mode=mode, form=form, task=task)


async def generate(request: Request, viewer: Viewer) -> Response:
    """Run the form on the core generation flow and show the result in the same page."""
    form = await trusted_form(request, viewer.csrf)
    tab = _tab(_text(form, "tab"))
    mode = mode_of(tab, _text(form, "mode"))
    shown = {name: value for name, value in form.items() if isinstance(value, str)}
    shown.pop("csrf_token", None)
    try:
        if tab.id == "midjourney":
            return await _imagine(request, viewer, form)
        delivery = await _run(request, viewer.key, tab, mode, form)
    except ImagegateError as exc:
        return await _page(
            request, viewer, tab=tab, mode=mode, form=shown, error=exc.message, status=exc.status
        )
    return await _page(request, viewer, tab=tab, mode=mode, form=shown, delivery=delivery)


async def _run(
    request: Request, key: ApiKey, tab: Tab, mode: Operation, form: FormData
) -> Delivery:
    services = services_of(request)
    limit = services.settings.max_body_bytes
    inputs: dict[str, Any] = {}
    if mode in IMAGE_INPUT:
        image = form.get("image")
        if not isinstance(image, UploadFile) or not image.filename:
            raise InvalidRequest("choose an image to edit", param="image")
        data = await read_upload(image, param="image", max_bytes=limit)
        inputs["images"] = [ImageSource("image", data)]
        if mode == "upscale":
            inputs["size"] = await _upscaled_size(request, key, form, data)
        mask = form.get("mask")
        if isinstance(mask, UploadFile) and mask.size:
            inputs["mask"] = ImageSource(
                "mask", await read_upload(mask, param="mask", max_bytes=limit)
            )
    size = inputs.pop("size", None)
    params = _params(form, mode, **inputs)
    if size is not None:
        params = replace(params, size=size)
    request_id = "req_console_" + secrets.token_hex(10)
    route = "/v1/images/edits" if mode == "edit" else tab.route
    usage_route = f"console:{tab.id}" + ("" if mode == "generate" else f":{mode}")
    admission = await services.access.admit(key, route)
    try:
        prepared = await services.images.prepare(
            key, params, request_id=request_id, route=usage_route, for_task=False
        )
        return await services.images.run(prepared)
    finally:
        if admission.release is not None:
            admission.release()


async def _upscaled_size(request: Request, key: ApiKey, form: FormData, data: bytes) -> str:
    """The model's size nearest to the upload at twice its sides (as the Bria front asks)."""
    entry = services_of(request).images.resolve_model(key, _text(form, "model"))
    limits = ImageLimits(max_bytes=services_of(request).settings.max_body_bytes)
    found = await asyncio.to_thread(inspect_image, data, param="image", limits=limits)
    factor = int(UPSCALE_FACTOR)
    return size_for_output(entry, found.width * factor, found.height * factor)


def _caller(request: Request, key: ApiKey) -> Caller:
    return Caller(
        key=key,
        request_id="req_console_" + secrets.token_hex(10),
        base_url=public_base_url(request),
    )


async def _imagine(request: Request, viewer: Viewer, form: FormData) -> Response:
    prompt = _text(form, "prompt")
    if not prompt:
        raise InvalidRequest("write a prompt", param="prompt")
    seed = _number(form, "seed")
    if seed is not None:
        prompt = f"{prompt} --seed {seed}"
    admission = await services_of(request).access.admit(viewer.key, TAB_BY_ID["midjourney"].route)
    service = services_of(request).midjourney
    caller = _caller(request, viewer.key)
    try:
        if service.relay is not None:
            accepted = await service.relay.submit(caller, "imagine", {"prompt": prompt})
        else:
            accepted = await service.submissions.imagine(caller, prompt, [])
    finally:
        if admission.release is not None:
            admission.release()
    return redirect(f"{PLAYGROUND}?tab=midjourney&task={accepted.task.id}")


async def press(request: Request, viewer: Viewer) -> Response:
    """A Midjourney result's button: a new task, shown in the playground."""
    form = await trusted_form(request, viewer.csrf)
    custom_id = _text(form, "custom_id")
    if not custom_id:
        raise InvalidRequest("which button?", param="custom_id")
    task_id = request.path_params["task_id"]
    service = services_of(request).midjourney
    caller = _caller(request, viewer.key)
    if service.relay is not None:
        body = {"taskId": task_id, "customId": custom_id}
        accepted = await service.relay.submit(caller, "action", body)
    else:
        accepted = await service.presses.action(caller, task_id, custom_id)
    return redirect(f"{PLAYGROUND}?tab=midjourney&task={accepted.task.id}")


async def task_status(request: Request, viewer: Viewer) -> Response:
    """What the page polls while a task runs."""
    task = await services_of(request).tasks.get(request.path_params["task_id"], viewer.key.id)
    body = {"status": task.status, "progress": task.progress, "terminal": task.terminal}
    return JSONResponse(body, headers=SECURITY_HEADERS)


async def quote(request: Request, viewer: Viewer) -> Response:
    """The price of the form as it stands (read-only; called as the form changes)."""
    form = dict(request.query_params)
    mode = mode_of(_tab(form.get("tab")), form.get("mode"))
    started = time.perf_counter()
    text = quote_text(request, viewer.key, form, mode)
    ms = (time.perf_counter() - started) * 1000
    return JSONResponse({"quote": text, "ms": round(ms, 2)}, headers=SECURITY_HEADERS)


router.add_api_route(PLAYGROUND, signed_in(show), methods=["GET"])
router.add_api_route(PLAYGROUND, signed_in(generate), methods=["POST"])
router.add_api_route(PLAYGROUND + "/quote", signed_in(quote), methods=["GET"])
router.add_api_route("/console/tasks/{task_id}/press", signed_in(press), methods=["POST"])
router.add_api_route("/console/tasks/{task_id}/status", signed_in(task_status), methods=["GET"])
