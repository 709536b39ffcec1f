"""One org's sync, end to end: the in-process path of ``bloom-pipeline sync`` and ``demo``.

The steps are the same functions the Dagster assets call (``defs/``): extract → stage (map, quarantine)
→ validate (pandera + reject threshold, a gate) → plan → apply (funds, constituents, transactions) →
linked donors both ways → finish (row accounting, run ledger, cursors, analyst snapshot).

A dry run executes the same steps against a throw-away copy of the org's staging file and stops after
the plan, so it changes nothing anywhere — no API write, no cursor, no staging row.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from bloom_pipeline.errors import ApiError, ConfigurationError
from bloom_pipeline.mapping.spec import OrgConfig
from bloom_pipeline.staging import accounting, ledgers
from bloom_pipeline.staging.snapshot import publish_snapshot
from bloom_pipeline.staging.store import StagingStore, Window
from bloom_pipeline.sync.apply import load
from bloom_pipeline.sync.apply.journal import Journal
from bloom_pipeline.sync.apply.loop import RecordResult, recover_pending
from bloom_pipeline.sync.apply.outcomes import StoreLedger, flush_journal
from bloom_pipeline.sync.context import RunContext
from bloom_pipeline.sync.endpoints import Clients
from bloom_pipeline.sync.extract.bloomerang import extract_bloomerang
from bloom_pipeline.sync.extract.cursors import parse_time
from bloom_pipeline.sync.extract.handbid import extract_handbid
from bloom_pipeline.sync.extract.records import Extracted
from bloom_pipeline.sync.extract.retries import extract_retries
from bloom_pipeline.sync.extract.wegive import extract_wegive
from bloom_pipeline.sync.garbage import fewer_collections
from bloom_pipeline.sync.identity.merges import relink_merged
from bloom_pipeline.sync.merge.funds import FundNamesOutcome, sync_fund_names
from bloom_pipeline.sync.merge.linked import merge_linked
from bloom_pipeline.sync.merge.writeback import write_back_correlation
from bloom_pipeline.sync.people import custom_fields, sync_communication, sync_custom_fields
from bloom_pipeline.sync.people.communication import CommunicationOutcome
from bloom_pipeline.sync.people.custom_fields import CustomFieldOutcome
from bloom_pipeline.sync.people.events import EventOutcome, sync_event_interactions
from bloom_pipeline.sync.people.lifecycle import DeletionOutcome, sync_source_deletions
from bloom_pipeline.sync.people.wegive_creates import CreateOutcome, create_missing_donors
from bloom_pipeline.sync.plan.push_plan import plan_run
from bloom_pipeline.sync.progress import Progress, budget_of, current, planned_writes, reporting
from bloom_pipeline.sync.run_lock import run_lock
from bloom_pipeline.sync.stage import EntityGate, stage_all, staged_frame, validate_gates

log = logging.getLogger(__name__)
_Outcome = TypeVar("_Outcome")


@dataclass
class RunOptions:
    direction: str = "both"  # push | pull | both
    dry_run: bool = False
    since: datetime | None = None
    window: Window | None = None


@dataclass
class RunReport:
    """What a run did, for the CLI summary, the exit status and Dagster metadata."""

    run_id: str
    org: str
    status: str = "running"
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    gates: dict[str, EntityGate] = field(default_factory=dict)
    plan: pd.DataFrame | None = None
    conflicts: int = 0
    review_items: int = 0
    problems: list[str] = field(default_factory=list)
    message: str | None = None
    database: Path | None = None
    snapshot: Path | None = None
    requests: Counter = field(default_factory=Counter)  # Bloomerang requests by (method, path template)
    failure_reasons: list[tuple[str, int]] = field(default_factory=list)  # why writes failed, most common first
    relinked: int = 0  # links moved to the survivor of a Bloomerang merge (constituent_merges)
    missing_names: list = field(default_factory=list)  # plan.named.MissingName: org-YAML names Bloomerang lacks

    @property
    def failed_records(self) -> int:
        return sum(c.get("failed", 0) for c in self.counts.values())

    @property
    def quarantined_records(self) -> int:
        return sum(g.rejected for g in self.gates.values())

    @property
    def exit_code(self) -> int:
        """0: every record succeeded; 1: a record failed or was quarantined, or the load was halted."""
        ok = self.status == "succeeded" and not self.failed_records and not self.quarantined_records
        return 0 if ok else 1


class OrgSync:
    """The steps of one run for one org, in order; each reads and writes the org's staging store."""

    def __init__(self, org: OrgConfig, store: StagingStore, clients: Clients, options: RunOptions,
                 run_id: str | None = None) -> None:
        self.options = options
        run_id = run_id or f"{datetime.now().strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self.ctx = RunContext(org, store, clients, run_id, direction=options.direction)
        self.report = RunReport(run_id, org.name, database=store.path)
        self.started_at = datetime.now(UTC)

    @property
    def org(self) -> OrgConfig:
        return self.ctx.org

    @property
    def store(self) -> StagingStore:
        return self.ctx.store

    @property
    def clients(self) -> Clients:
        return self.ctx.clients

    @property
    def run_id(self) -> str:
        return self.ctx.run_id

    @property
    def extracted(self) -> Extracted:
        return self.ctx.extracted

    # -- steps -----------------------------------------------------------------------------------
    def start(self) -> None:
        """Open the run; a run of this org still ``running`` is one whose process died (runs of one org
        never overlap: the Dagster queue and the CLI's run lock keep one at a time): it is closed as failed,
        saying so, and its journal is replayed by ``recover``."""
        with self.store.write() as con:
            if not self.options.dry_run:
                ledgers.abandon_runs(con, self.org.name, by_run_id=self.run_id)
            ledgers.start_run(con, self.run_id, org=self.org.name, direction=self.options.direction,
                              dry_run=self.options.dry_run)

    def recover(self) -> list[RecordResult]:
        """Replay what a killed run journaled but had not yet moved into DuckDB, then settle the creates
        it left pending by looking them up by correlation id — all before anything is planned."""
        if self.options.dry_run:
            return []
        journal = Journal.beside(self.store.path)
        try:
            with self.store.connect() as con:
                flush_journal(con, journal)
                pending = journal.pending() + [(s.entity, s.source, s.source_id) for s in ledgers.pending_states(con)]
            if not pending:
                return []
            with self.store.connect() as con:
                book = StoreLedger(con, self.run_id, journal)
                settled = recover_pending(pending, load.writers(self.ctx), book)
                book.flush()
                for entity, source, source_id in pending:
                    journal.forget_pending(entity, source, source_id)
                    with ledgers.transaction(con):
                        ledgers.clear_pending(con, entity, source, source_id)
            return settled
        finally:
            journal.close()

    def extract(self) -> None:
        ctx = self.ctx
        extract_bloomerang(ctx.clients.bloomerang, ctx.store, ctx.run_id, ctx.extracted)
        ctx.snapshot_changed()
        extract_wegive(ctx.clients.wegive, ctx.store, ctx.run_id, ctx.extracted,
                       read_connections=ctx.org.wegive.read_connections,
                       transactions_since=self.options.since, window=self.options.window)
        extract_handbid(ctx.clients.handbid, ctx.store, ctx.run_id, ctx.extracted,
                        contacts_since=self.options.since)
        if self.options.window is None:
            extract_retries(ctx.store, ctx.run_id, ctx.extracted)

    def stage(self) -> dict[str, EntityGate]:
        self.report.gates = stage_all(self.org, self.store, self.run_id, self.extracted, self.options.window)
        validate_gates(self.org, self.store, self.run_id, self.report.gates)
        return self.report.gates

    def plan(self) -> pd.DataFrame:
        moves = relink_merged(self.ctx)  # links to constituents Bloomerang merged away move to the survivor first
        self.report.relinked = sum(m.survivor_id is not None for m in moves)
        self.report.plan = plan_run(self.ctx, self.report.gates)
        self.report.missing_names = list(self.ctx.missing_names.values())
        return self.report.plan

    def apply(self) -> None:
        """Funds, then constituents; correlation ids back to WeGive; linked donors merged both ways
        (all but those the push just planned); the people steps (pull creates into WeGive, opt-outs, Handbid
        event interactions); then recurring schedules and transactions."""
        ctx, plan = self.ctx, self.report.plan
        people = staged_frame(ctx.store, "constituents", ctx.run_id)
        with ctx.store.connect() as con:
            writes = load.Load(ctx, con)
            if ctx.pushing:
                writes.apply(plan, "funds")
                writes.apply(plan, "constituents")
            writes.flush()
            write_back_correlation(ctx, con)
            # beside the records' own writes, each skipped (not fatal) when its API cannot be reached: aside()
            funds = self.aside("fund names", sync_fund_names, con, FundNamesOutcome)  # renames both ways
            planned = plan[plan["entity"] == "constituents"]
            merged = merge_linked(ctx, con, skip=set(zip(planned["source"], planned["source_id"].astype(str),
                                                          strict=True)))
            created = self.aside("WeGive creates", create_missing_donors, con, CreateOutcome)  # pull creates
            communication = self.aside("communication", sync_communication, con, CommunicationOutcome)  # opt-outs
            events = self.aside("event interactions", sync_event_interactions, con, EventOutcome)  # Handbid
            customs = self.aside("custom fields", sync_custom_fields, con, CustomFieldOutcome)  # both ways
            deletions = self.aside("source deletions", sync_source_deletions, con, DeletionOutcome)  # archived
            load.log_untouched(con, ctx.run_id, people)
            if ctx.pushing:
                writes.apply_transactions(plan)
            outcome = writes.close()
        self.report.counts = outcome.counts
        self.report.conflicts, self.report.review_items = len(merged.conflicts), len(merged.review_ids)
        self.report.conflicts += len(communication.conflicts) + len(funds.conflicts)
        self.report.review_items += len(funds.review_ids)
        if funds.to_bloomerang or funds.to_wegive or funds.failed:
            self.report.counts["fund_names"] = funds.counts()
        if communication.to_bloomerang or communication.to_wegive or communication.failed:
            self.report.counts["communication"] = communication.counts()
        if created.anything:
            self.report.counts["wegive_creates"] = created.counts()
        if events.created or events.updated or events.adopted or events.failed:
            self.report.counts["event_interactions"] = events.counts()
        self.report.conflicts += customs.conflicts
        self.report.review_items += len(customs.review_ids)
        if customs.to_bloomerang or customs.to_wegive or customs.failed or customs.quarantined:
            self.report.counts["custom_fields"] = customs.counts()
        self.note_custom_field_problems(customs.problems)
        if deletions.recorded or deletions.restored or deletions.failed:
            self.report.counts["source_deletions"] = {"recorded": deletions.recorded, "inactivated":
                                                      deletions.inactivated, "failed": deletions.failed,
                                                      "restored": deletions.restored}
        if merged.pushed or merged.pulled or merged.failed:
            counts = self.report.counts.setdefault("constituents", {})
            counts["merged_push"] = merged.pushed
            counts["merged_pull"] = merged.pulled
            counts["failed"] = counts.get("failed", 0) + merged.failed

    def aside(self, name: str, step: Callable[[RunContext, Any], _Outcome], con: Any,
              outcome: Callable[..., _Outcome]) -> _Outcome:
        """Run one of the steps beside the records' own writes (fund names, the people steps). When its API
        cannot be reached this run (a read that failed after every retry), the step is skipped instead of
        failing the run: the gifts still load, the run says why and counts the step as failed (exit status 1),
        and the step runs again next run — each of them works from what both systems hold, not from a cursor.
        """
        try:
            return step(self.ctx, con)
        except ApiError as exc:
            log.warning("%s: not synced this run: %s", name, exc)
            self.note_custom_field_problems([f"{name}: not synced this run ({exc})"])
            return outcome(failed=1)

    def check_custom_fields(self) -> None:
        """A dry run says which of the org's custom fields Bloomerang lacks, before any run writes."""
        self.note_custom_field_problems(custom_fields.check(self.ctx))

    def note_custom_field_problems(self, problems: list[str]) -> None:
        if problems:
            self.report.message = "; ".join(([self.report.message] if self.report.message else []) + problems)

    def finish(self, status: str | None = None) -> RunReport:
        with self.store.connect() as con:
            accounts = accounting.compute_accounts(con, self.run_id, direction=self.options.direction)
            self.report.failure_reasons = [(str(e), int(n)) for e, n in con.execute(
                "SELECT coalesce(error, 'no message'), count(*) FROM sync_log WHERE run_id = ? AND action = 'failed' "
                "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5", [self.run_id]).fetchall()]
        for entity, account in accounts.items():
            counts = self.report.counts.setdefault(entity, {})
            for action in ("created", "updated", "unchanged", "skipped", "failed"):
                counts[action] = getattr(account, action)
        loaded = not self.options.dry_run and all(g.passed for g in self.report.gates.values())
        self.report.problems = accounting.check_accounts(accounts, loaded=loaded)
        halted = [g.blocked_reason for g in self.report.gates.values() if not g.passed]
        if status is None:
            status = "halted" if halted else "succeeded"
        self.report.status = status
        failed = {e: c.get("failed", 0) for e, c in self.report.counts.items() if c.get("failed")}
        failures = [f"{n} {e} failed (bloom-pipeline status --org {self.org.name} --failures; they are retried "
                    "on the next run)" for e, n in failed.items()]
        given = [self.report.message] if self.report.message else []
        self.report.message = "; ".join(given + halted + self.report.problems + failures) or None
        with self.store.write() as con:
            ledgers.finish_run(con, self.run_id, status=status, counts=accounting.counts_json(accounts),
                               message=self.report.message)
            if status == "succeeded" and not self.options.dry_run and self.options.window is None:
                # never past the run's start minus the clock-skew tolerance: a record stamped in the future
                # cannot poison the cursor, and a source clock running behind by up to the tolerance loses
                # nothing; a UTC list read to its end is settled up to that time (Extracted.read_through)
                ceiling = self.started_at - self.org.clock_skew_tolerance
                settled, newest = self.extracted.read_through, self.extracted.cursors
                for name in sorted(settled | newest.keys()):
                    at = ceiling if name in settled else min(parse_time(newest[name]), ceiling)
                    ledgers.set_cursor(con, name, at.isoformat(), run_id=self.run_id)
        if not self.options.dry_run:
            self.report.snapshot = publish_snapshot(self.store).path
        return self.report


def run_sync(org: OrgConfig, store: StagingStore, clients: Clients, options: RunOptions,
             run_id: str | None = None, progress: Progress | None = None) -> RunReport:
    """Run every step; a dry run works on a temporary copy of the staging file and stops at the plan.

    ``progress`` (``sync/progress.py``) shows each step and entity as it goes; None: silent."""
    with reporting(progress), fewer_collections():
        return _run_sync(org, store, clients, options, run_id, progress)


def _run_sync(org: OrgConfig, store: StagingStore, clients: Clients, options: RunOptions,
              run_id: str | None, progress: Progress | None) -> RunReport:
    if options.dry_run:
        with tempfile.TemporaryDirectory(prefix="bloom-dry-run-") as scratch:
            copy = StagingStore(Path(scratch) / store.path.name, org=org.name)
            if store.path.exists():
                shutil.copy2(store.path, copy.path)
            sync = OrgSync(org, copy, clients, options, run_id)
            attach_progress(progress, sync)
            sync.start()
            with _phase("extract"):
                sync.extract()
            with _phase("stage"):
                sync.stage()
            with _phase("plan"):
                sync.plan()
            sync.check_custom_fields()
            report = sync.finish()
            report.database = store.path
            return report
    with run_lock(store.path, org.name), store.kept_open():
        sync = OrgSync(org, store, clients, options, run_id)
        attach_progress(progress, sync)
        return _run(sync)


def attach_progress(progress: Progress | None, sync: OrgSync) -> None:
    """Tell a reporter which run it follows and how to read the Bloomerang budget (the ETA's input)."""
    if progress is not None:
        bloomerang = sync.clients.bloomerang
        progress.attach(run_id=sync.run_id, org=sync.org.name, budget=budget_of(bloomerang),
                        requests=lambda: sum(bloomerang.request_counts.values()))


def _phase(name: str):
    """A step shown by the run's progress reporter (silent when none is installed)."""
    return current().phase(name)


def _run(sync: OrgSync) -> RunReport:
    org = sync.org
    sync.start()
    try:
        recovered = sync.recover()
        with _phase("extract"):
            sync.extract()
        with _phase("stage"):
            gates = sync.stage()
        if all(g.passed for g in gates.values()):
            with _phase("plan"):
                sync.plan()
            current().planned(planned_writes(sync.report.plan))
            with _phase("apply"):
                sync.apply()
        for result in recovered:
            sync.report.counts.setdefault(result.entity, {}).setdefault("recovered", 0)
            sync.report.counts[result.entity]["recovered"] += int(result.action == "created")
        return sync.finish()
    except Exception as exc:
        if isinstance(exc, ConfigurationError):  # expected and self-explaining: one line, no traceback
            log.error("sync of %s failed: %s", org.name, exc)
        else:
            log.exception("sync of %s failed", org.name)
        sync.report.message = f"{type(exc).__name__}: {exc}"
        try:
            sync.finish(status="failed")
        except Exception:  # noqa: BLE001 - the original error is the one to raise
            log.exception("could not record the failed run")
        raise
