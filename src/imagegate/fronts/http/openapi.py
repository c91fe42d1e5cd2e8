"""The OpenAPI document with every schema reachable: nested ``$defs`` moved to components.

Request bodies that routes parse themselves are declared with ``openapi_extra`` from a pydantic
model's ``model_json_schema()``, which keeps nested models under a local ``$defs`` and refers
to them as ``#/$defs/Name``. In an OpenAPI document such a reference resolves against the
document's root, where there is no ``$defs``: schema-driven clients and fuzzers saw those
bodies as unresolvable. :func:`hoist_defs` moves every ``$defs`` entry to
``#/components/schemas`` (renaming on a clash with a different schema) and rewrites the
references, so every route — present and future — is covered in one place.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

__all__ = ["hoist_defs", "install_openapi"]

_LOCAL = "#/$defs/"
_COMPONENTS = "#/components/schemas/"


def hoist_defs(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (changed in place) with no ``$defs`` left and every reference resolvable."""
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    _hoist(document, schemas)
    return document


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and ``/openapi.json``) serve the hoisted document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = hoist_defs(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _hoist(node: Any, schemas: dict[str, Any]) -> None:
    if isinstance(node, list):
        for item in node:
            _hoist(item, schemas)
        return
    if not isinstance(node, dict):
        return
    defs = node.pop("$defs", None)
    if isinstance(defs, dict):
        names = _component_names(defs, schemas)
        _rewrite(node, names)
        _rewrite(defs, names)
        for name, schema in defs.items():
            _hoist(schema, schemas)
            schemas[names[name]] = schema
    for value in list(node.values()):
        _hoist(value, schemas)


def _component_names(defs: dict[str, Any], schemas: dict[str, Any]) -> dict[str, str]:
    """A component name for each of ``defs``: its own, unless components hold a different schema
    by that name (then ``name_2``, …). Each is compared with its references already renamed, so
    a def is named after those it refers to: a body whose nested model was renamed still shares
    its own model with the bodies before it (a cycle keeps the names the defs came with)."""
    names = {name: name for name in defs}
    uses = {name: _local_refs(schema) - {name} for name, schema in defs.items()}
    while uses:
        ready = [name for name, used in uses.items() if not used & uses.keys()]
        for name in ready or list(uses):
            del uses[name]
            names[name] = _free_name(name, defs[name], names, schemas)
    return names


def _free_name(name: str, schema: Any, names: dict[str, str], schemas: dict[str, Any]) -> str:
    candidate, suffix = name, 2
    while candidate in schemas and schemas[candidate] != _rewritten(schema, names):
        candidate, suffix = f"{name}_{suffix}", suffix + 1
    return candidate


def _local_refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {
            ref[len(_LOCAL) :]
            for key, ref in node.items()
            if key == "$ref" and isinstance(ref, str) and ref.startswith(_LOCAL)
        }
        return found.union(*(_local_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_local_refs(item) for item in node))
    return set()


def _rewritten(node: Any, names: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            key: _target(value, names) if key == "$ref" else _rewritten(value, names)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rewritten(item, names) for item in node]
    return node


def _rewrite(node: Any, names: dict[str, str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                node[key] = _target(value, names)
            else:
                _rewrite(value, names)
    elif isinstance(node, list):
        for item in node:
            _rewrite(item, names)


def _target(ref: Any, names: dict[str, str]) -> Any:
    if isinstance(ref, str) and ref.startswith(_LOCAL) and ref[len(_LOCAL) :] in names:
        return _COMPONENTS + names[ref[len(_LOCAL) :]]
    return ref
