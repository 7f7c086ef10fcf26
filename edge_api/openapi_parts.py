"""Pieces of `/openapi.json` both its parts use: answers, parameters from msgspec types, ECMA-262 patterns."""

from __future__ import annotations

from typing import Any

import msgspec

from cache.identifiers import ecma_pattern

REF = "#/components/schemas/{name}"


def error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(name="ErrorBody")}}},
    }


def html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def json_answer(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": REF.format(name=name)}}}}


def without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a value, never JSON null."""
    schema = {k: v for k, v in schema.items() if not (k == "default" and v is None)}
    options = [s for s in schema.get("anyOf", []) if s != {"type": "null"}]
    if "anyOf" in schema and len(options) == 1:
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        return {**options[0], **rest}
    return schema


def query_parameters(component: dict[str, Any]) -> list[dict[str, Any]]:
    """The query parameters of a query Struct's schema component, one per field."""
    required = set(component.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": without_null(schema)}
        for name, schema in component["properties"].items()
    ]


def path_parameter(name: str, type_: Any) -> dict[str, Any]:
    """A path parameter whose schema is its identifier type's: what the handler checks it against."""
    return {"name": name, "in": "path", "required": True, "schema": msgspec.json.schema(type_)}


def ecma_patterns(value: Any) -> Any:
    """`value` (a schema, a document) with every `pattern` in JSON Schema's spelling (cache/identifiers.py)."""
    if isinstance(value, dict):
        return {k: ecma_pattern(v) if k == "pattern" and isinstance(v, str) else ecma_patterns(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [ecma_patterns(item) for item in value]
    return value
