"""Retailer delivery zones: GeoJSON polygons, and the question "who delivers to this point?".

A retailer that delivers only around some cities sends its area as GeoJSON (a Polygon,
MultiPolygon, Feature or FeatureCollection of those; coordinates are lon, lat as
GeoJSON says). All zones go into one shapely STRtree, so a lookup tests only the
zones whose bounding box holds the point, each a prepared geometry: a few µs per
request whatever the number of retailers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

_POLYGONS = ("Polygon", "MultiPolygon")


def geojson_error(obj: object) -> str | None:
    """None when `obj` (a GeoJSON dict, or its JSON text) is a usable delivery zone; else what is wrong."""
    try:
        _zone(obj)
    except ValueError as exc:
        return str(exc)
    except RecursionError:
        return "GeoJSON nested too deeply"
    return None


def _zone(obj: object) -> BaseGeometry:
    """The zone as one shapely geometry; ValueError naming what is wrong."""
    if isinstance(obj, (str, bytes)):
        # PostgreSQL jsonb arrives as text through asyncpg.
        try:
            obj = json.loads(obj)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(obj, Mapping):
        raise ValueError("expected a GeoJSON object")
    kind = obj.get("type")
    if kind == "FeatureCollection":
        features = obj.get("features")
        if not isinstance(features, list) or not features:
            raise ValueError("features: expected a non-empty list")
        parts = []
        for i, feature in enumerate(features):
            if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
                raise ValueError(f"features[{i}]: expected a Feature")
            parts.append(_geometry(feature.get("geometry"), f"features[{i}].geometry"))
        return shapely.union_all(parts)
    if kind == "Feature":
        return _geometry(obj.get("geometry"), "geometry")
    return _geometry(obj, "")


def _geometry(obj: object, path: str) -> BaseGeometry:
    where = f"{path}: " if path else ""
    if not isinstance(obj, Mapping):
        raise ValueError(f"{where}expected a GeoJSON geometry")
    kind = obj.get("type")
    if kind not in _POLYGONS:
        raise ValueError(
            f"{where}type must be Polygon or MultiPolygon (or a Feature/FeatureCollection of them), got {kind!r}"
        )
    coordinates = obj.get("coordinates")
    polygons = [coordinates] if kind == "Polygon" else coordinates
    if not isinstance(polygons, list) or not polygons:
        raise ValueError(f"{where}coordinates: expected a non-empty list")
    for p, rings in enumerate(polygons):
        at = f"{where}coordinates" + (f"[{p}]" if kind == "MultiPolygon" else "")
        _check_rings(rings, at)
    try:
        geometry = shape({"type": kind, "coordinates": coordinates})
    except Exception as exc:  # shapely raises several types on odd input; all mean the same to the sender
        raise ValueError(f"{where}not a valid {kind}: {exc}") from None
    if not geometry.is_valid:
        raise ValueError(f"{where}invalid {kind}: {shapely.is_valid_reason(geometry)}")
    if geometry.is_empty or geometry.area == 0:
        raise ValueError(f"{where}{kind} has no area")
    return geometry


def _check_rings(rings: object, at: str) -> None:
    if not isinstance(rings, list) or not rings:
        raise ValueError(f"{at}: expected a list of linear rings")
    for r, ring in enumerate(rings):
        if not isinstance(ring, list) or len(ring) < 4:
            raise ValueError(f"{at}[{r}]: a linear ring needs at least 4 positions")
        for i, position in enumerate(ring):
            if (
                not isinstance(position, list)
                or len(position) < 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in position[:2])
            ):
                raise ValueError(f"{at}[{r}][{i}]: expected a [lon, lat] position")
            lon, lat = position[0], position[1]
            if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
                raise ValueError(f"{at}[{r}][{i}]: [lon, lat] out of range: {position[:2]}")
        if ring[0][:2] != ring[-1][:2]:
            raise ValueError(f"{at}[{r}]: a linear ring must end where it starts")


# Up to this many zones a linear scan of bounding boxes beats the STRtree query.
_SCAN_AT_MOST = 16


class DeliveryZones:
    """Zones by key (a retailer id); built once per directory version, read on every offers request."""

    def __init__(self, zones: Mapping[str, object]) -> None:
        # Keys whose GeoJSON was unusable -> why; they cover no point.
        self.errors: dict[str, str] = {}
        keys: list[str] = []
        geometries: list[BaseGeometry] = []
        for key, obj in zones.items():
            if obj is None:
                continue
            try:
                geometry = _zone(obj)
            except (ValueError, RecursionError) as exc:
                # Ingest refuses bad zones, but this runs on the request path: a bad one left in
                # the directory must not fail every offers query. That retailer delivers nowhere.
                self.errors[key] = str(exc) or "GeoJSON nested too deeply"
                continue
            shapely.prepare(geometry)
            keys.append(key)
            geometries.append(geometry)
        self._keys = keys
        self._geometries = geometries
        self._by_key = dict(zip(keys, geometries, strict=True))
        self._tree = shapely.STRtree(geometries)
        # Bounding boxes as plain floats: most shoppers are outside every zone's box, and this
        # tells so without building a shapely Point (which costs more than the whole test).
        self._boxes = [tuple(float(v) for v in geometry.bounds) for geometry in geometries]
        # The box around all of them (min lon, min lat, max lon, max lat); empty when there are none.
        self.extent = (
            (min(b[0] for b in self._boxes), min(b[1] for b in self._boxes),
             max(b[2] for b in self._boxes), max(b[3] for b in self._boxes))
            if self._boxes else (math.inf, math.inf, -math.inf, -math.inf)
        )

    def may_cover(self, lat: float, lon: float) -> bool:
        """False when the point lies outside every zone's bounding box (the common case), at the cost
        of four comparisons; True means `delivers_to` must decide."""
        min_x, min_y, max_x, max_y = self.extent
        return min_x <= lon <= max_x and min_y <= lat <= max_y

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def delivers_to(self, lat: float, lon: float) -> frozenset[str]:
        """Keys whose zone contains (or has on its edge) the point."""
        if not self._keys or not (math.isfinite(lat) and math.isfinite(lon)):
            return frozenset()
        if len(self._keys) <= _SCAN_AT_MOST:
            # A few zones: boxes in Python, then shapely's point test straight on the coordinates.
            return frozenset(
                key for key, (min_x, min_y, max_x, max_y), geometry in zip(
                    self._keys, self._boxes, self._geometries, strict=True)
                if min_x <= lon <= max_x and min_y <= lat <= max_y and shapely.intersects_xy(geometry, lon, lat)
            )
        point = shapely.Point(lon, lat)
        # The tree narrows to zones whose bounding box holds the point; the prepared geometry decides.
        candidates = self._tree.query(point).tolist()
        return frozenset(self._keys[i] for i in candidates if self._geometries[i].covers(point))

    def covers(self, key: str, lat: float, lon: float) -> bool:
        """Whether `key`'s zone holds the point (False when it has no zone)."""
        geometry = self._by_key.get(key)
        if geometry is None or not (math.isfinite(lat) and math.isfinite(lon)):
            return False
        return bool(shapely.covers(geometry, shapely.Point(lon, lat)))
