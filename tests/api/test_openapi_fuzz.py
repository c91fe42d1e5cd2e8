"""The OpenAPI document is whole, with one component per distinct schema, and every operation
in it survives a short fuzzing run.

schemathesis reads the live app's ``/openapi.json``, so a route is fuzzed from the day it
lands. The run is bounded (a few derandomized examples per operation) to stay well under a
minute; the checks are "no 5xx" and, where a route declares its response schema, conformance.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from imagegate.app import create_app
from imagegate.settings import Settings
from tests.conftest import ADMIN_KEY, LiveServer

EXAMPLES_PER_OPERATION = int(os.environ.get("IMAGEGATE_FUZZ_EXAMPLES", "3"))
"""A few keep the suite under a minute; a deeper run sets ``IMAGEGATE_FUZZ_EXAMPLES``."""


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def test_every_reference_in_the_openapi_document_resolves(live_server: LiveServer) -> None:
    document = httpx.get(f"{live_server.base_url}/openapi.json").json()
    refs = _refs(document)
    assert refs
    for ref in refs:
        _resolve(document, ref)
    assert "$defs" not in str(document)
    schemas = document["components"]["schemas"]
    assert {"AccountFilter", "ImageReference", "Part", "OutputOptions"} <= schemas.keys()


def _document() -> dict[str, Any]:
    """The document the live server serves (built from the same app factory, no services)."""
    with tempfile.TemporaryDirectory() as data_dir:
        return create_app(Settings(data_dir=Path(data_dir))).openapi()


def test_the_served_document_has_one_component_per_distinct_schema() -> None:
    schemas = _document()["components"]["schemas"]

    for name, schema in schemas.items():
        base, _, suffix = name.rpartition("_")
        if suffix.isdigit() and base in schemas:
            assert schema != schemas[base], f"{name} repeats {base}"
    assert "GenerationConfig_2" not in schemas


schema = schemathesis.openapi.from_dict(_document())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_a_server_error(
    case: schemathesis.Case[Any], live_server: LiveServer
) -> None:
    key = ADMIN_KEY if case.path.startswith("/admin") else live_server.key
    headers = {
        "Authorization": f"Bearer {key}",
        "x-goog-api-key": key,
        "x-key": key,
        "api_token": key,
    }
    case.call_and_validate(
        base_url=live_server.base_url,
        headers=headers,
        timeout=30,
        checks=[not_a_server_error, response_schema_conformance],
    )
