"""Shoppers on a brand's page, for Locust: browse, open the widget, see offers near them, sometimes click.

    locust -f loadtest/locustfile.py --headless -u 200 -r 20 -t 5m --host https://api.example.com \\
        --campaign demo --max-p99-ms 50 --max-fail-ratio 0.001

Two kinds of visitor: a `PageVisitor` loads the page (campaign config, impression beacon)
and leaves; a `Shopper` opens the widget and asks for offers by IP, postal code or
position in a French town, and one in ten clicks through `/v1/go` (the redirect to the
retailer is checked, never followed off-host). Every answer is checked, not only its
status. The run exits non-zero when the whole run's p99 or failure ratio is over the
thresholds given. Shoppers come from French IPs in `X-Forwarded-For`: the API must
trust the load generator as a proxy (`NEARCART_TRUSTED_PROXIES`), else pass `--direct`
(no header; a "by IP" answer may then find no place).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import random
import time
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from locust import FastHttpUser, between, events, run_single_user, task
from locust.env import Environment

# Address blocks of large French access providers; each address drawn is kept only if GeoIP places it in France.
FRENCH_BLOCKS = ("90.0.0.0/9", "86.192.0.0/11", "88.160.0.0/11", "78.192.0.0/10", "82.64.0.0/14", "176.128.0.0/10")
IP_POOL = 300
TOWNS = 40
CLICK_SHARE = 0.1
# How shoppers give their place once the widget is open: no answer to the prompt (the API uses their IP),
# a typed postal code, or the browser's geolocation.
LOCATION_WEIGHTS = {"ip": 5, "postal_code": 3, "position": 2}

log = logging.getLogger("nearcart.loadtest")


def _add_arguments(parser: Any) -> None:
    parser.add_argument("--campaign", default="demo", help="campaign id the widget is configured with")
    parser.add_argument("--max-p99-ms", type=float, default=1000.0, help="SLO: p99 of all requests, in ms")
    parser.add_argument("--max-fail-ratio", type=float, default=0.01, help="SLO: share of failed requests")
    parser.add_argument("--direct", action="store_true",
                        help="the API does not trust this generator as a proxy: send no X-Forwarded-For and "
                             "accept answers by IP that found no place")


def _slo_gate(environment: Environment, **_kwargs: Any) -> None:
    """Exit status from the SLOs: 1 when p99 or the failure ratio is over its threshold, else 0."""
    options = environment.parsed_options
    total = environment.stats.total
    if options is None or total.num_requests == 0:
        log.error("SLO: no request was made")
        environment.process_exit_code = 1
        return
    p99 = total.get_response_time_percentile(0.99) or 0.0
    broken = []
    if total.fail_ratio > options.max_fail_ratio:
        broken.append(f"failure ratio {total.fail_ratio:.4f} > {options.max_fail_ratio}")
    if p99 > options.max_p99_ms:
        broken.append(f"p99 {p99:.1f} ms > {options.max_p99_ms} ms")
    for line in broken:
        log.error("SLO broken: %s", line)
    if not broken:
        log.info("SLO met: p99 %.1f ms, failure ratio %.4f over %d requests", p99, total.fail_ratio,
                 total.num_requests)
    environment.process_exit_code = 1 if broken else 0


def _prepare(**_kwargs: Any) -> None:
    # Built before the first user starts: done inside on_start, it would block gevent's loop for a
    # second and show up as latency on the other users' requests.
    french_ips()
    towns()


events.init.add_listener(_prepare)  # type: ignore[no-untyped-call]
events.init_command_line_parser.add_listener(_add_arguments)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_slo_gate)  # type: ignore[no-untyped-call]


@cache
def french_ips() -> tuple[str, ...]:
    """Public addresses that the API's own GeoIP database places in a French town."""
    from geo.geoip import GeoIP

    geoip = GeoIP()
    rng = random.Random(2024)
    blocks = [ipaddress.ip_network(block) for block in FRENCH_BLOCKS]
    found: list[str] = []
    for _ in range(IP_POOL * 20):
        block = rng.choice(blocks)
        address = str(block[rng.randrange(block.num_addresses)])
        place = geoip.lookup(address)
        if place is not None and place.country == "FR" and place.city:
            found.append(address)
            if len(found) >= IP_POOL:
                break
    if not found:
        raise RuntimeError("no French address found in the GeoIP database")
    return tuple(found)


@cache
def towns() -> tuple[tuple[float, float, str, int], ...]:
    """(lat, lon, postal code, population) of the largest French towns."""
    from geo.towns import french_towns

    return tuple((t.lat, t.lon, t.postal_code, t.population) for t in french_towns(15000)[:TOWNS] if t.postal_code)


class Visitor(FastHttpUser):
    abstract = True
    wait_time = between(1, 5)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.campaign = options.campaign if options else "demo"
        self.direct = bool(options and options.direct)
        # One shopper, one address: the events rate limit counts per network, as in real traffic.
        self.headers = {} if self.direct else {"X-Forwarded-For": random.choice(french_ips())}
        self.gtins = self.campaign_products()

    def campaign_products(self) -> list[str]:
        with self.client.get(f"/v1/campaigns/{self.campaign}", headers=self.headers, name="/v1/campaigns/[id]",
                             catch_response=True) as answer:
            products = _json(answer).get("products") if answer.status_code == 200 else None
            if not products:
                answer.failure(f"campaign without products ({answer.status_code})")
                return []
            return [product["gtin"] for product in products]

    def beacon(self, *kinds: str, gtin: str, **extra: object) -> None:
        now = int(time.time() * 1000)  # milliseconds, like the widget's Date.now()
        body = [{"type": kind, "campaign": self.campaign, "gtin": gtin, "ts": now, **extra} for kind in kinds]
        with self.client.post("/v1/events", data=json.dumps(body), headers={**self.headers,
                              "Content-Type": "text/plain"}, name=f"/v1/events [{kinds[0]}]",
                              catch_response=True) as answer:
            if answer.status_code != 204:
                answer.failure(f"beacon answered {answer.status_code}")


class PageVisitor(Visitor):
    """Sees the buy button and goes on reading: most of a brand page's traffic."""

    weight = 3

    @task
    def view_page(self) -> None:
        if self.gtins:
            self.beacon("impression", gtin=random.choice(self.gtins))


class Shopper(Visitor):
    """Opens the widget, looks at offers near them, one in ten goes to a retailer's basket."""

    weight = 2

    @task
    def find_where_to_buy(self) -> None:
        if not self.gtins:
            return
        gtin = random.choice(self.gtins)
        self.beacon("impression", "open", gtin=gtin)
        how = random.choices(list(LOCATION_WEIGHTS), weights=list(LOCATION_WEIGHTS.values()))[0]
        offers = self.offers(gtin, how)
        if offers is None:
            return
        shown: dict[tuple[str, str], int] = {}
        for offer in offers:
            key = (offer["retailer"]["id"], offer["mode"])
            shown[key] = shown.get(key, 0) + 1
        self.beacon("search", gtin=gtin, shown=[[retailer, mode, n] for (retailer, mode), n in shown.items()])
        if offers and random.random() < CLICK_SHARE:
            offer = random.choice(offers)
            self.go(offer["url"])  # the server counts the click itself

    def offers(self, gtin: str, how: str) -> list[dict[str, Any]] | None:
        params: dict[str, str] = {"gtin": gtin, "campaign": self.campaign}
        lat, lon, postal_code, _ = random.choices(towns(), weights=[t[3] for t in towns()])[0]
        if how == "postal_code":
            params.update(postal_code=postal_code, country="FR")
        elif how == "position":
            # The widget rounds the browser's position to 0.01 degree before sending it.
            params.update(lat=f"{lat + random.gauss(0, 0.03):.2f}", lon=f"{lon + random.gauss(0, 0.04):.2f}")
        with self.client.get("/v1/offers", params=params, headers=self.headers, name=f"/v1/offers [{how}]",
                             catch_response=True) as answer:
            if answer.status_code != 200:
                answer.failure(f"status {answer.status_code}: {(answer.text or '')[:200]}")
                return None
            body = _json(answer)
            expected = {"ip": ("ip", "none") if self.direct else ("ip",), "postal_code": ("postal_code",),
                        "position": ("query",)}[how]
            source = body.get("location", {}).get("source")
            offers = body.get("offers")
            if source not in expected:
                answer.failure(f"located by {source!r}, expected {' or '.join(expected)}")
                return None
            if not isinstance(offers, list) or any("/v1/go/" not in offer.get("url", "") for offer in offers):
                answer.failure("offers missing or without a click link")
                return None
            return offers

    def go(self, url: str) -> None:
        path = urlsplit(url).path
        with self.client.get(path, headers=self.headers, name="/v1/go/[token]", allow_redirects=False,
                             catch_response=True) as answer:
            target = answer.headers.get("Location", "") if answer.headers else ""
            if answer.status_code != 302:
                answer.failure(f"click answered {answer.status_code}, not a redirect")
            elif not target.startswith("https://") or urlsplit(target).hostname in (None, "127.0.0.1", "localhost"):
                answer.failure(f"click redirected to {target!r}, not a retailer's basket")


def _json(answer: Any) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


if __name__ == "__main__":
    run_single_user(Shopper)
