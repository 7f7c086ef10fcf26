"""What makes a campaign JSON valid, and reading one from a file.

`nearcart campaign validate` lists every error at once (not only the first one
msgspec meets), each named by its JSON path, so a marketer fixes a file in one go.
`PUT /admin/v1/campaigns/{id}` answers with the same list.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import msgspec

from cache.gtin import GtinError, normalize_gtin
from edge_api.errors import split_validation_error
from edge_api.schemas import Campaign

MAX_CAMPAIGN_BYTES = 1024 * 1024


def _kind(value: object) -> str:
    return {dict: "object", list: "array", str: "str", bool: "bool", int: "int", float: "float"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _unwrap(annotation: Any) -> tuple[Any, list[msgspec.Meta]]:
    metas: list[msgspec.Meta] = []
    while typing.get_origin(annotation) is typing.Annotated:
        annotation, *extra = typing.get_args(annotation)
        metas.extend(m for m in extra if isinstance(m, msgspec.Meta))
    return annotation, metas


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _check(value: object, annotation: Any, path: str, errors: list[tuple[str, str]]) -> None:
    """Walk objects and arrays of objects ourselves so every error is reported, not only the first."""
    tp, metas = _unwrap(annotation)
    if _is_struct(tp):
        if not isinstance(value, dict):
            errors.append((path, f"Expected `object`, got `{_kind(value)}`"))
            return
        hints = typing.get_type_hints(tp, include_extras=True)
        fields = {f.encode_name: f for f in msgspec.structs.fields(tp)}
        for key in value:
            if key not in fields:
                errors.append((f"{path}.{key}", "Object contains unknown field"))
        for name, field in fields.items():
            if name in value:
                _check(value[name], hints[field.name], f"{path}.{name}", errors)
            elif field.required:
                errors.append((f"{path}.{name}", "Object missing required field"))
        return
    if typing.get_origin(tp) is list and _is_struct(typing.get_args(tp)[0]) and isinstance(value, list):
        for meta in metas:
            if meta.min_length is not None and len(value) < meta.min_length:
                errors.append((path, f"Expected `array` of length >= {meta.min_length}"))
            if meta.max_length is not None and len(value) > meta.max_length:
                errors.append((path, f"Expected `array` of length <= {meta.max_length}"))
        for i, item in enumerate(value):
            _check(item, typing.get_args(tp)[0], f"{path}[{i}]", errors)
        return
    try:
        msgspec.convert(value, annotation)
    except msgspec.ValidationError as exc:
        sub, message = split_validation_error(exc)
        errors.append((path + sub[1:], message))


def campaign_errors(raw: object) -> list[tuple[str, str]]:
    """Every (JSON path, reason) wrong with a decoded campaign JSON; empty when it is valid."""
    errors: list[tuple[str, str]] = []
    _check(raw, Campaign, "$", errors)
    if errors:
        return errors
    campaign = msgspec.convert(raw, Campaign)
    seen: set[str] = set()
    for i, product in enumerate(campaign.products):
        try:
            gtin = normalize_gtin(product.gtin)
        except GtinError as exc:
            errors.append((f"$.products[{i}].gtin", str(exc)))
            continue
        if gtin in seen:
            errors.append((f"$.products[{i}].gtin", f"GTIN {product.gtin} is listed twice"))
        seen.add(gtin)
    for i, retailer in enumerate(campaign.retailers.include):
        if retailer in campaign.retailers.exclude:
            errors.append((f"$.retailers.include[{i}]", f"retailer {retailer!r} is both included and excluded"))
    for i, retailer in enumerate(campaign.retailers.priority):
        if retailer in campaign.retailers.exclude:
            errors.append((f"$.retailers.priority[{i}]", f"retailer {retailer!r} is excluded"))
    if len(set(campaign.modes)) != len(campaign.modes):
        errors.append(("$.modes", "a mode is listed twice"))
    if not campaign.modes:
        errors.append(("$.modes", "at least one mode is needed"))
    return errors


class CampaignFileError(Exception):
    """The file cannot be read as JSON at all."""


def load_campaign_file(path: Path) -> tuple[Campaign | None, list[tuple[str, str]]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CampaignFileError(f"{path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_CAMPAIGN_BYTES:
        return None, [("$", f"file larger than {MAX_CAMPAIGN_BYTES} bytes")]
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        return None, [("$", f"not JSON: {exc}")]
    errors = campaign_errors(raw)
    if errors:
        return None, errors
    return msgspec.convert(raw, Campaign), []
