"""The manual review queue: conflicts a rule could not settle, waiting for a person's decision.

Life of an item: ``open`` (added by a run) -> ``resolved`` (an admin chose source, bloomerang or a
typed value with ``bloom-pipeline review resolve``) -> ``applied`` (the next run wrote the decision and
stamped its run id). A nightly run that meets the same unresolved conflict refreshes the open item
instead of piling up duplicates; values are stored as JSON so a number stays a number.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import pandas as pd

REVIEW_COLUMNS = (
    "id",
    "entity",
    "source",
    "source_id",
    "bloomerang_id",
    "field",
    "source_value",
    "bloomerang_value",
    "source_modified_at",
    "bloomerang_modified_at",
    "reason",
    "status",
    "decision",
    "decided_value",
    "decided_at",
    "created_run_id",
    "created_at",
    "applied_run_id",
    "applied_at",
)
_JSON_COLUMNS = ("source_value", "bloomerang_value", "decided_value")


@dataclass
class ReviewItem:
    """One field of one record awaiting (or carrying) a decision."""

    entity: str
    source: str
    source_id: str
    field: str
    source_value: Any
    bloomerang_value: Any
    reason: str
    bloomerang_id: int | None = None
    source_modified_at: datetime | None = None
    bloomerang_modified_at: datetime | None = None
    id: int | None = None
    status: str = "open"
    decision: str | None = None
    decided_value: Any = None
    decided_at: datetime | None = None
    created_run_id: str | None = None
    created_at: datetime | None = None
    applied_run_id: str | None = None
    applied_at: datetime | None = None


def _item(row: tuple[Any, ...]) -> ReviewItem:
    values = dict(zip(REVIEW_COLUMNS, row, strict=True))
    for key in _JSON_COLUMNS:
        values[key] = None if values[key] is None else json.loads(values[key])
    return ReviewItem(**values)


def _select(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> list[ReviewItem]:
    rows = con.execute(
        f"SELECT {', '.join(REVIEW_COLUMNS)} FROM review_queue WHERE {where} ORDER BY id", params
    ).fetchall()
    return [_item(r) for r in rows]


def add_review(con: duckdb.DuckDBPyConnection, run_id: str, item: ReviewItem) -> int:
    """Queue a field for review; returns the item id (an existing one if already queued)."""
    key = [item.entity, item.source, str(item.source_id), item.field]
    existing = _select(
        con,
        "entity = ? AND source = ? AND source_id = ? AND field = ? AND status IN ('open', 'resolved')",
        key,
    )
    values = [
        json.dumps(item.source_value, default=str),
        json.dumps(item.bloomerang_value, default=str),
        item.source_modified_at,
        item.bloomerang_modified_at,
        item.reason,
        item.bloomerang_id,
    ]
    if existing:
        found = existing[-1]
        if found.status == "open":  # refresh with the latest values; keep the id the admin may know
            con.execute(
                "UPDATE review_queue SET source_value = ?, bloomerang_value = ?, source_modified_at = ?, "
                "bloomerang_modified_at = ?, reason = ?, bloomerang_id = coalesce(?, bloomerang_id) "
                "WHERE id = ?",
                [*values, found.id],
            )
        return int(found.id or 0)
    row = con.execute(
        "INSERT INTO review_queue (entity, source, source_id, field, source_value, bloomerang_value, "
        "source_modified_at, bloomerang_modified_at, reason, bloomerang_id, status, created_run_id, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?) RETURNING id",
        [*key, *values, run_id, datetime.now(UTC)],
    ).fetchone()
    assert row is not None
    return int(row[0])


def list_reviews(con: duckdb.DuckDBPyConnection, status: str | None = "open") -> list[ReviewItem]:
    """Items in a status (default: the open ones); ``None`` lists every item."""
    if status is None:
        return _select(con, "true", [])
    return _select(con, "status = ?", [status])


def resolve_review(con: duckdb.DuckDBPyConnection, item_id: int, take: str) -> ReviewItem:
    """Record a decision: ``source``, ``bloomerang`` or ``value:TEXT`` (TEXT is taken literally).

    A decision can be changed until a run has applied it.
    """
    found = _select(con, "id = ?", [int(item_id)])
    if not found:
        raise KeyError(f"no review item {item_id}")
    item = found[0]
    if item.status == "applied":
        raise ValueError(f"review item {item_id} was already applied in run {item.applied_run_id}")
    if take == "source":
        decision, value = "source", item.source_value
    elif take == "bloomerang":
        decision, value = "bloomerang", item.bloomerang_value
    elif take.startswith("value:"):
        decision, value = "value", take[len("value:") :]
    else:
        raise ValueError("take must be 'source', 'bloomerang' or 'value:TEXT'")
    con.execute(
        "UPDATE review_queue SET status = 'resolved', decision = ?, decided_value = ?, decided_at = ? "
        "WHERE id = ?",
        [decision, json.dumps(value, default=str), datetime.now(UTC), int(item_id)],
    )
    return _select(con, "id = ?", [int(item_id)])[0]


def decisions_for(
    con: duckdb.DuckDBPyConnection, entity: str, source: str, source_id: str
) -> list[ReviewItem]:
    """Resolved, not yet applied decisions for one record (what the next run must write)."""
    return _select(
        con,
        "status = 'resolved' AND entity = ? AND source = ? AND source_id = ?",
        [entity, source, str(source_id)],
    )


def resolved_decisions(con: duckdb.DuckDBPyConnection, entity: str | None = None) -> pd.DataFrame:
    """Every resolved, not yet applied decision (optionally of one entity), for planning in bulk."""
    sql = f"SELECT {', '.join(REVIEW_COLUMNS)} FROM review_queue WHERE status = 'resolved'"
    params: list[Any] = []
    if entity is not None:
        sql += " AND entity = ?"
        params.append(entity)
    return con.execute(sql + " ORDER BY id", params).df()


def mark_applied(con: duckdb.DuckDBPyConnection, item_ids: Iterable[int], run_id: str) -> int:
    """Stamp decisions as applied by a run; returns how many changed (only resolved items move)."""
    count = 0
    now = datetime.now(UTC)
    for item_id in item_ids:
        row = con.execute(
            "UPDATE review_queue SET status = 'applied', applied_run_id = ?, applied_at = ? "
            "WHERE id = ? AND status = 'resolved' RETURNING id",
            [run_id, now, int(item_id)],
        ).fetchone()
        count += row is not None
    return count
