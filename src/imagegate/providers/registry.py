"""Finds provider adapters through the ``imagegate.providers`` entry-point group."""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib.metadata import entry_points

from imagegate.providers.base import ImageProvider

ENTRY_POINT_GROUP = "imagegate.providers"


class ProviderRegistry:
    """Provider name → adapter instance, created on first use."""

    def __init__(self, factories: Mapping[str, type[ImageProvider]] | None = None) -> None:
        if factories is None:
            factories = {ep.name: ep.load() for ep in entry_points(group=ENTRY_POINT_GROUP)}
        self._factories = dict(factories)
        self._instances: dict[str, ImageProvider] = {}

    def names(self) -> list[str]:
        return sorted(self._factories)

    def get(self, name: str) -> ImageProvider | None:
        if name not in self._factories:
            return None
        if name not in self._instances:
            self._instances[name] = self._factories[name]()
        return self._instances[name]


def read_credentials(env_names: Mapping[str, list[str]]) -> dict[str, str]:
    """``{"api_key": ["OPENAI_API_KEY"]}`` → the first set variable for each credential."""
    found: dict[str, str] = {}
    for credential, names in env_names.items():
        for name in names:
            value = os.environ.get(name)
            if value:
                found[credential] = value
                break
    return found
