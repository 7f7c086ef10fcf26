"""The benchmark's own honesty: the queries it sends are valid, and wrong answers cannot pass as fast ones."""

from __future__ import annotations

from pathlib import Path

import httpx
import msgspec
import pytest

from edge_api.settings import Settings
from loadtest.answer_check import check_answers
from loadtest.bench_data import LoadData, load_data, sample_queries, to_lua
from loadtest.bench_table import Row, table
from loadtest.cache_share import cache_counts, cached_share
from loadtest.server_cpu import server_cpu_s
from loadtest.stack import serve_bare, serve_geo_floor
from loadtest.wrk import run_wrk


@pytest.fixture(scope="module")
def data(demo: Settings) -> LoadData:
    return load_data(demo)


@pytest.fixture(scope="module")
def data_file(data: LoadData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "data.lua"
    path.write_text("return " + to_lua(msgspec.to_builtins(data)) + "\n")
    return path


@pytest.mark.parametrize("mode", ["unique", "locality"])
def test_every_query_the_load_script_sends_is_answered(server: str, data_file: Path, mode: str) -> None:
    # Paced well below capacity: this checks what is asked, not how fast it is answered.
    result = run_wrk(server, data_file, mode, duration_s=2, connections=4, threads=1, rate=200)
    assert 100 < result.requests <= 500  # paced: flat out would be thousands
    assert result.error_kinds() == ""


def test_demo_answers_pass_the_check(server: str, data: LoadData) -> None:
    assert check_answers(server, data, "unique", expect_offers=True) == ""
    assert check_answers(server, data, "locality", expect_offers=True) == ""


def test_a_route_answering_no_offer_fails_the_check(data: LoadData) -> None:
    with serve_bare() as bare:
        assert check_answers(bare, data, "unique", expect_offers=True) == "every sample answer was empty"


def test_the_floor_row_searches_the_index_as_the_offers_route_does(demo: Settings, server: str,
                                                                   data: LoadData) -> None:
    # (b0) must do (b)'s Redis work for real: the nearest store it finds is the nearest /v1/offers lists.
    assert check_answers(server, data, "unique", expect_offers=True) == ""
    with serve_geo_floor(demo) as floor:
        assert check_answers(floor, data, "unique", expect_offers=True) == ""
        for query in sample_queries(data, "unique"):
            nearest = httpx.get(floor + "/v1/offers", params=query).json()["offers"]
            # Without the campaign's retailer rules, which the floor does not apply.
            plain = {key: value for key, value in query.items() if key != "campaign"}
            listed = httpx.get(server + "/v1/offers", params={**plain, "modes": "in_store,click_collect"}).json()
            distances = [offer["store"]["distance_km"] for offer in listed["offers"]]
            assert bool(nearest) == bool(distances)
            if nearest:
                assert round(nearest[0], 3) == min(distances), query


def test_table_flags_a_row_with_error_answers() -> None:
    rows = [
        Row(key="a", scenario="bare", workers=1, rps=1000, p50_ms=1, p99_ms=2, vs_bare=1, checked="ok"),
        Row(key="b", scenario="offers", workers=1, rps=900, p50_ms=1, p99_ms=2, vs_bare=0.9, errors=12,
            error_kinds="12 status", checked="ok"),
    ]
    printed = table(rows)
    assert "| (a) bare | 1 | 1,000 | 1.00 | 2.00 | 100% | - |" in printed
    assert "(b) offers **(!)**" in printed
    assert "- (b) NOT VALID: 12 status" in printed


def test_the_cached_share_counts_what_the_server_answered_from_its_caches(server: str, data: LoadData) -> None:
    # A position nobody else asks for: computed once, then replayed.
    query = {"gtin": data.hot[0], "campaign": data.campaign, "lat": "47.123457", "lon": "1.234567"}
    before = cache_counts(server)
    for _ in range(3):
        assert httpx.get(server + "/v1/offers", params=query).status_code == 200
    after = cache_counts(server)
    assert (after[0] - before[0], after[1] - before[1]) == (2, 1)
    assert cached_share(before, after) == 2 / 3


def test_server_cpu_counts_the_work_of_the_server_on_that_port_only(server: str, data: LoadData) -> None:
    port = int(server.rsplit(":", 1)[1])
    before = server_cpu_s(port)
    assert before > 0  # it loaded its app, at least
    for i in range(300):
        query = {"gtin": data.gtins[i % len(data.gtins)], "lat": f"{45 + i / 1000:.6f}", "lon": "4.85"}
        assert httpx.get(server + "/v1/offers", params=query).status_code == 200
    assert server_cpu_s(port) > before
    assert server_cpu_s(1) == 0  # nothing listens there
