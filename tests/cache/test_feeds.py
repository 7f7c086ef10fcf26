from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cache.feed_errors import FeedError, RowError
from cache.feed_reader import FeedReader
from cache.row_rules import offer_validator, store_validator, validate_retailer

OFFER_HEADER = "retailer_id,store_id,gtin,price,currency,quantity,modes,updated_at\n"
GOOD_OFFER = ("shopco", "paris-1", "3017620422003", "2.99", "EUR", "5", "in_store|click_collect",
              "2024-05-01T10:00:00+02:00")


def write(path: Path, text: str) -> Path:
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def rows(path: Path, kind: str = "offers") -> list[tuple[int, tuple[Any, ...], tuple[str, str] | None]]:
    with FeedReader(path, kind) as reader:
        return list(reader)


def test_csv_rows_carry_their_file_line_numbers(tmp_path: Path) -> None:
    feed = write(
        tmp_path / "stores.csv",
        "retailer_id,store_id,name,address,postal_code,city,country,lat,lon\n"
        'shopco,s1,"Shop Co\nRivoli",1 rue,75001,Paris,FR,48.8,2.3\n'
        "\n"
        "shopco,s2,Shop Co Lyon,2 rue,69001,Lyon,FR,45.7,4.8\n",
    )
    got = rows(feed, "stores")
    assert [(line, values[1]) for line, values, _ in got] == [(2, "s1"), (5, "s2")]
    assert got[0][1][2] == "Shop Co\nRivoli"


def test_extra_columns_are_ignored_and_order_does_not_matter(tmp_path: Path) -> None:
    feed = write(
        tmp_path / "offers.csv",
        "GTIN,comment,retailer_id,price,currency,quantity,modes,updated_at\n"
        "3017620422003,hello,shopco,2.99,EUR,5,delivery,2024-05-01T10:00:00Z\n",
    )
    [(line, values, problem)] = rows(feed)
    assert problem is None
    assert values == ("shopco", "", "3017620422003", "2.99", "EUR", "5", "delivery", "2024-05-01T10:00:00Z")


def test_gzipped_json_lines_are_read_with_arrays_and_numbers(tmp_path: Path) -> None:
    feed = write(
        tmp_path / "offers.jsonl.gz",
        '{"retailer_id": "shopco", "gtin": "3017620422003", "price": 2.99, "currency": "EUR",'
        ' "quantity": 5, "modes": ["delivery"], "updated_at": "2024-05-01T10:00:00Z"}\n'
        "\n"
        "[1, 2]\n",
    )
    got = rows(feed)
    assert got[0] == (1, ("shopco", "", "3017620422003", "2.99", "EUR", "5", "delivery", "2024-05-01T10:00:00Z"), None)
    assert got[1] == (3, (), ("row", "not a JSON object"))


def test_json_line_missing_a_required_key_names_it(tmp_path: Path) -> None:
    feed = write(tmp_path / "offers.jsonl", '{"retailer_id": "shopco", "gtin": "3017620422003"}\n')
    [(_, _, problem)] = rows(feed)
    assert problem == ("price", "missing")


def test_oversized_json_line_is_rejected_and_the_next_line_keeps_its_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("cache.formats.json_lines.MAX_JSON_LINE", 100)
    small = '{"retailer_id": "shopco"}'
    big = '{"retailer_id": "' + "x" * 300 + '"}'
    got = rows(write(tmp_path / "offers.jsonl", "\n".join([small, big, small]) + "\n"))
    assert [(line, problem) for line, _, problem in got] == [
        (1, ("gtin", "missing")), (2, ("row", "line longer than 100 bytes")), (3, ("gtin", "missing")),
    ]


def test_header_without_a_required_column_makes_the_file_unusable(tmp_path: Path) -> None:
    feed = write(tmp_path / "offers.csv", "retailer_id,store_id,gtin,currency,quantity,modes,updated_at\n")
    with pytest.raises(FeedError, match="header lacks price"):
        FeedReader(feed, "offers")


@pytest.mark.parametrize("name", ["offers.xlsx", "offers", "offers.txt"])
def test_the_content_decides_the_format_not_the_name(tmp_path: Path, name: str) -> None:
    feed = write(tmp_path / name, OFFER_HEADER + ",".join(GOOD_OFFER) + "\n")
    assert [problem for _, _, problem in rows(feed)] == [None]
    (tmp_path / "plain.gz").write_bytes(feed.read_bytes())  # named .gz, not gzip: still read
    assert [problem for _, _, problem in rows(tmp_path / "plain.gz")] == [None]


@pytest.mark.parametrize(("head", "reason"), [
    (b"PK\x03\x04\x14\x00\x06\x00", "an Excel workbook, not text: save it as CSV"),
    (b"\xff\xfer\x00e\x00t\x00", "UTF-16 text"),
    (b"retailer_id\tstore_id\tgtin\n", "tab-separated, but its header is not a Google local product inventory"),
])
def test_a_file_in_no_known_format_is_unusable_with_the_reason(tmp_path: Path, head: bytes, reason: str) -> None:
    (tmp_path / "offers.csv").write_bytes(head)
    with pytest.raises(FeedError, match=reason):
        FeedReader(tmp_path / "offers.csv", "offers")


def test_missing_file_makes_the_file_unusable(tmp_path: Path) -> None:
    with pytest.raises(FeedError, match="cannot open"):
        FeedReader(tmp_path / "nope.csv", "offers")


def test_truncated_gzip_keeps_the_rows_before_the_damage(tmp_path: Path) -> None:
    body = OFFER_HEADER + ",".join(GOOD_OFFER) + "\n"
    data = gzip.compress((body * 2000).encode())
    feed = tmp_path / "offers.csv.gz"
    feed.write_bytes(data[: len(data) // 2])
    got = rows(feed)
    assert got[-1][2] is not None and got[-1][2][0] == "file"
    assert all(problem is None for _, _, problem in got[:-1]) and len(got) > 100


def test_short_csv_row_is_rejected_not_misread(tmp_path: Path) -> None:
    feed = write(tmp_path / "offers.csv", OFFER_HEADER + "shopco,paris-1,3017620422003\n")
    [(line, _, problem)] = rows(feed)
    assert line == 2 and problem == ("row", "3 columns where the header has 8")


def test_unquoted_decimal_comma_is_rejected_not_misread(tmp_path: Path) -> None:
    feed = write(tmp_path / "offers.csv", OFFER_HEADER + "shopco,,3017620422003,2,99,EUR,3,delivery,2024-05-01Z\n")
    [(_, _, problem)] = rows(feed)
    assert problem == ("row", "9 columns where the header has 8")


def offer(**changes: str) -> tuple[str, ...]:
    names = ("retailer_id", "store_id", "gtin", "price", "currency", "quantity", "modes", "updated_at")
    values = dict(zip(names, GOOD_OFFER, strict=True))
    values.update(changes)
    return tuple(values[n] for n in names)


VALIDATE_OFFER = offer_validator({"shopco"}, {"shopco": {"paris-1"}})


def test_good_offer_becomes_a_staging_record() -> None:
    record = VALIDATE_OFFER(7, offer())
    stamp_us = int(datetime(2024, 5, 1, 8, 0, tzinfo=UTC).timestamp()) * 1_000_000
    assert record == (7, "shopco", "paris-1", "03017620422003", 299, "EUR", 5, 3, stamp_us)


@pytest.mark.parametrize(
    ("price", "cents"), [("2.9", 290), ("10", 1000), ("0.05", 5), (" 3.50 ", 350), ("9999999999.99", 999999999999)]
)
def test_price_becomes_exact_cents(price: str, cents: int) -> None:
    assert VALIDATE_OFFER(1, offer(price=price))[4] == cents


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("price", "2,99", '"2,99" is not a decimal like 2.99'),
        ("price", "-1.00", "is not a decimal"),
        ("price", "2.999", "is not a decimal"),
        ("currency", "EURO", '"EURO" is not an ISO 4217 currency code'),
        ("quantity", "-1", "is not a whole number ≥ 0"),
        ("quantity", "1.5", "is not a whole number ≥ 0"),
        ("modes", "in_store|teleport", '"teleport" is not a mode'),
        ("modes", "", "missing"),
        ("updated_at", "2024-05-01T10:00:00", "lacks a UTC offset"),
        ("updated_at", "yesterday", "is not an ISO 8601 date-time"),
        ("gtin", "3017620422004", "check digit should be 3"),
        ("retailer_id", "nobody", 'unknown retailer "nobody"'),
        ("store_id", "lyon-9", 'unknown store "lyon-9"'),
    ],
)
def test_bad_offer_field_is_named_with_its_reason(field: str, value: str, reason: str) -> None:
    with pytest.raises(RowError) as caught:
        VALIDATE_OFFER(1, offer(**{field: value}))
    assert caught.value.field == field
    assert reason in caught.value.reason


def test_online_offer_cannot_be_sold_in_store() -> None:
    with pytest.raises(RowError, match="online offer"):
        VALIDATE_OFFER(1, offer(store_id="", modes="in_store"))
    assert VALIDATE_OFFER(1, offer(store_id="", modes="delivery"))[7] == 4


def retailer(**changes: str) -> tuple[Any, ...]:
    values = {
        "retailer_id": "shopco", "name": "Shop Co", "logo_url": "https://shop.example/logo.png",
        "cart_url_template": "https://shop.example/cart?add={gtin}&qty={qty}", "delivery_countries": "fr|BE",
        "delivery_zones": "",
    }
    values.update(changes)
    return tuple(values.values())


def test_retailer_countries_are_normalised() -> None:
    assert validate_retailer(1, retailer())[5] == ["FR", "BE"]


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("https://shop.example/cart?store={store_id}", "needs the {gtin} placeholder"),
        ("https://shop.example/cart?add={gtin}&x={sku}", "unknown placeholder {sku}"),
        ("http://shop.example/cart?add={gtin}", "is not an https URL"),
        ("https://{gtin}.shop.example/", "not allowed in the host"),
    ],
)
def test_bad_cart_url_template_is_refused(template: str, reason: str) -> None:
    with pytest.raises(RowError) as caught:
        validate_retailer(1, retailer(cart_url_template=template))
    assert caught.value.field == "cart_url_template" and reason in caught.value.reason


def test_unknown_delivery_country_is_refused() -> None:
    with pytest.raises(RowError, match="delivery_countries: \"XX\" is not an ISO 3166"):
        validate_retailer(1, retailer(delivery_countries="FR|XX"))


def test_delivery_zone_that_is_no_geojson_shape_is_refused() -> None:
    square = '{"type": "Polygon", "coordinates": [[[2.2, 48.8], [2.5, 48.8], [2.5, 48.9], [2.2, 48.8]]]}'
    assert '"Polygon"' in validate_retailer(1, retailer(delivery_zones=square))[6]
    with pytest.raises(RowError) as caught:
        validate_retailer(1, retailer(delivery_zones='{"type": "Circle", "radius": 5}'))
    assert caught.value.field == "delivery_zones"
    with pytest.raises(RowError, match="delivery_zones: not valid JSON"):
        validate_retailer(1, retailer(delivery_zones="{"))


def test_store_outside_the_globe_is_refused() -> None:
    validate = store_validator({"shopco"})
    good = ("shopco", "s1", "Shop Co", "1 rue", "75001", "Paris", "fr", "48.85", "2.35")
    assert validate(1, good)[7:] == ("FR", 48.85, 2.35, False)
    with pytest.raises(RowError, match="lat: \"98.85\" is outside -90..90"):
        validate(1, good[:7] + ("98.85", "2.35"))
    with pytest.raises(RowError, match="country"):
        validate(1, good[:6] + ("France", "48.85", "2.35"))


def test_store_without_coordinates_is_placed_at_its_postal_code_and_marked_approximate() -> None:
    validate = store_validator({"shopco"})
    *_, lat, lon, approximate = validate(1, ("shopco", "s1", "Shop Co", "1 rue", "69002", "Lyon", "FR", "", ""))
    assert approximate is True
    assert 45.70 < lat < 45.80 and 4.78 < lon < 4.88  # Lyon 2e
    with pytest.raises(RowError, match="lat: missing, and postal code \"99999\" of FR cannot be placed"):
        validate(1, ("shopco", "s1", "Shop Co", "1 rue", "99999", "Nowhere", "FR", "", ""))
    with pytest.raises(RowError, match="lon"):
        validate(1, ("shopco", "s1", "Shop Co", "1 rue", "69002", "Lyon", "FR", "45.75", ""))


def _csv_reference(path: Path) -> list[tuple[int, tuple[str, ...] | None, str | None]]:
    """What csv.reader makes of a whole offers file: (line, values, problem) per non-blank row."""
    import csv
    import io

    found: list[tuple[int, tuple[str, ...] | None, str | None]] = []
    with path.open("rb") as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
        reader = csv.reader(text)
        next(reader)
        previous = reader.line_num
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return found
            except csv.Error as exc:
                found.append((previous + 1, None, f"not valid CSV: {exc}"))
                previous = reader.line_num
                continue
            line, previous = previous + 1, reader.line_num
            if row and row != [""]:
                found.append((line, tuple(row) if len(row) == 8 else None, None if len(row) == 8 else "width"))


@pytest.mark.parametrize(
    "trouble",
    [
        "",  # plain comma-separated lines all along
        'shopco,paris-1,3017620422003,"2.99",EUR,5,in_store,2024-05-01T10:00:00Z\n',
        'shopco,"paris\n-1",3017620422003,2.99,EUR,5,in_store,2024-05-01T10:00:00Z\n',
        "shopco,paris-1,3017620422003,2.99,EUR,5,in_store,2024-05-01T10:00:00Z\r",  # a lone carriage return
        "shopco,paris-1,3017620422003,2.99,EUR,5,in\0store,2024-05-01T10:00:00Z\n",
        "shopco,paris-1," + "9" * 140_000 + ",2.99,EUR,5,in_store,2024-05-01T10:00:00Z\n",  # over csv's field limit
        "\n\n  \nshopco,paris-1\n",
    ],
)
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("ending", ["", "\n"])
def test_csv_reader_reads_what_csv_module_reads_wherever_the_trouble_is(
    tmp_path: Path, trouble: str, newline: str, ending: str
) -> None:
    good = [",".join(offer(price=f"{i // 100}.{i % 100:02d}")) + newline for i in range(3000)]
    for where in (5, 1500, 2999):  # in the first text block, a later one, the last line
        body = "".join(good[:where]) + trouble + "".join(good[where:])
        feed = tmp_path / "offers.csv"
        feed.write_bytes(("\ufeff" + OFFER_HEADER.replace("\n", newline) + body.rstrip("\r\n") + ending).encode())
        expected = _csv_reference(feed)
        got = [
            (line, values, None) if problem is None
            else (line, None, "width" if "columns where" in problem[1] else problem[1])
            for line, values, problem in rows(feed)
        ]
        assert got == expected
