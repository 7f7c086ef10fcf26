"""Property tests of the feed row parser (issue #14): whatever a line holds, it becomes a checked record
or a rejection naming a field and why, never an exception; and a valid row comes back as it went in.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cache.feed_errors import FeedError, RowError
from cache.feed_kinds import COLUMNS
from cache.feed_reader import FeedReader
from cache.formats.base import FeedOptions
from cache.gtin import check_digit
from cache.keys import MODE_BITS
from cache.row_rules import epoch_us, offer_validator, store_validator, validate_retailer

RETAILERS = {"shop", "mart.fr"}
STORES = {"shop": {"s1", "paris 2"}, "mart.fr": {"m-9"}}
VALIDATE_OFFER = offer_validator(RETAILERS, STORES)
VALIDATE_STORE = store_validator(RETAILERS)
PROPERTY = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# Text as feeds carry it: anything, and more often the characters that matter to CSV and to the rules.
_TRICKY = st.sampled_from([",", '"', "\n", "\r", "\r\n", "|", ";", " ", "\t", "\0", "é", "\ufeff", "\udcff",
                           "2.99", "delivery", "in_store", "shop", "s1", "3017620422003", "EUR", "+02:00", "Z"])
FIELD_TEXT = st.lists(st.one_of(st.text(max_size=12), _TRICKY), max_size=6).map("".join)


def _read_kind(kind: str, body: bytes) -> list[tuple[int, tuple[Any, ...], tuple[str, str] | None]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{kind}.csv"
        path.write_bytes(",".join(COLUMNS[kind]).encode() + b"\n" + body)
        with FeedReader(path, kind, FeedOptions(max_line=4096)) as reader:
            return list(reader)


def _is_problem(problem: object) -> bool:
    return (isinstance(problem, tuple) and len(problem) == 2 and all(isinstance(p, str) and p for p in problem))


@PROPERTY
@given(body=st.one_of(st.binary(max_size=400), st.lists(FIELD_TEXT, max_size=12).map(
    lambda fields: ",".join(fields).encode("utf-8", "surrogatepass"))))
def test_any_offers_body_gives_records_or_named_rejections(body: bytes) -> None:
    for line, values, problem in _read_kind("offers", body):
        assert isinstance(line, int) and line >= 2
        if problem is not None:
            assert _is_problem(problem), problem
            continue
        _record_or_named_field(VALIDATE_OFFER, "offers", line, values)


_JSON_VALUE = st.one_of(FIELD_TEXT.filter(lambda t: "\udcff" not in t), st.integers(), st.floats(), st.booleans(),
                        st.none(), st.lists(st.text(max_size=5), max_size=3))


@PROPERTY
@given(objects=st.lists(st.dictionaries(st.sampled_from(COLUMNS["offers"]), _JSON_VALUE), min_size=1, max_size=8))
def test_any_json_lines_offers_give_records_or_named_rejections(objects: list[dict[str, Any]]) -> None:
    body = b"\n".join(msgspec.json.encode(obj) for obj in objects)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "offers.jsonl"
        path.write_bytes(body)
        with FeedReader(path, "offers") as reader:
            for line, values, problem in reader:
                if problem is not None:
                    assert _is_problem(problem), problem
                else:
                    _record_or_named_field(VALIDATE_OFFER, "offers", line, values)


def _record_or_named_field(validate: Callable[[int, tuple[Any, ...]], tuple[Any, ...]], kind: str, line: int,
                           values: tuple[Any, ...]) -> None:
    try:
        validate(line, values)
    except RowError as exc:
        assert exc.field in COLUMNS[kind] and exc.reason


VALIDATORS = {"offers": VALIDATE_OFFER, "stores": VALIDATE_STORE, "retailers": validate_retailer}


@PROPERTY
@given(data=st.data(), kind=st.sampled_from(sorted(VALIDATORS)))
def test_any_field_values_give_a_record_or_a_named_field(data: st.DataObject, kind: str) -> None:
    values = data.draw(st.tuples(*[FIELD_TEXT] * len(COLUMNS[kind])))
    _record_or_named_field(VALIDATORS[kind], kind, 1, values)


# --- round trip -----------------------------------------------------------------------------

_GTIN_BODIES = st.integers(min_value=10**6, max_value=10**12 - 1).map(lambda n: f"{n:012d}")
_OFFSETS = st.integers(min_value=-12 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@st.composite
def valid_offers(draw: st.DrawFn) -> dict[str, Any]:
    retailer = draw(st.sampled_from(sorted(RETAILERS)))
    store = draw(st.sampled_from(["", *sorted(STORES[retailer])]))
    store_modes = ["in_store", "click_collect"]
    modes = draw(st.lists(st.sampled_from(store_modes), min_size=1, unique=True)) if store else ["delivery"]
    body = draw(_GTIN_BODIES)
    stamp = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=_OFFSETS))
    return {
        "retailer_id": retailer, "store_id": store, "gtin": body + str(check_digit(body)),
        "cents": draw(st.integers(min_value=0, max_value=10**12 - 1)),
        "currency": draw(st.sampled_from(["EUR", "USD", "GBP"])),
        "quantity": draw(st.integers(min_value=0, max_value=2**31 - 1)),
        "modes": modes, "updated_at": stamp,
    }


@PROPERTY
@given(offers=st.lists(valid_offers(), min_size=1, max_size=20), quote_all=st.booleans())
def test_valid_offer_rows_come_back_as_they_went_in(offers: list[dict[str, Any]], quote_all: bool) -> None:
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL, lineterminator="\n")
    for offer in offers:
        writer.writerow([offer["retailer_id"], offer["store_id"], offer["gtin"],
                         f"{offer['cents'] // 100}.{offer['cents'] % 100:02d}", offer["currency"], offer["quantity"],
                         "|".join(offer["modes"]), offer["updated_at"].isoformat()])
    rows = _read_kind("offers", text.getvalue().encode())
    assert [problem for _, _, problem in rows] == [None] * len(offers)
    for (line, values, _), offer, number in zip(rows, offers, range(2, len(offers) + 2), strict=True):
        assert line == number
        record = VALIDATE_OFFER(line, values)
        bits = sum(MODE_BITS[m] for m in offer["modes"])
        assert record[1:] == (offer["retailer_id"], offer["store_id"], offer["gtin"].zfill(14), offer["cents"],
                              offer["currency"], offer["quantity"], bits, epoch_us(offer["updated_at"]))


def test_the_round_trip_reads_time_as_utc_whatever_the_offset() -> None:
    paris = datetime(2024, 5, 1, 10, tzinfo=timezone(timedelta(hours=2)))
    assert epoch_us(paris) == epoch_us(datetime(2024, 5, 1, 8, tzinfo=UTC))


def test_a_header_the_parser_cannot_use_is_a_feed_error_not_a_crash() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "offers.csv"
        path.write_bytes(b"\xff\xfeprice\n")
        try:
            FeedReader(path, "offers").close()
        except FeedError as exc:
            assert str(path) in str(exc)
        else:
            raise AssertionError("a header without the offers columns was accepted")
