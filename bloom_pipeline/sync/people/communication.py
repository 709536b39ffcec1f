"""Communication preferences: WeGive ``do_not_contact`` <-> Bloomerang restrictions and email interest.

Why a step of its own: an opt-out that reaches one system and not the other is the one sync error that
breaks a law (a donor who unsubscribed is mailed or called again), so it does not follow the merge's
last-modified-wins. The rule is one-way by design: **an opt-out on either side always wins over an opt-in,
and the sync never re-subscribes anyone** — it only ever adds restrictions and only ever writes
``do_not_contact: true``.

* Push (WeGive -> Bloomerang): a linked donor with ``do_not_contact`` gets the org's marks (default
  ``DoNotCall, DoNotMail, DoNotSolicit`` and ``EmailInterestType: OptedOut``) through
  ``PUT /constituent/{id}/updateCommunicationSettings``, with the update reason the API requires. The
  constituent is read just before the write, and the restrictions sent are its current ones plus the missing
  ones, so a restriction a person set in Bloomerang is never dropped.
* Pull (Bloomerang -> WeGive): a constituent holding one of ``pull_when`` (default ``DoNotSolicit`` or email
  ``OptedOut``) sets the donor's ``do_not_contact: true``. ``DoNotCall`` / ``DoNotMail`` alone are channel
  restrictions WeGive has no flag for: they stay in Bloomerang and do not silence the donor's e-mail there.
* The pair's *target* — the marks Bloomerang must hold — only grows, and a pulled opt-out never escalates:
  a donor who asked Bloomerang for no e-mail is not made DoNotCall by the echo of our own write-back.
* An override of an opt-in (a side that held the opt-out at the last sync and no longer does) is recorded in
  ``conflicts`` (field ``communication_preferences``, rule ``opt_out_wins``). People, not the sync, may
  re-subscribe a donor: when *both* sides have dropped the opt-out since the last sync, that is taken as
  their decision and the pair's target is cleared.

State: table ``communication_state`` (owned here, created on first use) keeps per linked WeGive donor what
both sides held after the last sync and the target; ``communication_log`` keeps every write and failure of a
run. Neither is in ``sync_log``, whose rows are the row accounts of the staged records. A failed write is
retried on the next run and counted as failed (exit status 1), never silently dropped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb

from bloom_pipeline import jsontext
from bloom_pipeline.errors import ApiError
from bloom_pipeline.mapping.spec import CommunicationSettings
from bloom_pipeline.staging import ledgers
from bloom_pipeline.staging.store import transaction
from bloom_pipeline.sync.context import RunContext

log = logging.getLogger(__name__)

RESTRICTIONS = ("DoNotCall", "DoNotMail", "DoNotSolicit")
EMAIL_OPT_OUT = "OptedOut"
FIELD = "communication_preferences"
RULE = "opt_out_wins"
_TRUE = {"1", "true", "yes", "y", "on", "t"}
_FALSE = {"0", "false", "no", "n", "off", "f", "", "null", "none"}

STATE_DDL = """
CREATE TABLE IF NOT EXISTS communication_state (
    source            VARCHAR NOT NULL,
    source_id         VARCHAR NOT NULL,
    bloomerang_id     BIGINT,
    wegive_opted_out  BOOLEAN NOT NULL,
    bloomerang_marks  JSON NOT NULL,
    target            JSON NOT NULL,
    run_id            VARCHAR NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, source_id)
)"""
LOG_DDL = """
CREATE TABLE IF NOT EXISTS communication_log (
    run_id         VARCHAR NOT NULL,
    source         VARCHAR NOT NULL,
    source_id      VARCHAR NOT NULL,
    bloomerang_id  BIGINT,
    direction      VARCHAR NOT NULL CHECK (direction IN ('push', 'pull')),
    action         VARCHAR NOT NULL CHECK (action IN ('updated', 'failed')),
    sent           JSON,
    error          VARCHAR,
    logged_at      TIMESTAMPTZ NOT NULL
)"""


# -- the pure part: values and decisions ------------------------------------------------------------------------

def parse_do_not_contact(value: Any) -> bool:
    """WeGive's list row types ``do_not_contact`` as a string: ``true``/``1``/``false``/``0``/null, or a bool.

    Any other non-empty value (a date it was set, a word we do not know) counts as opted out: wrongly not
    contacting a donor is a lost e-mail, wrongly contacting one is a breach."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, int | float):
        return value != 0
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    log.warning("WeGive do_not_contact value %r is not a boolean; treated as opted out", value)
    return True


def bloomerang_marks(constituent: Mapping[str, Any] | None) -> frozenset[str]:
    """The opt-out marks a Bloomerang constituent holds: its restrictions, and ``OptedOut`` for its email."""
    if not constituent:
        return frozenset()
    restrictions = constituent.get("CommunicationRestrictions") or []
    marks = {str(r) for r in restrictions if str(r) in RESTRICTIONS} if isinstance(restrictions, list) else set()
    if constituent.get("EmailInterestType") == EMAIL_OPT_OUT:
        marks.add(EMAIL_OPT_OUT)
    return frozenset(marks)


@dataclass(frozen=True)
class Base:
    """What a linked pair held after the last sync that looked at it, and the marks Bloomerang must keep."""

    wegive_opted_out: bool
    bloomerang_marks: frozenset[str]
    target: frozenset[str]


@dataclass(frozen=True)
class Decision:
    """What to write for one pair: marks to add in Bloomerang, whether to set WeGive's flag, and which of
    those writes override an opt-in (``conflicts``: the side, ``"wegive"`` or ``"bloomerang"``, whose opt-in
    loses)."""

    add_marks: frozenset[str] = frozenset()
    set_do_not_contact: bool = False
    target: frozenset[str] = frozenset()
    overrides: tuple[str, ...] = ()
    resubscribed: bool = False


def decide(wegive_opted_out: bool | None, marks: frozenset[str], base: Base | None,
           settings: CommunicationSettings, *, push: bool, pull: bool) -> Decision:
    """The writes one linked pair needs (pure; see the module docstring for the rules).

    ``wegive_opted_out`` is None when WeGive did not list the donor (archived, deleted): nothing is written to
    it, and its last known state keeps the Bloomerang side opted out."""
    pull_marks = frozenset(settings.pull_when)
    resubscribed = (base is not None and bool(base.target) and wegive_opted_out is False
                    and not (marks & base.target))
    target = set() if resubscribed or base is None else set(base.target)
    if (wegive_opted_out or (wegive_opted_out is None and base is not None and base.wegive_opted_out)) \
            and not target and not resubscribed:
        target |= settings.push_marks  # WeGive's own opt-out (one we pulled already has its target)
    if pull and marks & pull_marks:
        target |= marks  # Bloomerang's opt-out: kept as the pair's, never widened to the full set
    frozen = frozenset(target)
    held_in_wegive = base is not None and base.wegive_opted_out and not resubscribed and bool(frozen)
    wants_flag = bool(frozen & pull_marks) or held_in_wegive
    set_flag = pull and wegive_opted_out is False and wants_flag
    add = frozenset(frozen - marks) if push else frozenset()
    overrides: list[str] = []
    if add and base is not None and add & base.bloomerang_marks:
        overrides.append("bloomerang")  # Bloomerang dropped marks it held at the last sync: an opt-in loses
    if set_flag and base is not None and base.wegive_opted_out:
        overrides.append("wegive")  # WeGive cleared do_not_contact it held at the last sync
    return Decision(add_marks=add, set_do_not_contact=set_flag, target=frozen, overrides=tuple(overrides),
                    resubscribed=resubscribed)


def settings_body(constituent_id: int, current: Mapping[str, Any], add: Iterable[str],
                  reason: str) -> dict[str, Any]:
    """The ``updateCommunicationSettings`` body adding ``add`` to what the constituent holds now.

    Only the sections that change are sent; the restrictions are the current ones plus the new ones (the
    API replaces the list, so sending only ours would drop a restriction a person set)."""
    wanted = set(add)
    body: dict[str, Any] = {"Id": int(constituent_id)}
    held = [str(r) for r in current.get("CommunicationRestrictions") or [] if str(r) in RESTRICTIONS]
    new = [r for r in RESTRICTIONS if r in wanted and r not in held]
    if new:
        body["CommunicationRestrictions"] = {"UpdateReason": reason,
                                             "CommunicationRestrictions": [*held, *new]}
    if EMAIL_OPT_OUT in wanted and current.get("EmailInterestType") != EMAIL_OPT_OUT:
        body["EmailInterests"] = {"UpdateReason": reason, "EmailInterestType": EMAIL_OPT_OUT}
    return body


# -- the step ------------------------------------------------------------------------------------------------

@dataclass
class CommunicationOutcome:
    """What the step did: writes each way, failures, and the conflict rows it recorded."""

    to_bloomerang: int = 0
    to_wegive: int = 0
    failed: int = 0
    conflicts: list[ledgers.Conflict] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"opted_out_in_bloomerang": self.to_bloomerang, "opted_out_in_wegive": self.to_wegive,
                "failed": self.failed}


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(STATE_DDL)
    con.execute(LOG_DDL)


def load_bases(con: duckdb.DuckDBPyConnection) -> dict[str, Base]:
    ensure_tables(con)
    rows = con.execute("SELECT source_id, wegive_opted_out, bloomerang_marks, target FROM communication_state "
                       "WHERE source = 'wegive'").fetchall()
    return {str(sid): Base(bool(w), frozenset(jsontext.loads(m)), frozenset(jsontext.loads(t)))
            for sid, w, m, t in rows}


def _wegive_flags(ctx: RunContext) -> dict[str, bool] | None:
    """``do_not_contact`` of every donor this run listed, or None when the run read no WeGive donors (a Handbid
    job). Only the list row (``DonorTableResource``) carries it — not the donor detail (contracts/wegive-handbid.md
    §1.4) — so the extract keeps it on the records it stages (``extract.wegive.LIST_ONLY_FIELDS``)."""
    donors = ctx.extracted.records.get("wegive.donors")
    if donors is None:
        return None
    return {str(row["id"]): parse_do_not_contact(row.get("do_not_contact"))
            for row in donors if isinstance(row, dict) and row.get("id") is not None and "do_not_contact" in row}


def sync_communication(ctx: RunContext, con: duckdb.DuckDBPyConnection) -> CommunicationOutcome:
    """Bring every linked WeGive donor's opt-out to both systems (after constituents are created/updated)."""
    settings = ctx.org.communication
    outcome = CommunicationOutcome()
    push = settings.direction in ("push", "both") and ctx.direction in ("push", "both")
    pull = settings.direction in ("pull", "both") and ctx.direction in ("pull", "both")
    if not (push or pull):
        return outcome
    links = ledgers.links_frame(con, "constituents", "wegive")
    if links.empty:
        return outcome
    flags = _wegive_flags(ctx)
    if flags is None:
        return outcome
    bases = load_bases(con)
    snapshot = {int(r["Id"]): r for r in ctx.bloomerang_constituents()
                if isinstance(r, dict) and r.get("Id") is not None}
    fresh: dict[int, dict[str, Any]] = {}  # constituents read or written in this step (two donors, one person)
    for source_id, bloomerang_id in links[["source_id", "bloomerang_id"]].itertuples(index=False):
        sid, bid = str(source_id), int(bloomerang_id)
        base = bases.get(sid)
        flag = flags.get(sid)
        current = fresh.get(bid, snapshot.get(bid))
        decision = decide(flag, bloomerang_marks(current), base, settings, push=push, pull=pull)
        if base is None and not decision.target:
            continue  # nobody opted out: nothing to write, nothing to remember
        marks = bloomerang_marks(current)
        if (not decision.add_marks and not decision.set_do_not_contact and base is not None
                and base == Base(base.wegive_opted_out if flag is None else flag, marks, decision.target)):
            continue  # settled at an earlier run and unchanged since
        _settle(ctx, con, sid, bid, flag, current, base, decision, fresh, outcome)
    return outcome


def _settle(ctx: RunContext, con: duckdb.DuckDBPyConnection, sid: str, bid: int, flag: bool | None,
            current: dict[str, Any] | None, base: Base | None, decision: Decision,
            fresh: dict[int, dict[str, Any]], outcome: CommunicationOutcome) -> None:
    """One pair's writes, then its log rows, conflicts and new base, committed together."""
    settings = ctx.org.communication
    logs: list[tuple[str, str, dict[str, Any] | None, str | None]] = []
    marks_now = bloomerang_marks(current)
    bloomerang_ok = wegive_ok = True
    if decision.add_marks:
        try:
            live = ctx.clients.bloomerang.get_constituent(bid)  # the state a person may have just changed
            body = settings_body(bid, live, decision.add_marks, settings.update_reason)
            if len(body) > 1:
                live = ctx.clients.bloomerang.update_communication_settings(bid, body)
                logs.append(("push", "updated", body, None))
                outcome.to_bloomerang += 1
            fresh[bid] = live
            marks_now = bloomerang_marks(live)
        except ApiError as exc:
            bloomerang_ok = False
            logs.append(("push", "failed", {"add": sorted(decision.add_marks)}, str(exc)))
            log.warning("could not opt out Bloomerang constituent %s (WeGive donor %s): %s", bid, sid, exc)
    wegive_now = bool(flag)
    if decision.set_do_not_contact:
        body = {"do_not_contact": True}
        try:
            ctx.clients.wegive.update_donor(int(sid), body)
            logs.append(("pull", "updated", body, None))
            outcome.to_wegive += 1
            wegive_now = True
        except ApiError as exc:
            wegive_ok = False
            logs.append(("pull", "failed", body, str(exc)))
            log.warning("could not set do_not_contact on WeGive donor %s (Bloomerang %s): %s", sid, bid, exc)
    outcome.failed += int(not bloomerang_ok) + int(not wegive_ok)
    won = [side for side in decision.overrides if (bloomerang_ok if side == "bloomerang" else wegive_ok)]
    if flag is None and base is not None:
        wegive_now = base.wegive_opted_out  # not listed this run: keep what it held
    now = datetime.now(UTC)
    with transaction(con):
        if logs:
            con.executemany(
                "INSERT INTO communication_log VALUES (?, 'wegive', ?, ?, ?, ?, ?, ?, ?)",
                [[ctx.run_id, sid, bid, direction, action, json.dumps(sent) if sent else None, error, now]
                 for direction, action, sent, error in logs])
        conflicts = [_conflict(sid, bid, flag, marks_now if side == "wegive" else bloomerang_marks(current), side)
                     for side in won]
        ledgers.append_conflicts(con, ctx.run_id, conflicts)
        outcome.conflicts += conflicts
        if decision.target:
            con.execute(
                "INSERT OR REPLACE INTO communication_state VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                ["wegive", sid, bid, wegive_now, json.dumps(sorted(marks_now)), json.dumps(sorted(decision.target)),
                 ctx.run_id, now])
        elif base is not None:  # people re-subscribed the donor on both sides: forget the old opt-out
            con.execute("DELETE FROM communication_state WHERE source = 'wegive' AND source_id = ?", [sid])
            log.info("WeGive donor %s was re-subscribed on both sides by people; the sync takes it as theirs", sid)


def _conflict(sid: str, bid: int, flag: bool | None, marks: frozenset[str], loser: str) -> ledgers.Conflict:
    """A conflict row: the opt-out of one side overrode the other side's opt-in (``loser``)."""
    return ledgers.Conflict(
        entity="constituents", source="wegive", source_id=sid, field=FIELD, bloomerang_id=bid,
        source_value={"do_not_contact": bool(flag)}, bloomerang_value={"marks": sorted(marks)}, rule=RULE,
        winner="source" if loser == "bloomerang" else "bloomerang",
    )
