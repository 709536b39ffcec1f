"""The pipeline end to end against ``Sandbox(messy=True)``: every hostile record the sandbox plants is handled.

``sandbox/data/messy.py`` plants the records a real organization's APIs hold (a null id, two rows under one id,
dates of ``31/02/2025`` and ``2026-13-45``, amounts of 2^63 cents and ``true``, modification times of year 9999
and ``"soon"``, an invalid e-mail, a Handbid payment listed under two events) and lists them in
``sandbox.messy_manifest``. Two syncs of the demo org run against a 100-donor world as ``bloom-pipeline sync``
runs them (``run_org``, as tests/pipeline/test_hostile_records.py does).

What it protects, per manifest entry: a record ``expected`` to be quarantined is, with a reason naming its
problem, and is not in Bloomerang; a value ``expected`` to be dropped is a quarantine row of kind 'field' and
its record is in Bloomerang. And for the runs: both succeed with no error logged and no load halted, the row
accounts are exact, the second run writes nothing, and no cursor is in the future although records stamped
in year 9999 were read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bloom_pipeline.sandbox.faults import Knobs
from bloom_pipeline.sandbox.server import Sandbox
from bloom_pipeline.staging import accounting
from bloom_pipeline.staging.store import StagingStore
from bloom_pipeline.sync.cli import run_org
from bloom_pipeline.sync.extract.cursors import read_cursor
from bloom_pipeline.sync.runner import RunReport
from tests.pipeline.bloomerang_records import by_correlation

pytestmark = pytest.mark.slow  # starts sandbox servers

DONORS, SEED = 100, 42
WRITES = frozenset({"POST", "PUT", "DELETE", "PATCH"})
# the demo org's correlation custom fields (sandbox ids): where a landed record's source id is in Bloomerang
CORRELATION = {("wegive", "donors"): ("constituents", 901), ("handbid", "contacts"): ("constituents", 902),
               ("wegive", "transactions"): ("transactions", 911), ("handbid", "payments"): ("transactions", 912)}
# what a quarantine reason says about each planted problem (the pipeline's wording)
REASONS = {
    "missing id": "id: missing id",
    "duplicate id": "duplicate id",
    "duplicate id (other amount)": "duplicate id",
    "duplicate id in two auctions": "duplicate id",
    "invalid date 31/02/2025": "'31/02/2025' is not a date",
    "invalid date 2026-13-45": "'2026-13-45' is not a date",
    "amount 2^63 cents": "amount out of range: 9223372036854775808 cents",
    "amount true": "not a number: true is a true/false value",
    "invalid email": "is not a valid email address",
    "a fraction of a cent": "'4200.5' is not an amount in whole cents",
    "10 KB last name": "LastName: 10,000 characters, more than Bloomerang's 255",
}
CURSORS = ("wegive.transactions.updated_at", "handbid.contacts.dateUpdated")


@dataclass
class World:
    sb: Sandbox
    data_dir: Path
    reports: list[RunReport] = field(default_factory=list)
    writes_in_second_run: dict[str, int] = field(default_factory=dict)
    errors_logged: list[str] = field(default_factory=list)

    @property
    def store(self) -> StagingStore:
        return StagingStore.for_org("demo", data_dir=self.data_dir)

    def sync(self) -> RunReport:
        report = run_org("demo", direction="both", dry_run=False, since=None, mappings_dir=None,
                         data_dir=str(self.data_dir), urls=self.sb.urls, quiet=True,
                         overrides={"handbid_org_id": self.sb.handbid_org_id})
        self.reports.append(report)
        return report

    def quarantine(self, run_id: str) -> list[dict[str, Any]]:
        return self.store.read_frame("SELECT source, entity, source_id, kind, reasons, raw, field, value "
                                     "FROM quarantine WHERE run_id = ? ORDER BY id", [run_id]).to_dict("records")

    def in_bloomerang(self, api: str, entity: str) -> dict[str, list[dict[str, Any]]]:
        """Bloomerang records by the correlation value ``api``'s ``entity`` writes (its source id)."""
        kind, field_id = CORRELATION[(api, entity)]
        return by_correlation(self.sb.stores["bloomerang"], kind, field_id)


class _ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    sb = Sandbox(donors=DONORS, seed=SEED, knobs=Knobs(rate_limit=None), messy=True).start()
    try:
        w = World(sb, tmp_path_factory.mktemp("messy") / "data")
        handler = _ErrorRecords()
        logging.getLogger().addHandler(handler)
        try:
            w.sync()
            sb.request_log.clear()
            w.sync()
        finally:
            logging.getLogger().removeHandler(handler)
        w.errors_logged = handler.messages
        w.writes_in_second_run = {f"{api} {method} {path}": n for (api, method, path), n
                                  in sb.request_log.counts().items() if method in WRITES}
        yield w
    finally:
        sb.stop()


def test_the_manifest_lists_every_kind_of_hostile_record(world: World) -> None:
    manifest = world.sb.messy_manifest
    whats = {(e["api"], e["entity"], e["what"]) for e in manifest}
    for wanted in (("wegive", "donors", "missing id"), ("wegive", "donors", "duplicate id"),
                   ("wegive", "donors", "invalid email"), ("wegive", "transactions", "missing id"),
                   ("wegive", "transactions", "amount 2^63 cents"), ("wegive", "transactions", "amount true"),
                   ("wegive", "transactions", "updated_at year 9999"), ("handbid", "payments", "amount true"),
                   ("handbid", "payments", "duplicate id in two auctions")):
        assert wanted in whats, sorted(whats)
    assert 15 <= len(manifest) <= 20
    assert {e["expected"] for e in manifest} <= {"quarantined", "field dropped", "lands"}


def test_both_runs_succeed_without_an_error_or_a_halted_load(world: World) -> None:
    assert [r.status for r in world.reports] == ["succeeded", "succeeded"], [r.message for r in world.reports]
    assert world.errors_logged == []
    for report in world.reports:
        gates = report.gates
        assert all(g.passed for g in gates.values()), [g.blocked_reason for g in gates.values()]
        # few on purpose: under the demo org's `min_rejects` (10), whatever the share
        assert all(g.counted_rejects <= 9 for g in gates.values()), {e: g.counted_rejects for e, g in gates.items()}
    # the second run meets some of them again (Handbid payments of reconciled events are read every run; WeGive
    # donors are a full scan): quarantined again, not counted toward the share again
    assert all(g.counted_rejects == 0 for g in world.reports[1].gates.values())
    assert world.reports[1].gates["transactions"].repeated >= 3


def test_every_record_expected_quarantined_is_with_its_reason(world: World) -> None:
    rows = [r for r in world.quarantine(world.reports[0].run_id) if r["kind"] == "invalid"]
    for entry in (e for e in world.sb.messy_manifest if e["expected"] == "quarantined"):
        mine = [r for r in rows if (r["source"], r["entity"]) == (entry["api"], entry["entity"])]
        if entry["id"] is None:
            mine = [r for r in mine if r["source_id"].startswith("missing-id:")]
            assert len(mine) == 1, (entry, mine)
            assert json.loads(mine[0]["raw"])["id"] is None
        else:
            mine = [r for r in mine if r["source_id"] == str(entry["id"])]
            copies = 2 if entry["what"].startswith("duplicate id") else 1
            assert len(mine) == copies, (entry, mine)
        for row in mine:
            assert REASONS[entry["what"]] in " ".join(row["reasons"]), (entry, row["reasons"])
        if entry["id"] is not None:
            assert str(entry["id"]) not in world.in_bloomerang(entry["api"], entry["entity"]), entry
    copies = [json.loads(r["raw"])["auctionId"] for r in rows
              if r["source"] == "handbid" and r["entity"] == "payments" and "duplicate id" in " ".join(r["reasons"])]
    assert len(set(copies)) == 2, "both events' copies are kept and shown"
    twins = [json.loads(r["raw"])["amount"] for r in rows
             if r["source"] == "wegive" and r["entity"] == "transactions" and "duplicate id" in " ".join(r["reasons"])]
    assert len(set(twins)) == 2, "the two copies differ in amount"


def test_every_value_expected_dropped_is_left_out_and_its_record_lands(world: World) -> None:
    rows = [r for r in world.quarantine(world.reports[0].run_id) if r["kind"] == "field"]
    for entry in (e for e in world.sb.messy_manifest if e["expected"] in ("field dropped", "lands")):
        landed = world.in_bloomerang(entry["api"], entry["entity"]).get(str(entry["id"]), [])
        assert len(landed) == 1, (entry, "not in Bloomerang exactly once")
        if entry["expected"] == "lands":
            continue
        (row,) = [r for r in rows if (r["source"], r["entity"], r["source_id"], r["field"])
                  == (entry["api"], entry["entity"], str(entry["id"]), entry["field"])] or [None]
        assert row is not None, (entry, "no field row")
        assert str(entry["value"]) in str(row["value"]), (entry, row["value"])
        assert entry["what"] not in REASONS or REASONS[entry["what"]] in " ".join(row["reasons"]), row["reasons"]


def test_the_donor_with_an_invalid_email_lands_without_it_and_with_its_gifts(world: World) -> None:
    (entry,) = [e for e in world.sb.messy_manifest if e["what"] == "invalid email"]
    (constituent,) = world.in_bloomerang("wegive", "donors")[str(entry["id"])]
    assert not (constituent.get("PrimaryEmail") or {}).get("Value"), constituent.get("PrimaryEmail")
    wegive = world.sb.stores["wegive"]
    own = {str(t["id"]) for t in wegive.transactions.values()
           if t["donor_id"] == entry["id"] and t["status"] in ("Success", "Refunded", "Disputed")}
    gifts = world.in_bloomerang("wegive", "transactions")
    assert own and own <= set(gifts), sorted(own - set(gifts))
    assert {g["AccountId"] for gid in own for g in gifts[gid]} == {constituent["Id"]}


def test_the_row_accounts_are_exact_in_both_runs(world: World) -> None:
    for report in world.reports:
        assert report.problems == [], report.problems
        with world.store.connect() as con:
            accounts = accounting.compute_accounts(con, report.run_id, direction="both")
        if report is world.reports[-1]:  # the raw rows of an upserted list are the latest copies: the last run's
            assert accounting.check_accounts(accounts) == []
        stored = json.loads(world.store.read_frame("SELECT counts FROM sync_runs WHERE run_id = ?",
                                                   [report.run_id])["counts"][0])
        for name, c in stored.items():
            assert c["extracted"] == c["staged"] + c["quarantined"], (report.run_id, name, c)


def test_a_second_run_writes_nothing(world: World) -> None:
    assert world.writes_in_second_run == {}
    second = world.reports[1]
    assert second.counts["transactions"].get("created", 0) == 0
    assert second.counts["constituents"].get("created", 0) == 0


def test_no_cursor_is_in_the_future(world: World) -> None:
    now = datetime.now(UTC)
    for name in CURSORS:
        cursor = read_cursor(world.store, name)
        assert cursor is not None and cursor <= now, (name, cursor)
    # the year-9999 records were read (so the cursor had to ignore them), and again by the second run
    raw = world.store.read_frame("SELECT record FROM raw_wegive_transactions WHERE run_id = ?",
                                 [world.reports[1].run_id])
    assert any(json.loads(r)["updated_at"].startswith("9999") for r in raw["record"])
