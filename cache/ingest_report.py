"""What an ingest reports: each rejected row by file and line, the counts, and the exit status."""

from __future__ import annotations

import msgspec

# The report struct keeps this many rejects; `on_reject` (the printed report) sees every one.
KEPT_REJECTS = 1000


class Reject(msgspec.Struct, frozen=True):
    file: str
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.reason}"


class IngestReport(msgspec.Struct, kw_only=True):
    kind: str
    files: list[str]
    rows_read: int = 0
    # Rows that inserted or updated a catalog row.
    rows_loaded: int = 0
    # Good rows that changed nothing: equal to or older than the stored row, or repeated in the feed.
    rows_unchanged: int = 0
    rows_rejected: int = 0
    rejects: list[Reject] = msgspec.field(default_factory=list)
    index_changes: int = 0
    # Rows read and rejected per retailer (rejected ones by the id they named; "" for rows naming none).
    retailer_rows: dict[str, int] = msgspec.field(default_factory=dict)
    retailer_rejects: dict[str, int] = msgspec.field(default_factory=dict)
    # The feed_runs row of this run (None until recorded).
    run_id: int | None = None
    # Why the input could not be used at all; nothing was loaded.
    fatal: str | None = None
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        if self.fatal is not None:
            return 2
        return 3 if self.rows_rejected else 0

    def summary(self) -> str:
        if self.fatal is not None:
            return f"{self.kind}: nothing loaded: {self.fatal}"
        return (
            f"{self.kind}: {self.rows_read} rows read, {self.rows_loaded} loaded, {self.rows_unchanged} unchanged,"
            f" {self.rows_rejected} rejected; {self.index_changes} index changes; {self.seconds:.1f} s"
        )
