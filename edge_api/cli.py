"""The `nearcart` command: one entry point for demo, serving, migrations, feeds, index and campaigns.

Each sub-command parses settings once and hands them to the module that does the
work; heavy imports stay inside the commands so `nearcart --help` is instant.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import uvloop

from cache.feed_kinds import FORMAT_NAMES
from edge_api.settings import Settings, SettingsError, data_path, load_settings


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc


@contextlib.contextmanager
def services_for(settings: Settings) -> Iterator[Settings]:
    """Settings whose Redis/PostgreSQL URLs point at real servers, starting embedded ones for unset URLs."""
    if settings.redis_url and settings.database_url:
        yield settings
        return
    from cache.embedded import embedded_services

    root = data_path(settings)
    with embedded_services(
        root, need_redis=not settings.redis_url, need_postgres=not settings.database_url
    ) as (redis_url, database_url):
        import msgspec

        yield msgspec.structs.replace(
            settings,
            redis_url=settings.redis_url or str(redis_url),
            database_url=settings.database_url or str(database_url),
        )


@click.group()
def main() -> None:
    """nearcart: where to buy, near the shopper."""


@main.group()
def db() -> None:
    """The PostgreSQL catalog."""


@db.command("migrate")
def db_migrate() -> None:
    """Create or upgrade the PostgreSQL schema."""
    import asyncpg

    from cache import db as catalog_db

    settings = _settings()
    if not settings.database_url:
        raise click.UsageError("NEARCART_DATABASE_URL is not set")

    async def run() -> list[str]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return await catalog_db.migrate(conn)
        finally:
            await conn.close()

    applied = asyncio.run(run())
    click.echo("applied: " + ", ".join(applied) if applied else "schema is up to date")


@main.command()
@click.argument("kind", type=click.Choice(["retailers", "stores", "offers", "products"]))
@click.argument("files", nargs=-1, required=True)
@click.option("--retailer", metavar="ID", help="Whose feed this is (files that name no retailer need it).")
@click.option("--format", "fmt", type=click.Choice(FORMAT_NAMES), help="Read as this format instead of detecting it.")
def ingest(kind: str, files: tuple[str, ...], retailer: str | None, fmt: str | None) -> None:
    """Load a feed into PostgreSQL and apply it to the index.

    nearcart's CSV or JSON Lines, Google local inventory (TSV, XML), Google product feed (products:
    item id -> GTIN), Business Profile store sheet, French Excel CSV; detected from content, .gz accepted.
    """
    from cache.formats.base import FeedOptions
    from edge_api.commands.ingest import run_ingest_command

    settings = _settings()
    if not (settings.redis_url and settings.database_url):
        raise click.UsageError("NEARCART_REDIS_URL and NEARCART_DATABASE_URL must be set")
    options = FeedOptions(format=fmt, retailer=retailer)
    # uvloop: ingest shuttles millions of rows between PostgreSQL and Redis sockets.
    sys.exit(uvloop.run(run_ingest_command(settings, kind, [Path(f) for f in files], options)))


@main.group()
def index() -> None:
    """The Redis geo index."""


@index.command("build")
def index_build() -> None:
    """Rebuild the whole Redis index from PostgreSQL and swap it in atomically."""
    from edge_api.commands.index import run_build_command

    settings = _settings()
    if not (settings.redis_url and settings.database_url):
        raise click.UsageError("NEARCART_REDIS_URL and NEARCART_DATABASE_URL must be set")
    uvloop.run(run_build_command(settings))


@main.group()
def feeds() -> None:
    """Feeds nearcart fetches from retailers' https URLs."""


def _services_settings() -> Settings:
    settings = _settings()
    if not (settings.redis_url and settings.database_url):
        raise click.UsageError("NEARCART_REDIS_URL and NEARCART_DATABASE_URL must be set")
    return settings


@feeds.command("pull")
def feeds_pull() -> None:
    """Fetch the feeds that are due (conditional GET, capped, one request at a time per host) and ingest
    those that changed. Exit 0 all fine, 3 some rows rejected, 1 a feed could not be fetched or read."""
    from edge_api.commands.feeds import run_pull_command

    sys.exit(uvloop.run(run_pull_command(_services_settings())))


@feeds.command("set")
@click.argument("retailer")
@click.argument("kind", type=click.Choice(["stores", "offers", "products"]))
@click.argument("url")
@click.option("--every", "interval_s", default=3600, show_default=True, type=int, help="Seconds between two pulls.")
def feeds_set(retailer: str, kind: str, url: str, interval_s: int) -> None:
    """Pull RETAILER's KIND feed from URL (https) from now on."""
    from edge_api.commands.feeds import run_set_command

    sys.exit(asyncio.run(run_set_command(_database_settings(), retailer, kind, url, interval_s)))


@main.group()
def quality() -> None:
    """Data quality per retailer (SPEC "Data quality")."""


@quality.command("check")
def quality_check() -> None:
    """Compute every retailer's figures (feed age, unconfirmed offers, rejected rows, price outliers,
    basket links, approximate stores), store them for /metrics and the back office, print them."""
    from edge_api.commands.quality import run_quality_command

    sys.exit(uvloop.run(run_quality_command(_services_settings())))


@main.group()
def campaign() -> None:
    """Campaign JSON files."""


@campaign.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
def campaign_validate(file: str) -> None:
    """Check a campaign JSON; name each error by its JSON path."""
    from edge_api.commands.campaign import run_validate_command

    sys.exit(run_validate_command(Path(file)))


@campaign.command("push")
@click.argument("file", type=click.Path(dir_okay=False))
def campaign_push(file: str) -> None:
    """Validate and store a campaign JSON in PostgreSQL."""
    from edge_api.commands.campaign import run_push_command

    settings = _settings()
    if not settings.database_url:
        raise click.UsageError("NEARCART_DATABASE_URL is not set")
    sys.exit(asyncio.run(run_push_command(settings, Path(file))))


@main.group()
def events() -> None:
    """The event stream and the statistics made from it."""


@events.command("aggregate")
def events_aggregate() -> None:
    """Count the event stream into PostgreSQL statistics until SIGTERM (beside or instead of the workers').

    Run one or several (they share the stream; each event is counted once). Set
    NEARCART_AGGREGATE_EVENTS=0 on the API workers when this process does the counting.
    """
    import logging

    from backoffice.aggregator import run_aggregator

    settings = _settings()
    if not (settings.redis_url and settings.database_url):
        raise click.UsageError("NEARCART_REDIS_URL and NEARCART_DATABASE_URL must be set")
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    uvloop.run(run_aggregator(settings))


@main.group()
def users() -> None:
    """People who log in to the back office (/admin/)."""


def _database_settings() -> Settings:
    settings = _settings()
    if not settings.database_url:
        raise click.UsageError("NEARCART_DATABASE_URL is not set")
    return settings


@users.command("add")
@click.argument("email")
@click.option("--role", required=True, help="admin, brand:<id> or retailer:<id>")
def users_add(email: str, role: str) -> None:
    """Add a person; the password comes from stdin when it is not a terminal, else it is asked twice."""
    from backoffice.commands import run_add

    sys.exit(asyncio.run(run_add(_database_settings(), email, role)))


@users.command("passwd")
@click.argument("email")
def users_passwd(email: str) -> None:
    """Change a person's password (stdin or prompt, as for `add`); their open sessions end."""
    from backoffice.commands import run_passwd

    sys.exit(asyncio.run(run_passwd(_database_settings(), email)))


@users.command("remove")
@click.argument("email")
def users_remove(email: str) -> None:
    """Remove a person; their open sessions end."""
    from backoffice.commands import run_remove

    sys.exit(asyncio.run(run_remove(_database_settings(), email)))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int)
def serve(host: str, port: int, workers: int) -> None:
    """Run the edge API."""
    from edge_api.server import run_server

    settings = _settings()
    if not (settings.redis_url and settings.database_url):
        raise click.UsageError("NEARCART_REDIS_URL and NEARCART_DATABASE_URL must be set (or use `nearcart demo`)")
    run_server(settings, host=host, port=port, workers=workers)


@main.command()
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int)
def demo(port: int, workers: int) -> None:
    """Embedded services if none configured, demo catalog loaded, index built, API + demo page served."""
    from edge_api.demo import run_demo

    with services_for(_settings()) as settings:
        run_demo(settings, port=port, workers=workers)
