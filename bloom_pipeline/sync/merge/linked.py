"""Linked donors, both directions: the three-way merge, its writes, the conflict ledger, the queue.

A donor already linked to a Bloomerang constituent (``sync_state`` holds both ids and the snapshot
each side had after the last sync) is never re-planned as a create/update: its fields go through
``merge.merge_frame``. Fields changed on the source side flow to Bloomerang (PUT constituent), fields
changed in Bloomerang flow back to the source (PUT WeGive donor / Handbid contact) — only those the
mapping marks bidirectional — and both-side changes follow last-modified-wins, the skew tolerance and
the review queue. The new snapshot is stored only when every write of the record succeeded, so a
failed write is simply tried again next run, and a value we wrote never comes back as a change.

Rules are narrowed per source and constituent type (``group_rules``): a field the receiving side cannot
hold (an individual's computed FullName, a Handbid middle name) is never planned as a write there, or it
would come back as a "change" every night. Source PUT bodies carry only the changed fields (an address
whole), so an unchanged value the source would reject — a Handbid contact without an email — never
blocks a real change.

A donor whose inputs fingerprint as they did when the merge last found it unchanged is carried past the
merge (``carry``): a quiet night compares only the records that moved.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import duckdb
import pandas as pd

from bloom_pipeline import jsontext
from bloom_pipeline.errors import ApiError
from bloom_pipeline.mapping.compile import to_source_payload
from bloom_pipeline.mapping.reverse import payload_keys_by_field
from bloom_pipeline.mapping.spec import OrgConfig
from bloom_pipeline.staging import ledgers, review
from bloom_pipeline.staging.state_batch import states_for, upsert_states
from bloom_pipeline.staging.store import transaction
from bloom_pipeline.sync.constituent_body import ADDRESS_KEYS, constituent_body
from bloom_pipeline.sync.context import RunContext
from bloom_pipeline.sync.fields import CANONICAL_FIELDS, present
from bloom_pipeline.sync.merge import carry
from bloom_pipeline.sync.merge.decisions import FieldRule
from bloom_pipeline.sync.merge.three_way import FrameMerge, merge_frame
from bloom_pipeline.sync.stage import sourced_values

log = logging.getLogger(__name__)



@dataclass
class LinkedOutcome:
    pushed: int = 0
    pulled: int = 0
    unchanged: int = 0
    failed: int = 0
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    review_ids: list[int] = field(default_factory=list)
    results: list[tuple[str, str, str, int | None, str, dict | None, str | None]] = field(default_factory=list)
    # (source, source id) of the records the merge found unchanged, with their inputs as read (``carry``)
    quiet: list[tuple[str, str]] = field(default_factory=list)


def field_rules(org: OrgConfig) -> dict[str, FieldRule]:
    """The merge rule of every canonical donor field, from the org YAML's policies."""
    rules = {}
    for name in CANONICAL_FIELDS:
        policy, direction = org.field_policy("constituents", name)
        rules[name] = FieldRule(policy=policy, direction=direction)
    return rules  # narrowed per source and constituent type by ``group_rules``


# A value Bloomerang computes or refuses for a constituent type never flows to it: an individual's
# FullName is derived from the name parts; an organization has no person names.
NOT_WRITABLE_IN_BLOOMERANG = {"Individual": frozenset({"full_name"}),
                              "Organization": frozenset({"first_name", "middle_name", "last_name"})}
_SAMPLES = {"email": "sample@example.org", "phone": "3035550100"}


# (id(org), source, constituent type) -> (the org, its source keys): a pure function of the org's mapping,
# derived with a dozen reverse mappings, which every run (and every merge pass of a run) asked for again.
_SOURCE_KEYS: dict[tuple[int, str, str | None], tuple[OrgConfig, dict[str, frozenset[str]]]] = {}


def source_keys(org: OrgConfig, source: str, constituent_type: str | None) -> dict[str, frozenset[str]]:
    """Canonical field -> the top-level keys of the source's PUT body it writes (absent: cannot be written).

    Derived from the reverse mapping itself: a field whose rule has no inverse (or no rule at all, like a
    Handbid middle name) is one the source cannot receive, so the merge must never plan a write of it there.
    Computed once per org object (the cache entry holds the org, so an id is never reused for another).
    """
    cached = _SOURCE_KEYS.get((id(org), source, constituent_type))
    if cached is not None and cached[0] is org:
        return cached[1]
    keys = _derive_source_keys(org, source, constituent_type)
    _SOURCE_KEYS[(id(org), source, constituent_type)] = (org, keys)
    while len(_SOURCE_KEYS) > 64:  # a long-lived process loading its orgs anew never grows this without bound
        del _SOURCE_KEYS[next(iter(_SOURCE_KEYS))]
    return keys


def _derive_source_keys(org: OrgConfig, source: str, constituent_type: str | None) -> dict[str, frozenset[str]]:
    return payload_keys_by_field(source, org, constituent_type, _SAMPLES, CANONICAL_FIELDS)


def group_rules(rules: dict[str, FieldRule], writable_in_source: set[str] | frozenset[str],
                constituent_type: str | None) -> dict[str, FieldRule]:
    """The org's rules narrowed to the directions a field can really flow for one source and type.

    A field neither side can receive from the other is left out of the merge altogether, so a value the
    receiver cannot hold never looks like a pending change (and never costs an empty write).
    """
    closed = NOT_WRITABLE_IN_BLOOMERANG.get(str(constituent_type), frozenset())
    narrowed = {}
    for name, rule in rules.items():
        allowed = {d for d in ("push", "pull") if rule.direction in (d, "both")}
        if name not in writable_in_source:
            allowed.discard("pull")
        if name in closed:
            allowed.discard("push")
        if allowed:
            narrowed[name] = replace(rule, direction="both" if len(allowed) == 2 else allowed.pop())
    return narrowed


def merge_input(links: pd.DataFrame, staged: pd.DataFrame, snapshot: pd.DataFrame) -> pd.DataFrame:
    """One row per linked donor: both sides' canonical values, their last-modified times and the base."""
    return _with_base(_joined(links, staged, snapshot))


def _joined(links: pd.DataFrame, staged: pd.DataFrame, snapshot: pd.DataFrame) -> pd.DataFrame:
    """``merge_input`` with the stored snapshots still as their JSON text (``source_snapshot``,
    ``bloomerang_snapshot``): what the carry fingerprints before any of them is parsed."""
    linked = links.dropna(subset=["bloomerang_id"])
    linked = linked[linked["source_snapshot"].notna() & linked["bloomerang_snapshot"].notna()]
    if linked.empty:
        return pd.DataFrame()
    source_side = staged.drop_duplicates(["source", "source_id"], keep="last")
    cols = ["source", "source_id", "source_updated_at", "constituent_type", *CANONICAL_FIELDS]
    frame = linked[["source", "source_id", "bloomerang_id", "source_snapshot", "bloomerang_snapshot"]].merge(
        source_side[[c for c in cols if c in source_side]], on=["source", "source_id"], how="inner"
    )
    bloom = snapshot[["bloomerang_id", "last_modified", *CANONICAL_FIELDS]].copy()
    bloom["bloomerang_id"] = bloom["bloomerang_id"].astype("Int64")
    frame["bloomerang_id"] = frame["bloomerang_id"].astype("Int64")
    return frame.merge(bloom, on="bloomerang_id", how="inner", suffixes=("_source", "_bloomerang"))


def _with_base(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame
    frame = frame.copy()
    # the stored snapshot as a dict, not JSON text: the merge would only parse it again, for every row
    frame["base"] = [
        {"source": _loads(s), "bloomerang": _loads(b)}
        for s, b in zip(frame.pop("source_snapshot"), frame.pop("bloomerang_snapshot"), strict=True)
    ]
    frame["source_modified_at"] = frame.pop("source_updated_at")
    frame["bloomerang_modified_at"] = frame.pop("last_modified")
    return frame


def _loads(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else jsontext.loads(value)


def _merge_groups(org: OrgConfig, frame: pd.DataFrame, *, direction: str,
                  decisions: dict[tuple[str, str], dict[str, Any]]) -> tuple[list[FrameMerge], dict]:
    """``merge_frame`` per (source, constituent type), each with the rules that source and type allow."""
    rules = field_rules(org)
    results, keys = [], {}
    kinds = frame["constituent_type"].astype(object).where(frame["constituent_type"].notna(), None)
    for (source, kind), group in frame.groupby([frame["source"], kinds], dropna=False, sort=False):
        kind = None if kind is None or (isinstance(kind, float) and pd.isna(kind)) else kind
        writable = source_keys(org, str(source), kind)
        narrowed = group_rules(rules, set(writable), kind)
        results.append(merge_frame(group, narrowed, skew=org.clock_skew_tolerance, direction=direction,
                                   decisions=decisions, fields=[n for n in CANONICAL_FIELDS if n in narrowed]))
        keys[(source, kind)] = writable
    return results, keys


def _source_body(org: OrgConfig, source: str, current: pd.Series, changes: dict[str, Any],
                 keys: dict[str, frozenset[str]]) -> dict[str, Any]:
    """The source PUT body for the changed fields only (an address is sent whole: it is one object)."""
    merged = {n: present(current.get(f"{n}_source")) for n in CANONICAL_FIELDS} | changes
    merged["constituent_type"] = current.get("constituent_type")
    names = set(changes) | (set(ADDRESS_KEYS) if ADDRESS_KEYS.keys() & changes.keys() else set())
    wanted = set().union(*(keys.get(n, frozenset()) for n in names))
    body = to_source_payload(source, merged, org)
    return {k: v for k, v in body.items() if k in wanted}


def merge_linked(ctx: RunContext, con: duckdb.DuckDBPyConnection, skip: set[tuple[str, str]]) -> LinkedOutcome:
    """Merge every linked donor of the org both ways (but those in ``skip``, planned by the push this run),
    applying the reviewers' resolved decisions."""
    staged = sourced_values(ctx.org, con.execute("SELECT * FROM stg_constituents").df())
    states = ledgers.states_frame(con, "constituents")
    frame = _joined(states, staged, ctx.bloomerang_snapshot())
    if len(frame) and skip:
        keys = pd.Series(list(zip(frame["source"], frame["source_id"].astype(str), strict=True)), index=frame.index)
        frame = frame[~keys.isin(skip)]
    decisions_frame = review.resolved_decisions(con, "constituents")
    decisions: dict[tuple[str, str], dict[str, Any]] = {}
    for row in decisions_frame.to_dict("records"):
        take = row["decision"] if row["decision"] != "value" else ("value", jsontext.loads(row["decided_value"]))
        decisions.setdefault((row["source"], str(row["source_id"])), {})[row["field"]] = take
    known = carry.stored(con)
    prints = _fingerprints(ctx.org, frame)
    keys_of = list(zip(frame["source"].astype(str), frame["source_id"].astype(str), strict=True)) if len(frame) else []
    carried = carry.carried_mask(keys_of, prints, known, frame["bloomerang_id"].tolist() if len(frame) else [],
                                 decisions)
    rest = frame[[not c for c in carried]] if len(frame) else frame
    outcome = reconcile_linked(ctx, con, _with_base(rest), decisions=decisions, review_rows=decisions_frame)
    outcome.unchanged += sum(carried)
    print_of = dict(zip(keys_of, prints, strict=True))
    with transaction(con):
        carry.remember(con, ctx.run_id, [(*key, print_of[key]) for key in outcome.quiet if key in print_of], known)
    return outcome


_FINGERPRINTED = (*(f"{n}_source" for n in CANONICAL_FIELDS), *(f"{n}_bloomerang" for n in CANONICAL_FIELDS),
                  "source_snapshot", "bloomerang_snapshot")


def _fingerprints(org: OrgConfig, frame: pd.DataFrame) -> list[str]:
    """``carry.fingerprints`` of the joined rows: both sides' values, the stored snapshots' text, and the
    fields the row's (source, constituent type) group merges (``_merge_groups``' narrowing)."""
    if frame.empty:
        return []
    rules = field_rules(org)
    kinds = frame["constituent_type"].astype(object).where(frame["constituent_type"].notna(), None).tolist() \
        if "constituent_type" in frame.columns else [None] * len(frame)
    group_of = list(zip(frame["source"].astype(str).tolist(), kinds, strict=True))
    groups = {}
    for source, kind in set(group_of):
        narrowed = group_rules(rules, set(source_keys(org, source, kind)), kind)
        groups[(source, kind)] = ",".join(n for n in CANONICAL_FIELDS if n in narrowed)
    return carry.fingerprints(frame, _FINGERPRINTED, groups, group_of)


def reconcile_linked(
    ctx: RunContext, con: duckdb.DuckDBPyConnection, frame: pd.DataFrame,
    *, decisions: dict[tuple[str, str], dict[str, Any]], review_rows: pd.DataFrame,
) -> LinkedOutcome:
    """Merge, write both ways, record conflicts / review items / new snapshots.

    A constituent linked to two source records (a WeGive donor who also bids on Handbid) is merged in
    waves — the WeGive pair first — and each later wave sees what the earlier ones wrote to Bloomerang,
    so both sources converge in one run instead of taking turns overwriting each other night after night.
    """
    outcome = LinkedOutcome()
    if frame.empty:
        return outcome
    frame = frame.assign(_first=(frame["source"] != "wegive").astype(int)).sort_values(["_first", "source_id"])
    wave_of = frame.groupby("bloomerang_id").cumcount()
    frame = frame.drop(columns="_first")
    written: dict[int, dict[str, Any]] = {}
    for wave in sorted(set(wave_of)):
        touched = set(written)  # constituents earlier waves wrote to: this wave's rows see them changed
        part = _with_written(frame[wave_of == wave], written)
        groups, writable = _merge_groups(ctx.org, part, direction=ctx.direction, decisions=decisions)
        by_key = part.set_index(["source", "source_id"])
        merged_keys = {(str(source), str(sid)) for merged in groups
                       for source, sid in zip(merged.records["source"], merged.records["source_id"], strict=True)}
        outcome.quiet += [(str(source), str(sid)) for source, sid, bid
                          in zip(part["source"], part["source_id"], part["bloomerang_id"], strict=True)
                          if (str(source), str(sid)) not in merged_keys and int(bid) not in touched]
        for merged in groups:
            outcome.unchanged += merged.skipped
            rows = merged.records.to_dict("records")
            currents = [by_key.loc[(row["source"], row["source_id"])] for row in rows]
            errors = _write_records(ctx, rows, currents, writable, outcome)
            _store_records(ctx, con, rows, currents, errors, review_rows, outcome)
            for row, current, error in zip(rows, currents, errors, strict=True):
                if error is None and row["to_bloomerang"]:
                    written.setdefault(int(current["bloomerang_id"]), {}).update(row["to_bloomerang"])
            _record_conflicts(con, ctx.run_id, merged, outcome, by_key["bloomerang_id"])
    return outcome


def _with_written(part: pd.DataFrame, written: dict[int, dict[str, Any]]) -> pd.DataFrame:
    """This wave's rows with Bloomerang's values as earlier waves of the run left them (now modified)."""
    if not written:
        return part
    part = part.copy()
    now = pd.Timestamp.now(tz="UTC")
    for index, bloomerang_id in part["bloomerang_id"].items():
        changes = written.get(int(bloomerang_id))
        if changes:
            for name, value in changes.items():
                if f"{name}_bloomerang" in part:
                    part.at[index, f"{name}_bloomerang"] = value
            part.at[index, "bloomerang_modified_at"] = now
    return part


def _write_records(ctx: RunContext, rows: list[dict[str, Any]], currents: list[pd.Series], writable: dict,
                   outcome: LinkedOutcome) -> list[str | None]:
    """The writes of one merged group, record by record; per record the API's message when one failed, else
    None. What each source holds after a pull is read back from the answers of the whole group in one mapping
    (``_source_canonicals``), not one ``map_frame`` per record (~80 ms each)."""
    org, clients = ctx.org, ctx.clients
    errors: list[str | None] = []
    answers: dict[str, list[tuple[dict[str, Any], Any]]] = {}  # source -> (row, PUT answer) of each pull
    for row, current in zip(rows, currents, strict=True):
        bloomerang_id = int(current["bloomerang_id"])
        kind = present(current.get("constituent_type"))
        error = None
        try:
            if row["to_bloomerang"]:
                bloom_now = {n: current.get(f"{n}_bloomerang") for n in CANONICAL_FIELDS}
                body = constituent_body(row["to_bloomerang"], bloom_now, kind)
                if body:
                    answer = clients.bloomerang.update_constituent(bloomerang_id, body)
                    _as_held(row, "bloomerang", row["to_bloomerang"], _bloomerang_canonical(answer))
                    outcome.pushed += 1
            if row["to_source"]:
                body = _source_body(org, row["source"], current, row["to_source"], writable[(row["source"], kind)])
                if body:
                    if row["source"] == "wegive":
                        answer = clients.wegive.update_donor(int(row["source_id"]), body)
                    else:
                        answer = clients.handbid.update_contact(int(row["source_id"]), body)
                    answers.setdefault(row["source"], []).append((row, answer))
                    outcome.pulled += 1
        except ApiError as exc:
            error = str(exc)
        errors.append(error)
    for source, pulled in answers.items():
        held = _source_canonicals(org, source, [answer for _, answer in pulled])
        for row, answer in pulled:
            _as_held(row, "source", row["to_source"], held.get(_answer_id(answer), {}))
    return errors


def _store_records(ctx: RunContext, con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]],
                   currents: list[pd.Series], errors: list[str | None], review_rows: pd.DataFrame,
                   outcome: LinkedOutcome) -> None:
    """After a group's writes, in one transaction: the new base of every record whose writes all succeeded
    (a failed one keeps its old base and is tried again next run), applied decisions, one log row each."""
    run_id = ctx.run_id
    keys = [("constituents", row["source"], str(row["source_id"])) for row in rows]
    with transaction(con):
        stored = states_for(con, [key for key, row, error in zip(keys, rows, errors, strict=True)
                                  if error is None and row["new_base"] is not None])
        states, entries = [], []
        for key, row, current, error in zip(keys, rows, currents, errors, strict=True):
            state = stored.get(key) if error is None and row["new_base"] is not None else None
            if state is not None:
                state.source_snapshot = row["new_base"]["source"]
                state.bloomerang_snapshot = row["new_base"]["bloomerang"]
                state.last_run_id, state.synced_at = run_id, None
                states.append(state)
            if error is None and row["decisions_applied"]:
                ids = review_rows[(review_rows["source"] == row["source"])
                                  & (review_rows["source_id"].astype(str) == str(row["source_id"]))
                                  & review_rows["field"].isin(row["decisions_applied"])]["id"].tolist()
                review.mark_applied(con, ids, run_id)
            wrote = bool(row["to_bloomerang"] or row["to_source"])
            action = "failed" if error else ("updated" if wrote else "unchanged")
            diff = {"to_bloomerang": row["to_bloomerang"], "to_source": row["to_source"]} if wrote else None
            entries.append(ledgers.LogEntry(
                entity="constituents", source=row["source"], source_id=row["source_id"], action=action,
                bloomerang_id=int(current["bloomerang_id"]),
                direction="pull" if row["to_source"] and not row["to_bloomerang"] else "push",
                field_diff=diff, error=error))
            if error:
                outcome.failed += 1
        upsert_states(con, states)
        ledgers.append_log(con, run_id, entries)


def _bloomerang_canonical(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict) or "Type" not in answer:
        return {}
    from bloom_pipeline.sync.snapshot import snapshot_frame

    return snapshot_frame([answer], {}).iloc[0].to_dict()


def _source_canonicals(org: OrgConfig, source: str, answers: list[Any]) -> dict[str, dict[str, Any]]:
    """The canonical values each PUT answer of ``source`` holds, by source id, mapped in one ``map_frame``."""
    records = [answer for answer in answers if isinstance(answer, dict) and "id" in answer]
    if not records:
        return {}
    from bloom_pipeline.mapping.compile import map_frame

    mapped = map_frame(org, "wegive.donors" if source == "wegive" else "handbid.contacts", records).mapped
    return {str(row["source_id"]): row for row in mapped.to_dict("records")}


def _answer_id(answer: Any) -> str | None:
    return str(answer["id"]) if isinstance(answer, dict) and "id" in answer else None


def _as_held(row: dict[str, Any], side: str, sent: dict[str, Any], held: dict[str, Any]) -> None:
    """Store in the new base what the receiving system holds after our write, not what we sent: a system
    that reformats a value (drops a phone extension, re-cases an email) must not see its own echo as an
    edit on the next run."""
    if row.get("new_base") is None or not held:
        return
    for name in sent:
        if name in held:
            row["new_base"][side][name] = present(held[name])


def _record_conflicts(con: duckdb.DuckDBPyConnection, run_id: str, merged: FrameMerge, outcome: LinkedOutcome,
                      bloomerang_ids: pd.Series) -> None:
    """Conflict ledger rows and review items of one merged group, each with the record's Bloomerang id."""

    def constituent(r: dict[str, Any]) -> int | None:
        found = bloomerang_ids.get((r["source"], str(r["source_id"])))
        return None if found is None or pd.isna(found) else int(found)

    with transaction(con):
        rows = merged.conflicts.to_dict("records") if len(merged.conflicts) else []
        ledgers.append_conflicts(con, run_id, [
            ledgers.Conflict(
                entity="constituents", source=r["source"], source_id=str(r["source_id"]), field=r["field"],
                source_value=r.get("source_value"), bloomerang_value=r.get("bloomerang_value"), rule=r["rule"],
                winner=r["winner"], bloomerang_id=constituent(r),
                source_modified_at=r.get("source_modified_at"), bloomerang_modified_at=r.get("bloomerang_modified_at"),
            )
            for r in rows
        ])
        outcome.conflicts += rows
        for r in merged.review.to_dict("records") if len(merged.review) else []:
            outcome.review_ids.append(review.add_review(con, run_id, review.ReviewItem(
                entity="constituents", source=r["source"], source_id=str(r["source_id"]), field=r["field"],
                source_value=r.get("source_value"), bloomerang_value=r.get("bloomerang_value"),
                reason=r.get("reason", "review"), bloomerang_id=constituent(r),
                source_modified_at=r.get("source_modified_at"),
                bloomerang_modified_at=r.get("bloomerang_modified_at"),
            )))
