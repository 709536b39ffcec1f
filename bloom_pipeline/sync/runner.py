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
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from bloom_pipeline.mapping.spec import OrgConfig
from bloom_pipeline.staging import accounting, ledgers
from bloom_pipeline.staging.snapshot import publish_snapshot
from bloom_pipeline.staging.store import StagingStore, Window
from bloom_pipeline.sync import push
from bloom_pipeline.sync.apply import RecordResult, recover_pending
from bloom_pipeline.sync.canonical import custom_field_ids
from bloom_pipeline.sync.endpoints import Clients
from bloom_pipeline.sync.extract import Extracted, extract_bloomerang, extract_handbid, extract_wegive
from bloom_pipeline.sync.journal import Journal
from bloom_pipeline.sync.ledger import flush_journal
from bloom_pipeline.sync.schedules import ScheduleWriter
from bloom_pipeline.sync.stage import EntityGate, stage_all, validate_gates

log = logging.getLogger("bloom_pipeline.sync.runner")


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
    """The steps of one run for one org; each reads and writes the org's staging store."""

    def __init__(self, org: OrgConfig, store: StagingStore, clients: Clients, options: RunOptions,
                 run_id: str | None = None) -> None:
        self.org, self.store, self.clients, self.options = org, store, clients, options
        self.run_id = run_id or f"{datetime.now().strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self.extracted = Extracted()
        self.report = RunReport(self.run_id, org.name, database=store.path)
        self.field_ids: dict[str, dict[str, int]] = {}

    # -- steps -----------------------------------------------------------------------------------
    def start(self) -> None:
        with self.store.write() as con:
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
            self._load_field_ids()
            writers = push.writers(self.clients, self.field_ids)
            writers["schedules"] = ScheduleWriter(self.clients.bloomerang,
                                                  self.field_ids.get("transaction", {}).get("wegive"))
            with self.store.connect() as con:
                book = push.ledger(con, self.run_id, journal)
                settled = recover_pending(pending, writers, book)
                book.flush()
                for entity, source, source_id in pending:
                    journal.forget_pending(entity, source, source_id)
                    with ledgers.transaction(con):
                        ledgers.clear_pending(con, entity, source, source_id)
            return settled
        finally:
            journal.close()

    def extract(self) -> None:
        extract_bloomerang(self.clients.bloomerang, self.store, self.run_id, self.extracted)
        self._load_field_ids()
        extract_wegive(self.clients.wegive, self.store, self.run_id, self.extracted,
                       transactions_since=self.options.since, window=self.options.window)
        extract_handbid(self.clients.handbid, self.store, self.run_id, self.extracted,
                        contacts_since=self.options.since)

    def _load_field_ids(self) -> None:
        if not self.field_ids:
            fields = self.extracted.records.get("bloomerang.custom_fields")
            if fields is None:
                fields = [dict(f, Area=area) for area in ("Constituent", "Transaction")
                          for f in self.clients.bloomerang.custom_fields(area)]
            self.field_ids = custom_field_ids(self.org, fields)

    def stage(self) -> dict[str, EntityGate]:
        self.report.gates = stage_all(self.org, self.store, self.run_id, self.extracted, self.options.window)
        validate_gates(self.org, self.store, self.run_id, self.report.gates)
        return self.report.gates

    def plan(self) -> pd.DataFrame:
        self.report.plan = push.plan_run(self.org, self.store, self.run_id, self.field_ids, self.report.gates)
        return self.report.plan

    def apply(self) -> None:
        outcome = push.apply_run(self.org, self.store, self.clients, self.run_id, self.report.plan,
                                 self.field_ids, self.extracted, direction=self.options.direction)
        self.report.counts = outcome.counts
        self.report.conflicts = outcome.conflicts
        self.report.review_items = outcome.review_items

    def finish(self, status: str | None = None) -> RunReport:
        with self.store.connect() as con:
            accounts = accounting.compute_accounts(con, self.run_id, direction=self.options.direction)
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
        self.report.message = "; ".join(halted + self.report.problems) or None
        with self.store.write() as con:
            ledgers.finish_run(con, self.run_id, status=status, counts=accounting.counts_json(accounts),
                               message=self.report.message)
            if status == "succeeded" and not self.options.dry_run and self.options.window is None:
                for name, value in self.extracted.cursors.items():
                    ledgers.set_cursor(con, name, value, run_id=self.run_id)
        if not self.options.dry_run:
            self.report.snapshot = publish_snapshot(self.store).path
        return self.report


def run_sync(org: OrgConfig, store: StagingStore, clients: Clients, options: RunOptions,
             run_id: str | None = None) -> RunReport:
    """Run every step; a dry run works on a temporary copy of the staging file and stops at the plan."""
    if options.dry_run:
        with tempfile.TemporaryDirectory(prefix="bloom-dry-run-") as scratch:
            copy = StagingStore(Path(scratch) / store.path.name, org=org.name)
            if store.path.exists():
                shutil.copy2(store.path, copy.path)
            sync = OrgSync(org, copy, clients, options, run_id)
            sync.start()
            sync.extract()
            sync.stage()
            sync.plan()
            report = sync.finish()
            report.database = store.path
            return report
    sync = OrgSync(org, store, clients, options, run_id)
    sync.start()
    try:
        recovered = sync.recover()
        sync.extract()
        gates = sync.stage()
        if all(g.passed for g in gates.values()):
            sync.plan()
            sync.apply()
        for result in recovered:
            sync.report.counts.setdefault(result.entity, {}).setdefault("recovered", 0)
            sync.report.counts[result.entity]["recovered"] += int(result.action == "created")
        return sync.finish()
    except Exception as exc:
        log.exception("sync of %s failed", org.name)
        sync.report.message = f"{type(exc).__name__}: {exc}"
        try:
            sync.finish(status="failed")
        except Exception:  # noqa: BLE001 - the original error is the one to raise
            log.exception("could not record the failed run")
        raise
