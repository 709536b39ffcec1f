"""Org custom fields, the step: a WeGive donor custom field <-> a Bloomerang Constituent custom field, both ways.

Why a step of its own (after the constituents are written, like communication preferences): the values are
typed on the Bloomerang side and free on WeGive's, the pick lists live in Bloomerang, and the write shape is
not the read shape — none of which the contact-field merge knows. What it shares with that merge is the rule
book: each field goes through ``merge.three_way.merge_record`` with its YAML ``direction`` and ``policy``, so a
field changed on one side flows to the other, a both-sides change follows last-modified-wins / the skew
tolerance / the review queue, ``fill_empty`` never overwrites, and a blank never erases a value a person typed.

Per run:

1. Resolve the YAML's fields against Bloomerang's (the extract's one ``GET /customFields/{type}/`` per area)
   and, when one is a pick field, read the pick lists once (``GET /customValues/Constituent``). A field
   Bloomerang lacks (or one holding the correlation ids) is not synced, and said so in the run's message —
   a dry run says it too (``check``), before anything is written.
2. For every WeGive donor linked to a constituent: validate the donor's value against the field's DataType /
   PickType (``custom_values.validate``). An invalid value is a quarantine row of kind 'field' (the reason,
   the value shown safely) and *that field of that donor* sits out the run — neither pushed nor overwritten by
   a pull, since the person's typed value is the thing to fix; the rest of the record still syncs.
3. Before writing, the receiving side is read again (``GET /constituent/{id}``, ``GET /dashboard/donors/{id}``):
   a value someone changed since the extract is left for the next run to weigh, never overwritten unseen.
   Bloomerang gets ``PUT /constituent/{id}`` with only the fields that change, in the write shape; WeGive gets
   ``PUT /dashboard/donors/{id}`` ``{"custom_fields": {api_name: value}}`` — the same flagged write-back the merge
   uses (contracts/wegive-handbid.md §4: not in WeGive's public document). A refused write is logged failed with
   the API's message, counted (exit status 1) and tried again next run; the base is not advanced.

State: ``custom_field_state`` (per linked WeGive donor, the per-side snapshot of every mapped field after the
last sync, the merge's base) and ``custom_field_log`` (every write, skip and failure of a run); conflicts and
review items go to the shared ``conflicts`` / ``review_queue`` under the field name ``custom_field:<bloomerang>``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pandas as pd

from bloom_pipeline import jsontext
from bloom_pipeline.errors import ApiError
from bloom_pipeline.mapping.spec import CustomFieldMap
from bloom_pipeline.staging import ledgers, review
from bloom_pipeline.staging.store import transaction
from bloom_pipeline.staging.writes import quarantine_rows
from bloom_pipeline.sync.context import RunContext
from bloom_pipeline.sync.fields import BLOOMERANG, SOURCE, as_utc, is_blank, same
from bloom_pipeline.sync.merge.decisions import FieldRule
from bloom_pipeline.sync.merge.three_way import MergeResult, merge_record
from bloom_pipeline.sync.people.custom_values import (
    AREA,
    Resolved,
    bloomerang_value,
    resolve,
    shown,
    validate,
    wegive_shape,
    wegive_values,
    write_shape,
)

log = logging.getLogger(__name__)

ENTITY = "wegive.donors"
STATE_DDL = """
CREATE TABLE IF NOT EXISTS custom_field_state (
    source         VARCHAR NOT NULL,
    source_id      VARCHAR NOT NULL,
    bloomerang_id  BIGINT,
    base           JSON NOT NULL,
    run_id         VARCHAR NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, source_id)
)"""
LOG_DDL = """
CREATE TABLE IF NOT EXISTS custom_field_log (
    run_id         VARCHAR NOT NULL,
    source         VARCHAR NOT NULL,
    source_id      VARCHAR NOT NULL,
    bloomerang_id  BIGINT,
    field          VARCHAR NOT NULL,
    direction      VARCHAR NOT NULL CHECK (direction IN ('push', 'pull')),
    action         VARCHAR NOT NULL CHECK (action IN ('updated', 'skipped', 'failed')),
    sent           JSON,
    error          VARCHAR,
    logged_at      TIMESTAMPTZ NOT NULL
)"""


@dataclass
class CustomFieldOutcome:
    """What the step did: writes each way, values quarantined, failures, ledger rows, unusable fields."""

    to_bloomerang: int = 0
    to_wegive: int = 0
    quarantined: int = 0
    failed: int = 0
    conflicts: int = 0
    review_ids: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"updated_in_bloomerang": self.to_bloomerang, "updated_in_wegive": self.to_wegive,
                "values_quarantined": self.quarantined, "failed": self.failed}


def entries(ctx: RunContext) -> list[CustomFieldMap]:
    try:
        return list(ctx.org.entity(ENTITY).custom_fields)
    except KeyError:
        return []


def resolve_for_run(ctx: RunContext) -> Resolved:
    """The org's fields matched to Bloomerang's: the extract's field list, and one pick-list read when needed."""
    wanted = entries(ctx)
    if not wanted:
        return Resolved({})
    found = ctx.extracted.records.get("bloomerang.custom_fields")
    if found is None:
        found = [dict(f, Area=AREA) for f in ctx.clients.bloomerang.custom_fields(AREA)]
    reserved = ctx.fields.constituent.values()
    first = resolve(wanted, found, [], reserved)
    if not any(bf.is_pick for _, bf in first.fields.values()):
        return first
    return resolve(wanted, found, ctx.clients.bloomerang.custom_values(AREA), reserved)


def check(ctx: RunContext) -> list[str]:
    """What a dry run reports: the YAML's custom fields Bloomerang lacks (nothing is read but the lists)."""
    return list(resolve_for_run(ctx).problems)


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(STATE_DDL)
    con.execute(LOG_DDL)


def _bases(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, dict[str, Any]]]:
    ensure_tables(con)
    rows = con.execute("SELECT source_id, base FROM custom_field_state WHERE source = 'wegive'").fetchall()
    return {str(sid): jsontext.loads(base) for sid, base in rows}


def _decisions(con: duckdb.DuckDBPyConnection, keys: set[str]) -> tuple[dict[str, dict[str, Any]], pd.DataFrame]:
    """Reviewers' resolved decisions on these fields: per WeGive donor, field -> take (as the merge reads it)."""
    frame = review.resolved_decisions(con, "constituents")
    frame = frame[(frame["source"] == "wegive") & frame["field"].isin(keys)] if len(frame) else frame
    out: dict[str, dict[str, Any]] = {}
    for row in frame.to_dict("records") if len(frame) else []:
        take = row["decision"] if row["decision"] != "value" else ("value", jsontext.loads(row["decided_value"]))
        out.setdefault(str(row["source_id"]), {})[row["field"]] = take
    return out, frame


@dataclass
class _Pair:
    """One linked donor in this step: both sides' canonical values, what was invalid, the merge's answer."""

    sid: str
    bid: int
    spelled: dict[str, str]
    source: dict[str, Any]
    bloomerang: dict[str, Any]
    invalid: list[dict[str, Any]]
    base: dict[str, dict[str, Any]] | None
    result: MergeResult | None = None


def sync_custom_fields(ctx: RunContext, con: duckdb.DuckDBPyConnection) -> CustomFieldOutcome:
    """Bring the org's custom fields of every linked WeGive donor to both systems (after the constituents)."""
    outcome = CustomFieldOutcome()
    if not entries(ctx):
        return outcome
    donors = ctx.extracted.records.get("wegive.donors")
    if donors is None:  # a run that read no WeGive donors (a Handbid job)
        return outcome
    resolved = resolve_for_run(ctx)
    outcome.problems = list(resolved.problems)
    for problem in outcome.problems:
        log.warning("%s", problem)
    if not resolved.fields:
        return outcome
    links = ledgers.links_frame(con, "constituents", "wegive")
    if links.empty:
        return outcome
    by_id = {str(d["id"]): d for d in donors if isinstance(d, dict) and d.get("id") is not None}
    snapshot = {int(r["Id"]): r for r in ctx.bloomerang_constituents()  # read once per run, shared
                if isinstance(r, dict) and r.get("Id") is not None}
    bases = _bases(con)
    rules = {key: FieldRule(policy=entry.policy, direction=entry.direction)
             for key, (entry, _) in resolved.fields.items()}
    decisions, decision_rows = _decisions(con, set(rules))
    quiet: list[list[Any]] = []
    for source_id, bloomerang_id in links[["source_id", "bloomerang_id"]].itertuples(index=False):
        sid, bid = str(source_id), int(bloomerang_id)
        donor = by_id.get(sid)
        if donor is None:
            continue  # not listed this run (archived, deleted): nothing to weigh it against
        pair = _read_pair(ctx, sid, bid, donor, snapshot.get(bid), resolved, bases.get(sid))
        if pair is None:
            continue
        valid = list(pair.source)
        if not valid:  # every mapped value of the donor is invalid: only its quarantine rows to write
            pair.result = MergeResult(fields=())
            _settle(ctx, con, pair, resolved, decision_rows, outcome, quiet)
            continue
        taken = {k: v for k, v in decisions.get(sid, {}).items() if k in valid}
        if not taken and not pair.invalid and _as_base(pair):
            continue  # neither side moved since the last sync: the merge would settle each field as it is
        pair.result = merge_record(
            pair.base, pair.source, pair.bloomerang, _stamp(donor.get("updated_at")),
            _stamp(((snapshot.get(bid) or {}).get("AuditTrail") or {}).get("LastModifiedDate")),
            rules, ctx.org.clock_skew_tolerance, taken,
            ctx.direction, fields=valid, context={"source": "wegive", "source_id": sid})
        _settle(ctx, con, pair, resolved, decision_rows, outcome, quiet)
    if quiet:
        with transaction(con):
            _write_bases(con, quiet)
    return outcome


def _write_bases(con: duckdb.DuckDBPyConnection, rows: list[list[Any]]) -> None:
    """``custom_field_state`` rows (source id, Bloomerang id, base JSON, run id, time) in one statement: the run
    after a first load stores a first base for nearly every linked donor, and ``executemany`` costs DuckDB a few
    milliseconds a row (seconds for 2,000 donors), one INSERT from a frame well under a second."""
    frame = pd.DataFrame(rows, columns=["source_id", "bloomerang_id", "base", "run_id", "updated_at"])
    frame = frame.drop_duplicates("source_id", keep="last")
    frame["bloomerang_id"] = frame["bloomerang_id"].astype("Int64")
    frame["updated_at"] = pd.to_datetime(frame["updated_at"], utc=True)
    view = "_custom_field_bases"
    con.register(view, frame)
    try:
        con.execute("INSERT OR REPLACE INTO custom_field_state "
                    "SELECT 'wegive', source_id, bloomerang_id, base, run_id, updated_at FROM " + view)
    finally:
        con.unregister(view)


def _as_base(pair: _Pair) -> bool:
    """Whether both sides hold exactly what the base holds for every field (same type, same value, a blank only
    as None): then ``merge_record`` settles each field to the value it has, the new base is the old one and
    ``_settle`` has nothing to do — so a quiet night skips both for the pair."""
    base = pair.base
    if not isinstance(base, dict) or not pair.source:
        return False
    for side, now in ((SOURCE, pair.source), (BLOOMERANG, pair.bloomerang)):
        held = base.get(side)
        if not isinstance(held, dict):
            return False
        for name in pair.source:
            value = now.get(name)
            if name not in held or type(held[name]) is not type(value) or held[name] != value:
                return False
            if value is not None and is_blank(value):
                return False  # the merge would store it as None: the base moves
    return True


def _stamp(value: Any) -> datetime | None:
    """A last-modified text as UTC, or None when it is none (a WeGive ``0000-00-00 00:00:00``): the merge then
    sends a both-sides change to review rather than guess which is later."""
    try:
        return as_utc(value) if isinstance(value, str) and value.strip() else None
    except (TypeError, ValueError):
        return None


def _read_pair(ctx: RunContext, sid: str, bid: int, donor: Mapping[str, Any], constituent: Mapping[str, Any] | None,
               resolved: Resolved, base: dict[str, dict[str, Any]] | None) -> _Pair | None:
    """Both sides' values of one linked donor; None when there is nothing to weigh yet."""
    held = wegive_values(donor.get("custom_fields"))
    spelled: dict[str, str] = {}
    source: dict[str, Any] = {}
    invalid: list[dict[str, Any]] = []
    for key, (entry, bloomerang) in resolved.fields.items():
        spelled[key], raw = held.get(entry.wegive.casefold(), (entry.wegive, None))
        canonical, reason = validate(bloomerang, raw)
        if reason is not None:
            invalid.append({"field": key, "raw": raw, "reason": f"{key}: {reason} (from custom_fields.{entry.wegive})"})
        else:
            source[key] = canonical
    if constituent is None:
        if not any(v is not None for v in source.values()) and not invalid:
            return None  # created this run and nothing to send: the next run's snapshot has it
        try:
            constituent = ctx.clients.bloomerang.get_constituent(bid)
        except ApiError as exc:
            log.warning("could not read Bloomerang constituent %s for its custom fields: %s", bid, exc)
            return None
    values = constituent.get("CustomValues")
    bloom = {key: bloomerang_value(values, resolved.fields[key][1]) for key in source}
    return _Pair(sid, bid, spelled, source, bloom, invalid, base)


def _settle(ctx: RunContext, con: duckdb.DuckDBPyConnection, pair: _Pair, resolved: Resolved,
            decision_rows: pd.DataFrame, outcome: CustomFieldOutcome, quiet: list[list[Any]]) -> None:
    """One pair's writes (each side re-read first), then its quarantine rows, log, ledgers and base; a pair with
    nothing but a new base (a first sync with nothing to send) adds its row to ``quiet``, written in one go."""
    result = pair.result
    assert result is not None
    logs: list[tuple[str, str, str, Any, str | None]] = []  # field, direction, action, sent, error
    held: dict[str, dict[str, Any]] = {SOURCE: {}, BLOOMERANG: {}}  # what each side holds after our writes
    kept_old: set[str] = set()  # fields whose base must not move (skipped or failed writes)
    if result.to_bloomerang:
        _push(ctx, pair, resolved, result.to_bloomerang, held, kept_old, logs, outcome)
    if result.to_source:
        _pull(ctx, pair, resolved, result.to_source, held, kept_old, logs, outcome)
    new_base = _new_base(pair, result, held, kept_old)
    if not logs and not pair.invalid and not result.conflicts and not result.review:
        if new_base is not None and new_base != pair.base:  # only the base moves: written with the others
            quiet.append([pair.sid, pair.bid, json.dumps(new_base, default=str), ctx.run_id, datetime.now(UTC)])
        return
    now = datetime.now(UTC)
    with transaction(con):
        if pair.invalid:
            _quarantine(con, ctx.run_id, pair)
            outcome.quarantined += len(pair.invalid)
        if logs:
            con.executemany("INSERT INTO custom_field_log VALUES (?, 'wegive', ?, ?, ?, ?, ?, ?, ?, ?)", [
                [ctx.run_id, pair.sid, pair.bid, name, direction, action,
                 None if sent is None else json.dumps(sent, default=str), error, now]
                for name, direction, action, sent, error in logs])
        _ledgers(con, ctx.run_id, pair, outcome)
        applied = [name for name in result.decisions_applied if name not in kept_old]
        if applied and len(decision_rows):
            ids = decision_rows[(decision_rows["source_id"].astype(str) == pair.sid)
                                & decision_rows["field"].isin(applied)]["id"].tolist()
            review.mark_applied(con, ids, ctx.run_id)
        if new_base is not None and new_base != pair.base:
            con.execute("INSERT OR REPLACE INTO custom_field_state VALUES ('wegive', ?, ?, ?, ?, ?)",
                        [pair.sid, pair.bid, json.dumps(new_base, default=str), ctx.run_id, now])


def _unreadable(changes: dict[str, Any], direction: str, exc: ApiError, kept_old: set[str], logs: list,
                outcome: CustomFieldOutcome) -> None:
    """The receiving side could not be read just before the write: nothing is written blind; every change
    keeps its old base and is logged failed (retried next run)."""
    for name in changes:
        kept_old.add(name)
        logs.append((name, direction, "failed", None, str(exc)))
    outcome.failed += 1


def _push(ctx: RunContext, pair: _Pair, resolved: Resolved, changes: dict[str, Any],
          held: dict[str, dict[str, Any]], kept_old: set[str], logs: list, outcome: CustomFieldOutcome) -> None:
    """``PUT /constituent/{id}`` with the changed fields only, each in its write shape."""
    try:
        live = ctx.clients.bloomerang.get_constituent(pair.bid).get("CustomValues")
    except ApiError as exc:
        _unreadable(changes, "push", exc, kept_old, logs, outcome)
        return
    items: dict[str, dict[str, Any]] = {}
    for name, value in changes.items():
        bloomerang = resolved.fields[name][1]
        value, reason = validate(bloomerang, value)  # a reviewer's typed value is checked like a WeGive one
        if reason is not None:
            kept_old.add(name)
            logs.append((name, "push", "failed", None, reason))
            outcome.failed += 1
            continue
        if not same(name, bloomerang_value(live, bloomerang), pair.bloomerang.get(name)):
            kept_old.add(name)  # someone changed it in Bloomerang since the extract: the next run weighs it
            logs.append((name, "push", "skipped", None, "changed in Bloomerang since this run read it"))
            continue
        items[name] = write_shape(bloomerang, value)
    if not items:
        return
    try:
        answer = ctx.clients.bloomerang.update_constituent(pair.bid, {"CustomValues": list(items.values())})
    except ApiError as exc:
        kept_old.update(items)
        logs += [(name, "push", "failed", item, str(exc)) for name, item in items.items()]
        outcome.failed += 1
        log.warning("could not write custom fields of Bloomerang constituent %s (WeGive donor %s): %s",
                    pair.bid, pair.sid, exc)
        return
    outcome.to_bloomerang += 1
    values = answer.get("CustomValues") if isinstance(answer, dict) else None
    for name, item in items.items():
        logs.append((name, "push", "updated", item, None))
        held[BLOOMERANG][name] = bloomerang_value(values, resolved.fields[name][1]) if values is not None \
            else changes[name]


def _pull(ctx: RunContext, pair: _Pair, resolved: Resolved, changes: dict[str, Any],
          held: dict[str, dict[str, Any]], kept_old: set[str], logs: list, outcome: CustomFieldOutcome) -> None:
    """``PUT /dashboard/donors/{id}`` ``{"custom_fields": {...}}`` with the changed fields only."""
    try:
        live = wegive_values(ctx.clients.wegive.get_donor(int(pair.sid)).get("custom_fields"))
    except ApiError as exc:
        _unreadable(changes, "pull", exc, kept_old, logs, outcome)
        return
    body: dict[str, Any] = {}
    names: dict[str, str] = {}
    for name, value in changes.items():
        entry, bloomerang = resolved.fields[name]
        spelled, raw = live.get(entry.wegive.casefold(), (pair.spelled[name], None))
        now, reason = validate(bloomerang, raw)
        if reason is not None or not same(name, now, pair.source.get(name)):
            kept_old.add(name)  # someone changed it in WeGive since the extract: never overwritten unseen
            logs.append((name, "pull", "skipped", None, "changed in WeGive since this run read it"))
            continue
        body[spelled] = wegive_shape(value)
        names[name] = spelled
    if not body:
        return
    try:
        answer = ctx.clients.wegive.update_donor(int(pair.sid), {"custom_fields": body})
    except ApiError as exc:
        kept_old.update(names)
        logs += [(name, "pull", "failed", {spelled: body[spelled]}, str(exc)) for name, spelled in names.items()]
        outcome.failed += 1
        log.warning("could not write custom fields of WeGive donor %s (Bloomerang %s): %s", pair.sid, pair.bid, exc)
        return
    outcome.to_wegive += 1
    after = wegive_values(answer.get("custom_fields")) if isinstance(answer, dict) else {}
    for name, spelled in names.items():
        logs.append((name, "pull", "updated", {spelled: body[spelled]}, None))
        entry, bloomerang = resolved.fields[name]
        raw = after.get(entry.wegive.casefold(), (spelled, changes[name]))[1]
        canonical, reason = validate(bloomerang, raw)
        held[SOURCE][name] = changes[name] if reason else canonical


def _new_base(pair: _Pair, result: MergeResult, held: dict[str, dict[str, Any]],
              kept_old: set[str]) -> dict[str, dict[str, Any]] | None:
    """The old base, with every field the merge settled (and whose writes succeeded) moved to its new values:
    an invalid or skipped field keeps its old base, so the next run sees what changed since it was last synced."""
    old = pair.base or {SOURCE: {}, BLOOMERANG: {}}
    out = {SOURCE: dict(old.get(SOURCE, {})), BLOOMERANG: dict(old.get(BLOOMERANG, {}))}
    merged = result.new_base or {SOURCE: {}, BLOOMERANG: {}}
    for side in (SOURCE, BLOOMERANG):
        for name, value in merged.get(side, {}).items():
            if name not in kept_old:
                out[side][name] = held[side].get(name, value)
    return out if out[SOURCE] or out[BLOOMERANG] else pair.base


def _quarantine(con: duckdb.DuckDBPyConnection, run_id: str, pair: _Pair) -> None:
    """Quarantine rows of kind 'field' for the invalid values, keeping the rows the stage step already wrote for
    the same donor (``quarantine_rows`` replaces a record's field rows of the run, so they are passed along)."""
    mine = {row["field"] for row in pair.invalid}
    earlier = con.execute(
        "SELECT source, entity, source_id, kind, reasons, raw, window_date, field, value FROM quarantine "
        "WHERE run_id = ? AND source = 'wegive' AND entity = 'donors' AND source_id = ? AND kind = 'field'",
        [run_id, pair.sid]).df()
    if len(earlier):
        earlier = earlier[~earlier["field"].isin(mine)]
        earlier["reasons"] = [list(r) for r in earlier["reasons"]]
    rows = pd.DataFrame([{"source": "wegive", "entity": "donors", "source_id": pair.sid, "kind": "field",
                          "reasons": [row["reason"]], "raw": None, "window_date": None, "field": row["field"],
                          "value": shown(row["raw"])} for row in pair.invalid])
    quarantine_rows(con, pd.concat([earlier, rows], ignore_index=True) if len(earlier) else rows, run_id=run_id)


def _ledgers(con: duckdb.DuckDBPyConnection, run_id: str, pair: _Pair, outcome: CustomFieldOutcome) -> None:
    result = pair.result
    assert result is not None
    ledgers.append_conflicts(con, run_id, [
        ledgers.Conflict(entity="constituents", source="wegive", source_id=pair.sid, field=r["field"],
                         source_value=r.get("source_value"), bloomerang_value=r.get("bloomerang_value"),
                         rule=r["rule"], winner=r["winner"], bloomerang_id=pair.bid,
                         source_modified_at=r.get("source_modified_at"),
                         bloomerang_modified_at=r.get("bloomerang_modified_at"))
        for r in result.conflicts])
    outcome.conflicts += len(result.conflicts)
    for r in result.review:
        outcome.review_ids.append(review.add_review(con, run_id, review.ReviewItem(
            entity="constituents", source="wegive", source_id=pair.sid, field=r["field"],
            source_value=r.get("source_value"), bloomerang_value=r.get("bloomerang_value"),
            reason=r.get("reason", "review"), bloomerang_id=pair.bid,
            source_modified_at=r.get("source_modified_at"), bloomerang_modified_at=r.get("bloomerang_modified_at"))))

