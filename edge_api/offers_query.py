"""Decode step of `/v1/offers`: the raw query string to a checked `OffersQuery` and a 14-digit GTIN.

A bad parameter comes back as the 400 naming it, ready to send.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import parse_qsl

import msgspec
from starlette.responses import Response

from cache.gtin import GtinError, normalize_gtin
from edge_api.errors import bad_parameter, validation_error
from edge_api.schemas import OffersQuery


class OffersAsk(NamedTuple):
    """What a shopper asked, checked."""

    query: OffersQuery
    # The GTIN as stored (14 digits), whatever length was sent.
    gtin: str
    # Whether `radius_km` was sent: if not, the campaign's radius applies.
    radius_given: bool


def decode_offers_query(query_string: bytes) -> OffersAsk | Response:
    """The checked query, or the 400 naming what is wrong in it."""
    params = dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
    try:
        query = msgspec.convert(params, OffersQuery, strict=False)
    except msgspec.ValidationError as exc:
        return validation_error(exc, root="query")
    try:
        gtin = normalize_gtin(query.gtin)
    except GtinError as exc:
        return bad_parameter("gtin", str(exc))
    if (query.lat is None) != (query.lon is None):
        return bad_parameter("lon" if query.lon is None else "lat", "lat and lon go together")
    return OffersAsk(query, gtin, "radius_km" in params)
