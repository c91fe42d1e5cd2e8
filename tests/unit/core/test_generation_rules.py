"""The parts of core.generation that decide before anything is called: which model a key gets,
what ``prepare`` checks and in which order (validation, image quotas, the hold), the usage row
of a refusal, quotes and prices. Billing, usage, files and the upstream are in-memory fakes;
nothing here touches a database or calls an upstream."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from typing import Any

import pytest
from PIL import Image

from imagegate.core.access import AccessControl
from imagegate.core.billing import Billing, KeyLimits, Reservation
from imagegate.core.catalog import Catalog, CatalogEntry, ModelSpec
from imagegate.core.files import FileService
from imagegate.core.generation import ImageService
from imagegate.core.inputs import InputLoader
from imagegate.core.keys import ApiKey
from imagegate.core.limits import ConcurrencyLimiter, MemoryRateLimiter
from imagegate.core.params import GenerationParams, ImageSource
from imagegate.core.requests import GeneratedImage, ImageRequest, ImageResult, StreamEvent
from imagegate.core.upstream import ImageProvider, ProviderContext
from imagegate.core.usage import UsageRecorder, UsageRow
from imagegate.errors import (
    InvalidRequest,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    Unavailable,
)
from imagegate.imaging.fetch import ImageFetcher

ROUTE = "/v1/images/generations"

PAINTER = {
    "id": "painter",
    "name": "Painter",
    "provider": "Test",
    "provider_code": "test",
    "created": 0,
    "aliases": ["paint-latest"],
    "features": ["text-to-image", "image-edit"],
    "generate": {
        "sizes": ["256x256", "512x256", "256x512"],
        "default_size": "256x256",
        "max_n": 4,
        "qualities": ["standard", "hd"],
        "default_quality": "standard",
        "styles": ["vivid"],
        "prompt_max_chars": 40,
    },
    "edit": {"max_images": 1, "mask": True},
    "pricing": {
        "per_image": {"standard:256x256": 0.02, "hd:256x256": 0.05, "standard:512x256": 0.04}
    },
    "deployments": [{"provider": "painter", "model": "p-1"}],
}
GONE = {
    "id": "gone",
    "name": "Gone",
    "provider": "Test",
    "provider_code": "test",
    "created": 0,
    "features": ["text-to-image"],
    "generate": PAINTER["generate"],
    "deployments": [
        {
            "provider": "elsewhere",
            "model": "g-1",
            "credentials": {"api_key": ["GONE_KEY", "G_TOKEN"]},
        }
    ],
}


class Painter:
    """An adapter that declares what it drops (``style``) and is never called by ``prepare``."""

    name = "painter"

    def has_credentials(self, credentials: Mapping[str, str]) -> bool:
        return True

    def images_per_call(self, request: ImageRequest, ctx: ProviderContext) -> int:
        return 1

    def dropped_params(self, request: ImageRequest, ctx: ProviderContext) -> list[str]:
        return ["style"] if request.style else []

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ImageResult:
        raise AssertionError("prepare called the upstream")

    async def stream(
        self, request: ImageRequest, ctx: ProviderContext
    ) -> AsyncIterator[StreamEvent]:
        raise AssertionError("prepare called the upstream")
        yield  # pragma: no cover


class Registry:
    def __init__(self, **adapters: ImageProvider) -> None:
        self.adapters = adapters

    def names(self) -> list[str]:
        return list(self.adapters)

    def get(self, name: str) -> ImageProvider | None:
        return self.adapters.get(name)


class FakeBilling(Billing):
    """Limits from a dict; reservations and releases kept in lists; ``refuse`` is a 429."""

    def __init__(self, *limits: KeyLimits) -> None:
        self.by_key = {limit.key_id: limit for limit in limits}
        self.reserved: list[Reservation] = []
        self.released: list[Reservation | str] = []
        self.refuse = False

    async def limits(self, key_id: str) -> KeyLimits:
        return self.by_key.get(key_id, KeyLimits(key_id))

    async def reserve(self, key_id: str, amount: Decimal, request_id: str) -> Reservation:
        if self.refuse:
            raise QuotaExceeded("not enough balance")
        self.reserved.append(Reservation(f"rsv_{len(self.reserved)}", key_id, amount, request_id))
        return self.reserved[-1]

    def reserve_unheld(self, key_id: str, amount: Decimal, request_id: str) -> Reservation:
        reservation = Reservation(f"rsv_{len(self.reserved)}", key_id, amount, request_id, False)
        self.reserved.append(reservation)
        return reservation

    async def release(self, reservation: Reservation | str) -> bool:
        self.released.append(reservation)
        return True


class FakeUsage(UsageRecorder):
    def __init__(self) -> None:
        self.rows: list[UsageRow] = []

    def record(self, row: UsageRow) -> None:
        self.rows.append(row)


class FakeFiles(FileService):
    def __init__(self) -> None:
        pass

    async def read(self, file_id: str, owner_key_id: str) -> bytes:
        raise NotFound(f"no such file: {file_id!r}", param="file_id", code="file_not_found")


class NoFetching(ImageFetcher):
    def __init__(self) -> None:
        pass

    async def fetch(self, url: str, *, max_bytes: int, param: str) -> bytes:
        raise AssertionError("fetched a URL")


class Untouched:
    """A collaborator ``prepare`` must not use (storage, the database writer)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, attribute: str) -> Any:
        raise AssertionError(f"{self.name}.{attribute} was used")


class Setup:
    def __init__(self, *limits: KeyLimits, default_model: str | None = "painter") -> None:
        self.billing = FakeBilling(*limits)
        self.usage = FakeUsage()
        self.access = AccessControl(
            self.billing, MemoryRateLimiter(), ConcurrencyLimiter(0.05), default_rpm=100
        )
        self.painter = Painter()
        painter = ModelSpec.model_validate(PAINTER)
        gone = ModelSpec.model_validate(GONE)
        untouched: Any = Untouched("storage")
        self.service = ImageService(
            catalog=Catalog([CatalogEntry(painter, painter.deployments), CatalogEntry(gone, [])]),
            registry=Registry(painter=self.painter),
            assets=untouched,
            inputs=InputLoader(FakeFiles(), NoFetching()),
            usage=self.usage,
            usage_rows=untouched,
            billing=self.billing,
            access=self.access,
            writer=untouched,
            http=None,
            downloader=untouched,
            default_model=default_model,
        )


def key(models: tuple[str, ...] | None = None, key_id: str = "key_1") -> ApiKey:
    return ApiKey(id=key_id, name="k", prefix="ig-x", models=models, is_admin=False, created_at=0)


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (1, 2, 3)).save(out, "PNG")
    return out.getvalue()


# -- resolve_model --------------------------------------------------------------------------


def test_a_model_resolves_by_id_alias_or_the_default() -> None:
    images = Setup().service
    assert images.resolve_model(key(), "painter").spec.id == "painter"
    assert images.resolve_model(key(), "paint-latest").spec.id == "painter"
    assert images.resolve_model(key(), None).spec.id == "painter"
    assert images.resolve_model(key(), "").spec.id == "painter"


def test_no_model_and_no_default_is_a_400_on_model() -> None:
    images = Setup(default_model=None).service
    with pytest.raises(InvalidRequest) as refused:
        images.resolve_model(key(), None)
    assert refused.value.status == 400 and refused.value.param == "model"


def test_an_unknown_model_is_a_404_pointing_at_the_model_list() -> None:
    with pytest.raises(NotFound) as missing:
        Setup().service.resolve_model(key(), "picasso")
    assert missing.value.code == "model_not_found" and missing.value.param == "model"
    assert "'picasso'" in missing.value.message and "/v1/models" in missing.value.message


def test_a_keys_model_globs_match_ids_and_aliases() -> None:
    images = Setup().service
    assert images.resolve_model(key(("paint-*",)), "painter").spec.id == "painter"
    assert images.resolve_model(key(("painter",)), "paint-latest").spec.id == "painter"
    with pytest.raises(PermissionDenied) as refused:
        images.resolve_model(key(("gone", "sketch*")), "paint-latest")
    assert refused.value.status == 403 and refused.value.code == "model_not_allowed"
    assert "'painter'" in refused.value.message  # the model's id, whatever the client called it
    with pytest.raises(PermissionDenied):
        images.resolve_model(key(()), "painter")  # an empty list allows no model


# -- prepare ------------------------------------------------------------------------------


async def test_prepare_binds_the_deployment_and_holds_the_quote_unheld_for_a_direct_answer() -> (
    None
):
    setup = Setup()
    params = GenerationParams(prompt="a red fox", model="paint-latest", n=2)
    prepared = await setup.service.prepare(
        key(), params, request_id="req_1", route=ROUTE, for_task=False
    )
    assert prepared.entry.spec.id == "painter" and prepared.deployment.model == "p-1"
    assert prepared.provider is setup.painter
    request = prepared.validated.request
    assert (request.model, request.n, request.size, request.quality) == (
        "painter",
        2,
        "256x256",
        "standard",
    )
    assert (prepared.request_id, prepared.route, prepared.key.id) == ("req_1", ROUTE, "key_1")
    assert setup.billing.reserved == [
        Reservation("rsv_0", "key_1", Decimal("0.04"), "req_1", False)
    ]
    assert prepared.reservation is setup.billing.reserved[0] and prepared.hold.open
    assert setup.usage.rows == []  # nothing is refused yet


async def test_a_task_or_a_key_that_caps_spending_always_holds_in_the_ledger() -> None:
    setup = Setup(KeyLimits("capped", balance_usd=Decimal(1)))
    params = GenerationParams(prompt="a red fox", quality="hd")
    await setup.service.prepare(key(), params, request_id="r1", route=ROUTE, for_task=True)
    await setup.service.prepare(
        key(key_id="capped"), params, request_id="r2", route=ROUTE, for_task=False
    )
    assert [(r.key_id, r.amount, r.held) for r in setup.billing.reserved] == [
        ("key_1", Decimal("0.05"), True),
        ("capped", Decimal("0.05"), True),
    ]


async def test_params_the_deployment_drops_are_reported_as_ignored() -> None:
    setup = Setup()
    params = GenerationParams(prompt="a red fox", style="vivid", output_compression=50)
    prepared = await setup.service.prepare(key(), params, request_id="r", route=ROUTE)
    # output_compression: ignored by validation (png); style: valid, but the upstream drops it
    assert prepared.validated.ignored == ("output_compression", "style")


async def test_an_invalid_request_is_refused_with_a_usage_row_and_no_hold() -> None:
    setup = Setup()
    params = GenerationParams(prompt="a red fox", model="paint-latest", n=9, user="u-7")
    with pytest.raises(InvalidRequest) as refused:
        await setup.service.prepare(key(), params, request_id="req_9", route=ROUTE)
    assert refused.value.param == "n"
    assert setup.billing.reserved == []
    (row,) = setup.usage.rows
    assert (row.request_id, row.key_id, row.model, row.route) == (
        "req_9",
        "key_1",
        "paint-latest",  # as the client named it
        ROUTE,
    )
    assert (row.status, row.n, row.user, row.error_code) == (400, 9, "u-7", "invalid_request_error")
    assert row.latency_ms >= 0


async def test_a_model_without_a_configured_provider_is_a_503_naming_the_variables() -> None:
    setup = Setup()
    with pytest.raises(Unavailable) as refused:
        await setup.service.prepare(
            key(), GenerationParams(prompt="x", model="gone"), request_id="r", route=ROUTE
        )
    assert refused.value.code == "model_not_available"
    assert (
        refused.value.message == "model 'gone' has no configured provider; set GONE_KEY or G_TOKEN"
    )
    assert setup.billing.reserved == []
    assert [(r.status, r.error_code) for r in setup.usage.rows] == [(503, "model_not_available")]


async def test_image_quotas_are_counted_before_the_hold() -> None:
    setup = Setup(KeyLimits("key_1", images_per_minute=3))
    params = GenerationParams(prompt="a red fox", n=2)
    await setup.service.prepare(key(), params, request_id="r1", route=ROUTE)
    with pytest.raises(RateLimited):
        await setup.service.prepare(key(), params, request_id="r2", route=ROUTE)
    assert [r.request_id for r in setup.billing.reserved] == ["r1"]
    assert [(r.request_id, r.status) for r in setup.usage.rows] == [("r2", 429)]


async def test_a_refused_hold_is_a_refusal_with_its_usage_row() -> None:
    setup = Setup()
    setup.billing.refuse = True
    with pytest.raises(QuotaExceeded):
        await setup.service.prepare(
            key(), GenerationParams(prompt="x"), request_id="r", route=ROUTE
        )
    assert [(r.status, r.error_code) for r in setup.usage.rows] == [(429, "insufficient_quota")]


async def test_a_prepared_hold_refused_later_releases_and_records_the_request() -> None:
    setup = Setup()
    params = GenerationParams(prompt="a red fox", n=3, size="512x256", user="u-1")
    prepared = await setup.service.prepare(key(), params, request_id="req_5", route=ROUTE)
    await prepared.hold.refuse(Unavailable("upstream down"))
    assert setup.billing.released == [prepared.reservation] and not prepared.hold.open
    (row,) = setup.usage.rows
    assert (row.request_id, row.model, row.route, row.n, row.size, row.quality, row.user) == (
        "req_5",
        "painter",
        ROUTE,
        3,
        "512x256",
        "standard",
        "u-1",
    )
    assert (row.status, row.error_code) == (503, "upstream_error")
    await prepared.hold.refuse(Unavailable("again"))  # a hold ends once
    assert len(setup.billing.released) == 1 and len(setup.usage.rows) == 1


async def test_an_edit_loads_its_input_and_auto_size_follows_its_shape() -> None:
    setup = Setup()
    params = GenerationParams(
        prompt="make it blue", operation="edit", images=[ImageSource("image", png(60, 120))]
    )
    prepared = await setup.service.prepare(key(), params, request_id="r", route=ROUTE)
    request = prepared.validated.request
    assert [(i.width, i.height) for i in request.images] == [(60, 120)]
    assert request.size == "256x512" and request.mask is None
    explicit = GenerationParams(
        prompt="make it blue",
        operation="edit",
        size="256x256",
        images=[ImageSource("image", png(60, 120))],
    )
    sized = await setup.service.prepare(key(), explicit, request_id="r2", route=ROUTE)
    assert sized.validated.request.size == "256x256"


async def test_an_edit_with_too_many_images_is_refused_before_loading_them() -> None:
    setup = Setup()
    params = GenerationParams(
        prompt="x",
        operation="edit",
        images=[ImageSource("image[0]", png(8, 8)), ImageSource("image[1]", b"not an image")],
    )
    with pytest.raises(InvalidRequest) as refused:
        await setup.service.prepare(key(), params, request_id="r", route=ROUTE)
    assert refused.value.param == "image" and "at most 1" in refused.value.message


async def test_an_operation_the_model_lacks_is_refused() -> None:
    setup = Setup()
    params = GenerationParams(prompt="x", operation="variation")
    with pytest.raises(InvalidRequest) as refused:
        await setup.service.prepare(key(), params, request_id="r", route=ROUTE)
    assert refused.value.code == "unsupported_operation"


# -- hold, estimate and cost ----------------------------------------------------------------


async def test_hold_counts_the_images_then_holds_the_given_amount() -> None:
    setup = Setup(KeyLimits("key_1", images_per_minute=4))
    hold = await setup.service.hold(
        key(),
        Decimal("0.30"),
        "mj_1",
        model="midjourney",
        route="/mj/submit/imagine",
        images=4,
        megapixels=4.0,
        started=0.0,
    )
    assert hold.reservation == Reservation("rsv_0", "key_1", Decimal("0.30"), "mj_1")
    with pytest.raises(RateLimited):
        await setup.service.hold(
            key(), Decimal(1), "mj_2", model="m", route="/r", images=1, megapixels=1, started=0
        )
    assert len(setup.billing.reserved) == 1
    await hold.refuse(RateLimited("later"))
    assert [(r.model, r.route, r.n, r.status) for r in setup.usage.rows] == [
        ("midjourney", "/mj/submit/imagine", 4, 429)
    ]


def test_estimate_quotes_without_holding_anything() -> None:
    setup = Setup()
    entry, quote = setup.service.estimate(key(), GenerationParams(prompt="x", n=3, quality="hd"))
    assert entry.spec.id == "painter" and quote.amount == Decimal("0.15")
    assert quote.breakdown["image_count"] == 3
    assert setup.billing.reserved == [] and setup.usage.rows == []
    with pytest.raises(InvalidRequest):
        setup.service.estimate(key(), GenerationParams(prompt="x" * 41))  # prompt_max_chars
    with pytest.raises(PermissionDenied):
        setup.service.estimate(key(("other",)), GenerationParams(prompt="x"))


def test_cost_prices_the_images_delivered_and_nothing_for_an_unknown_model() -> None:
    images = Setup().service
    _, quoted = images.estimate(key(), GenerationParams(prompt="x", n=4))
    assert quoted.amount == Decimal("0.08")  # 4 images quoted at the default quality and size
    validated = ImageRequest(
        operation="generate",
        model="painter",
        prompt="x",
        n=4,
        width=256,
        height=256,
        quality="hd",
        output_format="png",
        background="auto",
    )
    two = ImageResult(images=[GeneratedImage(b"", "png", 256, 256)] * 2)
    assert images.cost("painter", validated, two) == Decimal("0.10")  # 2 delivered, hd
    assert images.cost("paint-latest", validated, two) == Decimal("0.10")
    assert images.cost("no-such-model", validated, two) == Decimal(0)
