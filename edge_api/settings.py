"""Every knob of nearcart, read once from `NEARCART_*` environment variables.

No other module reads `os.environ`: the CLI or the app's lifespan builds one
`Settings` and passes it down.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

PREFIX = "NEARCART_"


class SettingsError(ValueError):
    """A `NEARCART_*` variable holds a value nearcart cannot use."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    # Empty URL means "start the embedded server" (demo, tests on a bare machine).
    redis_url: str = ""
    # Read replicas of that Redis (comma separated URLs): the offers path reads the index there
    # (cache/replicas.py); everything that writes stays on the primary.
    redis_replica_urls: tuple[str, ...] = ()
    # Sentinels (comma separated host:port) and the name they watch the primary under: every primary
    # connection then asks them where the primary is, and follows a failover (cache/redis_topology.py).
    redis_sentinels: tuple[str, ...] = ()
    redis_sentinel_master: str = ""
    database_url: str = ""
    # Empty means the GeoLite2-City file shipped by the maxminddb-geolite2 package.
    geoip_db: str = ""
    secret: str = "dev-secret-change-me"
    # Still accepted when verifying click tokens, so a secret can be rotated without breaking links.
    previous_secret: str = ""
    jwt_secret: str = ""
    # Proxies whose X-Forwarded-For header is believed (CIDRs, comma separated).
    trusted_proxies: tuple[str, ...] = ()
    # Key prefix in Redis; tests give each run its own.
    redis_prefix: str = "nc:"
    data_dir: str = ".nearcart"
    # Public base URL of the API, used in signed click links; empty means "from the request".
    public_url: str = ""
    click_token_ttl_s: int = 7 * 24 * 3600
    redis_timeout_s: float = 0.05
    database_timeout_s: float = 2.0
    # Seconds an old index version stays readable after a rebuild swapped it out.
    index_grace_s: float = 3.0
    # Seconds between a worker's checks that a whole index is live; one worker rebuilds a missing one
    # (cache/index_healer.py). 0 turns the self-healing off.
    index_check_s: float = 1.0
    events_per_minute: int = 600
    # How long a cached offers answer serves: while the index change feed is followed (a stock
    # change retires the answers of its GTIN at once, a pushed campaign its own within seconds:
    # the lifetime is only a backstop), and while it is not.
    micro_cache_live_ttl_s: float = 300.0
    micro_cache_ttl_s: float = 0.5
    # Answers kept per worker (each about 10 KB; the front and the micro-cache share the bytes): a
    # worker's RSS is about 450 MB with 20,000, 590 MB with 40,000. Fewer on a small machine; more
    # where traffic spreads over more places and products than the benchmark's 30 towns.
    micro_cache_entries: int = 40_000
    # Each worker drains the event stream into PostgreSQL counts; off for a deployment that runs
    # one dedicated aggregator, and in tests that read the stream itself.
    aggregate_events: bool = True
    widget_dir: str = ""
    # Back office: a staff session ends after this many seconds without a request.
    session_idle_s: int = 1800
    # Back office: how long a retailer's invitation link stays usable (72 h).
    invite_ttl_s: int = 72 * 3600
    # Feed uploads (PUT /admin/v1/retailers/{id}/feeds/{kind} and the back office's form): the most
    # bytes one may send (as sent: gzip counts compressed), and the size above which it is loaded in
    # the background (202 and a run to poll) instead of before the answer.
    feed_upload_max_bytes: int = 512 * 1024 * 1024
    feed_upload_background_bytes: int = 4 * 1024 * 1024
    # Where uploads are spooled while they load; empty: the system's temporary directory.
    upload_dir: str = ""
    log_level: str = "info"
    # Data quality: an in-stock offer its feed has not updated for this long is unconfirmed (SPEC: 48 h).
    unconfirmed_after_s: int = 48 * 3600
    # /metrics reuses the stored quality figures for this long before reading PostgreSQL again.
    quality_cache_s: float = 10.0
    # Basket links sampled per retailer by `nearcart quality check`, each fetched within this many seconds.
    links_per_retailer: int = 10
    link_timeout_s: float = 5.0
    # `nearcart feeds pull`: a download's whole deadline, its size cap, and the pause between two
    # requests to the same retailer host (one at a time per host).
    feed_timeout_s: float = 300.0
    feed_max_bytes: int = 2 * 1024**3
    feed_host_delay_s: float = 2.0
    # Tests only: pulled feeds and checked basket links may be plain http on 127.0.0.1 (always https otherwise).
    allow_http_loopback: bool = False
    # On SIGTERM, seconds a worker keeps serving while /readyz says 503, before it stops listening and
    # finishes what is in flight (edge_api/draining.py). 0 where a preStop pause does it (Kubernetes).
    shutdown_drain_s: float = 0.0

    @property
    def effective_jwt_secret(self) -> str:
        return self.jwt_secret or self.secret


_FLOAT_FIELDS = {
    "redis_timeout_s", "database_timeout_s", "index_grace_s", "micro_cache_ttl_s", "micro_cache_live_ttl_s",
    "quality_cache_s", "link_timeout_s", "feed_timeout_s", "feed_host_delay_s", "index_check_s", "shutdown_drain_s",
}
_INT_FIELDS = {
    "click_token_ttl_s", "events_per_minute", "micro_cache_entries", "session_idle_s", "unconfirmed_after_s",
    "links_per_retailer", "feed_max_bytes", "invite_ttl_s", "feed_upload_max_bytes", "feed_upload_background_bytes",
}
_BOOL_FIELDS = {"aggregate_events", "allow_http_loopback"}
_LIST_FIELDS = {"trusted_proxies", "redis_replica_urls", "redis_sentinels"}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build `Settings` from `NEARCART_*` variables; `overrides` win (CLI options, tests)."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for field in Settings.__struct_fields__:
        raw = env.get(PREFIX + field.upper())
        if raw is None:
            continue
        values[field] = _parse(field, raw)
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = msgspec.convert(values, Settings)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"{PREFIX}{exc}") from exc
    for cidr in settings.trusted_proxies:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError as exc:
            raise SettingsError(f"{PREFIX}TRUSTED_PROXIES: {cidr!r} is not an IP network") from exc
    for address in settings.redis_sentinels:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise SettingsError(f"{PREFIX}REDIS_SENTINELS: {address!r} is not host:port")
    if bool(settings.redis_sentinels) != bool(settings.redis_sentinel_master):
        raise SettingsError(
            f"{PREFIX}REDIS_SENTINELS and {PREFIX}REDIS_SENTINEL_MASTER go together: the sentinels to ask, and"
            " the name they know the primary by"
        )
    # An offers answer (and the click links in it) may be served from the micro-cache for up to
    # micro_cache_live_ttl_s; its links must still work then, with a minute left to click.
    shortest = settings.micro_cache_live_ttl_s + 60
    if settings.click_token_ttl_s < shortest:
        raise SettingsError(
            f"{PREFIX}CLICK_TOKEN_TTL_S: {settings.click_token_ttl_s} s is too short, links would expire before"
            f" they are clicked: at least {shortest:.0f} s ({PREFIX}MICRO_CACHE_LIVE_TTL_S, how long an answer"
            " and its links may be served from cache, plus a minute to click)"
        )
    return settings


def _parse(field: str, raw: str) -> object:
    name = PREFIX + field.upper()
    try:
        if field in _FLOAT_FIELDS:
            return float(raw)
        if field in _INT_FIELDS:
            return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}: {raw!r} is not a number") from exc
    if field in _BOOL_FIELDS:
        if raw.strip().lower() in _TRUE | _FALSE:
            return raw.strip().lower() in _TRUE
        raise SettingsError(f"{name}: {raw!r} is not a yes/no value (1, 0, true, false)")
    if field in _LIST_FIELDS:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def data_path(settings: Settings) -> Path:
    path = Path(settings.data_dir).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
