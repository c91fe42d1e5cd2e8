"""Catalogue models as Replicate model objects, and the version ids that stand for them (a
catalogue model has one version: a stable id derived from its id)."""

from __future__ import annotations

import hashlib
from typing import Any

from imagegate.core.catalog import Catalog, CatalogEntry

CREATED_AT = "2025-01-01T00:00:00.000000Z"


def version_id(entry: CatalogEntry) -> str:
    """64 hex characters, like Replicate's version ids; the same on every gateway."""
    return hashlib.sha256(f"imagegate-model:{entry.spec.id}".encode()).hexdigest()


def by_version(catalog: Catalog, version: str) -> CatalogEntry | None:
    return next((entry for entry in catalog if version_id(entry) == version), None)


def owner_and_name(entry: CatalogEntry) -> str:
    """The ``owner/name`` a Replicate client knows the model by."""
    for name in (entry.spec.id, *entry.spec.aliases):
        if "/" in name:
            return name
    return f"imagegate/{entry.spec.id}"


def model_object(entry: CatalogEntry, owner: str, name: str, base_url: str) -> dict[str, Any]:
    """``GET /v1/models/{owner}/{name}``."""
    spec = entry.spec
    return {
        "url": f"{base_url}/replicate/v1/models/{owner}/{name}",
        "owner": owner,
        "name": name,
        "description": spec.description or spec.name,
        "visibility": "public",
        "github_url": None,
        "paper_url": None,
        "license_url": None,
        "run_count": 0,
        "cover_image_url": None,
        "default_example": None,
        "latest_version": {
            "id": version_id(entry),
            "created_at": CREATED_AT,
            "cog_version": "imagegate",
            "openapi_schema": _schema(entry),
        },
    }


def _schema(entry: CatalogEntry) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "prompt": {"type": "string", "title": "Prompt"},
        "aspect_ratio": {"type": "string", "title": "Aspect Ratio"},
        "width": {"type": "integer", "title": "Width"},
        "height": {"type": "integer", "title": "Height"},
        "num_outputs": {"type": "integer", "title": "Num Outputs", "minimum": 1},
        "output_format": {"type": "string", "enum": ["webp", "jpg", "png"]},
        "output_quality": {"type": "integer", "minimum": 0, "maximum": 100},
        "seed": {"type": "integer", "title": "Seed"},
    }
    if entry.spec.generate is not None:
        properties["num_outputs"]["maximum"] = entry.spec.generate.max_n
    return {
        "openapi": "3.0.2",
        "info": {"title": entry.spec.name, "version": "0.1.0"},
        "components": {
            "schemas": {
                "Input": {"type": "object", "required": ["prompt"], "properties": properties},
                "Output": {"type": "array", "items": {"type": "string", "format": "uri"}},
            }
        },
    }
