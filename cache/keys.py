"""Every Redis key nearcart uses, in one place.

Layout (``P`` is the configured prefix, ``nc:`` by default; ``V`` an index version):

``P index:version``         string, the live index version (absent: no index yet)
``P index:seq``             counter handing out new versions to `nearcart index build`
``P index:events``          pub/sub channel: a new version number each time one goes live
``P index:changes``         pub/sub channel: GTINs (space separated) whose offers just changed
``P index:complete:V``      msgpack `IndexMarker` (version, counts): version V was written whole; a reader
                            serves V only while this is present (cache/index_live.py)
``P index:rebuild``         lock (SET NX PX, a random token) held by the one worker rebuilding a
                            missing index (cache/index_healer.py)
``P index:generation``      the write generation the offer keys hold: every change up to it is in
                            (cache/index_generation.py; PostgreSQL says which one they should hold)
``P iV:{GTIN}:s``           GEO set of in-stock store offers of one GTIN; member
                            ``"<store num>:<price cents>:<currency>:<quantity>:<mode bits>"``
``P iV:{GTIN}:d``           hash of in-stock delivery offers of one GTIN; field retailer num,
                            value ``"<price cents>:<currency>:<quantity>:<mode bits>"``; in both,
                            `UNCONFIRMED_BIT` among the mode bits flags an offer its feed has not
                            confirmed for too long (cache/unconfirmed.py)
``P {dir}:stores``          hash store num -> msgpack StoreEntry (the store directory)
``P {dir}:retailers``       hash retailer num -> msgpack RetailerEntry
``P {dir}:version``         counter bumped whenever the directory changes (the three share a
                            slot so a refresh swaps them in one MULTI); started from the clock
                            in ms, not 1, so a Redis restarted empty never hands out a number
                            a worker already saw
``P {dir}:generation``      the write generation of the catalog the directory was copied from
``P events``                stream of click and widget events (truncated IPs, no identifier)
``P rl:{bucket}``           rate-limit counters

Both keys one offers query reads carry the GTIN as hash tag, so they share a slot
on Redis Cluster and a query is one pipelined round trip to one node. The offer's
price, quantity and modes ride in the GEO member itself: one GEOSEARCH WITHDIST
returns everything but the store's name and address, which every edge worker
keeps in memory from the directory (a few MB for 100k stores).
"""

from __future__ import annotations

from dataclasses import dataclass

# Redis geo sets hold points within this latitude (Web Mercator's edge): GEOADD refuses a store beyond
# it and GEOSEARCH a centre beyond it, so no store offer exists there (cache/row_rules.py, edge_api/offers.py).
MAX_GEO_LAT = 85.05112878
MODE_BITS = {"in_store": 1, "click_collect": 2, "delivery": 4}
MODE_NAMES = tuple(MODE_BITS)
# Not a mode: set beside the mode bits of an index member whose offer is shown as unconfirmed, so the
# offers path learns it from the number it decodes anyway (no timestamp, no extra field).
UNCONFIRMED_BIT = 8


def modes_to_bits(modes: list[str] | tuple[str, ...]) -> int:
    bits = 0
    for mode in modes:
        bits |= MODE_BITS[mode]
    return bits


def bits_to_modes(bits: int) -> tuple[str, ...]:
    return tuple(name for name, bit in MODE_BITS.items() if bits & bit)


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "nc:"

    @property
    def version(self) -> str:
        return f"{self.prefix}index:version"

    @property
    def seq(self) -> str:
        return f"{self.prefix}index:seq"

    @property
    def channel(self) -> str:
        return f"{self.prefix}index:events"

    @property
    def changes(self) -> str:
        return f"{self.prefix}index:changes"

    def complete(self, version: int) -> str:
        return f"{self.prefix}index:complete:{version}"

    @property
    def rebuild_lock(self) -> str:
        return f"{self.prefix}index:rebuild"

    @property
    def generation(self) -> str:
        return f"{self.prefix}index:generation"

    def store_offers(self, version: int, gtin: str) -> str:
        return f"{self.prefix}i{version}:{{{gtin}}}:s"

    def delivery_offers(self, version: int, gtin: str) -> str:
        return f"{self.prefix}i{version}:{{{gtin}}}:d"

    def version_pattern(self, version: int) -> str:
        return f"{self.prefix}i{version}:*"

    @property
    def stores(self) -> str:
        return f"{self.prefix}{{dir}}:stores"

    @property
    def retailers(self) -> str:
        return f"{self.prefix}{{dir}}:retailers"

    @property
    def directory_version(self) -> str:
        return f"{self.prefix}{{dir}}:version"

    @property
    def directory_generation(self) -> str:
        return f"{self.prefix}{{dir}}:generation"

    def staging(self, key: str) -> str:
        """Where a key is rebuilt before a RENAME swaps it in (same hash tag, same slot)."""
        return f"{key}:next"

    @property
    def events(self) -> str:
        return f"{self.prefix}events"

    def rate_limit(self, bucket: str) -> str:
        return f"{self.prefix}rl:{{{bucket}}}"


def store_member(store_num: int, price_cents: int, currency: str, quantity: int, mode_bits: int) -> str:
    """A store offer's GEO member; `mode_bits` may carry `UNCONFIRMED_BIT`."""
    return f"{store_num}:{price_cents}:{currency}:{quantity}:{mode_bits}"


def delivery_value(price_cents: int, currency: str, quantity: int, mode_bits: int) -> str:
    return f"{price_cents}:{currency}:{quantity}:{mode_bits}"
