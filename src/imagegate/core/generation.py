"""The generation flow: resolve the model, validate, run on a deployment, store, meter."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from decimal import Decimal

from imagegate.core.access import AccessControl
from imagegate.core.assets import Asset, AssetService, NewAsset
from imagegate.core.billing import Billing, Reservation
from imagegate.core.catalog import Catalog, CatalogEntry, DeploymentSpec
from imagegate.core.holds import Hold, ms_since
from imagegate.core.inputs import InputLoader
from imagegate.core.keys import ApiKey
from imagegate.core.params import (
    GenerationParams,
    ValidatedGeneration,
    check_input_counts,
    fit_size,
    input_spec,
    size_is_auto,
    validate_generation,
)
from imagegate.core.pricing import Price, price, quote
from imagegate.core.requests import ImageRequest, ImageResult, PartialImage, StreamEvent
from imagegate.core.routing import Router, RouterSettings
from imagegate.core.unit_of_work import Committer, UnitOfWork
from imagegate.core.upstream import (
    AdapterRegistry,
    ImageProvider,
    JobJournal,
    ResultDownloads,
    UpstreamHttp,
)
from imagegate.core.usage import UsageRecorder, UsageRow, UsageRowRepository
from imagegate.errors import (
    ImagegateError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    ServerError,
    Unavailable,
)
from imagegate.observability import metrics


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated request bound to the deployment that will serve it."""

    key: ApiKey
    entry: CatalogEntry
    validated: ValidatedGeneration
    deployment: DeploymentSpec
    provider: ImageProvider
    request_id: str
    route: str
    started: float
    hold: Hold
    """The quote held for it: handed over to its delivery or task, or refused."""

    @property
    def reservation(self) -> Reservation:
        return self.hold.reservation


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a client gets back: the upstream's result and where each image is stored."""

    prepared: Prepared
    result: ImageResult
    assets: list[Asset]
    cost: Decimal


class ImageService:
    """Runs generation requests end to end; knows no wire format."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        registry: AdapterRegistry,
        assets: AssetService,
        inputs: InputLoader,
        usage: UsageRecorder,
        usage_rows: UsageRowRepository,
        billing: Billing,
        access: AccessControl,
        writer: Committer,
        http: UpstreamHttp | None,
        downloader: ResultDownloads,
        router_settings: RouterSettings | None = None,
        default_model: str | None,
    ) -> None:
        self.catalog = catalog
        self._registry = registry
        self._assets = assets
        self._inputs = inputs
        self._billing = billing
        self._access = access
        self._usage = usage
        self._usage_rows = usage_rows
        self._writer = writer
        self._http = http
        self._default_model = default_model
        self.router = Router(registry, http, settings=router_settings, downloader=downloader)
        """Retries, failover, cooldowns and concurrency caps around the adapters."""

    def resolve_model(self, key: ApiKey, name: str | None) -> CatalogEntry:
        """The catalogue entry a key may use: 400 without a model, 404 unknown, 403 forbidden."""
        name = name or self._default_model
        if not name:
            raise InvalidRequest(
                "model is required (no default model is configured)", param="model"
            )
        entry = self.catalog.resolve(name)
        if entry is None:
            raise NotFound(
                f"model {name!r} does not exist; GET /v1/models lists the models you can use",
                param="model",
                code="model_not_found",
            )
        if not key.may_use_model(entry.spec.id, tuple(entry.spec.aliases)):
            raise PermissionDenied(
                f"this key may not use model {entry.spec.id!r}",
                param="model",
                code="model_not_allowed",
            )
        return entry

    async def prepare(
        self,
        key: ApiKey,
        params: GenerationParams,
        *,
        request_id: str,
        route: str,
        for_task: bool = True,
    ) -> Prepared:
        """Validate everything (inputs included) and pick a deployment; nothing is called yet.

        ``for_task=False`` (a request answered before it ends) lets a key that caps no spending
        skip the hold in the database; a task may finish after a restart, so it always holds.
        """
        started = time.perf_counter()
        try:
            entry = self.resolve_model(key, params.model)
            validated = await self._validate(entry, key, params)
            if not entry.available_deployments:
                raise Unavailable(_unavailable_message(entry), code="model_not_available")
            deployment = entry.available_deployments[0]
            provider = self._registry.get(deployment.provider)
            if provider is None:  # pragma: no cover - availability already checked the registry
                raise Unavailable(_unavailable_message(entry), code="model_not_available")
            dropped = self.router.dropped_params(entry, validated.request)
            if dropped:
                ignored = tuple(sorted({*validated.ignored, *dropped}))
                validated = replace(validated, ignored=ignored)
            reservation = await self._admit(key, entry, validated.request, request_id, for_task)
        except ImagegateError as exc:
            self.record_rejection(
                key, exc, route=route, request_id=request_id, started=started, params=params
            )
            raise
        request = validated.request
        refusal = UsageRow(
            request_id=request_id,
            key_id=key.id,
            model=entry.spec.id,
            route=route,
            status=0,
            latency_ms=0,
            n=request.n,
            size=request.size,
            quality=request.quality,
            user=request.user,
        )
        hold = self._hold(reservation, refusal, started)
        return Prepared(
            key, entry, validated, deployment, provider, request_id, route, started, hold
        )

    def _hold(self, reservation: Reservation, refusal: UsageRow, started: float) -> Hold:
        return Hold(
            reservation,
            release=self._billing.release,
            record=self._usage.record,
            row=refusal,
            started=started,
        )

    async def _admit(
        self,
        key: ApiKey,
        entry: CatalogEntry,
        request: ImageRequest,
        request_id: str,
        for_task: bool,
    ) -> Reservation:
        """Count the images against the key's rate limits, then hold the quote."""
        images = 0 if request.operation == "describe" else request.n
        megapixels = images * request.width * request.height / 1_000_000
        await self._access.check_images(key, images, megapixels)
        estimate = quote(entry.spec.pricing, request)
        if not for_task and not (await self._access.limits(key)).caps_spending:
            return self._billing.reserve_unheld(key.id, estimate.amount, request_id)
        return await self._billing.reserve(key.id, estimate.amount, request_id)

    async def hold(
        self,
        key: ApiKey,
        amount: Decimal,
        request_id: str,
        *,
        model: str,
        route: str,
        images: int,
        megapixels: float,
        started: float,
    ) -> Hold:
        """For a front end that prices its tasks itself (the Midjourney relay): count
        ``images`` of ``model`` against the key's image quotas, then hold ``amount``."""
        await self._access.check_images(key, images, megapixels)
        reservation = await self._billing.reserve(key.id, amount, request_id)
        refusal = UsageRow(
            request_id=request_id,
            key_id=key.id,
            model=model,
            route=route,
            status=0,
            latency_ms=0,
            n=images,
        )
        return self._hold(reservation, refusal, started)

    def estimate(
        self,
        key: ApiKey,
        params: GenerationParams,
        *,
        input_images: int = 0,
        action: str | None = None,
        tier: str | None = None,
    ) -> tuple[CatalogEntry, Price]:
        """A quote for ``params`` without loading inputs, reserving or calling anything."""
        entry = self.resolve_model(key, params.model)
        input_spec(entry, params.operation)
        request = validate_generation(entry, params).request
        return entry, quote(entry.spec.pricing, request, action, tier, input_images)

    async def _validate(
        self, entry: CatalogEntry, key: ApiKey, params: GenerationParams
    ) -> ValidatedGeneration:
        spec = input_spec(entry, params.operation)
        ignored = check_input_counts(spec, params) if spec else []
        validated = validate_generation(entry, params)
        if spec is None:
            return validated
        images, mask = await self._inputs.load_inputs(
            spec, params.images, params.mask, owner_key_id=key.id
        )
        request = replace(validated.request, images=images, mask=mask)
        if size_is_auto(params.size) and entry.spec.generate is not None:
            width, height = fit_size(entry.spec.generate, images[0].width, images[0].height)
            request = replace(request, width=width, height=height)
        return replace(
            validated, request=request, ignored=tuple(sorted({*validated.ignored, *ignored}))
        )

    async def execute(
        self,
        model_id: str,
        request: ImageRequest,
        request_id: str,
        journal: JobJournal | None = None,
    ) -> ImageResult:
        """Run an already-validated request on the model's deployments (through the router),
        storing nothing (tasks store and charge the result in their own completing
        transaction; their ``journal`` keeps the upstream jobs for a run after a restart)."""
        return await self.router.generate(self._runnable(model_id), request, request_id, journal)

    async def execute_stream(
        self, model_id: str, request: ImageRequest, request_id: str
    ) -> AsyncIterator[StreamEvent]:
        """:meth:`execute` with the upstream's partial images passed on before the result."""
        async for event in self.router.stream(self._runnable(model_id), request, request_id):
            yield event

    def _runnable(self, model_id: str) -> CatalogEntry:
        entry = self.catalog.resolve(model_id)
        if entry is None or not entry.available_deployments:
            message = _unavailable_message(entry) if entry else f"model {model_id!r} is gone"
            raise Unavailable(message, code="model_not_available")
        return entry

    def cost(
        self,
        model_id: str,
        request: ImageRequest,
        result: ImageResult,
        *,
        action: str | None = None,
        tier: str | None = None,
    ) -> Decimal:
        """What ``result`` costs under the model's price rules (``action``/``tier`` for task
        APIs priced per action, e.g. Midjourney's ``relax:UPSCALE``)."""
        entry = self.catalog.resolve(model_id)
        if entry is None:
            return Decimal(0)
        images = len(result.images)
        return price(
            entry.spec.pricing, result.usage, images, request.quality, request.size, action, tier
        ).amount

    async def run(self, prepared: Prepared) -> Delivery:
        """Route the request (retries, failover) and deliver every image it produced; a
        failure refuses the hold."""
        async with prepared.hold.handed_over():
            result = await self.router.generate(
                prepared.entry, prepared.validated.request, prepared.request_id
            )
            return await self._deliver(prepared, result)

    async def run_stream(self, prepared: Prepared) -> AsyncIterator[PartialImage | Delivery]:
        """Partial images as the upstream sends them, then one :class:`Delivery`."""
        async with prepared.hold.handed_over():
            stream = self.router.stream(
                prepared.entry, prepared.validated.request, prepared.request_id
            )
            async for event in stream:
                if not isinstance(event, PartialImage):
                    delivery = await self._deliver(prepared, event)
                    break
                yield event
            else:
                raise ServerError("the upstream stream ended without a final image")
        yield delivery

    async def _deliver(self, prepared: Prepared, result: ImageResult) -> Delivery:
        request = prepared.validated.request
        stored = await self._assets.write_blobs(
            [NewAsset(i.data, i.mime_type, i.width, i.height) for i in result.images],
            owner_key_id=prepared.key.id,
        )
        cost = self.cost(prepared.entry.spec.id, request, result)
        usage = result.usage
        row = UsageRow(
            request_id=prepared.request_id,
            key_id=prepared.key.id,
            model=prepared.entry.spec.id,
            route=prepared.route,
            status=200,
            latency_ms=ms_since(prepared.started),
            n=request.n,
            images=len(result.images),
            size=request.size,
            quality=result.quality or request.quality,
            input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
            cost_usd=cost,
            user=request.user,
        )

        async def commit(uow: UnitOfWork) -> Decimal | None:
            """Assets, charge and usage row in one transaction: a crash keeps all or none; the
            row says what the ledger says (nothing, if the hold was closed meanwhile)."""
            self._assets.add_rows(
                uow, stored, request_id=prepared.request_id, prompt=request.prompt
            )
            charged = await self._billing.settle_in(uow, prepared.reservation, cost)
            metered = charged if charged is not None else Decimal(0)
            self._usage_rows.add(uow, replace(row, cost_usd=metered))
            return charged

        charged = await self._writer.run(commit)
        metrics.cost(row.model, charged if charged is not None else Decimal(0))
        cost = charged if charged is not None else cost
        self._billing.forget_unheld(prepared.reservation)
        return Delivery(prepared, result, stored, cost)

    def record_rejection(
        self,
        key: ApiKey,
        error: ImagegateError,
        *,
        route: str,
        request_id: str,
        started: float,
        params: GenerationParams | None = None,
    ) -> None:
        """The usage row of a request refused before any upstream was called."""
        self._usage.record(
            UsageRow(
                request_id=request_id,
                key_id=key.id,
                model=params.model if params else None,
                route=route,
                status=error.status,
                latency_ms=ms_since(started),
                n=params.n if params else 0,
                error_code=error.code or error.type,
                user=params.user if params else None,
            )
        )


def _unavailable_message(entry: CatalogEntry) -> str:
    env = sorted(
        {name for d in entry.spec.deployments for names in d.credentials.values() for name in names}
    )
    fix = f"; set {' or '.join(env)}" if env else ""
    return f"model {entry.spec.id!r} has no configured provider{fix}"
