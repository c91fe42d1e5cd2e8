"""Azure OpenAI: the OpenAI Images dialect on a resource's deployment paths.

``POST {endpoint}/openai/deployments/{deployment}/images/generations?api-version=…`` (and
``/images/edits``), the key in an ``api-key`` header. ``AZURE_OPENAI_ENDPOINT`` is the
resource's root (``https://<resource>.openai.azure.com``); a deployment's ``model`` is the
Azure deployment name, and its ``options.family`` says which model family it runs when the
name does not (``family = "gpt-image"``). ``options.api_version`` overrides the default
version. Everything else is :class:`~imagegate.providers.openai.OpenAIImagesAdapter`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imagegate.providers.openai import OpenAIImagesAdapter

__all__ = ["AZURE_API_VERSION", "AzureOpenAIProvider"]

AZURE_API_VERSION = "2025-04-01-preview"
"""The data-plane version that has gpt-image-1 generations and edits."""


class AzureOpenAIProvider(OpenAIImagesAdapter):
    """``azure``: ``AZURE_OPENAI_API_KEY`` and ``AZURE_OPENAI_ENDPOINT``."""

    name = "azure"
    defaults: Mapping[str, Any] = {
        "auth_header": "api-key",
        "auth_scheme": "",
        "api_version": AZURE_API_VERSION,
        "deployment_paths": True,
    }
