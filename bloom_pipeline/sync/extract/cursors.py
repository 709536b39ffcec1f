"""Cursors of the incremental reads: parsed, read and proposed.

Cursors are *proposed* by the extract and committed by the runner only when a non-dry run succeeds:
the newest stamp read, never past the run's start minus the clock-skew tolerance; for Bloomerang's lists
(UTC stamps by contract) that settled time itself (``Extracted.read_through``). Cursor reads overlap by a
second: Bloomerang's and Handbid's filters are strictly-after with one-second resolution, and a re-read
record is harmless (its hash is unchanged).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bloom_pipeline.staging import ledgers
from bloom_pipeline.staging.store import StagingStore

OVERLAP = timedelta(seconds=1)


def parse_time(value: Any) -> datetime | None:
    """ISO-8601 (with Z or offset) or epoch seconds → aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value), UTC)
    text = str(value).replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def read_cursor(store: StagingStore, name: str) -> datetime | None:
    with store.connect() as con:
        return parse_time(ledgers.get_cursor(con, name))
