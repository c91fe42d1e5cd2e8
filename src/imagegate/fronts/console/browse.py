"""Read-only pages: the model directory, the gallery (thumbnails and re-signed links) and the
task list across every front."""

from __future__ import annotations

import math

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from imagegate.core.assets import Asset
from imagegate.core.catalog import CatalogEntry
from imagegate.errors import NotFound
from imagegate.fronts.console.playground import task_buttons
from imagegate.fronts.console.render import html, redirect, signed_in
from imagegate.fronts.console.security import Viewer
from imagegate.fronts.console.state import console_state
from imagegate.fronts.http.blobs import blob_response
from imagegate.fronts.http.deps import services_of

router = APIRouter(include_in_schema=False)
GALLERY_PAGE = 48
TASKS_PAGE = 50
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"


def _matches(entry: CatalogEntry, q: str, provider: str, feature: str) -> bool:
    spec = entry.spec
    text = f"{spec.id} {spec.name} {spec.description} {' '.join(spec.aliases)}".lower()
    return (
        (not q or q.lower() in text)
        and (not provider or provider == spec.provider_code)
        and (not feature or feature in spec.features)
    )


async def models(request: Request, viewer: Viewer) -> Response:
    query = request.query_params
    q, provider, feature = (query.get(n, "").strip() for n in ("q", "provider", "feature"))
    catalog = list(services_of(request).catalog)
    rows = [entry for entry in catalog if _matches(entry, q, provider, feature)]
    providers = sorted({(e.spec.provider_code, e.spec.provider) for e in catalog})
    features = sorted({f for e in catalog for f in e.spec.features})
    return html(
        request,
        "models.html",
        viewer,
        rows=rows,
        q=q,
        provider=provider,
        feature=feature,
        providers=providers,
        features=features,
    )


async def model(request: Request, viewer: Viewer) -> Response:
    model_id = request.path_params["model_id"]
    entry = services_of(request).catalog.resolve(model_id)
    if entry is None:
        raise NotFound(f"no model {model_id!r}")
    spec = entry.spec
    tab = {"google": "gemini", "bfl": "flux", "midjourney": "midjourney", "bria": "bria"}.get(
        spec.provider_code, "openai"
    )
    return html(request, "model.html", viewer, entry=entry, spec=spec, tab=tab)


async def gallery(request: Request, viewer: Viewer) -> Response:
    asked = request.query_params.get("page", "1")
    page = max(1, min(int(asked), 100_000)) if asked.isdigit() else 1
    await services_of(request).usage.flush()  # this process's latest costs first
    items, total = await console_state(request).views.gallery(
        viewer.key.id, limit=GALLERY_PAGE, offset=(page - 1) * GALLERY_PAGE
    )
    pages = max(1, math.ceil(total / GALLERY_PAGE))
    return html(request, "gallery.html", viewer, items=items, total=total, page=page, pages=pages)


async def _own_asset(request: Request, viewer: Viewer) -> Asset:
    """The path's asset when it is the viewer's image; 404 otherwise (another key's image is
    not even admitted to exist)."""
    services = services_of(request)
    asset = await services.assets.get(request.path_params["asset_id"])
    if asset.owner_key_id != viewer.key.id:
        raise NotFound("no such image")
    return asset


async def thumbnail(request: Request, viewer: Viewer) -> Response:
    services = services_of(request)
    asset = await _own_asset(request, viewer)
    thumb = await services.assets.thumbnail(asset)
    headers = {"cache-control": "private, max-age=86400", "x-content-type-options": "nosniff"}
    if thumb is None:  # an SVG: small already; opened on its own it may run no script
        headers["content-security-policy"] = SVG_POLICY
        _, body = await services.assets.open(asset.id)
        return blob_response(body, asset.content_type, headers)
    return blob_response(thumb, "image/webp", headers)


async def open_image(request: Request, viewer: Viewer) -> Response:
    """A freshly signed link to the full image (links in pages expire; this one is new)."""
    asset_id = (await _own_asset(request, viewer)).id
    return redirect(services_of(request).assets.signed_path(asset_id))


async def tasks(request: Request, viewer: Viewer) -> Response:
    everyone = viewer.key.is_admin and request.query_params.get("all") == "1"
    found = await console_state(request).views.tasks(
        None if everyone else viewer.key.id, limit=TASKS_PAGE
    )
    return html(request, "tasks.html", viewer, tasks=found, everyone=everyone)


async def task(request: Request, viewer: Viewer) -> Response:
    owner = None if viewer.key.is_admin else viewer.key.id
    record = await services_of(request).tasks.get(request.path_params["task_id"], owner)
    views = console_state(request).views
    images = [services_of(request).assets.signed_path(a) for a in record.asset_ids]
    own = record.owner_key_id == viewer.key.id
    done = record.status == "succeeded"
    action = str(record.meta.get("action", "IMAGINE"))
    buttons = task_buttons(record, action) if own and done and record.kind == "mj" else []
    return html(
        request,
        "task.html",
        viewer,
        task=record,
        images=images if own else [],
        buttons=buttons,
        deliveries=await views.deliveries(record.id),
        cost=await views.cost_of(record.id),
    )


router.add_api_route("/console/models", signed_in(models), methods=["GET"])
router.add_api_route("/console/models/{model_id:path}", signed_in(model), methods=["GET"])
router.add_api_route("/console/gallery", signed_in(gallery), methods=["GET"])
router.add_api_route("/console/gallery/{asset_id}/thumb", signed_in(thumbnail), methods=["GET"])
router.add_api_route("/console/gallery/{asset_id}/open", signed_in(open_image), methods=["GET"])
router.add_api_route("/console/tasks", signed_in(tasks), methods=["GET"])
router.add_api_route("/console/tasks/{task_id}", signed_in(task), methods=["GET"])
