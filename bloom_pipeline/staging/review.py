"""The manual review queue: conflicts a rule could not settle, waiting for a person's decision.

Life of an item: ``open`` (added by a run) -> ``resolved`` (an admin chose source, bloomerang or a
typed value with ``bloom-pipeline review resolve``) -> ``applied`` (the next run wrote the decision and
stamped its run id). A nightly run that meets the same unresolved conflict refreshes the open item
instead of piling up duplicates; values are stored as JSON so a number stays a number.

Two kinds of item share the table, told apart by ``field``:

* a **field** item (``field`` = a canonical field): both sides changed one field of a linked record;
  the decision is the value to write (source's, Bloomerang's or a typed one).
* an **identity** item (``field`` = ``identity``): the identity step could not tell which Bloomerang
  constituent a staged record is (a shared e-mail under another name, several candidates), so the record
  waits. ``source_value`` describes the staged record, ``bloomerang_value`` lists the candidates
  (``[{"id", "name", "email", ...}]``); the decision is ``bloomerang`` with the chosen constituent's id
  as ``decided_value`` (link to it) or ``source`` (create a new constituent). The item is ``applied``
  once ``sync_state`` links the record (``settle_identity_reviews``), with that constituent as
  ``bloomerang_id`` -- also when the question went away without a decision (``decision`` stays NULL).
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
IDENTITY_FIELD = "identity"
# Why a staged record waits for a person (``reason`` of its identity item), in words.
IDENTITY_REASONS = {
    "email_name_mismatch": "shares its e-mail with a Bloomerang constituent of another name",
    "ambiguous_email": "shares its e-mail with several Bloomerang constituents of a compatible name",
    "ambiguous_org_name": "has the name of several Bloomerang organizations",
    "ambiguous_duplicate_rule": "matches several Bloomerang constituents by Bloomerang's duplicate rule",
    "ambiguous_custom_field": "has its id in the correlation custom field of several Bloomerang constituents",
}


def identity_reason_text(reason: str) -> str:
    """The words of an identity item's reason code (``IDENTITY_REASONS``)."""
    rule = reason.removeprefix("ambiguous_")
    return IDENTITY_REASONS.get(reason, f"matches several Bloomerang constituents by {rule}")


class TakeError(ValueError):
    """A ``--take`` that does not fit the item (``bloomerang:ID`` on a field item, ``value:`` on an
    identity item, ``bloomerang`` alone with several candidates, an id that is not a candidate)."""


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

    @property
    def is_identity(self) -> bool:
        return self.field == IDENTITY_FIELD

    @property
    def candidate_ids(self) -> list[int]:
        """The Bloomerang constituents an identity item offers (empty for a field item)."""
        if not self.is_identity or not isinstance(self.bloomerang_value, list):
            return []
        return [int(c["id"]) for c in self.bloomerang_value if isinstance(c, dict) and c.get("id") is not None]


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
    return _queue(con, run_id, item, existing)


def add_reviews(con: duckdb.DuckDBPyConnection, run_id: str, items: list[ReviewItem]) -> list[int]:
    """``add_review`` of each item, their queued items read in one query: a quiet night re-raises every
    item still waiting, and one lookup per item was a query per waiting record."""
    wanted = {(i.entity, i.source, str(i.source_id), i.field) for i in items}
    existing: dict[tuple[str, str, str, str], list[ReviewItem]] = {}
    if wanted:
        fields = sorted({key[3] for key in wanted})
        for found in _select(con, "list_contains(?, field) AND status IN ('open', 'resolved')", [fields]):
            key = (found.entity, found.source, str(found.source_id), found.field)
            if key in wanted:
                existing.setdefault(key, []).append(found)
    ids, queued = [], set()
    for item in items:
        key = (item.entity, item.source, str(item.source_id), item.field)
        # a key given twice: its second item sees the first as queued, as one add_review after another would
        ids.append(add_review(con, run_id, item) if key in queued else _queue(con, run_id, item,
                                                                             existing.get(key, [])))
        queued.add(key)
    return ids


def _queue(con: duckdb.DuckDBPyConnection, run_id: str, item: ReviewItem, existing: list[ReviewItem]) -> int:
    """Refresh the last of the ``existing`` items of the item's key (in id order), or insert the item."""
    key = [item.entity, item.source, str(item.source_id), item.field]
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
        if found.status == "open" and not _refreshed(found, item, values):
            # refresh with the latest values; keep the id the admin may know
            # an identity item's bloomerang_id is its one candidate: it follows the candidates exactly
            kept = "?" if item.field == IDENTITY_FIELD else "coalesce(?, bloomerang_id)"
            con.execute(
                "UPDATE review_queue SET source_value = ?, bloomerang_value = ?, source_modified_at = ?, "
                f"bloomerang_modified_at = ?, reason = ?, bloomerang_id = {kept} "
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


def _refreshed(found: ReviewItem, item: ReviewItem, values: list[Any]) -> bool:
    """Whether the open item ``found`` already holds what ``item`` would refresh it with (``values``: the new
    JSON texts, times, reason and id): a quiet night re-raises every waiting item, and an UPDATE per item that
    changes nothing is most of that. Anything not plainly equal (a time given as text, say) is refreshed."""
    bloomerang_id = item.bloomerang_id if item.field == IDENTITY_FIELD or item.bloomerang_id is not None \
        else found.bloomerang_id
    return (json.dumps(found.source_value, default=str) == values[0]
            and json.dumps(found.bloomerang_value, default=str) == values[1]
            and _same_time(found.source_modified_at, item.source_modified_at)
            and _same_time(found.bloomerang_modified_at, item.bloomerang_modified_at)
            and found.reason == item.reason and found.bloomerang_id == bloomerang_id)


def _same_time(stored: Any, given: Any) -> bool:
    if stored is None or given is None:
        return stored is None and given is None
    return isinstance(stored, datetime) and isinstance(given, datetime) and stored == given


def list_reviews(con: duckdb.DuckDBPyConnection, status: str | None = "open") -> list[ReviewItem]:
    """Items in a status (default: the open ones); ``None`` lists every item."""
    if status is None:
        return _select(con, "true", [])
    return _select(con, "status = ?", [status])


def resolve_review(con: duckdb.DuckDBPyConnection, item_id: int, take: str) -> ReviewItem:
    """Record a decision: ``source``, ``bloomerang`` or ``value:TEXT`` (TEXT is taken literally) for a
    field item; ``source`` (create a new constituent), ``bloomerang`` (its one candidate) or
    ``bloomerang:ID`` (that candidate) for an identity item. Raises ``TakeError`` when the take does not
    fit the item.

    A decision can be changed until a run has applied it.
    """
    found = _select(con, "id = ?", [int(item_id)])
    if not found:
        raise KeyError(f"no review item {item_id}")
    item = found[0]
    if item.status == "applied":
        raise ValueError(f"review item {item_id} was already applied in run {item.applied_run_id}")
    if item.is_identity:
        decision, value = _identity_take(item, take)
    elif take == "source":
        decision, value = "source", item.source_value
    elif take == "bloomerang":
        decision, value = "bloomerang", item.bloomerang_value
    elif take.startswith("value:"):
        decision, value = "value", take[len("value:") :]
    elif take.startswith("bloomerang:"):
        raise TakeError(f"review item {item_id} is a field conflict: --take bloomerang:ID is for identity "
                        "items; use source, bloomerang or value:TEXT")
    else:
        raise ValueError("take must be 'source', 'bloomerang' or 'value:TEXT'")
    con.execute(
        "UPDATE review_queue SET status = 'resolved', decision = ?, decided_value = ?, decided_at = ? "
        "WHERE id = ?",
        [decision, json.dumps(value, default=str), datetime.now(UTC), int(item_id)],
    )
    return _select(con, "id = ?", [int(item_id)])[0]


def _identity_take(item: ReviewItem, take: str) -> tuple[str, Any]:
    """``(decision, decided_value)`` of an identity item: create (``source``) or link to a candidate."""
    candidates = item.candidate_ids
    choices = ", ".join(f"bloomerang:{c}" for c in candidates)
    if take == "source":
        return "source", None
    if take == "bloomerang":
        if len(candidates) == 1:
            return "bloomerang", candidates[0]
        raise TakeError(f"review item {item.id} has {len(candidates)} Bloomerang candidates: say which "
                        f"({choices}), or take source to create a new constituent")
    if take.startswith("bloomerang:"):
        chosen = take[len("bloomerang:") :].strip()
        if chosen.isdigit() and int(chosen) in candidates:
            return "bloomerang", int(chosen)
        raise TakeError(f"constituent {chosen} is not a candidate of review item {item.id} ({choices})")
    raise TakeError(f"review item {item.id} is an identity item: take bloomerang (link) or source (create), "
                    "not a value")


def identity_decisions(con: duckdb.DuckDBPyConnection) -> list[ReviewItem]:
    """Resolved, not yet applied identity items (what the next run's identity step must follow)."""
    return _select(con, "status = 'resolved' AND field = ?", [IDENTITY_FIELD])


def reopen_review(con: duckdb.DuckDBPyConnection, item_id: int) -> None:
    """Put a resolved item back to ``open`` with no decision (its decision can no longer be applied)."""
    con.execute(
        "UPDATE review_queue SET status = 'open', decision = NULL, decided_value = NULL, decided_at = NULL "
        "WHERE id = ? AND status = 'resolved'",
        [int(item_id)],
    )


def settle_identity_reviews(con: duckdb.DuckDBPyConnection, run_id: str) -> list[int]:
    """Close the open / resolved identity items whose record ``sync_state`` now links: ``applied``, by the
    run that linked it (``run_id`` when unknown), with the linked constituent as ``bloomerang_id``.

    Settled from ``sync_state`` rather than from the plan, so a link or create that failed keeps its item
    (and its decision) for the next run instead of raising the question again.
    """
    rows = con.execute(
        "UPDATE review_queue SET status = 'applied', bloomerang_id = s.bloomerang_id, "
        "applied_run_id = coalesce(s.last_run_id, ?), applied_at = ? FROM sync_state s "
        "WHERE review_queue.field = ? AND review_queue.status IN ('open', 'resolved') "
        "AND s.entity = review_queue.entity AND s.source = review_queue.source "
        "AND s.source_id = review_queue.source_id AND s.bloomerang_id IS NOT NULL RETURNING review_queue.id",
        [run_id, datetime.now(UTC), IDENTITY_FIELD],
    ).fetchall()
    return sorted(int(r[0]) for r in rows)


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
    """Every resolved, not yet applied field decision (optionally of one entity), for planning in bulk.
    Identity decisions are not field values: the identity step reads them (``identity_decisions``)."""
    sql = (f"SELECT {', '.join(REVIEW_COLUMNS)} FROM review_queue WHERE status = 'resolved' "
           "AND field <> ?")
    params: list[Any] = [IDENTITY_FIELD]
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
