"""One strict pattern rule for every identifier (issue #14, finding 3): nothing after the match, not even "\\n"."""

from __future__ import annotations

import importlib
import pkgutil
import re
from typing import Annotated, Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import backoffice
import cache
import edge_api
from cache import identifiers
from cache.identifiers import ecma_pattern, whole


def _all_structs() -> set[type[msgspec.Struct]]:
    """Every Struct the packages define, after importing each of their modules."""
    for package in (edge_api, backoffice, cache):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)
    found: set[type[msgspec.Struct]] = set()
    todo: list[type[msgspec.Struct]] = [msgspec.Struct]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return {s for s in found if s.__module__.split(".")[0] in ("edge_api", "backoffice", "cache")}


def _patterns(info: mi.Type, seen: dict[int, mi.Type], out: dict[str, str], where: str) -> None:
    # Kept in `seen` too, so no id is reused by a later object (recursive types repeat theirs).
    if id(info) in seen:
        return
    seen[id(info)] = info
    if isinstance(info, mi.StrType) and info.pattern is not None:
        out.setdefault(info.pattern, where)
    for name in ("type", "item_type", "key_type", "value_type"):
        inner = getattr(info, name, None)
        if isinstance(inner, mi.Type):
            _patterns(inner, seen, out, where)
    for inner in getattr(info, "types", ()) or ():
        _patterns(inner, seen, out, where)
    for item in getattr(info, "item_types", ()) or ():
        _patterns(item, seen, out, where)
    for field in getattr(info, "fields", ()) or ():
        _patterns(field.type, seen, out, f"{where}.{field.name}")


def every_pattern() -> dict[str, str]:
    """pattern -> where it was first found, for every string pattern of every Struct and identifier type."""
    out: dict[str, str] = {}
    seen: dict[int, mi.Type] = {}
    for struct in sorted(_all_structs(), key=lambda s: f"{s.__module__}.{s.__qualname__}"):
        _patterns(mi.type_info(struct), seen, out, f"{struct.__module__}.{struct.__qualname__}")
    for name in ("Gtin", "CampaignId", "BrandId", "RetailerId", "Country", "PostalCode", "ModeList"):
        _patterns(mi.type_info(getattr(identifiers, name)), seen, out, f"cache.identifiers.{name}")
    return out


PATTERNS = every_pattern()


def test_the_walk_finds_the_schemas_patterns() -> None:
    wheres = " ".join(PATTERNS.values())
    for field in ("OffersQuery.modes", "OffersQuery.country", "price.currency", "Campaign.locale", "tracking"):
        assert field in wheres, field
    assert len(PATTERNS) >= 14


@pytest.mark.parametrize("pattern", sorted(PATTERNS), ids=lambda p: PATTERNS[p])
@given(data=st.data())
@settings(max_examples=20, deadline=None, database=None)
def test_no_pattern_accepts_a_value_followed_by_a_newline(pattern: str, data: st.DataObject) -> None:
    compiled = re.compile(pattern)
    value = data.draw(st.from_regex(compiled, fullmatch=True))
    assert compiled.search(value) is not None
    for tail in ("\n", "\r\n", " \n"):
        assert compiled.search(value + tail) is None, f"{PATTERNS[pattern]} accepts {value + tail!r}"
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(value + tail, _typed(pattern))


def _typed(pattern: str) -> Any:
    return Annotated[str, msgspec.Meta(pattern=pattern)]


def test_openapi_spelling_keeps_the_whole_match_in_ecma_terms() -> None:
    assert ecma_pattern(whole("[a-z]+")) == "^(?:[a-z]+)$"
    assert ecma_pattern("[a-z]+") == "[a-z]+"  # not ours: left as it is
