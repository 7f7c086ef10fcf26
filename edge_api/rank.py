"""Which offers an answer lists, in which order, as JSON pieces: the offers route's inner loop.

Given the index's rows for one product near the shopper, a campaign's retailer rules and
the modes asked for, `Ranker.rank` picks delivery offers (cheapest first, at most half the list)
and store offers (nearest first), pins a campaign's priority retailers ahead within each
group, signs each kept offer's click link (once a minute per product and store, shared by
every shopper) and appends the offers' pre-encoded JSON pieces for `answer_json` to join.
It runs once per computed answer and touches every row Redis returned, so it is written
for speed: no object per row beyond what the rows already are.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from cache.directory import RetailerEntry
from cache.index_reader import IndexRows
from cache.keys import MODE_BITS
from edge_api.offer_json import OfferPieces, StoreOffer, append_store_offers, link_json
from edge_api.schemas import Campaign, Location
from edge_api.settings import Settings
from edge_api.tokens import ClickTarget, sign_click

# Signed click links kept per worker, about this many in all (some 35 MB): see `SignedLinks`.
SIGNED_LINKS_KEPT = 100_000
_LinkGroupKey = tuple[str, str, str, str, int]
# (retailer, store, price in cents, currency): a price change within the minute signs a new link.
LinkKey = tuple[str, str, int, str]


class SignedLinks:
    """Signed click links (JSON strings) in groups by (base URL, secret, GTIN, campaign, minute), then by
    (retailer, store).

    A link depends on no position, so shoppers anywhere reuse it for its minute. Least recently
    used groups go first, one at a time: groups of past minutes age out without a stall, a hot
    product keeps its links.
    """

    __slots__ = ("groups", "count", "kept")

    def __init__(self, kept: int = SIGNED_LINKS_KEPT) -> None:
        self.groups: OrderedDict[_LinkGroupKey, dict[LinkKey, bytes]] = OrderedDict()
        # Links in all groups: `sign` counts them in, dropping a group counts them out.
        self.count = 0
        self.kept = kept

    def group(self, key: _LinkGroupKey) -> dict[LinkKey, bytes]:
        """This request's signed links by `LinkKey`: shared by requests for the same product and minute."""
        groups = self.groups
        links = groups.get(key)
        if links is None:
            links = groups[key] = {}
        else:
            groups.move_to_end(key)
        while self.count >= self.kept and len(groups) > 1:
            self.count -= len(groups.popitem(last=False)[1])
        return links

    def sign(self, settings: Settings, base_url: str, target: ClickTarget) -> bytes:
        self.count += 1
        return link_json(base_url, sign_click(settings, target))


class Ranker:
    """Ranks offers for one worker, with what it keeps from one answer to the next.

    It owns the encoded pieces of stores and retailers (`pieces`), the signed links
    (`links`) and each campaign's worked-out retailer rules.
    """

    def __init__(self, settings: Settings, pieces: OfferPieces) -> None:
        self.settings = settings
        self.pieces = pieces
        self.links = SignedLinks()
        # Rules of the campaigns in use, by the identity of the campaign object (the campaign store keeps
        # one per ETag; a pushed campaign is a new object, so new rules).
        self._rules: dict[int, _CampaignRules] = {}
        self._no_campaign = _CampaignRules(None)

    def follow(self, directory_version: int) -> None:
        """Drop the pieces encoded under another version of the directory."""
        self.pieces.reset(directory_version)

    def rank(
        self, answer: IndexRows, location: Location, limit: int, modes: int, campaign: Campaign | None,
        zones: Callable[[float, float], frozenset[str]], base_url: str, gtin: str,
    ) -> tuple[list[bytes], bool]:
        """Delivery offers first (at most half the list, cheapest first), then store offers nearest first.

        A campaign's `retailers.priority` pins its retailers ahead of the others within each group.
        Offers are chosen first and encoded (and their links signed) only once kept, as pieces for
        `answer_json` to join (commas included). The flag says whether the store hits ran out
        before the list was full: with a truncated answer, the caller must then ask Redis for more.
        """
        rules = self._rules_of(campaign)
        place_of, campaign_id = rules.place, rules.campaign_id
        settings, pieces, signed = self.settings, self.pieces, self.links
        # Minute granularity: links of one product near one place are signed once a minute, not per request.
        issued_at = int(time.time()) // 60 * 60
        links = signed.group((base_url, settings.secret, gtin, campaign_id, issued_at))

        def link(key: LinkKey) -> bytes:
            """Sign a link not signed yet this minute (kept under the store offer's own key tuple)."""
            target = ClickTarget(key[0], key[1], gtin, campaign_id, issued_at, key[2], key[3])
            url = links[key] = signed.sign(settings, base_url, target)
            return url

        listed: list[bytes] = []
        delivered = 0
        if modes & DELIVERY_BIT and answer.delivery:
            inside: frozenset[str] = frozenset()
            if location.lat is not None and location.lon is not None and any(h.retailer.delivery_zones
                                                                              for h in answer.delivery):
                inside = zones(location.lat, location.lon)
            online = [(place, hit) for hit in answer.delivery
                      if (place := place_of(hit.retailer)) is not None and _delivers(hit.retailer, location, inside)]
            online.sort(key=lambda item: (item[0], item[1].price_cents))
            for _, seller in online[: max(1, limit // 2)]:
                key = (seller.retailer.retailer_id, "", seller.price_cents, seller.currency)
                pieces.delivery_offer(listed, seller.retailer, seller.price_cents, seller.currency, seller.quantity,
                                      seller.mode_bits, links.get(key) or link(key))
                delivered += 1

        wanted = limit - delivered
        found = _list_store_offers(listed, answer.rows, pieces, rules, modes & (IN_STORE_BIT | CLICK_COLLECT_BIT),
                                   wanted, links, link)
        return listed, found < wanted

    def _rules_of(self, campaign: Campaign | None) -> _CampaignRules:
        if campaign is None:
            return self._no_campaign
        kept = self._rules
        rules = kept.get(id(campaign))
        if rules is None or rules.campaign is not campaign:
            if len(kept) >= 1_000:
                kept.clear()
            rules = kept[id(campaign)] = _CampaignRules(campaign)
        return rules


def _list_store_offers(listed: list[bytes], rows: list[list[bytes]], pieces: OfferPieces, rules: _CampaignRules,
                       store_bits: int, wanted: int, links: dict[LinkKey, bytes],
                       link: Callable[[LinkKey], bytes]) -> int:
    """Append up to `wanted` store offers from Redis' rows; how many the rows held (up to `wanted` if unpinned).

    Stores by place (priority retailers first, in their order), nearest first within each: Redis
    gave them nearest first, so filling the groups in that order needs no sort.
    """
    places, pinned = rules.places, rules.pinned
    groups: list[list[tuple[StoreOffer, bytes]]] = [[] for _ in range(pinned + 1)]
    found = 0
    kept_offers = pieces.store_offers
    for member, distance in rows:
        offer = kept_offers.get(member) or pieces.store_offer(member)
        if offer is None:
            continue
        bits = offer.mode_bits & store_bits
        if not bits:
            continue
        place = places.get(offer.retailer_id, _UNPLACED)
        if place == _UNPLACED:
            place = rules.place(offer.retailer)
        if place is None:
            continue
        groups[place].append((offer, distance))
        found += 2 if bits == IN_STORE_BIT | CLICK_COLLECT_BIT else 1
        if not pinned and found >= wanted:
            break  # without pinned retailers Redis' nearest-first order is final
    kept = 0
    for group in groups:
        for offer, distance in group:
            if kept >= wanted:
                break
            url = links.get(offer.link_key) or link(offer.link_key)  # both modes of one store share it
            kept += append_store_offers(listed, offer, offer.mode_bits & store_bits, distance, url, wanted - kept)
    return found


_UNPLACED = -1


class _CampaignRules:
    """A campaign's retailer rules, and each retailer's place under them, worked out once per retailer."""

    __slots__ = ("campaign", "campaign_id", "include", "exclude", "priority", "pinned", "places")

    def __init__(self, campaign: Campaign | None) -> None:
        self.campaign = campaign
        self.campaign_id = campaign.id if campaign else ""
        self.include = frozenset(campaign.retailers.include) if campaign else frozenset()
        self.exclude = frozenset(campaign.retailers.exclude) if campaign else frozenset()
        self.priority = {rid: i for i, rid in enumerate(campaign.retailers.priority)} if campaign else {}
        self.pinned = len(self.priority)
        # retailer id -> its place (priority rank, `pinned` for the rest) or None when left out.
        self.places: dict[str, int | None] = {}

    def place(self, retailer: RetailerEntry) -> int | None:
        rid = retailer.retailer_id
        found = self.places.get(rid, _UNPLACED)
        if found == _UNPLACED:
            allowed = (not self.include or rid in self.include) and rid not in self.exclude
            found = self.places[rid] = self.priority.get(rid, self.pinned) if allowed else None
        return found


IN_STORE_BIT, CLICK_COLLECT_BIT, DELIVERY_BIT = MODE_BITS["in_store"], MODE_BITS["click_collect"], MODE_BITS["delivery"]


def _delivers(retailer: RetailerEntry, location: Location, inside_zones: frozenset[str]) -> bool:
    if retailer.delivery_zones:
        return retailer.retailer_id in inside_zones
    # Nothing tells the shopper's country: show online offers rather than hide them all.
    return location.country is None or location.country in retailer.delivery_countries
