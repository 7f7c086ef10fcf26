"""One bench row per scenario and the markdown table that prints them, invalid rows flagged."""

from __future__ import annotations

import math

import msgspec


class Row(msgspec.Struct):
    key: str
    scenario: str
    workers: int
    rps: float
    p50_ms: float
    p99_ms: float
    vs_bare: float = 0.0
    paced_rps: float | None = None
    paced_p99_ms: float | None = None
    # Share of the measured answers replayed from the front cache or the micro-cache (one worker only).
    cached: float | None = None
    # CPU time the server's processes spent per answer in the measured run (user + system).
    cpu_us: float | None = None
    errors: int = 0
    error_kinds: str = ""
    checked: str = ""


def table(rows: list[Row]) -> str:
    lines = ["| scenario | workers | req/s | p50 ms | p99 ms | vs bare | p99 ms at 70 % (req/s) | cached "
             "| server CPU µs/answer |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    notes = []
    for r in rows:
        paced = f"{r.paced_p99_ms:.2f} ({r.paced_rps:,.0f})" if r.paced_p99_ms is not None else "-"
        problems = [p for p in (r.error_kinds, "" if r.checked == "ok" else f"check: {r.checked[:300]}") if p]
        if problems:
            notes.append(f"- ({r.key}) NOT VALID: {'; '.join(problems)}")
        cached = f"{r.cached:.0%}" if r.cached is not None else "-"
        cpu = f"{r.cpu_us:.0f}" if r.cpu_us is not None else "-"
        vs_bare = "-" if math.isnan(r.vs_bare) else f"{r.vs_bare:.0%}"  # no bare route in that run
        lines.append(f"| ({r.key}) {r.scenario}{' **(!)**' if problems else ''} | {r.workers} | {r.rps:,.0f} | "
                     f"{r.p50_ms:.2f} | {r.p99_ms:.2f} | {vs_bare} | {paced} | {cached} | {cpu} |")
    return "\n".join(lines + ([""] + notes if notes else []))
