"""The demo catalog: retailers, stores, offers and a campaign, written as real feed files.

`nearcart demo` loads these through the same ingest path retailers use, so the demo
exercises everything. The files are deterministic: the same seed gives the same bytes
(one `random.Random(seed)`, sorted iteration, gzip without a timestamp), so tests and
benchmarks can compare runs.

Stores sit within 3 km of real French towns (GeoNames data through `geo.towns`), towns
drawn in proportion to their population. Retailers, streets and most products are made
up; every host is `*.example`, so nothing real is ever contacted. Product names are
plain French grocery and household items, except the SPEC's own example, Nutella 400 g.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from geo.distance import EARTH_RADIUS_KM, great_circle_km
from geo.towns import Town, french_towns

# Stores are placed at most this far from their town's centre (the check in tests uses 3 km).
MAX_OFFSET_KM = 2.9
_KM_PER_DEGREE = EARTH_RADIUS_KM * math.pi / 180
# Feeds are dated from here backwards, so reloading the demo never makes an offer "newer".
FEED_TIME = datetime(2025, 1, 15, 9, 0, tzinfo=timezone(timedelta(hours=1)))
NUTELLA = "3017620422003"


class DemoCatalog(NamedTuple):
    retailers: Path
    stores: Path
    offers: Path
    campaign: Path
    gtins: list[str]


@dataclass(frozen=True)
class DemoRetailer:
    retailer_id: str
    name: str
    host: str
    # Each real retailer builds basket links its own way; one style each.
    cart_path: str
    delivery_countries: str
    stores: int
    # Share of the products it sells, and its prices against the average.
    range_share: float
    price_factor: float
    store_modes: str
    online: bool
    store_id_format: str
    paris_only: bool = False

    @property
    def cart_url_template(self) -> str:
        return f"https://{self.host}{self.cart_path}"


RETAILERS: tuple[DemoRetailer, ...] = (
    DemoRetailer("hyper-soleil", "Hyper Soleil", "www.hyper-soleil.example",
                 "/panier/ajouter?ean={gtin}&magasin={store_id}&quantite={qty}",
                 "FR|BE", 260, 0.95, 1.00, "in_store|click_collect", True, "HS{n:04d}"),
    DemoRetailer("marche-plus", "Marché Plus", "www.marcheplus.example",
                 "/drive/{store_id}/cart/add/{gtin}/{qty}",
                 "FR", 420, 0.85, 1.04, "in_store|click_collect", True, "{dept}{n:03d}"),
    DemoRetailer("proxi-frais", "Proxi Frais", "www.proxifrais.example",
                 "/basket?items={gtin}:{qty}&shop={store_id}",
                 "FR", 560, 0.55, 1.12, "in_store", False, "PF-{n:05d}"),
    DemoRetailer("super-bocage", "Super Bocage", "www.superbocage.example",
                 "/courses/{store_id}/produit/{gtin}?qte={qty}",
                 "FR", 300, 0.75, 1.02, "in_store|click_collect", False, "sb{n}"),
    DemoRetailer("drive-express", "Drive Express", "shop.drive-express.example",
                 "/api/v2/cart?gtin={gtin}&qty={qty}&pickup={store_id}",
                 "FR", 240, 0.80, 0.98, "click_collect", False, "DX{dept}-{n:03d}"),
    DemoRetailer("epicerie-verte", "L'Épicerie Verte", "www.epicerie-verte.example",
                 "/ajout-panier?produit={gtin}&nb={qty}&boutique={store_id}",
                 "FR|BE|LU", 150, 0.45, 1.18, "in_store|click_collect", True, "EV{n:03d}"),
    DemoRetailer("maxi-discount", "Maxi Discount", "www.maxi-discount.example",
                 "/fr/add-to-basket/{gtin}?quantity={qty}&store={store_id}",
                 "FR|BE|LU|CH", 300, 0.60, 0.86, "in_store", False, "MD{n:04d}"),
    DemoRetailer("panier-parisien", "Le Panier Parisien", "www.panier-parisien.example",
                 "/p/{gtin}?add={qty}&depot={store_id}",
                 "FR", 60, 0.70, 1.15, "in_store|click_collect", True, "PP{n:02d}", paris_only=True),
    DemoRetailer("colis-malin", "Colis Malin", "www.colis-malin.example",
                 "/dp/{gtin}?qty={qty}",
                 "FR|BE|LU|CH|DE|ES|IT|NL", 0, 0.90, 1.06, "", True, ""),
)  # fmt: skip

# Le Panier Parisien delivers in Paris and the inner suburbs only (lon, lat, as GeoJSON says).
PARIS_ZONE: dict[str, Any] = {
    "type": "Polygon",
    "coordinates": [[
        [2.2241, 48.8530], [2.2450, 48.8156], [2.3010, 48.7960], [2.3700, 48.7930], [2.4380, 48.8110],
        [2.4700, 48.8380], [2.4800, 48.8700], [2.4500, 48.9050], [2.3900, 48.9300], [2.3200, 48.9350],
        [2.2600, 48.9150], [2.2241, 48.8530],
    ]],
}  # fmt: skip

# (name, typical price in euros). Generic own-label items: no real brand but the SPEC's example.
PRODUCTS: tuple[tuple[str, float], ...] = (
    ("Nutella 400 g", 3.49),
    ("Lait demi-écrémé UHT 1 L", 1.05), ("Lait entier bio 1 L", 1.45), ("Beurre doux 250 g", 2.39),
    ("Beurre demi-sel 250 g", 2.49), ("Crème fraîche épaisse 20 cl", 1.29), ("Yaourts nature x8", 1.89),
    ("Yaourts aux fruits x12", 3.15), ("Fromage blanc 0 % 500 g", 1.69), ("Camembert de Normandie 250 g", 2.79),
    ("Comté AOP 12 mois 200 g", 4.35), ("Emmental râpé 200 g", 1.99), ("Roquefort AOP 100 g", 2.95),
    ("Œufs de plein air x6", 2.19), ("Œufs bio x12", 4.59), ("Jambon blanc 4 tranches", 2.89),
    ("Saucisson sec 250 g", 3.99), ("Pâté de campagne 180 g", 1.59), ("Rillettes du Mans 220 g", 2.69),
    ("Baguette précuite x2", 1.19), ("Pain de mie complet 500 g", 1.75), ("Brioche tranchée 500 g", 2.25),
    ("Biscottes 300 g", 1.49), ("Croissants x6", 2.39), ("Céréales pétales de maïs 500 g", 2.09),
    ("Muesli aux fruits secs 750 g", 3.29), ("Flocons d'avoine 500 g", 1.39), ("Confiture de fraises 370 g", 2.35),
    ("Confiture d'abricots 370 g", 2.35), ("Miel de fleurs 500 g", 5.49), ("Pâte à tartiner noisettes 750 g", 4.29),
    ("Café moulu pur arabica 250 g", 2.99), ("Café en grains 1 kg", 11.90), ("Capsules espresso x10", 2.79),
    ("Thé vert à la menthe x25", 1.99), ("Chocolat en poudre 800 g", 3.79), ("Sucre en morceaux 1 kg", 1.45),
    ("Farine de blé T55 1 kg", 0.99), ("Levure boulangère 3 sachets", 0.95), ("Chocolat noir 70 % 100 g", 1.65),
    ("Chocolat au lait noisettes 200 g", 2.49), ("Biscuits petits beurre 200 g", 1.29),
    ("Madeleines pur beurre x12", 2.19), ("Palets bretons 125 g", 1.79), ("Spaghetti 500 g", 0.99),
    ("Coquillettes 1 kg", 1.49), ("Riz basmati 1 kg", 2.59), ("Riz long grain 1 kg", 1.69),
    ("Semoule de blé moyenne 1 kg", 1.59), ("Lentilles vertes du Puy 500 g", 2.89), ("Pois chiches 400 g", 0.89),
    ("Haricots verts extra-fins 400 g", 1.39), ("Petits pois carottes 400 g", 1.19), ("Maïs doux 300 g", 0.99),
    ("Tomates pelées 400 g", 0.85), ("Sauce tomate basilic 420 g", 1.59), ("Ratatouille cuisinée 750 g", 3.19),
    ("Cassoulet au confit de canard 840 g", 6.49), ("Thon entier au naturel 140 g", 2.29),
    ("Sardines à l'huile d'olive 135 g", 1.99), ("Maquereaux moutarde 169 g", 1.89),
    ("Huile d'olive vierge extra 1 L", 8.99),
    ("Huile de tournesol 1 L", 2.19), ("Vinaigre de vin rouge 50 cl", 0.99), ("Moutarde de Dijon 370 g", 1.49),
    ("Mayonnaise 235 g", 1.69), ("Ketchup 560 g", 2.09), ("Sel de Guérande 1 kg", 2.49),
    ("Poivre noir moulu 50 g", 1.89), ("Herbes de Provence 20 g", 1.29), ("Bouillon de volaille x10", 1.79),
    ("Soupe de légumes 1 L", 2.39), ("Chips nature 200 g", 1.75), ("Cacahuètes grillées 200 g", 1.69),
    ("Eau minérale naturelle 6 x 1,5 L", 2.99), ("Eau gazeuse 6 x 1 L", 3.39), ("Jus d'orange 100 % pur jus 1 L", 2.19),
    ("Jus de pomme 1 L", 1.79), ("Sirop de grenadine 75 cl", 2.29), ("Limonade 1,5 L", 1.39),
    ("Cola 1,5 L", 1.89), ("Bière blonde 6 x 25 cl", 4.29), ("Cidre brut de Normandie 75 cl", 3.19),
    ("Vin rouge Côtes du Rhône 75 cl", 5.90), ("Vin blanc Muscadet 75 cl", 5.49), ("Champagne brut 75 cl", 24.90),
    ("Pizza surgelée 4 fromages 400 g", 3.49), ("Épinards hachés surgelés 1 kg", 2.49), ("Frites surgelées 1 kg", 2.19),
    ("Glace vanille 1 L", 3.99), ("Filets de colin surgelés 400 g", 5.49), ("Compote de pommes x4", 1.99),
    ("Lessive liquide 2 L", 8.49), ("Adoucissant 1,5 L", 3.29), ("Liquide vaisselle 500 ml", 1.49),
    ("Tablettes lave-vaisselle x30", 6.99), ("Nettoyant multi-surfaces 750 ml", 2.59), ("Eau de Javel 1 L", 1.19),
    ("Éponges grattantes x4", 1.69), ("Sacs poubelle 30 L x25", 2.39), ("Essuie-tout x4", 3.49),
    ("Papier toilette x12", 4.99), ("Mouchoirs en boîte x100", 1.59), ("Gel douche 250 ml", 1.99),
    ("Shampooing cheveux normaux 250 ml", 2.49), ("Dentifrice menthe 75 ml", 1.79),
    ("Brosses à dents souples x2", 2.29),
    ("Savon de Marseille 300 g", 2.19), ("Déodorant bille 50 ml", 2.69), ("Coton-tiges x200", 1.29),
    ("Couches taille 4 x44", 12.90), ("Lingettes bébé x64", 2.19), ("Croquettes chat 2 kg", 7.99),
    ("Pâtée chien 1,2 kg", 3.49), ("Litière minérale 10 L", 4.49), ("Piles alcalines AA x8", 6.49),
    ("Ampoule LED E27 806 lm", 3.99), ("Allumettes x10 boîtes", 1.49), ("Bougies chauffe-plat x50", 3.29),
)  # fmt: skip

STREETS = (
    "rue de la République", "avenue Jean Jaurès", "rue Victor Hugo", "boulevard Gambetta", "place de la Mairie",
    "rue du Général de Gaulle", "avenue de la Gare", "rue Pasteur", "rue des Écoles", "route de Paris",
    "rue Nationale", "avenue du Maréchal Foch", "rue du Moulin", "rue de l'Église", "avenue de Verdun",
    "rue Carnot", "boulevard de la Liberté", "rue Jules Ferry", "chemin des Vignes", "zone commerciale du Bois",
)  # fmt: skip
DISTRICTS = ("Centre", "Gare", "Nord", "Sud", "Est", "Ouest", "Les Halles", "Hôtel de Ville", "Marché", "Faubourg")
# Share of in-range offers that are out of stock (quantity 0) or nearly so (1-3).
OUT_OF_STOCK = 0.04
LOW_STOCK = 0.08
# How many products a store of a given retailer stocks, as a share of that retailer's range.
STORE_SHARE = (0.35, 0.65)
# The campaign's products: the brand's own page lists these.
CAMPAIGN_PRODUCTS = 12


def write_demo_catalog(directory: Path, seed: int = 42) -> DemoCatalog:
    """Write retailers.jsonl, stores.csv, offers.csv.gz and campaign-demo.json into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    products = _products(rng)
    gtins = [gtin for gtin, _, _ in products]
    towns = french_towns(5000)
    stores = _stores(rng, towns)
    catalog = demo_catalog_in(directory, gtins)
    _write_bytes(catalog.retailers, b"".join(msgspec.json.encode(row) + b"\n" for row in _retailer_rows()))
    _write_bytes(catalog.stores, _csv(STORE_COLUMNS, stores))
    _write_bytes(catalog.offers, _gzip(_csv(OFFER_COLUMNS, _offers(rng, products, stores))))
    _write_bytes(catalog.campaign, msgspec.json.format(msgspec.json.encode(_campaign(products)), indent=2) + b"\n")
    return catalog


def demo_catalog_in(directory: Path, gtins: list[str]) -> DemoCatalog:
    """The files `write_demo_catalog` writes into `directory` (a demo restarting reuses them)."""
    return DemoCatalog(
        retailers=directory / "retailers.jsonl",
        stores=directory / "stores.csv",
        offers=directory / "offers.csv.gz",
        campaign=directory / "campaign-demo.json",
        gtins=gtins,
    )


def gtin13(body: str) -> str:
    """`body` (12 digits) with its GS1 check digit appended."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def _products(rng: random.Random) -> list[tuple[str, str, float]]:
    """(GTIN-13, name, typical price); French GS1 prefixes (300-379), unique codes."""
    seen = {NUTELLA}
    result = [(NUTELLA, PRODUCTS[0][0], PRODUCTS[0][1])]
    for name, price in PRODUCTS[1:]:
        while True:
            gtin = gtin13(f"{rng.randint(300, 379)}{rng.randrange(10**9):09d}")
            if gtin not in seen:
                break
        seen.add(gtin)
        result.append((gtin, name, price))
    return result


STORE_COLUMNS = ("retailer_id", "store_id", "name", "address", "postal_code", "city", "country", "lat", "lon")
OFFER_COLUMNS = ("retailer_id", "store_id", "gtin", "price", "currency", "quantity", "modes", "updated_at")


def _stores(rng: random.Random, towns: Sequence[Town]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    weights = [t.population for t in towns]
    paris = towns[0]
    near_paris = [t for t in towns if great_circle_km(t.lat, t.lon, paris.lat, paris.lon) < 12]
    for retailer in RETAILERS:
        if not retailer.stores:
            continue
        pool, pool_weights = (
            (near_paris, [t.population for t in near_paris]) if retailer.paris_only else (towns, weights)
        )
        names_used: dict[str, int] = {}
        for n, town in enumerate(rng.choices(pool, weights=pool_weights, k=retailer.stores), start=1):
            lat, lon = _offset(rng, town.lat, town.lon)
            dept = (town.postal_code or "00")[:2]
            store_id = retailer.store_id_format.format(n=n, dept=dept)
            count = names_used.get(town.name, 0)
            names_used[town.name] = count + 1
            suffix = "" if count == 0 else " " + (DISTRICTS[count - 1] if count <= len(DISTRICTS) else str(count + 1))
            address = f"{rng.randint(1, 180)} {rng.choice(STREETS)}"
            rows.append(
                (retailer.retailer_id, store_id, f"{retailer.name} {town.name}{suffix}", address,
                 town.postal_code or "", town.name, "FR", f"{lat:.6f}", f"{lon:.6f}")
            )  # fmt: skip
    return rows


def _offset(rng: random.Random, lat: float, lon: float) -> tuple[float, float]:
    """A point at most MAX_OFFSET_KM from (lat, lon), uniform over the disc."""
    distance = MAX_OFFSET_KM * math.sqrt(rng.random())
    bearing = rng.uniform(0, 2 * math.pi)
    dlat = distance * math.cos(bearing) / _KM_PER_DEGREE
    dlon = distance * math.sin(bearing) / (_KM_PER_DEGREE * math.cos(math.radians(lat)))
    return lat + dlat, lon + dlon


def _offers(
    rng: random.Random, products: Sequence[tuple[str, str, float]], stores: Sequence[tuple[str, ...]]
) -> Iterable[tuple[str, ...]]:
    by_retailer: dict[str, list[tuple[str, ...]]] = {}
    for store in stores:
        by_retailer.setdefault(store[0], []).append(store)
    hero = {gtin for gtin, _, _ in products[:CAMPAIGN_PRODUCTS]}
    for retailer in RETAILERS:
        # The campaign's products are in every range, so the demo brand page always finds offers.
        others = [p for p in products if p[0] not in hero]
        ranged = [p for p in products if p[0] in hero] + rng.sample(others, round(len(others) * retailer.range_share))
        ranged.sort(key=lambda p: p[0])
        for store in by_retailer.get(retailer.retailer_id, []):
            share = rng.uniform(*STORE_SHARE)
            for gtin, _, price in ranged:
                if gtin not in hero and rng.random() > share:
                    continue
                yield _offer_row(rng, retailer, store[1], gtin, price, retailer.store_modes)
        if retailer.online:
            for gtin, _, price in ranged:
                yield _offer_row(rng, retailer, "", gtin, price * 1.03, "delivery")


def _offer_row(
    rng: random.Random, retailer: DemoRetailer, store_id: str, gtin: str, price: float, modes: str
) -> tuple[str, ...]:
    amount = max(0.19, price * retailer.price_factor * rng.uniform(0.93, 1.08))
    # Shelf prices end in 5 or 9 cents.
    cents = int(amount * 10) * 10 + rng.choice((5, 9, 9))
    roll = rng.random()
    if roll < OUT_OF_STOCK:
        quantity = 0
    elif roll < OUT_OF_STOCK + LOW_STOCK:
        quantity = rng.randint(1, 3)
    else:
        quantity = rng.randint(4, 120) if store_id else rng.randint(50, 5000)
    updated = FEED_TIME - timedelta(minutes=rng.randrange(0, 3 * 24 * 60))
    return (retailer.retailer_id, store_id, gtin, f"{cents // 100}.{cents % 100:02d}", "EUR", str(quantity), modes,
            updated.isoformat())  # fmt: skip


def _retailer_rows() -> list[dict[str, Any]]:
    rows = []
    for retailer in RETAILERS:
        row: dict[str, Any] = {
            "retailer_id": retailer.retailer_id,
            "name": retailer.name,
            "logo_url": f"https://{retailer.host}/static/logo.svg",
            "cart_url_template": retailer.cart_url_template,
            "delivery_countries": retailer.delivery_countries,
        }
        if retailer.paris_only:
            row["delivery_zones"] = PARIS_ZONE
        rows.append(row)
    return rows


def _campaign(products: Sequence[tuple[str, str, float]]) -> dict[str, Any]:
    return {
        "id": "demo",
        "brand": "nearcart-demo",
        "locale": "fr",
        "products": [
            {"gtin": gtin, "label": name, "image_url": f"https://cdn.nearcart-demo.example/products/{gtin}.png"}
            for gtin, name, _ in products[:CAMPAIGN_PRODUCTS]
        ],
        "modes": ["in_store", "click_collect", "delivery"],
        "radius_km": 20,
        "retailers": {
            "include": [r.retailer_id for r in RETAILERS if r.retailer_id != "maxi-discount"],
            # The demo brand keeps its products out of discount stores.
            "exclude": ["maxi-discount"],
            "priority": ["hyper-soleil", "epicerie-verte"],
        },
        "theme": {"primary_color": "#7a3e1d", "font_family": "system-ui, sans-serif", "border_radius": 12},
        "allowed_origins": ["http://127.0.0.1:8000", "http://localhost:8000", "https://www.nearcart-demo.example"],
        "tracking": {"utm_source": "nearcart", "utm_medium": "where-to-buy", "utm_campaign": "demo"},
        "fallback_links": [
            {"label": "Colis Malin", "url": "https://www.colis-malin.example/search?q=nutella"},
            {"label": "Hyper Soleil en ligne", "url": "https://www.hyper-soleil.example/recherche?q=nutella"},
        ],
    }


def _csv(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _gzip(data: bytes) -> bytes:
    buffer = io.BytesIO()
    # mtime=0 and no file name in the header: the same rows give the same bytes.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=6, mtime=0) as gz:
        gz.write(data)
    return buffer.getvalue()


def _write_bytes(path: Path, data: bytes) -> None:
    # Write then rename: a demo started twice never reads a half-written feed.
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
