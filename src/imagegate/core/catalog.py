"""The model catalogue: capabilities, prices and deployments as data (built-in TOML + config)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imagegate.core.upstream import AdapterRegistry, read_credentials

Feature = Literal[
    "text-to-image",
    "image-edit",
    "image-variation",
    "inpainting",
    "outpainting",
    "upscale",
    "background-removal",
    "image-to-text",
    "blend",
    "vector",
]
ENDPOINTS: dict[str, tuple[str, str]] = {
    "openai-image": ("/v1/images/generations", "POST"),
    "openai-image-edit": ("/v1/images/edits", "POST"),
    "openai-image-variation": ("/v1/images/variations", "POST"),
}
"""Endpoint name → (path, method); a model lists an endpoint when it declares the operation."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParamSpec(_Strict):
    """A model-specific extra parameter and how to validate it."""

    type: Literal["integer", "number", "string", "boolean", "array"]
    minimum: float | None = None
    maximum: float | None = None
    enum: list[str] | None = None


class SizeRange(_Strict):
    """Free sizes (Flux style): any width×height with both sides within ``min_side`` …
    ``max_side`` and a multiple of ``multiple``."""

    min_side: int = Field(ge=1)
    max_side: int = Field(ge=1)
    multiple: int = Field(default=1, ge=1)

    def allows(self, width: int, height: int) -> bool:
        return all(
            self.min_side <= side <= self.max_side and side % self.multiple == 0
            for side in (width, height)
        )


class GenerateSpec(_Strict):
    """What the model takes for text-to-image."""

    sizes: list[str]
    """The sizes offered (with ``size_range``: common presets of the range)."""
    size_range: SizeRange | None = None
    default_size: str
    max_n: int = Field(ge=1, le=10)
    qualities: list[str]
    default_quality: str
    auto_quality: str | None = None
    """What ``auto`` quality resolves to when reporting (``None``: report ``auto``)."""
    output_formats: list[Literal["png", "jpeg", "webp"]] = ["png", "jpeg", "webp"]
    backgrounds: list[Literal["transparent", "opaque", "auto"]] = ["auto", "opaque"]
    styles: list[str] = []
    prompt_max_chars: int = Field(ge=1)
    default_response_format: Literal["url", "b64_json"] = "b64_json"
    reports_details: bool = True
    """gpt-image style: the response carries background/output_format/quality/size/usage."""
    streaming: bool = False
    extras: dict[str, ParamSpec] = {}


class InputSpec(_Strict):
    """What the model accepts as input images for an edit or a variation."""

    max_images: int = Field(default=1, ge=1)
    max_image_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    formats: list[Literal["png", "jpeg", "webp", "gif"]] = ["png", "jpeg", "webp"]
    square: bool = False
    """Inputs must be square (dall-e-2)."""
    mask: bool = False
    input_fidelity: bool = False


class PricingSpec(_Strict):
    """Price rules in USD: per 1M tokens, per image by ``quality:size``, per request."""

    text_input_per_mtok: float | None = None
    image_input_per_mtok: float | None = None
    image_output_per_mtok: float | None = None
    per_image: dict[str, float] = {}
    per_request: float | None = None
    per_action: dict[str, float] = {}
    """Per request by task action, optionally by speed tier: ``"IMAGINE"``, ``"relax:UPSCALE"``."""
    per_second: float | None = None


class DeploymentSpec(_Strict):
    """One place the model can run: an adapter, its upstream model name, its credentials."""

    provider: str
    model: str
    credentials: dict[str, list[str]] = {}
    """Credential name → environment variables to read it from, first set wins."""
    base_url_env: str | None = None
    base_url: str | None = None
    weight: float = 1.0
    priority: int = 0
    timeout: float = 300.0
    max_concurrency: int | None = Field(default=None, ge=1)
    """Calls in flight to this deployment at once (the router queues or fails over above it)."""
    rpm: int | None = Field(default=None, ge=1)
    """Calls per minute to this deployment."""
    options: dict[str, Any] = {}
    """Adapter-specific host data (auth header, api version, model-name map, …)."""


class ModelSpec(_Strict):
    """One catalogue entry."""

    id: str
    name: str
    provider: str
    provider_code: str
    created: int
    model_type: Literal["image"] = "image"
    description: str = ""
    aliases: list[str] = []
    features: list[Feature]
    generate: GenerateSpec | None = None
    """Output parameters; edits and variations are validated against them too."""
    edit: InputSpec | None = None
    variation: InputSpec | None = None
    pricing: PricingSpec = PricingSpec()
    deployments: list[DeploymentSpec] = Field(min_length=1)

    def endpoints(self) -> dict[str, dict[str, str]]:
        declared = {
            "openai-image": self.generate is not None,
            "openai-image-edit": self.edit is not None,
            "openai-image-variation": self.variation is not None,
        }
        return {
            name: {"path": path, "method": method}
            for name, (path, method) in ENDPOINTS.items()
            if declared.get(name)
        }

    def pricing_record(self) -> dict[str, Any]:
        """The public ``pricing`` block, derived from the price rules."""
        p = self.pricing
        if p.image_output_per_mtok is not None or p.text_input_per_mtok is not None:
            currency, inp, out = "USD / M Tokens", p.text_input_per_mtok, p.image_output_per_mtok
        elif p.per_image:
            currency, inp, out = "USD / image", None, min(p.per_image.values())
        elif p.per_second is not None:
            currency, inp, out = "USD / second", None, None
        elif p.per_action:
            currency, inp, out = "USD / request", None, min(p.per_action.values())
        else:
            currency, inp, out = "USD / request", None, None
        return {
            "currency": currency,
            "input": inp,
            "output": out,
            "per_request": p.per_request,
            "per_second": p.per_second,
        }


class CatalogError(ValueError):
    """The catalogue or an operator's config file is invalid; the message says where."""


class CatalogEntry:
    """A model plus what the gateway knows at run time: which deployments can serve it."""

    __slots__ = ("available_deployments", "spec")

    def __init__(self, spec: ModelSpec, available: list[DeploymentSpec]) -> None:
        self.spec = spec
        self.available_deployments = available

    @property
    def available(self) -> bool:
        return bool(self.available_deployments)

    def record(self) -> dict[str, Any]:
        """The ``/api/models`` record."""
        spec = self.spec
        return {
            "id": spec.id,
            "code": spec.id,
            "name": spec.name,
            "created": spec.created,
            "provider": spec.provider,
            "provider_code": spec.provider_code,
            "model_type": spec.model_type,
            "description": spec.description,
            "features": list(spec.features),
            "endpoints": orjson.dumps(spec.endpoints()).decode(),
            "pricing": spec.pricing_record(),
            "available": self.available,
        }


class Catalog:
    """Every model by id, plus alias lookup."""

    def __init__(self, entries: Iterable[CatalogEntry]) -> None:
        self.entries = {entry.spec.id: entry for entry in entries}
        self._names = {entry.spec.id: entry for entry in self.entries.values()}
        for entry in self.entries.values():
            for alias in entry.spec.aliases:
                self._names.setdefault(alias, entry)

    def resolve(self, name: str) -> CatalogEntry | None:
        return self._names.get(name)

    def __iter__(self) -> Any:
        return iter(sorted(self.entries.values(), key=lambda entry: entry.spec.id))


def load_catalog(registry: AdapterRegistry, config_path: Path | None = None) -> Catalog:
    """The built-in catalogue, extended or overridden by the operator's config file."""
    builtin = resources.files("imagegate").joinpath("catalog.toml").read_text()
    raw = {model["id"]: model for model in tomllib.loads(builtin)["models"]}
    if config_path is not None:
        try:
            operator = tomllib.loads(config_path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CatalogError(f"cannot read IMAGEGATE_CONFIG {config_path}: {exc}") from exc
        for model in operator.get("models", []):
            model_id = model.get("id")
            raw[model_id] = _merge(raw.get(model_id, {}), model)
    entries = []
    for model_id, data in raw.items():
        try:
            spec = ModelSpec.model_validate(data)
        except ValidationError as exc:
            raise CatalogError(f"model {model_id!r} in the catalogue: {exc}") from exc
        entries.append(CatalogEntry(spec, _available(spec, registry)))
    return Catalog(entries)


def _available(spec: ModelSpec, registry: AdapterRegistry) -> list[DeploymentSpec]:
    usable = []
    for deployment in spec.deployments:
        adapter = registry.get(deployment.provider)
        if adapter is None or not adapter.has_credentials(read_credentials(deployment.credentials)):
            continue
        if getattr(adapter, "requires_base_url", False) and not base_url_of(deployment):
            continue
        usable.append(deployment)
    return sorted(usable, key=lambda deployment: -deployment.priority)


def base_url_of(deployment: DeploymentSpec) -> str | None:
    """The deployment's base URL: its environment variable when set, else its own."""
    from_env = os.environ.get(deployment.base_url_env) if deployment.base_url_env else None
    return from_env or deployment.base_url or None


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
