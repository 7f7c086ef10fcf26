"""An app per test on the run's database and a fresh Redis prefix, with people and campaigns loaded."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import pytest
from office_site import load_people_and_campaigns
from starlette.testclient import TestClient

from edge_api.app import create_app
from edge_api.settings import Settings


@pytest.fixture
async def people(db: asyncpg.Connection) -> None:
    await load_people_and_campaigns(db)


@pytest.fixture
def client(settings: Settings, people: None) -> Iterator[TestClient]:
    """A browser on loopback (plain http: the session cookie is not Secure there)."""
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        yield client
