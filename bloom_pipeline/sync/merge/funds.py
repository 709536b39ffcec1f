"""Fund names both ways: a fund renamed in WeGive or in Bloomerang is renamed on the other side, once.

A WeGive fund and its Bloomerang fund are linked by identity (``sync_state``: WeGive's ``bloomerang_id``
first, then the name — ``identity/by_reference.resolve_funds``). Which side renamed is decided three-way,
as for donors (``three_way.py``): ``sync_state`` keeps the name each side had at the last sync
(``source_snapshot`` / ``bloomerang_snapshot`` = ``{"name": …}``), and a side whose name moved since is
the side that changed. Bloomerang funds have no ``lastModified`` and no AuditTrail, so there is no "newest
wins": a rename on both sides to different names is a conflict (``conflicts``) and waits in the review
queue (field ``name``) until someone picks a side (``bloom-pipeline review resolve``); the next run applies
it. A pair first linked under two different names is queued the same way (nothing says which is right).

A rename only renames: it never creates a fund (the push plan creates funds). After a write the new name
becomes both sides' base, so the next run is quiet. A failed write keeps the old base, so it is retried on
the next run, and never stops the other funds. ``decide`` is pure; ``sync_fund_names`` does the writes.

WeGive's ``PUT /dashboard/funds/{fund}`` is not in its public OpenAPI (contracts/wegive-handbid.md §1.2):
it is the same call the correlation write-back (``writeback.py``) already makes for ``bloomerang_id``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from bloom_pipeline.errors import ApiError
from bloom_pipeline.staging import ledgers, review
from bloom_pipeline.staging.store import transaction
from bloom_pipeline.sync.context import RunContext
from bloom_pipeline.sync.fields import BLOOMERANG, SOURCE
from bloom_pipeline.sync.stage import staged_frame

log = logging.getLogger(__name__)

FIELD = "name"
NEEDS = {BLOOMERANG: "push", SOURCE: "pull"}  # the run direction a rename of that side needs
# what ``decide`` returns: nothing to do, a rename of one side, a settled base, or a question for a person
ACTIONS = ("same", "to_bloomerang", "to_wegive", "settle", "conflict", "first_link")


@dataclass(frozen=True)
class FundPair:
    """One linked fund: each side's name now and at the last sync (None: not recorded yet)."""

    wegive_id: str
    bloomerang_id: int
    wegive: str
    bloomerang: str
    base_wegive: str | None = None
    base_bloomerang: str | None = None


@dataclass(frozen=True)
class FundDecision:
    action: str
    name: str | None = None  # the name both sides end with (renames and settles)


@dataclass
class FundNamesOutcome:
    to_bloomerang: int = 0
    to_wegive: int = 0
    failed: int = 0
    conflicts: list[ledgers.Conflict] = field(default_factory=list)
    review_ids: list[int] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"renamed_in_bloomerang": self.to_bloomerang, "renamed_in_wegive": self.to_wegive,
                "failed": self.failed}


def same_name(a: Any, b: Any) -> bool:
    """Fund names are the same fund whatever their case and spacing (Bloomerang keeps them unique)."""
    return " ".join(str(a or "").split()).casefold() == " ".join(str(b or "").split()).casefold()


def _text(value: Any) -> str:
    return str(value or "").strip()


def decide(pair: FundPair) -> FundDecision:
    """Three-way: which side renamed the fund since the last sync, and what that means for the other."""
    wegive, bloomerang = _text(pair.wegive), _text(pair.bloomerang)
    if pair.base_wegive is None or pair.base_bloomerang is None:
        return FundDecision("settle", bloomerang) if same_name(wegive, bloomerang) else FundDecision("first_link")
    wegive_moved = wegive != _text(pair.base_wegive)
    bloomerang_moved = bloomerang != _text(pair.base_bloomerang)
    if not wegive_moved and not bloomerang_moved:
        return FundDecision("same")
    if wegive_moved and bloomerang_moved:
        return FundDecision("settle", bloomerang) if same_name(wegive, bloomerang) else FundDecision("conflict")
    if wegive_moved:
        return FundDecision("to_bloomerang", wegive)
    return FundDecision("to_wegive", bloomerang)


def from_decision(pair: FundPair, item: review.ReviewItem) -> FundDecision:
    """A reviewer's answer to a fund-name item: take WeGive's name, Bloomerang's, or a typed one."""
    if item.decision == "source":
        return FundDecision("to_bloomerang", _text(pair.wegive))
    if item.decision == "bloomerang":
        return FundDecision("to_wegive", _text(pair.bloomerang))
    typed = _text(item.decided_value)
    if not typed:  # a fund needs a name (both APIs refuse a blank one): nothing to write until it is answered again
        log.warning("review item %s gives fund %s a blank name: not applied", item.id, pair.wegive_id)
        return FundDecision("same")
    return FundDecision("both", typed)


def fund_pairs(states: pd.DataFrame, staged: pd.DataFrame, bloomerang_funds: list[dict[str, Any]]) -> list[FundPair]:
    """The linked WeGive funds staged this run, with Bloomerang's current name. A fund missing from the run's
    Bloomerang extract is one this run just created (it has the WeGive name we gave it) — unless the pair has a
    base already: then Bloomerang's name is unknown this run, and guessing it could revert a rename, so the
    pair waits for a run that reads it."""
    names = {str(r["source_id"]): r.get("name") for r in staged.to_dict("records")} if len(staged) else {}
    current = {int(f["Id"]): f.get("Name") for f in bloomerang_funds if f.get("Id") is not None}
    pairs = []
    for row in states.dropna(subset=["bloomerang_id"]).to_dict("records"):
        source_id, bloomerang_id = str(row["source_id"]), int(row["bloomerang_id"])
        if source_id not in names or not _text(names[source_id]):
            continue
        base_w = _snapshot_name(row.get("source_snapshot"))
        base_b = _snapshot_name(row.get("bloomerang_snapshot"))
        if bloomerang_id not in current and (base_w is not None or base_b is not None):
            continue
        pairs.append(FundPair(source_id, bloomerang_id, _text(names[source_id]),
                              _text(current.get(bloomerang_id, names[source_id])), base_w, base_b))
    return pairs


def _snapshot_name(value: Any) -> str | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value.get(FIELD) if isinstance(value, dict) else None


def owned_by_merge(states: pd.DataFrame) -> set[tuple[str, str]]:
    """Linked WeGive funds: their renames are this merge's, never the push plan's (which would overwrite a
    Bloomerang rename, push over a conflict, or rename a pair still waiting for a person)."""
    if states is None or states.empty:
        return set()
    return {(str(r["source"]), str(r["source_id"])) for r in states.to_dict("records")
            if r.get("source") == "wegive" and not pd.isna(r.get("bloomerang_id"))}


def sync_fund_names(ctx: RunContext, con: duckdb.DuckDBPyConnection) -> FundNamesOutcome:
    """Rename each linked fund on the side that did not change; queue what a person must decide."""
    outcome = FundNamesOutcome()
    states = ledgers.states_frame(con, "funds", "wegive")
    staged = staged_frame(ctx.store, "funds", ctx.run_id)
    hashes = {str(r["source_id"]): r.get("payload_hash") for r in staged.to_dict("records")} if len(staged) else {}
    for pair in fund_pairs(states, staged, ctx.extracted.records.get("bloomerang.funds", [])):
        decisions = review.decisions_for(con, "funds", "wegive", pair.wegive_id)
        answered = next((d for d in decisions if d.field == FIELD), None)
        decision = from_decision(pair, answered) if answered is not None else decide(pair)
        if decision.action == "same":
            continue
        if decision.action in ("conflict", "first_link"):
            _queue(con, ctx.run_id, pair, decision.action, outcome)
            continue
        if not _write(ctx, pair, decision, outcome):
            continue
        with transaction(con):
            _settle(con, ctx.run_id, pair, decision, hashes.get(pair.wegive_id))
            if answered is not None and answered.id is not None:
                review.mark_applied(con, [answered.id], ctx.run_id)
    return outcome


def _write(ctx: RunContext, pair: FundPair, decision: FundDecision, outcome: FundNamesOutcome) -> bool:
    """Rename the side(s) the decision names; False when the write is not this run's or failed."""
    name = decision.name or ""
    targets = {"to_bloomerang": [BLOOMERANG], "to_wegive": [SOURCE], "both": [BLOOMERANG, SOURCE],
               "settle": []}[decision.action]
    if not all(ctx.direction in (NEEDS[t], "both") for t in targets):
        return False  # a push-only run leaves a WeGive rename's base as is: a later run sends it
    try:
        if BLOOMERANG in targets and name != pair.bloomerang:
            ctx.clients.bloomerang.update_fund(pair.bloomerang_id, {"Name": name})
            log.info("renamed Bloomerang fund %s %r -> %r (as in WeGive)", pair.bloomerang_id, pair.bloomerang, name)
            outcome.to_bloomerang += 1
        if SOURCE in targets and name != pair.wegive:
            ctx.clients.wegive.update_fund(int(pair.wegive_id), {"name": name})
            log.info("renamed WeGive fund %s %r -> %r (as in Bloomerang)", pair.wegive_id, pair.wegive, name)
            outcome.to_wegive += 1
    except ApiError as exc:
        log.warning("could not rename fund (WeGive %s, Bloomerang %s) to %r: %s", pair.wegive_id,
                    pair.bloomerang_id, name, exc)
        outcome.failed += 1
        return False
    return True


def _bases(pair: FundPair, decision: FundDecision) -> tuple[str, str]:
    """(WeGive's, Bloomerang's) name once the decision is written: the next run compares against these."""
    name = decision.name or ""
    return {"settle": (pair.wegive, pair.bloomerang), "to_bloomerang": (pair.wegive, pair.wegive),
            "to_wegive": (pair.bloomerang, pair.bloomerang), "both": (name, name)}[decision.action]


def _settle(con: duckdb.DuckDBPyConnection, run_id: str, pair: FundPair, decision: FundDecision,
            payload_hash: Any) -> None:
    state = ledgers.get_state(con, "funds", "wegive", pair.wegive_id) or ledgers.SyncState(
        "funds", "wegive", pair.wegive_id, pair.bloomerang_id)
    base_wegive, base_bloomerang = _bases(pair, decision)
    state.source_snapshot, state.bloomerang_snapshot = {FIELD: base_wegive}, {FIELD: base_bloomerang}
    if payload_hash is not None:
        state.source_hash = str(payload_hash)
    state.last_run_id = run_id
    ledgers.upsert_state(con, state)


def _queue(con: duckdb.DuckDBPyConnection, run_id: str, pair: FundPair, action: str,
           outcome: FundNamesOutcome) -> None:
    reason = ("renamed on both sides since the last sync" if action == "conflict"
              else "linked under two different names")
    with transaction(con):
        if action == "conflict":
            conflict = ledgers.Conflict(entity="funds", source="wegive", source_id=pair.wegive_id, field=FIELD,
                                        source_value=pair.wegive, bloomerang_value=pair.bloomerang,
                                        rule="both_changed", winner="review", bloomerang_id=pair.bloomerang_id)
            open_items = review.list_reviews(con)
            if not any(i.entity == "funds" and i.source_id == pair.wegive_id and i.field == FIELD
                       for i in open_items):
                ledgers.append_conflicts(con, run_id, [conflict])  # once per conflict, not once per run
                outcome.conflicts.append(conflict)
        outcome.review_ids.append(review.add_review(con, run_id, review.ReviewItem(
            entity="funds", source="wegive", source_id=pair.wegive_id, field=FIELD, source_value=pair.wegive,
            bloomerang_value=pair.bloomerang, reason=reason, bloomerang_id=pair.bloomerang_id)))
