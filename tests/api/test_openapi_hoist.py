"""Nested ``$defs`` of hand-declared bodies become components: one per distinct schema, a
suffix only for a different schema that shares a name."""

from __future__ import annotations

import copy
from typing import Any

from imagegate.fronts.http.openapi import hoist_defs

OPENROUTER_IMAGE = {"type": "object", "properties": {"aspect_ratio": {"type": "string"}}}
GEMINI_IMAGE = {"type": "object", "properties": {"aspectRatio": {"type": "string"}}}
CONFIG = {"type": "object", "properties": {"imageConfig": {"$ref": "#/$defs/ImageConfig"}}}


def body(image_config: dict[str, Any]) -> dict[str, Any]:
    """A request body whose ``GenerationConfig`` refers to an ``ImageConfig``."""
    return {
        "type": "object",
        "properties": {"generationConfig": {"$ref": "#/$defs/GenerationConfig"}},
        "$defs": {
            "GenerationConfig": copy.deepcopy(CONFIG),
            "ImageConfig": copy.deepcopy(image_config),
        },
    }


def document(*bodies: dict[str, Any]) -> dict[str, Any]:
    return hoist_defs({"paths": {f"/route/{n}": {"post": b} for n, b in enumerate(bodies)}})


def test_a_body_whose_nested_model_was_renamed_still_shares_it_with_the_next() -> None:
    hoisted = document(
        {"$defs": {"ImageConfig": OPENROUTER_IMAGE}}, body(GEMINI_IMAGE), body(GEMINI_IMAGE)
    )

    schemas = hoisted["components"]["schemas"]
    assert sorted(schemas) == ["GenerationConfig", "ImageConfig", "ImageConfig_2"]
    assert schemas["ImageConfig"] == OPENROUTER_IMAGE
    assert schemas["ImageConfig_2"] == GEMINI_IMAGE
    image_ref = {"$ref": "#/components/schemas/ImageConfig_2"}
    assert schemas["GenerationConfig"]["properties"]["imageConfig"] == image_ref
    for route in ("/route/1", "/route/2"):
        generation = hoisted["paths"][route]["post"]["properties"]["generationConfig"]
        assert generation == {"$ref": "#/components/schemas/GenerationConfig"}


def test_different_schemas_of_one_name_each_get_their_own_component() -> None:
    hoisted = document(body(OPENROUTER_IMAGE), body(GEMINI_IMAGE))

    schemas = hoisted["components"]["schemas"]
    assert sorted(schemas) == [
        "GenerationConfig",
        "GenerationConfig_2",
        "ImageConfig",
        "ImageConfig_2",
    ]
    assert schemas["GenerationConfig_2"]["properties"]["imageConfig"] == {
        "$ref": "#/components/schemas/ImageConfig_2"
    }


def test_a_self_referring_model_is_hoisted_once() -> None:
    tree = {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}}}
    hoisted = document(*({"$ref": "#/$defs/Node", "$defs": {"Node": tree}} for _ in range(2)))

    assert hoisted["components"]["schemas"] == {
        "Node": {"type": "object", "properties": {"child": {"$ref": "#/components/schemas/Node"}}}
    }
