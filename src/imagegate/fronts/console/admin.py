"""Admin pages: keys (create with limits, the secret shown once; edit, top up, revoke) and
providers (each deployment's health, cooldown, last error and latency, a check button).
A client key gets 403 on every one of them."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from imagegate.core import provider_health
from imagegate.core.keys import ApiKey, parse_globs
from imagegate.errors import InvalidRequest, NotFound
from imagegate.fronts.console.render import html, redirect, signed_in
from imagegate.fronts.console.security import Viewer, trusted_form
from imagegate.fronts.console.state import console_state
from imagegate.fronts.http.deps import services_of

router = APIRouter(include_in_schema=False)
KEYS = "/console/keys"
MONEY_FIELDS = ("budget_daily_usd", "budget_monthly_usd")
INT_FIELDS = ("rpm", "images_per_minute", "max_concurrent")


def _money(form: FormData, name: str) -> Decimal | None:
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        raise InvalidRequest(f"{name} must be an amount in USD", param=name) from None
    if not amount.is_finite() or amount < 0:
        raise InvalidRequest(f"{name} must be zero or more", param=name)
    return amount


def _int(form: FormData, name: str) -> int | None:
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        return None
    if not value.strip().isdigit() or int(value) < 1:
        raise InvalidRequest(f"{name} must be a whole number of at least 1", param=name)
    return int(value)


def _limits(form: FormData) -> dict[str, Any]:
    """The limit fields that were filled in (empty = unlimited)."""
    values: dict[str, Any] = {name: _money(form, name) for name in MONEY_FIELDS}
    values |= {name: _int(form, name) for name in INT_FIELDS}
    return {name: value for name, value in values.items() if value is not None}


async def _rows(request: Request) -> list[tuple[ApiKey, dict[str, Any]]]:
    services = services_of(request)
    keys = await services.keys.list()
    return [(key, (await services.billing.limits(key.id)).public()) for key in reversed(keys)]


async def keys_page(
    request: Request,
    viewer: Viewer,
    *,
    created: tuple[ApiKey, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    return html(
        request,
        "keys.html",
        viewer,
        status=status,
        rows=await _rows(request),
        created=created,
        error=error,
    )


async def keys(request: Request, viewer: Viewer) -> Response:
    return await keys_page(request, viewer)


async def create_key(request: Request, viewer: Viewer) -> Response:
    form = await trusted_form(request, viewer.csrf)
    try:
        name = str(form.get("name") or "").strip()[:200]
        limits = _limits(form)
        credit = _money(form, "credit_usd")
        if credit is not None:
            limits["balance_usd"] = credit
        models = parse_globs(str(form.get("models") or "") or None)
        key, secret = await services_of(request).keys.create(
            name=name, models=models, admin=form.get("admin") == "on", limits=limits
        )
    except InvalidRequest as exc:
        return await keys_page(request, viewer, error=exc.message, status=400)
    return await keys_page(request, viewer, created=(key, secret))


async def _key(request: Request) -> ApiKey:
    key = await services_of(request).keys.get(request.path_params["key_id"])
    if key is None:
        raise NotFound("no such key")
    return key


async def edit_key(request: Request, viewer: Viewer) -> Response:
    key = await _key(request)
    limits = (await services_of(request).billing.limits(key.id)).public()
    return html(request, "key.html", viewer, key=key, limits=limits)


async def update_key(request: Request, viewer: Viewer) -> Response:
    form = await trusted_form(request, viewer.csrf)
    key = await _key(request)
    changes: dict[str, Any] = {name: None for name in (*MONEY_FIELDS, *INT_FIELDS)}
    changes |= _limits(form)
    services = services_of(request)
    await services.billing.update_limits(key.id, changes)
    services.access.forget(key.id)
    return redirect(f"{KEYS}/{key.id}")


async def top_up(request: Request, viewer: Viewer) -> Response:
    form = await trusted_form(request, viewer.csrf)
    key = await _key(request)
    amount = _money(form, "amount_usd")
    if amount is None or amount <= 0:
        raise InvalidRequest("the top-up must be more than zero", param="amount_usd")
    services = services_of(request)
    await services.billing.top_up(key.id, amount, "console top-up")
    services.access.forget(key.id)
    return redirect(KEYS)


async def revoke(request: Request, viewer: Viewer) -> Response:
    await trusted_form(request, viewer.csrf)
    key = await _key(request)
    await services_of(request).keys.revoke(key.id)
    await console_state(request).sessions.end_all(key.id)
    return redirect(KEYS)


async def providers(request: Request, viewer: Viewer) -> Response:
    services = services_of(request)
    rows = provider_health.health(services.images.router, services.catalog)
    checked = request.query_params.get("checked")
    return html(request, "providers.html", viewer, rows=rows, checked=checked, outcome=None)


async def check(request: Request, viewer: Viewer) -> Response:
    form = await trusted_form(request, viewer.csrf)
    services = services_of(request)
    dep_key = str(form.get("deployment") or "")
    dep = provider_health.find(services.images.router, services.catalog, dep_key)
    if dep is None:
        raise NotFound("no such deployment")
    outcome = await provider_health.check(dep, services.http)
    rows = provider_health.health(services.images.router, services.catalog)
    return html(request, "providers.html", viewer, rows=rows, checked=dep_key, outcome=outcome)


def _admin(handler: Any) -> Any:
    return signed_in(handler, admin=True)


router.add_api_route(KEYS, _admin(keys), methods=["GET"])
router.add_api_route(KEYS, _admin(create_key), methods=["POST"])
router.add_api_route(KEYS + "/{key_id}", _admin(edit_key), methods=["GET"])
router.add_api_route(KEYS + "/{key_id}", _admin(update_key), methods=["POST"])
router.add_api_route(KEYS + "/{key_id}/topup", _admin(top_up), methods=["POST"])
router.add_api_route(KEYS + "/{key_id}/revoke", _admin(revoke), methods=["POST"])
router.add_api_route("/console/providers", _admin(providers), methods=["GET"])
router.add_api_route("/console/providers/check", _admin(check), methods=["POST"])
