"""Answers assembled from pre-encoded pieces are byte for byte what the schema's encoder gives."""

from __future__ import annotations

import msgspec

from cache.directory import RetailerEntry, StoreEntry
from cache.index_reader import Member
from cache.keys import UNCONFIRMED_BIT
from edge_api.offer_json import OfferPieces, StoreOffer, answer_json, append_store_offers, link_json
from edge_api.schemas import Location, Offer, OffersAnswer, Price, RetailerRef, StoreRef
from edge_api.tokens import click_url

AWKWARD = 'Chez "Zoé" \\ Ünïcødé 🛒 </script>'


def test_assembled_answer_equals_the_encoded_schema_even_with_characters_that_need_escaping() -> None:
    retailer = RetailerEntry(1, "r-1", AWKWARD, "https://cdn.example/logo.png?a=1&b=\"2\"",
                             "https://shop.example/{gtin}", ("FR",))
    store = StoreEntry(7, 1, 's"7', AWKWARD, "1 rue d'Ici\n2e étage", "75001", "Paris", "FR", 48.8566, 2.3522)
    base = 'http://host.example:8000"/'
    # The second one's feed has not confirmed it for too long: UNCONFIRMED_BIT among its mode bits.
    members = {b"7:5:EUR:40:3": Member(store, retailer, 5, "EUR", 40, 3),
               b"7:100000:CHF:4:10": Member(store, retailer, 100000, "CHF", 4, 2 | UNCONFIRMED_BIT)}
    pieces = OfferPieces(members.get)
    pieces.reset(3)
    parts: list[bytes] = []
    pieces.delivery_offer(parts, retailer, 1299, "EUR", 2, 4, link_json(base, "tok.en1"))
    pieces.delivery_offer(parts, retailer, 1399, "EUR", 9, 4 | UNCONFIRMED_BIT, link_json(base, "tok.en3"))
    url = link_json(base, "tok.en2")
    # Both modes asked, room for one: in store only.
    assert append_store_offers(parts, known(pieces, b"7:5:EUR:40:3"), 3, b"1.2346", url, 1) == 1
    click_collect_only = known(pieces, b"7:100000:CHF:4:10")
    assert append_store_offers(parts, click_collect_only, click_collect_only.mode_bits & 3, b"0.0000", url, 5) == 1
    location = Location(lat=48.85, lon=2.35, source="query", country="FR")
    body = answer_json("03017620422003", location, parts)

    ref = RetailerRef(id="r-1", name=AWKWARD, logo_url=retailer.logo_url)

    def store_ref(distance: float) -> StoreRef:
        return StoreRef(id='s"7', name=AWKWARD, address=store.address, postal_code="75001", city="Paris",
                        lat=48.8566, lon=2.3522, distance_km=distance)

    expected = OffersAnswer(gtin="03017620422003", location=location, offers=[  # 1.2346 km shows as 1.235
        Offer(retailer=ref, mode="delivery", store=None, price=Price(amount="12.99", currency="EUR"),
              availability="low_stock", url=click_url(base, "tok.en1")),
        Offer(retailer=ref, mode="delivery", store=None, price=Price(amount="13.99", currency="EUR"),
              availability="in_stock", unconfirmed=True, url=click_url(base, "tok.en3")),
        Offer(retailer=ref, mode="in_store", store=store_ref(1.235), price=Price(amount="0.05", currency="EUR"),
              availability="in_stock", url=click_url(base, "tok.en2")),
        Offer(retailer=ref, mode="click_collect", store=store_ref(0.0),
              price=Price(amount="1000.00", currency="CHF"), availability="in_stock", unconfirmed=True,
              url=click_url(base, "tok.en2")),
    ])
    assert body == msgspec.json.encode(expected)
    # Sent only when true: a confirmed offer's JSON has no such field.
    assert body.count(b'"unconfirmed":true') == 2 and b'"unconfirmed":false' not in body
    assert msgspec.json.decode(body, type=OffersAnswer) == expected


def known(pieces: OfferPieces, member: bytes) -> StoreOffer:
    offer = pieces.store_offers.get(member) or pieces.store_offer(member)
    assert offer is not None
    return offer


def test_pieces_of_an_older_directory_are_not_reused() -> None:
    directory: dict[bytes, Member] = {}  # stands for the index reader's current directory
    pieces = OfferPieces(directory.get)
    retailer = RetailerEntry(1, "r-1", "R", "", "https://shop.example/{gtin}", ())
    old = StoreEntry(7, 1, "s7", "Old name", "a", "75001", "Paris", "FR", 48.0, 2.0)
    new = StoreEntry(7, 1, "s7", "New name", "a", "75001", "Paris", "FR", 48.0, 2.0)

    def encoded(store: StoreEntry) -> bytes:
        out: list[bytes] = []
        append_store_offers(out, known(pieces, b"7:100:EUR:9:1"), 1, b"1.0", b'"u"', 1)
        return b"".join(out)

    directory[b"7:100:EUR:9:1"] = Member(old, retailer, 100, "EUR", 9, 1)
    pieces.reset(1)
    assert b"Old name" in encoded(old)
    directory[b"7:100:EUR:9:1"] = Member(new, retailer, 100, "EUR", 9, 1)
    pieces.reset(2)
    assert b"New name" in encoded(new)
    assert pieces.store_offer(b"8:100:EUR:9:1") is None  # a store the directory does not know yet
