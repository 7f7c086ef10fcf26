"""Reads the Redis geo index: one pipelined round trip to one slot per offers query.

Each edge worker runs one `IndexReader`. A background task polls the live index
version and the directory version; the directory (store names, addresses,
retailers) is reloaded only when it changed, and always before a newer index
version is adopted, so every store number a query returns can be resolved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from cache.directory import Directory, RetailerEntry, StoreEntry, load_directory
from cache.index_live import IndexMissing
from cache.keys import Keys
from cache.redis_pipe import RedisPipe
from cache.tasks import stop_task

if TYPE_CHECKING:
    from cache.replicas import ReplicaSet

log = logging.getLogger("nearcart.index")


class Member(NamedTuple):
    """An index member resolved through the directory: its text names store, price, quantity and modes."""

    store: StoreEntry
    retailer: RetailerEntry
    price_cents: int
    currency: str
    quantity: int
    mode_bits: int


class DeliveryHit(NamedTuple):
    retailer: RetailerEntry
    price_cents: int
    currency: str
    quantity: int
    mode_bits: int


class IndexRows(NamedTuple):
    """An answer with its store offers as Redis gave them: [member, distance in km] rows, nearest first.

    The caller turns each member into what it lists and keeps that per member (`resolve` gives
    what a member stands for): a row costs no object here.
    """

    rows: list[list[bytes]]
    delivery: list[DeliveryHit]
    # True when Redis held `count` stores in the radius: there may be more beyond them.
    truncated: bool


class IndexReader:
    def __init__(
        self, redis: aioredis.Redis, keys: Keys, pipe: RedisPipe, refresh_s: float = 0.2, *,
        changes_client: Callable[[], aioredis.Redis] | None = None, replicas: ReplicaSet | None = None,
    ) -> None:
        self.redis = redis
        # The lean multiplexed path for every query; redis.asyncio reads the versions and the directory.
        self.pipe = pipe
        self.keys = keys
        self.refresh_s = refresh_s
        self.version: int | None = None
        self.directory = Directory.empty()
        # False while the last attempt to read Redis failed: "no index" then means "unknown".
        self.healthy = False
        # The change feed (`Keys.changes`): while it is followed, `changes_live` is True and each
        # GTIN's generation moves the moment its offers change, so answers cached under a stamp
        # (`stamp()`) can be kept long. `epoch` moves at each (re)subscription: what was cached
        # while the feed was not followed may have missed a change.
        self.changes_live = False
        self.epoch = 0
        self.generations: dict[str, int] = {}
        # Makes the change feed's connection to the primary (`RedisTopology.feed_client`, which follows
        # Sentinel); None: the feed is not followed.
        self.changes_client = changes_client
        # Read replicas (cache/replicas.py) may serve a query only if they hold every write the primary had
        # when this worker adopted its version or joined the feed (`settled_at`) and when it heard of the
        # GTIN's last change (`changed_at`); monotonic times.
        self.replicas = replicas
        self.settled_at = 0.0
        self.changed_at: dict[str, float] = {}
        # Currency codes as text, one string object per code (a handful exist).
        self._texts: dict[bytes, str] = {}
        self._task: asyncio.Task[None] | None = None
        self._changes_task: asyncio.Task[None] | None = None

    def stamp(self, gtin: str) -> tuple[int | None, int, int, int]:
        """What an answer about `gtin` was computed from; it is stale as soon as this differs."""
        return (self.version, self.directory.version, self.epoch, self.generations.get(gtin, 0))

    @property
    def ready(self) -> bool:
        return self.version is not None

    async def start(self) -> None:
        with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
            await self.refresh()
        with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
            # Connect the query pipe now: the first shopper should not wait for it (it retries by itself).
            await self.pipe.execute(("PING",))
        self._task = asyncio.create_task(self._refresh_forever(), name="nearcart-index-refresh")
        if self.replicas is not None:
            await self.replicas.start(self)
        if self.changes_client is not None:
            self._changes_task = asyncio.create_task(self._follow_changes(), name="nearcart-index-changes")

    async def stop(self) -> None:
        for task in (self._task, self._changes_task):
            if task:
                await stop_task(task)
        self._task = self._changes_task = None
        self.changes_live = False
        if self.replicas is not None:
            await self.replicas.stop()

    async def _follow_changes(self) -> None:
        assert self.changes_client is not None
        while True:
            # Its own connection, without the request path's short socket timeout: it mostly waits.
            client = self.changes_client()
            try:
                async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self.keys.changes)
                    self.epoch += 1
                    self.settled_at = time.monotonic()
                    self.changes_live = True
                    while True:
                        message = await pubsub.get_message(timeout=1.0)
                        if message is not None:
                            generations, changed_at, now = self.generations, self.changed_at, time.monotonic()
                            for gtin in message["data"].decode().split():
                                generations[gtin] = generations.get(gtin, 0) + 1
                                changed_at[gtin] = now
            except (TimeoutError, RedisError, OSError) as exc:
                log.debug("change feed lost: %s", exc)
            finally:
                self.changes_live = False
                await client.aclose()
            await asyncio.sleep(0.5)

    async def refresh(self) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.keys.version)
        pipe.get(self.keys.directory_version)
        try:
            raw_version, raw_dir_version = await pipe.execute()
            if int(raw_dir_version or 0) != self.directory.version:
                self.directory = await load_directory(self.redis, self.keys)
            version = int(raw_version) if raw_version is not None else None
            # A version is adopted only once its build marked it whole (cache/index_live.py).
            if version is not None and version != self.version and not await self.redis.exists(
                    self.keys.complete(version)):
                version = None
        except BaseException:
            self.healthy = False
            raise
        if version != self.version:
            self.settled_at = time.monotonic()
        self.version = version
        self.healthy = True

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await self.refresh()
            except (TimeoutError, RedisError, OSError) as exc:
                # Keep serving what we know; the offers route reports Redis trouble per request.
                log.debug("index refresh failed: %s", exc)

    async def query_rows(self, gtin: str, lat: float, lon: float, radius_km: float, count: int,
                         with_delivery: bool = True) -> IndexRows:
        """Store offers within `radius_km` nearest first (at most `count`), and every delivery offer of `gtin`.

        `with_delivery=False` leaves the delivery offers out (the caller already has them) and
        reads only the geo index.
        """
        version = self.version
        if version is None:
            return IndexRows([], [], False)
        search = (
            "GEOSEARCH", self.keys.store_offers(version, gtin), "FROMLONLAT", lon, lat,
            "BYRADIUS", radius_km, "km", "ASC", "COUNT", count, "WITHDIST",
        )
        delivery = ("HGETALL", self.keys.delivery_offers(version, gtin))
        if not with_delivery:
            (store_rows,) = await self._read(gtin, (search,))
            if not store_rows:
                await self._confirm(version)
            return IndexRows(store_rows, [], len(store_rows) >= count)
        store_rows, flat = await self._read(gtin, (search, delivery))
        if not store_rows and not flat:
            await self._confirm(version)
        return IndexRows(store_rows, self.decode_delivery(flat), len(store_rows) >= count)

    async def query_delivery(self, gtin: str) -> list[DeliveryHit]:
        """Only the delivery offers of `gtin`: for a shopper whose position is unknown."""
        version = self.version
        if version is None:
            return []
        (flat,) = await self._read(gtin, (("HGETALL", self.keys.delivery_offers(version, gtin)),))
        if not flat:
            await self._confirm(version)
        return self.decode_delivery(flat)

    async def _read(self, gtin: str, commands: tuple[tuple[Any, ...], ...]) -> list[Any]:
        """The replies to a query's commands: from a replica that holds what they need, or the primary."""
        replicas = self.replicas
        if replicas is None:
            return await self.pipe.execute(*commands)
        need = max(self.settled_at, self.changed_at.get(gtin, 0.0))
        return await replicas.execute(self.pipe, need, commands)

    async def _confirm(self, version: int) -> None:
        """An empty reply means "nothing here" only while `version` is still whole: else `IndexMissing`.

        Redis restarted empty (or a failover to a replica without the index) answers every query
        with nothing until the refresh notices; this one more round trip to the primary, for empty
        replies only, keeps those from becoming "sold nowhere" answers, or being cached as such (issue 14).
        """
        (whole,) = await self.pipe.execute(("EXISTS", self.keys.complete(version)))
        if not whole:
            if self.version == version:
                self.version = None
            raise IndexMissing(f"index version {version} is gone")

    def decode_delivery(self, flat: list[bytes]) -> list[DeliveryHit]:
        """A product's delivery offers from its hash as Redis sends it: field, value, field, value..."""
        delivery: list[DeliveryHit] = []
        retailers_get = self.directory.retailers.get
        for field, value in zip(flat[::2], flat[1::2], strict=True):
            seller = retailers_get(int(field))
            if seller is None:
                continue
            d_cents, d_currency, d_quantity, d_bits = value.split(b":")
            delivery.append(DeliveryHit(seller, int(d_cents), self._text(d_currency), int(d_quantity), int(d_bits)))
        return delivery

    def resolve(self, member: bytes) -> Member | None:
        """What an index member stands for, or None while the directory does not know its store yet."""
        num, cents, currency, quantity, bits = member.split(b":")
        store = self.directory.stores.get(int(num))
        retailer = self.directory.retailers.get(store.retailer_num) if store else None
        if store is None or retailer is None:
            return None
        return Member(store, retailer, int(cents), self._text(currency), int(quantity), int(bits))

    def _text(self, code: bytes) -> str:
        found = self._texts.get(code)
        if found is None:
            found = self._texts[code] = code.decode()
        return found
