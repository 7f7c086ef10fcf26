"""Build `geo/data/postal_codes.tsv.gz`: postal code -> coordinates and city, offline.

Derived from the GeoLite2-City database that the `maxminddb-geolite2` package ships
(MaxMind, CC BY-SA 4.0): every network that carries a postal code votes for that code's
position and city name. Run it again when the package updates:

    .venv/bin/python -m geo.build_postal_data

The output is deterministic (sorted rows, fixed gzip mtime), so a rebuild from the
same database gives the same bytes and an empty git diff.
"""

from __future__ import annotations

import gzip
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import maxminddb
from _maxminddb_geolite2 import geolite2_database

from geo.postal import normalize

# France and the French-speaking neighbours a French shopper may type a code from.
COUNTRIES = ("FR", "MC", "BE", "LU", "CH")
# Overseas departments have their own ISO code in GeoLite2 but French postal codes (97xxx);
# a shopper there types them with country FR, so they are filed under FR.
OVERSEAS = {"GP": "FR", "MQ": "FR", "GF": "FR", "RE": "FR", "YT": "FR", "PM": "FR", "BL": "FR", "MF": "FR"}
OUTPUT = Path(__file__).parent / "data" / "postal_codes.tsv.gz"
HEADER = "country\tpostal_code\tlat\tlon\tcity\tnetworks\n"


def city_name(record: dict[str, Any]) -> str:
    names = (record.get("city") or {}).get("names") or {}
    return str(names.get("fr") or names.get("en") or "")


def aggregate(path: str) -> dict[tuple[str, str], tuple[float, float, str, int]]:
    lats: dict[tuple[str, str], list[float]] = defaultdict(list)
    lons: dict[tuple[str, str], list[float]] = defaultdict(list)
    cities: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    with maxminddb.open_database(path) as reader:
        for _network, record in reader:
            if not isinstance(record, dict):
                continue
            country = (record.get("country") or {}).get("iso_code")
            code = (record.get("postal") or {}).get("code")
            location = record.get("location") or {}
            country = OVERSEAS.get(str(country), str(country))
            if country not in COUNTRIES or not code or "latitude" not in location:
                continue
            # Same form as shoppers' input once cleaned: "L-1661" and "1661" are one code.
            key = normalize(str(code), country)
            if key is None:
                continue
            lats[key].append(float(location["latitude"]))
            lons[key].append(float(location["longitude"]))
            name = city_name(record)
            if name:
                cities[key][name] += 1
    result = {}
    for key in lats:
        # Median, not mean: a few networks of a code sit at a far-away default point
        # (the department's or the country's centre) and would drag a mean off town.
        lat = statistics.median(lats[key])
        lon = statistics.median(lons[key])
        # Ties broken by name so the file is the same on every run.
        city = min(cities[key].items(), key=lambda kv: (-kv[1], kv[0]))[0] if cities[key] else ""
        result[key] = (lat, lon, city, len(lats[key]))
    return result


def write(rows: dict[tuple[str, str], tuple[float, float, str, int]], output: Path) -> None:
    lines = [HEADER]
    for (country, code), (lat, lon, city, count) in sorted(rows.items()):
        lines.append(f"{country}\t{code}\t{lat:.4f}\t{lon:.4f}\t{city}\t{count}\n")
    data = "".join(lines).encode()
    with output.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(data)


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else geolite2_database()
    rows = aggregate(path)
    write(rows, OUTPUT)
    per_country = Counter(country for country, _ in rows)
    print(f"{OUTPUT}: {len(rows)} postal codes {dict(sorted(per_country.items()))}, {OUTPUT.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
