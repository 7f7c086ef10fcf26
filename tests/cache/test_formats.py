"""Reading the formats retailers already have (cache/formats/): what each row becomes, or why it is refused."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cache.feed_errors import FeedError
from cache.feed_reader import FeedReader
from cache.formats.base import FeedOptions

AS_OF = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
SHOP = FeedOptions(retailer="shopco", as_of=AS_OF, items={"SKU-1": "03017620422003"})
INVENTORY = "store code\tid\tavailability\tprice\tquantity\tpickup method\tpickup sla\n"

Rows = list[tuple[int, tuple[Any, ...], tuple[str, str] | None]]


def read(path: Path, kind: str = "offers", options: FeedOptions = SHOP) -> Rows:
    with FeedReader(path, kind, options) as reader:
        return list(reader)


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


@pytest.mark.parametrize(("header", "fmt"), [
    ("retailer_id,store_id,gtin,price,currency,quantity,modes,updated_at\n", "csv"),
    ("retailer_id;store_id;gtin;price;currency;quantity;modes;updated_at\r\n", "excel-fr"),
    ('{"retailer_id": "shopco"}\n', "jsonl"),
    (INVENTORY, "google-inventory"),
    ("Store_Code,ID,Availability,Price\n", "google-inventory"),
    ('<?xml version="1.0"?>\n<rss xmlns:g="http://base.google.com/ns/1.0" version="2.0"><channel/></rss>\n',
     "google-inventory-xml"),
])
def test_the_format_is_detected_from_the_content(tmp_path: Path, header: str, fmt: str) -> None:
    with FeedReader(write(tmp_path, "feed.csv.gz", gzip.compress(header.encode())), "offers", SHOP) as reader:
        assert reader.fmt == fmt


@pytest.mark.parametrize("header", [
    "store code\tid\tavailability\tprice\tquantity\tpickup method\tpickup sla",
    "store_code\tid\tavailability\tprice\tquantity\tpickup_method\tpickup_sla",
    "Store Code\tID\tAvailability\tPrice\tQuantity\tPickup_Method\tPickup SLA",
])
def test_inventory_headers_are_read_spelled_with_spaces_or_underscores(tmp_path: Path, header: str) -> None:
    feed = write(tmp_path, "inventory.tsv", header + "\nparis-1\tSKU-1\tin stock\t3.75 EUR\t5\tbuy\tsame day\n")
    assert read(feed) == [(2, ("shopco", "paris-1", "03017620422003", "3.75", "EUR", "5", "in_store|click_collect",
                               "2026-12-03T08:00:00+00:00"), None)]


@pytest.mark.parametrize(("availability", "quantity", "stored"), [
    ("in stock", "", "10"), ("in_stock", "", "10"), ("IN_STOCK", "7", "7"), ("in stock", "0", "0"),
    ("limited availability", "", "1"), ("LIMITED_AVAILABILITY", "40", "3"), ("out of stock", "12", "0"),
    ("out_of_stock", "", "0"), ("on display to order", "4", "0"), ("", "6", "6"),
])
def test_availability_in_all_its_spellings_decides_the_quantity(
    tmp_path: Path, availability: str, quantity: str, stored: str
) -> None:
    feed = write(tmp_path, "inventory.tsv", INVENTORY + f"paris-1\tSKU-1\t{availability}\t3.75 EUR\t{quantity}\t\t\n")
    [(_, values, problem)] = read(feed)
    assert problem is None and values[5] == stored


@pytest.mark.parametrize(("method", "sla", "modes"), [
    ("buy", "same day", "in_store|click_collect"), ("reserve", "next_day", "in_store|click_collect"),
    ("ship to store", "7-day", "in_store|click_collect"), ("ship_to_store", "multi-week", "in_store"),
    ("not supported", "", "in_store"), ("", "", "in_store"),
])
def test_pickup_method_and_sla_decide_click_and_collect(tmp_path: Path, method: str, sla: str, modes: str) -> None:
    feed = write(tmp_path, "inventory.tsv", INVENTORY + f"paris-1\tSKU-1\tin stock\t3.75 EUR\t5\t{method}\t{sla}\n")
    [(_, values, problem)] = read(feed)
    assert problem is None and values[6] == modes


@pytest.mark.parametrize(("dates", "price"), [
    ("", "2.99"),
    ("2026-12-01T00:00+01:00/2026-12-08T00:00+01:00", "2.99"),
    ("2026-12-03T10:00+01:00/2026-12-08T00:00+01:00", "3.75"),  # starts an hour after the feed's time
    ("2026-11-01T00:00/2026-11-30T00:00", "3.75"),  # no offset: UTC
])
def test_sale_price_applies_within_its_effective_dates(tmp_path: Path, dates: str, price: str) -> None:
    feed = write(tmp_path, "inventory.tsv", "store_code\tid\tavailability\tprice\tsale_price\t"
                 f"sale_price_effective_date\nparis-1\tSKU-1\tin stock\t3.75 EUR\t2.99 EUR\t{dates}\n")
    [(_, values, problem)] = read(feed)
    assert problem is None and values[3] == price


@pytest.mark.parametrize(("row", "problem"), [
    ("\tSKU-1\tin stock\t3.75 EUR\t2.99 EUR", ("store_code", "missing")),
    ("paris-1\tSKU-9\tin stock\t3.75 EUR\t", ("id", 'item id "SKU-9" has no gtin in the product feed')),
    ("paris-1\tSKU-1\tsoon\t3.75 EUR\t",
     ("availability", '"soon" is not one of in stock, limited availability, out of stock, on display to order')),
    ("paris-1\tSKU-1\tin stock\t3.75\t", ("price", '"3.75" is not an amount and currency like 3.75 EUR')),
    ("paris-1\tSKU-1\tin stock\t3.75 EUR\t2.99 USD", ("sale_price", '"2.99 USD" is not in the price\'s currency EUR')),
])
def test_inventory_row_that_cannot_be_mapped_is_refused_naming_the_field(
    tmp_path: Path, row: str, problem: tuple[str, str]
) -> None:
    feed = write(tmp_path, "inventory.tsv", "store code\tid\tavailability\tprice\tsale price\n" + row + "\n")
    assert read(feed) == [(2, (), problem)]


def test_billion_laughs_xml_is_refused_before_anything_expands(tmp_path: Path) -> None:
    laughs = "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    feed = write(tmp_path, "inventory.xml", f'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY lol0 "lol">{laughs}]>\n'
                 "<rss><channel><item><g:id>&lol9;</g:id></item></channel></rss>\n")
    with pytest.raises(FeedError, match="XML refused: it declares entities or external references"):
        read(feed)


def test_xml_naming_an_external_file_is_refused_and_reads_nothing(tmp_path: Path) -> None:
    secret = write(tmp_path, "secret.txt", "s3cr3t")
    feed = write(tmp_path, "inventory.xml", f'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY x SYSTEM '
                 f'"file://{secret}">]>\n<rss><channel><item><id>&x;</id></item></channel></rss>\n')
    with pytest.raises(FeedError, match="XML refused") as refused:
        read(feed)
    assert "s3cr3t" not in str(refused.value)


def test_xml_items_are_named_by_their_line_and_damage_keeps_the_items_before_it(tmp_path: Path) -> None:
    item = ("<item><g:store_code>paris-1</g:store_code><g:id>SKU-1</g:id><g:price>3.75 EUR</g:price>"
            "<g:availability>in_stock</g:availability></item>\n")
    big = "<item><g:store_code>" + "x" * 300 + "</g:store_code></item>\n"
    feed = write(tmp_path, "inventory.xml", '<rss xmlns:g="http://base.google.com/ns/1.0"><channel>\n'
                 + item + big + item + "<item><g:id>SKU-1</g:price>\n" + item)
    got = read(feed, options=FeedOptions(retailer="shopco", as_of=AS_OF, items=SHOP.items, max_line=200))
    assert [(line, problem) for line, _, problem in got] == [
        (2, None), (3, ("row", "item longer than 200 characters")), (4, None),
        (5, ("file", "not well-formed XML: <unknown>:5:19: mismatched tag; the rest is not read")),
    ]


def test_product_feed_xml_maps_ids_to_gtins(tmp_path: Path) -> None:
    feed = write(tmp_path, "products.xml", '<?xml version="1.0"?>\n<rss xmlns:g="http://base.google.com/ns/1.0"'
                 ' version="2.0"><channel>\n<item><g:id>SKU-1</g:id><title>Pâte à tartiner</title>'
                 "<g:gtin>3017620422003</g:gtin></item>\n<item><g:id>SKU-2</g:id></item>\n</channel></rss>\n")
    assert read(feed, "products") == [
        (3, ("shopco", "SKU-1", "3017620422003"), None),
        (4, (), ("gtin", "missing for item 'SKU-2': its offers cannot be shown")),
    ]


def test_line_over_the_limit_is_refused_and_the_file_goes_on(tmp_path: Path) -> None:
    good = "paris-1\tSKU-1\tin stock\t3.75 EUR\t5\t\t\n"
    feed = write(tmp_path, "inventory.tsv", INVENTORY + good + "paris-1\t" + "x" * 500 + "\n" + good)
    got = read(feed, options=FeedOptions(retailer="shopco", as_of=AS_OF, items=SHOP.items, max_line=200))
    assert [(line, problem) for line, _, problem in got] == [
        (2, None), (3, ("row", "line longer than 200 bytes")), (4, None),
    ]


def test_gzip_bomb_stops_at_the_size_limit_keeping_the_rows_before(tmp_path: Path) -> None:
    body = INVENTORY + "paris-1\tSKU-1\tin stock\t3.75 EUR\t5\t\t\n" * 20_000
    feed = write(tmp_path, "inventory.tsv.gz", gzip.compress(body.encode()))
    got = read(feed, options=FeedOptions(retailer="shopco", as_of=AS_OF, items=SHOP.items, max_bytes=200_000))
    assert 1000 < len(got) < 20_000 and all(problem is None for _, _, problem in got[:-1])
    assert got[-1][2] == ("file", "unreadable from here on: larger than 200,000 bytes (uncompressed); the rest is"
                          " not read")


@pytest.mark.parametrize(("data", "name"), [
    ("retailer_id;name;cart_url_template\r\nshopco;Épicerie Lumière;https://s.example/{gtin}\r\n".encode("cp1252"),
     "Épicerie Lumière"),
    (b"\xef\xbb\xbfretailer_id;name;cart_url_template\r\nshopco;\xc3\x89picerie;https://s.example/{gtin}\r\n",
     "Épicerie"),
    ("retailer_id;name;cart_url_template\r\nshopco;Bière « blonde »;https://s.example/{gtin}\r\n".encode(),
     "Bière « blonde »"),
])
def test_excel_csv_is_read_as_utf8_or_windows_1252(tmp_path: Path, data: bytes, name: str) -> None:
    [(_, values, problem)] = read(write(tmp_path, "retailers.csv", data), "retailers")
    assert problem is None and values[1] == name


def test_excel_csv_line_in_another_encoding_than_the_file_is_refused(tmp_path: Path) -> None:
    data = ("retailer_id;name;cart_url_template\r\nshopco;Crème;https://s.example/{gtin}\r\n".encode()
            + "shopco;Crème;https://s.example/{gtin}\r\n".encode("cp1252")
            + b"shopco;Cafe;https://s.example/{gtin}\r\n")
    got = read(write(tmp_path, "retailers.csv", data), "retailers")
    assert [(line, problem) for line, _, problem in got] == [
        (2, None), (3, ("row", "not UTF-8 text like the lines before it")), (4, None),
    ]


def test_own_csv_with_retailer_option_takes_empty_ids_and_refuses_another_retailer(tmp_path: Path) -> None:
    feed = write(tmp_path, "offers.csv", "retailer_id,gtin,price,currency,quantity,modes,updated_at\n"
                 ",3017620422003,2.99,EUR,5,delivery,2026-12-01T10:00:00Z\n"
                 "bigbox,3017620422003,2.99,EUR,5,delivery,2026-12-01T10:00:00Z\n")
    got = read(feed)
    assert got[0][1][0] == "shopco"
    assert got[1] == (3, (), ("retailer_id", 'names retailer "bigbox", but this feed is "shopco"\'s (--retailer)'))
    without = write(tmp_path, "no_retailer.csv", "gtin,price,currency,quantity,modes,updated_at\n"
                    "3017620422003,2.99,EUR,5,delivery,2026-12-01T10:00:00Z\n")
    assert [values[0] for _, values, _ in read(without)] == ["shopco"]


def test_forcing_a_format_of_another_kind_is_refused(tmp_path: Path) -> None:
    feed = write(tmp_path, "stores.csv", "Store code,Business name,Country\nS1,Shop,FR\n")
    with pytest.raises(FeedError, match="the gbp format holds stores, not offers"):
        read(feed, "offers", FeedOptions(retailer="shopco", format="gbp"))


def test_quoted_field_across_lines_keeps_the_line_numbers_of_the_rows_after_it(tmp_path: Path) -> None:
    feed = write(tmp_path, "stores.csv", "retailer_id;store_id;name;address;country;lat;lon\r\n"
                 'shopco;s1;"Shop ""Co""";"12 rue Neuve\r\nBâtiment B";FR;48,85;2,35\r\n'
                 "shopco;s2;Shop Co 2;3 rue;FR;45,75;4,83\r\n"
                 'shopco;s3;"never closed;rue;FR;1;2\r\n')
    got = read(feed, "stores")
    assert [(line, values[2:4] if values else problem) for line, values, problem in got] == [
        (2, ('Shop "Co"', "12 rue Neuve\r\nBâtiment B")), (4, ("Shop Co 2", "3 rue")),
        (5, ("row", "3 columns where the header has 7")),  # the quote never closes: all one field
    ]


def test_every_registered_format_can_be_named_on_the_command_line() -> None:
    from cache.feed_kinds import FORMAT_NAMES
    from cache.feed_reader import FORMATS

    assert tuple(FORMATS) == FORMAT_NAMES
