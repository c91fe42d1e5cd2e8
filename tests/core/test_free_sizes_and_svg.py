"""Catalogue facts the task front ends rely on: free size ranges and SVG for vector models."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagegate.core.catalog import Catalog, CatalogEntry, load_catalog
from imagegate.core.params import GenerationParams, validate_generation
from imagegate.errors import InvalidRequest
from imagegate.providers.registry import ProviderRegistry
from tests.api.fronts_kit import TEST_MODELS


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    config = tmp_path / "models.toml"
    config.write_text(TEST_MODELS)
    return load_catalog(ProviderRegistry(), config)


def _entry(catalog: Catalog, model: str) -> CatalogEntry:
    entry = catalog.resolve(model)
    assert entry is not None
    return entry


@pytest.mark.parametrize("size", ["640x480", "256x1440", "1024x1024"])
def test_a_free_range_takes_any_size_on_its_grid(catalog: Catalog, size: str) -> None:
    params = GenerationParams(prompt="x", model="plain", size=size)
    request = validate_generation(_entry(catalog, "plain"), params).request
    assert request.size == size


@pytest.mark.parametrize("size", ["640x481", "224x512", "1472x512", "wide"])
def test_sizes_off_the_range_are_400(catalog: Catalog, size: str) -> None:
    params = GenerationParams(prompt="x", model="plain", size=size)
    with pytest.raises(InvalidRequest) as caught:
        validate_generation(_entry(catalog, "plain"), params)
    assert caught.value.param == "size" and "256-1440 in steps of 32" in caught.value.message


def test_svg_only_for_vector_models(catalog: Catalog) -> None:
    vector = validate_generation(
        _entry(catalog, "toolbox"), GenerationParams(prompt="x", output_format="svg")
    )
    assert vector.request.output_format == "svg"
    with pytest.raises(InvalidRequest) as caught:
        validate_generation(
            _entry(catalog, "plain"), GenerationParams(prompt="x", output_format="svg")
        )
    assert caught.value.param == "output_format"
