"""The Locust journey against a real `nearcart serve` on the demo catalog, and its SLO gates.

Short headless runs only (the long ones are the SRE's, see the README): the journey
must pass on a healthy server and the gates must fail a run that misses its SLO.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

LOCUSTFILE = Path(__file__).resolve().parents[2] / "loadtest" / "locustfile.py"


def locust(url: str, seconds: int, *options: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    locust_bin = Path(sys.executable).parent / "locust"
    command = [str(locust_bin), "-f", str(LOCUSTFILE), "--headless", "-u", "10", "-r", "10", "-t", f"{seconds}s",
               "--host", url, "--only-summary", "--csv", str(tmp_path / "run"), *options]
    return subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, cwd=tmp_path, check=False)


def requests_by_name(tmp_path: Path) -> dict[str, tuple[int, int]]:
    """name -> (requests, failures) from Locust's stats CSV."""
    with (tmp_path / "run_stats.csv").open() as stats:
        return {row["Name"]: (int(row["Request Count"]), int(row["Failure Count"])) for row in csv.DictReader(stats)}


def test_shopper_journey_meets_generous_slos(server: str, tmp_path: Path) -> None:
    run = locust(server, 10, "--max-p99-ms", "2000", "--max-fail-ratio", "0.01", tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    counts = requests_by_name(tmp_path)
    assert counts["Aggregated"][0] > 20
    assert counts["Aggregated"][1] == 0
    offers = sum(n for name, (n, _) in counts.items() if name.startswith("/v1/offers"))
    assert offers > 0 and counts["/v1/campaigns/[id]"][0] >= 10
    assert any(name.startswith("/v1/events") for name in counts)


def test_impossible_p99_fails_the_run(server: str, tmp_path: Path) -> None:
    run = locust(server, 5, "--max-p99-ms", "0.001", tmp_path=tmp_path)
    assert run.returncode != 0
    assert "SLO broken: p99" in run.stderr


def test_wrong_answers_fail_the_run_even_when_fast(server: str, tmp_path: Path) -> None:
    # An unknown campaign answers quickly, with a 404: the failure ratio gate catches it.
    run = locust(server, 5, "--campaign", "no-such-campaign", "--max-p99-ms", "2000", tmp_path=tmp_path)
    assert run.returncode != 0
    assert "SLO broken: failure ratio" in run.stderr
