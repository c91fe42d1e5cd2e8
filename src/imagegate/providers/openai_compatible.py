"""Any host that speaks the OpenAI Images dialect, configured entirely as data.

A deployment with ``provider = "openai-compatible"`` names its host in its ``options`` table
(the fields of :class:`~imagegate.providers.openai.HostOptions`): base URL (or
``base_url``/``base_url_env`` on the deployment), auth header and scheme, extra headers, a
model-name map, the fields the host takes and how many images one call returns. Examples::

    # A relay of some host's images API: one base URL, a model name, the fields it takes.
    # (xAI has its own ``xai`` provider, the same translator with xAI's extra fields.)
    [[models.deployments]]
    provider = "openai-compatible"
    model = "some-image-model"
    base_url = "https://relay.example/v1"
    credentials = { api_key = ["RELAY_API_KEY"] }
    options = { params = ["response_format", "user"], max_n = 10 }

    # Another imagegate (or any gateway): the same dialect, its own key.
    [[models.deployments]]
    provider = "openai-compatible"
    model = "gpt-image-1"
    base_url_env = "UPSTREAM_GATEWAY_URL"
    credentials = { api_key = ["UPSTREAM_GATEWAY_KEY"] }

No new class per host: the protocol is :mod:`.openai_wire`, the host is data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imagegate.providers.openai import OpenAIImagesAdapter

__all__ = ["OpenAICompatibleProvider"]


class OpenAICompatibleProvider(OpenAIImagesAdapter):
    """``openai-compatible``: every host detail from the deployment."""

    name = "openai-compatible"
    defaults: Mapping[str, Any] = {}
