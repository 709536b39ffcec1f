"""Read-only views of the three-way merge's decisions: a run's field-level conflicts and the open review queue.

Why a module of its own: ``review.py`` runs the queue's life (add, resolve, apply) inside a sync, while these
views only read what a run left in the org's staging file (tables ``conflicts`` and ``review_queue``,
docs/DATA_DICTIONARY.md). The Dagster assets ``donor_conflicts`` / ``review_queue`` and the ``review_age``
check (``defs/assets/review.py``, ``defs/review_check.py``) are a thin shell over them, so what the UI shows is
what an analyst's query of the same tables returns, and the rules (what counts as open, how old is too old)
are tested without Dagster.

Values are shown shortened (``VALUE_CHARS``): a table in the UI is for spotting patterns, the tables hold the
full values. Nothing here reads a credential.
"""

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from bloom_pipeline.staging import review

VALUE_CHARS = 60
DEFAULT_MAX_AGE_DAYS = 7

CONFLICT_COLUMNS = ("entity", "source", "source_id", "bloomerang_id", "field", "source_value", "bloomerang_value",
                    "source_modified_at", "bloomerang_modified_at", "rule", "winner")
CONFLICT_HEADER = ("record", "field", "source value", "source modified", "Bloomerang value",
                   "Bloomerang modified", "rule", "winner")
RULE_HEADER = ("rule", "winner", "fields")
REVIEW_HEADER = ("id", "record", "field", "source value", "Bloomerang value", "reason", "waiting")
# What each rule of the merge (``sync/merge/three_way.py``) means, for readers of the UI
RULES = {
    "later_wins": "both sides changed; the later change won (last-modified wins)",
    "fill_empty": "the field only fills an empty value; the existing value was kept",
    "blank_protected": "one side cleared the field; the other side's value was kept",
    "decision": "a person's review decision was applied",
    "review_field": "the field's policy is review: a person decides",
    "no_timestamp": "a side has no last-modified time: a person decides",
    "within_skew": "both changes fall within the clock-skew tolerance: a person decides",
}


@dataclass(frozen=True)
class ConflictDecision:
    """One field of one linked record changed on both sides, and how this run settled it."""

    entity: str
    source: str
    source_id: str
    bloomerang_id: int | None
    field: str
    source_value: Any
    bloomerang_value: Any
    source_modified_at: datetime | None
    bloomerang_modified_at: datetime | None
    rule: str
    winner: str

    @property
    def record(self) -> str:
        return record_label(self.entity, self.source, self.source_id, self.bloomerang_id)


@dataclass(frozen=True)
class WaitingItem:
    """An open review item and how long it has waited for a person (from when a run queued it)."""

    item: review.ReviewItem
    age: timedelta


@dataclass(frozen=True)
class AgeVerdict:
    """Whether the open items wait longer than the org allows (``review.max_age_days``)."""

    max_age_days: int
    waiting: list[WaitingItem]
    overdue: list[WaitingItem]

    @property
    def passed(self) -> bool:
        return not self.overdue

    @property
    def oldest(self) -> timedelta | None:
        return max((w.age for w in self.waiting), default=None)

    def summary(self) -> str:
        if not self.waiting:
            return "the review queue is empty"
        oldest = format_age(self.oldest or timedelta(0))
        if self.passed:
            return (f"{len(self.waiting)} open review item(s), the oldest waiting {oldest}: within "
                    f"{self.max_age_days} day(s)")
        return (f"{len(self.overdue)} of {len(self.waiting)} open review item(s) waited longer than "
                f"{self.max_age_days} day(s) (the oldest {oldest})")


def record_label(entity: str, source: str, source_id: str, bloomerang_id: int | None) -> str:
    """``constituents wegive:17 ↔ bloomerang:204`` — the linked pair, as the CLI's review list names it."""
    linked = f" ↔ bloomerang:{bloomerang_id}" if bloomerang_id is not None else ""
    return f"{entity} {source}:{source_id}{linked}"


def short(value: Any, limit: int = VALUE_CHARS) -> str:
    """A value as one short line: strings as they are, other JSON compact, ``∅`` for none."""
    if value is None:
        return "∅"
    text = value if isinstance(value, str) else json.dumps(value, default=str, separators=(",", ":"))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value is not None else "∅"


def format_age(age: timedelta) -> str:
    """``3 d 4 h``, ``5 h 12 min`` or ``12 min``: how long an item waited, as a person reads it."""
    minutes = max(int(age.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {mins} min" if hours else f"{mins} min"


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def run_conflicts(con: duckdb.DuckDBPyConnection, run_id: str) -> list[ConflictDecision]:
    """The field-level decisions the merge of run ``run_id`` made, in the order it made them."""
    rows = con.execute(f"SELECT {', '.join(CONFLICT_COLUMNS)} FROM conflicts WHERE run_id = ? ORDER BY id",
                       [run_id]).fetchall()
    decisions = []
    for row in rows:
        values = dict(zip(CONFLICT_COLUMNS, row, strict=True))
        values["source_value"] = _json(values["source_value"])
        values["bloomerang_value"] = _json(values["bloomerang_value"])
        decisions.append(ConflictDecision(**values))
    return decisions


def conflict_rows(decisions: list[ConflictDecision]) -> list[tuple[str, ...]]:
    """The rows of the decisions table (``CONFLICT_HEADER``)."""
    return [(d.record, d.field, short(d.source_value), format_time(d.source_modified_at),
             short(d.bloomerang_value), format_time(d.bloomerang_modified_at), d.rule, d.winner)
            for d in decisions]


def rule_counts(decisions: list[ConflictDecision]) -> list[tuple[str, str, int]]:
    """How many fields each rule settled for each winner (``RULE_HEADER``), most first."""
    counts = Counter((d.rule, d.winner) for d in decisions)
    return [(rule, winner, n) for (rule, winner), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def sent_to_review(decisions: list[ConflictDecision]) -> int:
    return sum(d.winner == "review" for d in decisions)


def waiting_items(con: duckdb.DuckDBPyConnection, now: datetime | None = None) -> list[WaitingItem]:
    """The open review items, oldest first, with how long each has waited (``now`` − ``created_at``).

    Only ``open`` items wait for a person: a ``resolved`` one has its decision and waits for the next run."""
    now = now or datetime.now(UTC)
    items = review.list_reviews(con, "open")
    waiting = [WaitingItem(item, now - item.created_at if item.created_at else timedelta(0)) for item in items]
    return sorted(waiting, key=lambda w: (-w.age, w.item.id or 0))


def age_verdict(waiting: list[WaitingItem], max_age_days: int = DEFAULT_MAX_AGE_DAYS) -> AgeVerdict:
    """Which open items waited longer than ``max_age_days`` days."""
    limit = timedelta(days=max_age_days)
    return AgeVerdict(max_age_days, waiting, [w for w in waiting if w.age > limit])


def reason_text(item: review.ReviewItem) -> str:
    if item.is_identity:
        return review.identity_reason_text(item.reason)
    return RULES.get(item.reason, item.reason)


def review_rows(waiting: list[WaitingItem]) -> list[tuple[Any, ...]]:
    """The rows of the queue table (``REVIEW_HEADER``)."""
    return [(w.item.id, record_label(w.item.entity, w.item.source, w.item.source_id, w.item.bloomerang_id),
             w.item.field, short(w.item.source_value), short(w.item.bloomerang_value), reason_text(w.item),
             format_age(w.age)) for w in waiting]
