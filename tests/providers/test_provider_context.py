"""``ProviderContext``: what adapters are given, and a deployment's options as each reads them."""

from __future__ import annotations

import pytest

from imagegate.core.requests import ImageRequest
from imagegate.core.upstream import ProviderContext
from imagegate.errors import ServerError
from imagegate.providers.bfl import BFLProvider
from imagegate.providers.fal import FalOptions, FalProvider
from imagegate.providers.gemini import GeminiProvider
from imagegate.providers.midjourney_proxy import MidjourneyProxyProvider
from imagegate.providers.replicate import ReplicateProvider


def context(**options: object) -> ProviderContext:
    return ProviderContext(http=None, request_id="req_1", upstream_model="m", options=options)


def test_options_are_read_with_the_adapters_model() -> None:
    assert context(max_n=2).options_as(FalOptions, "fal") == FalOptions(max_n=2)
    assert context().options_as(FalOptions, "fal").max_n == 4


@pytest.mark.parametrize(
    "provider",
    [
        BFLProvider(),
        FalProvider(),
        GeminiProvider(),
        MidjourneyProxyProvider(),
        ReplicateProvider(),
    ],
    ids=lambda provider: provider.name,
)
def test_an_unknown_or_invalid_option_is_a_server_error_naming_the_provider(
    provider: BFLProvider
    | FalProvider
    | GeminiProvider
    | MidjourneyProxyProvider
    | ReplicateProvider,
) -> None:
    for bad in (context(no_such_option=1), context(poll_interval="soon", max_n=0)):
        with pytest.raises(ServerError, match=f"invalid options for a {provider.name} deployment"):
            provider._options(bad)


def test_an_adapter_sizes_its_calls_by_its_options() -> None:
    request = ImageRequest("generate", "m", "a cat", 4, 256, 256, "auto", "png", "auto")
    assert FalProvider().images_per_call(request, context(max_n=3)) == 3
    assert ReplicateProvider().images_per_call(request, context()) == 1
