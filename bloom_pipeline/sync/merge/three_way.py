"""Three-way, field-level merge of one donor between its source system and Bloomerang (pure).

Each field is compared with the per-side snapshot stored after the last successful sync (``echo``).
Changed on one side only: that side's value goes to the other. Changed on both to different values:
the later last-modified side wins when the times differ by more than the skew tolerance; inside it,
with a timestamp missing, or for a ``review`` field, it goes to the review queue and neither side is
written (a ``review`` field changed on one side only flows normally: review is for disagreements).
Never synced: push semantics, source values go to Bloomerang and nothing comes back.

Receiving side: ``fill_empty`` writes only into an empty target; a blank never erases a value unless
the rule has ``allow_blank`` (the clear is not propagated; a real value from the other side may refill
it). A write the field's ``direction`` forbids is dropped; one the *run* direction blocks stays pending
(its base is kept for a later run). A reviewer's decision overrides all of this for its field.

Store ``new_base`` once every write of the record succeeded; on any failure keep the old one (the next
run converges: a field both sides now hold equally is no conflict). Fields sent to review are stored
as observed, so an unchanged record stays quiet at night while its review item waits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from bloom_pipeline.sync.fields import BLOOMERANG, CANONICAL_FIELDS, SOURCE, as_utc, is_blank, normalise, same
from bloom_pipeline.sync.merge import baseline
from bloom_pipeline.sync.merge.decisions import (
    DEFAULT_RULE,
    Decision,
    DecisionLike,
    Direction,
    FieldRule,
    apply_decision,
    as_decision,
)

_OTHER = {SOURCE: BLOOMERANG, BLOOMERANG: SOURCE}
_NEEDS = {BLOOMERANG: "push", SOURCE: "pull"}  # the direction a write to that side needs


def _allows(direction: str, target: str) -> bool:
    return direction in (_NEEDS[target], "both")


@dataclass
class MergeResult:
    """What to write where, what to record, and the snapshot to store after the writes succeed."""

    fields: tuple[str, ...]
    to_bloomerang: dict[str, Any] = field(default_factory=dict)
    to_source: dict[str, Any] = field(default_factory=dict)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    review: list[dict[str, Any]] = field(default_factory=list)
    new_base: dict[str, dict[str, Any]] | None = None
    decisions_applied: list[str] = field(default_factory=list)
    decisions_deferred: list[str] = field(default_factory=list)

    @property
    def has_writes(self) -> bool:
        return bool(self.to_bloomerang or self.to_source)

    def hashes(self) -> tuple[str, str] | None:
        """``(source_hash, bloomerang_hash)`` of ``new_base`` to store in ``sync_state``."""
        return baseline.base_hashes(self.new_base, self.fields)


def field_names(rules: Mapping[str, FieldRule]) -> tuple[str, ...]:
    """The canonical fields, then any extra field the rules name."""
    return CANONICAL_FIELDS + tuple(name for name in rules if name not in CANONICAL_FIELDS)


class _Merge:
    """One record's merge; holds the inputs so the per-field steps stay short."""

    def __init__(self, rules, skew, decisions, direction, names, context) -> None:
        if direction not in ("push", "pull", "both"):
            raise ValueError(f"unknown direction {direction!r}")
        self.rules, self.skew, self.direction = rules, skew, direction
        self.decisions = decisions or {}
        self.context = dict(context or {})
        self.out: dict[str, dict[str, Any]] = {SOURCE: {}, BLOOMERANG: {}}
        self.result = MergeResult(fields=names)

    def run(self, base, source, bloomerang, source_at, bloomerang_at) -> MergeResult:
        self.old = baseline.split_base(base)
        self.values = {SOURCE: source, BLOOMERANG: bloomerang}
        self.at = {SOURCE: as_utc(source_at), BLOOMERANG: as_utc(bloomerang_at)}
        for name in self.result.fields:
            self.merge_field(name)
        if self.out[SOURCE] or self.out[BLOOMERANG]:
            self.result.new_base = self.out
        return self.result

    def merge_field(self, name: str) -> None:
        rule = self.rules.get(name, DEFAULT_RULE)
        now = {side: self.values[side].get(name) for side in (SOURCE, BLOOMERANG)}
        old = None
        if self.old is not None and name in self.old[0] and name in self.old[1]:
            old = {SOURCE: self.old[0][name], BLOOMERANG: self.old[1][name]}
        if name in self.decisions:
            self.decide(name, rule, now, as_decision(self.decisions[name]))
        elif old is None:
            self.first_sync(name, rule, now)
        else:
            self.three_way(name, rule, now, old)

    # -- the cases -------------------------------------------------------------------------------
    def first_sync(self, name: str, rule: FieldRule, now: dict[str, Any]) -> None:
        if not _allows(self.direction, BLOOMERANG):
            return  # never synced and this run may not push: leave it for a run that may
        if is_blank(now[SOURCE]) or same(name, now[SOURCE], now[BLOOMERANG]):
            self.settle(name, now)
        elif (
            rule.policy == "review" and not is_blank(now[BLOOMERANG]) and _allows(rule.direction, BLOOMERANG)
        ):
            self.to_review(name, "review_field", now)
        else:
            self.deliver(name, rule, BLOOMERANG, now, rule_name=None)

    def three_way(self, name: str, rule: FieldRule, now: dict[str, Any], old: dict[str, Any]) -> None:
        changed = {side: not same(name, now[side], old[side]) for side in now}
        effective = {side: changed[side] and (rule.allow_blank or not is_blank(now[side])) for side in now}
        if effective[SOURCE] and effective[BLOOMERANG]:
            if same(name, now[SOURCE], now[BLOOMERANG]):
                self.settle(name, now)
            else:
                self.both_changed(name, rule, now)
        elif effective[SOURCE] or effective[BLOOMERANG]:
            sender = SOURCE if effective[SOURCE] else BLOOMERANG
            refilled = changed[_OTHER[sender]]  # the receiver was cleared; a real value wins over it
            self.deliver(name, rule, _OTHER[sender], now, rule_name="blank_protected" if refilled else None)
        else:
            cleared = next((side for side in now if changed[side]), None)
            keeper = _OTHER[cleared] if cleared else None
            if keeper and not is_blank(now[keeper]) and _allows(rule.direction, keeper):
                self.record(name, "blank_protected", keeper, now, now[keeper])
            self.settle(name, now)

    def both_changed(self, name: str, rule: FieldRule, now: dict[str, Any]) -> None:
        at_source, at_bloomerang = self.at[SOURCE], self.at[BLOOMERANG]
        if rule.policy == "review":
            self.to_review(name, "review_field", now)
        elif at_source is None or at_bloomerang is None:
            self.to_review(name, "no_timestamp", now)
        elif abs(at_source - at_bloomerang) <= self.skew:
            self.to_review(name, "within_skew", now)
        else:
            winner = SOURCE if at_source > at_bloomerang else BLOOMERANG
            self.deliver(name, rule, _OTHER[winner], now, rule_name="later_wins")

    def decide(self, name: str, rule: FieldRule, now: dict[str, Any], decision: Decision) -> None:
        value = apply_decision(now[SOURCE], now[BLOOMERANG], decision)
        value = None if is_blank(value) else value  # clears are written as None, like any other clear
        targets = [side for side in now if not same(name, value, now[side]) and _allows(rule.direction, side)]
        if any(not _allows(self.direction, side) for side in targets):
            self.result.decisions_deferred.append(name)
            self.keep_old(name)
            return
        for side in targets:
            self.write(side, name, value)
        self.settle(name, {side: value if side in targets else now[side] for side in now})
        winner = decision.take if decision.take != "value" else "manual"
        self.record(name, "decision", winner, now, value)
        self.result.decisions_applied.append(name)

    # -- building blocks ---------------------------------------------------------------------------
    def deliver(
        self, name: str, rule: FieldRule, target: str, now: dict[str, Any], rule_name: str | None
    ) -> None:
        """Send the other side's value to ``target`` if the rules let it; settle the base accordingly."""
        sender = _OTHER[target]
        value, current = now[sender], now[target]
        if same(name, value, current):
            self.settle(name, now)
        elif not _allows(rule.direction, target):
            if rule_name == "later_wins":
                self.record(name, rule_name, sender, now, None)
            self.settle(name, now)
        elif rule.policy == "fill_empty" and not is_blank(current):
            self.record(name, "fill_empty", target, now, current)
            self.settle(name, now)
        elif not _allows(self.direction, target):
            self.keep_old(name)  # pending: a run that may write to ``target`` applies it
        else:
            value = None if is_blank(value) else value
            self.write(target, name, value)
            self.settle(name, {sender: now[sender], target: value})
            if rule_name:
                self.record(name, rule_name, sender, now, value)

    def write(self, target: str, name: str, value: Any) -> None:
        (self.result.to_bloomerang if target == BLOOMERANG else self.result.to_source)[name] = value

    def keep_old(self, name: str) -> None:
        if self.old is not None and name in self.old[0] and name in self.old[1]:
            self.settle(name, {SOURCE: self.old[0][name], BLOOMERANG: self.old[1][name]})

    def settle(self, name: str, values: Mapping[str, Any]) -> None:
        for side in (SOURCE, BLOOMERANG):  # blanks (NaN, "", NA) are stored as None: JSON-safe and tidy
            self.out[side][name] = None if is_blank(values[side]) else values[side]

    def record(self, name: str, rule_name: str, winner: str, now: Mapping[str, Any], value: Any) -> None:
        self.result.conflicts.append(
            {**self.row(name, now), "rule": rule_name, "winner": winner, "value": value}
        )

    def to_review(self, name: str, reason: str, now: dict[str, Any]) -> None:
        self.record(name, reason, "review", now, None)
        key = json.dumps(
            [name, normalise(name, now[SOURCE]), normalise(name, now[BLOOMERANG])], default=str
        )
        fingerprint = hashlib.sha256(key.encode()).hexdigest()[:16]  # same disagreement -> same fingerprint
        self.result.review.append({**self.row(name, now), "reason": reason, "fingerprint": fingerprint})
        self.settle(name, now)

    def row(self, name: str, now: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **self.context,
            "field": name,
            "source_value": now[SOURCE],
            "bloomerang_value": now[BLOOMERANG],
            "source_modified_at": self.at[SOURCE],
            "bloomerang_modified_at": self.at[BLOOMERANG],
        }


def merge_record(
    base: Mapping[str, Any] | str | None,
    source: Mapping[str, Any],
    bloomerang: Mapping[str, Any],
    source_modified_at: datetime | None,
    bloomerang_modified_at: datetime | None,
    rules: Mapping[str, FieldRule],
    skew: timedelta = timedelta(minutes=2),
    decisions: Mapping[str, DecisionLike] | None = None,
    direction: Direction = "both",
    *,
    fields: Sequence[str] | None = None,
    context: Mapping[str, Any] | None = None,
) -> MergeResult:
    """Merge one linked record field by field (see the module docstring for the rules).

    ``base`` is the stored snapshot (``MergeResult.new_base`` of the last sync, its JSON, or a flat
    dict both sides held) or None if never synced. ``source``/``bloomerang`` hold canonical field
    values (other keys are ignored; a missing key is blank). ``context`` (record ids, run id) is
    copied into every conflict and review row. A field absent from the base is treated as never
    synced, so adding a field to the mapping does not look like an edit on every record.
    """
    names = tuple(fields) if fields else field_names(rules)
    merger = _Merge(rules, skew, decisions, direction, names, context)
    return merger.run(base, source, bloomerang, source_modified_at, bloomerang_modified_at)


_WRITES = ("to_bloomerang", "to_source", "new_base", "source_hash", "bloomerang_hash")
_RECORD_COLUMNS = (*_WRITES, "decisions_applied", "decisions_deferred")


@dataclass
class FrameMerge:
    """``merge_frame`` output: per merged record the writes and new base; the ledgers as frames."""

    records: pd.DataFrame
    conflicts: pd.DataFrame
    review: pd.DataFrame
    skipped: int


def merge_frame(
    frame: pd.DataFrame,
    rules: Mapping[str, FieldRule],
    *,
    skew: timedelta = timedelta(minutes=2),
    decisions: Mapping[tuple, Mapping[str, DecisionLike]] | None = None,
    direction: Direction = "both",
    key: Sequence[str] = ("source", "source_id"),
    fields: Sequence[str] | None = None,
    context: Mapping[str, Any] | None = None,
) -> FrameMerge:
    """Merge many linked records; rows where neither side moved since its snapshot skip the merge.

    ``frame`` has the ``key`` columns, ``<field>_source`` and ``<field>_bloomerang`` columns (what
    ``pandas.merge(..., suffixes=("_source", "_bloomerang"))`` gives), ``source_modified_at``,
    ``bloomerang_modified_at`` and ``base`` (or the stored ``base_source_hash``/``base_bloomerang_hash``).
    ``decisions`` maps a key tuple to that record's ``{field: decision}``; such rows always merge.
    ``records`` has the key columns plus ``to_bloomerang``, ``to_source``, ``new_base``,
    ``source_hash``/``bloomerang_hash`` (of ``new_base``), ``decisions_applied``, ``decisions_deferred``.
    """
    names = tuple(fields) if fields else field_names(rules)
    decisions = decisions or {}
    keys = list(zip(*(frame[column].tolist() for column in key), strict=True))
    unchanged = baseline.unchanged_mask(frame, names)
    if decisions:
        unchanged &= ~pd.Series([k in decisions for k in keys], index=frame.index, dtype=bool)
    rows, conflicts, review = [], [], []
    # only the rows that moved become dicts: on a quiet night that is none of them, whatever the org's size
    moved = [position for position, same in enumerate(unchanged.tolist()) if not same]
    for position, record in zip(moved, frame.iloc[moved].to_dict("records"), strict=True):
        ids = dict(zip(key, keys[position], strict=True))
        result = merge_record(
            record.get("base"),
            {name: record.get(name + "_source") for name in names},
            {name: record.get(name + "_bloomerang") for name in names},
            record.get("source_modified_at"),
            record.get("bloomerang_modified_at"),
            rules,
            skew,
            decisions.get(keys[position]),
            direction,
            fields=names,
            context={**(context or {}), **ids},
        )
        hashes = result.hashes() or (None, None)
        values = (result.to_bloomerang, result.to_source, result.new_base, *hashes)
        values += (result.decisions_applied, result.decisions_deferred)
        rows.append({**ids, **dict(zip(_RECORD_COLUMNS, values, strict=True))})
        conflicts += result.conflicts
        review += result.review
    return FrameMerge(
        pd.DataFrame(rows, columns=[*key, *_RECORD_COLUMNS]),
        pd.DataFrame(conflicts),
        pd.DataFrame(review),
        skipped=int(unchanged.sum()),
    )


def summarise_conflicts(rows: Sequence[Mapping[str, Any]] | pd.DataFrame) -> str:
    """A markdown table of conflicts counted by field, rule and winner (for Dagster metadata / UI)."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if frame.empty:
        return "No conflicts."
    counts = frame.groupby(["field", "rule", "winner"]).size().reset_index(name="count")
    counts = counts.sort_values(["count", "field", "rule"], ascending=[False, True, True])
    lines = ["| field | rule | winner | count |", "|---|---|---|---:|"]
    lines += [f"| {r.field} | {r.rule} | {r.winner} | {r.count} |" for r in counts.itertuples(index=False)]
    lines.append(f"| **total** | | | {len(frame)} |")
    return "\n".join(lines)
