"""Hostile records over real HTTP: one bad record never stops the others.

The sandbox APIs serve the records a nightly run actually met — a WeGive transaction without ``id``, created
days of ``31/02/2025`` and ``2026-13-45``, amounts of 2^63 cents, 10^15 cents and JSON ``true``, a donor with
an invalid e-mail, a Handbid payment of ``true`` and one listed under two events with one id — put into the
simulators' stores as WeGive's and Handbid's databases would hold them (a fraction of a cent and the other
amounts are covered in tests/unit). Two syncs of the demo org run as ``bloom-pipeline sync`` runs them. A
repeated id within one list never reaches the pipeline (the clients drop it while paging); the staging step's
rule for it is covered in tests/unit too.

What it protects: no traceback; every good record lands in Bloomerang (a gift whose amount is the text
``"5000"`` too, as the fact sheet allows); every bad one is quarantined with its reason; the row accounts are
exact in both runs; the second run writes nothing anywhere; the donor with the invalid e-mail is in Bloomerang
without an e-mail and with all of its gifts; ``status --failures`` shows the dropped e-mail.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bloom_pipeline.cli import cli
from bloom_pipeline.sandbox.faults import Knobs
from bloom_pipeline.sandbox.server import Sandbox
from bloom_pipeline.staging import accounting
from bloom_pipeline.staging.store import StagingStore
from bloom_pipeline.sync.cli import run_org
from bloom_pipeline.sync.runner import RunReport
from tests.pipeline.bloomerang_records import by_correlation

pytestmark = pytest.mark.slow  # starts sandbox servers

DONORS, SEED = 30, 2  # the pipeline tests' small world: no record in it is rejected by the mapping
WEGIVE_DONOR_FIELD, WEGIVE_TRANSACTION_FIELD, HANDBID_PAYMENT_FIELD = 901, 911, 912
GIFTS = ("Success", "Refunded", "Disputed")  # the statuses that are gifts (the rest are excluded by rule)
WRITES = frozenset({"POST", "PUT", "DELETE", "PATCH"})
BAD_EMAIL_DONOR = 1001  # six gifts; no Handbid twin whose e-mail Bloomerang would hand back to WeGive


class WithoutId(dict):
    """A stored WeGive transaction that the API renders with ``"id": null`` (the simulator finds it by its key,
    and every answer picks its properties with ``record.get``)."""

    def get(self, key: Any, default: Any = None) -> Any:
        return None if key == "id" else super().get(key, default)


@dataclass
class World:
    sb: Sandbox
    data_dir: Path
    hostile: dict[str, int] = field(default_factory=dict)  # what -> the store key of the hostile record
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

    def bloomerang_by(self, kind: str, field_id: int) -> dict[str, list[dict[str, Any]]]:
        return by_correlation(self.sb.stores["bloomerang"], kind, field_id)


def _new_gift(wegive: Any, base: dict[str, Any], gift_id: int, cents: Any, **changes: Any) -> dict[str, Any]:
    """A copy of a stored gift under a new id, with one amount on the gift and its one designation."""
    gift = copy.deepcopy(base)
    alloc = copy.deepcopy(base["fund_allocations"][0])
    alloc.update(id=gift_id, amount=cents, transaction_id=gift_id)
    gift.update({"id": gift_id, "amount": cents, "fund_allocations": [alloc], "bloomerang_id": None,
                 "updated_at": wegive.now(), **changes})
    return gift


def plant(sb: Sandbox) -> dict[str, int]:
    """Put the hostile records into the simulators' stores, as their databases would hold them."""
    wegive, handbid = sb.stores["wegive"], sb.stores["handbid"]
    with wegive.lock:
        base = next(t for t in wegive.transactions.values()
                    if t["status"] == "Success" and t["donor_id"] != BAD_EMAIL_DONOR)
        # 9 rejects in all: under the demo org's `min_rejects` (10), so the first run loads the good records
        hostile = {"missing id": 99101, "31/02/2025": 99102, "2026-13-45": 99103, "2^63 cents": 99104,
                   "10^15 cents": 99105, "true": 99106, "text amount": 99108}
        # not touched since: the second run's cursor is past it (its content changes with the embedded fund)
        wegive.transactions[99101] = WithoutId(_new_gift(wegive, base, 99101, 4217, updated_at=base["updated_at"]))
        wegive.transactions[99102] = _new_gift(wegive, base, 99102, 4200, created_at="31/02/2025")
        wegive.transactions[99103] = _new_gift(wegive, base, 99103, 4200, created_at="2026-13-45")
        wegive.transactions[99104] = _new_gift(wegive, base, 99104, 2**63)
        wegive.transactions[99105] = _new_gift(wegive, base, 99105, 10**15)
        wegive.transactions[99106] = _new_gift(wegive, base, 99106, True)
        wegive.transactions[99108] = _new_gift(wegive, base, 99108, "5000")  # a numeric string: accepted
        donor = wegive.donors[BAD_EMAIL_DONOR]
        donor["email_1"] = donor["email"] = "brett.ware@@givers.example"
    with handbid.lock:
        first, second = sorted(a["id"] for a in handbid.auctions.values() if a["status"] == "reconciled")[:2]
        payment = next(p for p in handbid.payments.values() if p["auctionId"] == first)
        handbid.payments[99301] = dict(copy.deepcopy(payment), id=99301, amount=True)
        handbid.payments[99302] = dict(copy.deepcopy(payment), id=99302)
        handbid.payments[99303] = dict(copy.deepcopy(payment), id=99302, auctionId=second)  # one id, two events
        hostile.update({"handbid true": 99301, "handbid duplicate": 99302, "handbid duplicate copy": 99303})
    return hostile


class _ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    sb = Sandbox(donors=DONORS, seed=SEED, knobs=Knobs(rate_limit=None)).start()
    try:
        w = World(sb, tmp_path_factory.mktemp("hostile") / "data")
        w.hostile = plant(sb)
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


def test_both_runs_finish_without_a_traceback(world: World) -> None:
    assert [r.status for r in world.reports] == ["succeeded", "succeeded"], [r.message for r in world.reports]
    assert world.errors_logged == []
    assert all(r.exit_code == 1 for r in world.reports), "records were quarantined: exit 1, not a crash"
    gates = world.reports[1].gates
    assert all(g.passed for g in gates.values()), [g.blocked_reason for g in gates.values()]
    # the second run meets the same bad records again (WeGive: touched after the cursor; Handbid: every payment
    # of a reconciled event is read every run): quarantined again, not counted toward the share again
    assert gates["transactions"].rejected == 8 and gates["transactions"].repeated == 8


def test_every_bad_record_is_quarantined_with_its_reason(world: World) -> None:
    rows = world.quarantine(world.reports[0].run_id)
    reasons: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        if row["kind"] == "invalid":
            reasons.setdefault((row["entity"], row["source_id"]), []).append(" ".join(row["reasons"]))
    stray = [row for row in rows if row["source_id"].startswith("missing-id:")]
    assert len(stray) == 1 and stray[0]["reasons"] == ["id: missing id"]
    assert json.loads(stray[0]["raw"])["id"] is None and json.loads(stray[0]["raw"])["amount"] == 4217
    expected = {
        ("transactions", "99102"): "Date: '31/02/2025' is not a date (from created_at)",
        ("transactions", "99103"): "Date: '2026-13-45' is not a date (from created_at)",
        ("transactions", "99104"): "Amount: amount out of range: 9223372036854775808 cents",
        ("transactions", "99105"): "Amount: amount out of range: 1000000000000000 cents",
        ("transactions", "99106"): "Amount: not a number: true is a true/false value (from amount)",
        ("payments", "99301"): "Amount: not a number: true is a true/false value (from amount)",
        ("payments", "99302"): "id: duplicate id '99302' (2 records of this extract carry it; none is staged)",
    }
    for key, reason in expected.items():
        assert key in reasons, (key, sorted(reasons))
        assert all(reason in r for r in reasons[key]), (key, reasons[key])
    copies = [json.loads(r["raw"])["auctionId"] for r in rows if r["source_id"] == "99302"]
    assert len(set(copies)) == 2, "both copies are kept and shown"
    raw = world.store.read_frame("SELECT source_id FROM raw_wegive_transactions")
    assert stray[0]["source_id"] in set(raw["source_id"]), "the raw table keeps the id-less record, same key"
    gifts = world.bloomerang_by("transactions", WEGIVE_TRANSACTION_FIELD)
    assert not {"99102", "99103", "99104", "99105", "99106"} & set(gifts)
    assert not {"99301", "99302"} & set(world.bloomerang_by("transactions", HANDBID_PAYMENT_FIELD))
    assert not {g["Amount"] for g in world.sb.stores["bloomerang"].transactions.values()} & {4217, 42.17}, (
        "nothing without an id is sent")


def test_every_good_record_lands_in_bloomerang(world: World) -> None:
    wegive, handbid = world.sb.stores["wegive"], world.sb.stores["handbid"]
    hostile = set(world.hostile.values())
    donors = world.bloomerang_by("constituents", WEGIVE_DONOR_FIELD)
    assert {str(i) for i in wegive.donors} <= set(donors)
    assert all(len(v) == 1 for v in donors.values()), "no duplicates created"
    gifts = world.bloomerang_by("transactions", WEGIVE_TRANSACTION_FIELD)
    wanted = {str(t["id"]) for key, t in wegive.transactions.items() if key not in hostile and t["status"] in GIFTS}
    assert wanted <= set(gifts), sorted(wanted - set(gifts))
    assert [g["Amount"] for g in gifts["99108"]] == [50.0], "the amount given as the text '5000' (cents)"
    reconciled = {a["id"] for a in handbid.auctions.values() if a["status"] == "reconciled"}
    paid = {str(p["id"]) for key, p in handbid.payments.items()
            if key not in hostile and p["auctionId"] in reconciled and p["status"] != "voided"}
    assert paid and paid <= set(world.bloomerang_by("transactions", HANDBID_PAYMENT_FIELD))


def test_a_donor_with_an_invalid_email_gets_its_gifts_and_no_email(world: World) -> None:
    (constituent,) = world.bloomerang_by("constituents", WEGIVE_DONOR_FIELD)[str(BAD_EMAIL_DONOR)]
    assert not (constituent.get("PrimaryEmail") or {}).get("Value"), constituent.get("PrimaryEmail")
    wegive = world.sb.stores["wegive"]
    own = {str(t["id"]) for t in wegive.transactions.values()
           if t["donor_id"] == BAD_EMAIL_DONOR and t["status"] in GIFTS}
    gifts = world.bloomerang_by("transactions", WEGIVE_TRANSACTION_FIELD)
    assert len(own) >= 4 and own <= set(gifts), sorted(own - set(gifts))
    assert {g["AccountId"] for gid in own for g in gifts[gid]} == {constituent["Id"]}
    (row,) = [r for r in world.quarantine(world.reports[0].run_id) if r["kind"] == "field"
              and r["source_id"] == str(BAD_EMAIL_DONOR)]
    assert (row["field"], row["value"]) == ("PrimaryEmail.Value", "brett.ware@@givers.example")
    assert "is not a valid email address" in row["reasons"][0]
    assert wegive.donors[BAD_EMAIL_DONOR]["email_1"] == "brett.ware@@givers.example", "the source is left alone"


def test_the_row_accounts_are_exact_in_both_runs(world: World) -> None:
    for report in world.reports:
        assert report.problems == [], report.problems  # checked from the tables at the end of each run
        stored = json.loads(world.store.read_frame("SELECT counts FROM sync_runs WHERE run_id = ?",
                                                   [report.run_id])["counts"][0])
        for name, c in stored.items():
            assert c["extracted"] == c["staged"] + c["quarantined"], (report.run_id, name, c)
            assert c["staged"] == sum(c[k] for k in ("created", "updated", "unchanged", "skipped", "failed")), c
        dropped = [r for r in world.quarantine(report.run_id) if r["kind"] == "field"
                   and r["entity"] in ("donors", "contacts")]
        assert stored["constituents"]["fields_dropped"] == len(dropped) >= 1  # the planted email, the world's own
        assert stored["transactions"]["quarantined"] >= 8
    last = world.reports[-1].run_id  # the raw rows of an upserted list are the latest copies: the last run's
    with world.store.connect() as con:
        accounts = accounting.compute_accounts(con, last, direction="both")
    assert accounting.check_accounts(accounts) == []
    raw = sum(int(world.store.read_frame(f"SELECT count(*) AS n FROM {table} WHERE run_id = ?", [last])["n"][0])
              for table in ("raw_wegive_transactions", "raw_handbid_payments"))
    assert accounts["transactions"].extracted == raw, "every record received is counted, both duplicate copies too"


def test_a_second_run_changes_nothing(world: World) -> None:
    assert world.writes_in_second_run == {}
    second = world.reports[1]
    assert second.counts["transactions"].get("created", 0) == 0
    assert second.counts["constituents"].get("created", 0) == 0


def test_status_failures_lists_the_dropped_email_and_the_quarantined_records(world: World, monkeypatch) -> None:
    monkeypatch.setenv("BLOOM_DATA_DIR", str(world.data_dir))
    result = CliRunner().invoke(cli, ["status", "--org", "demo", "--runs", "1", "--failures"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    email = [line for line in lines if "field dropped: PrimaryEmail.Value" in line and str(BAD_EMAIL_DONOR) in line]
    assert len(email) == 1 and "brett.ware@@givers.example" in email[0]
    assert any("quarantined (invalid)" in line and "99104" in line for line in lines)
