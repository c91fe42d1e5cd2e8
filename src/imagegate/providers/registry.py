"""Finds provider adapters through the ``imagegate.providers`` entry-point group."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points

from imagegate.core.upstream import ImageProvider

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
