"""Reconciliation over real HTTP: after a clean sync every day and fund matches; after a gift is edited in
Bloomerang, another deleted there and a third quarantined, ``bloom-pipeline reconcile`` exits 1 and names those
three records with the right reason — and nothing else.

The sandbox APIs serve a generated world; the demo org is synced as ``bloom-pipeline sync`` syncs it
(``run_org``), and the real ``reconcile`` command runs through click's ``CliRunner`` against the same servers
(the ``*_API_URL`` variables point the org at them, the demo's sandbox fallback supplies the keys).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from bloom_pipeline.reconcile.cli import reconcile_command
from bloom_pipeline.sandbox.faults import Knobs
from bloom_pipeline.sandbox.server import Sandbox
from bloom_pipeline.staging.store import StagingStore
from bloom_pipeline.sync.cli import run_org

pytestmark = pytest.mark.slow  # starts sandbox servers

DONORS, SEED = 30, 7  # a small world: two syncs and three reconciliations stay well under 40 s
WEGIVE_TRANSACTION_FIELD, HANDBID_PAYMENT_FIELD = 911, 912
QUARANTINED_GIFT = 99106
WINDOW = ["--since", "2025-01-01", "--until", "2027-12-31"]  # every generated gift, whatever today is


@dataclass
class World:
    sb: Sandbox
    data_dir: Path

    def sync(self) -> None:
        report = run_org("demo", direction="both", dry_run=False, since=None, mappings_dir=None,
                         data_dir=str(self.data_dir), urls=self.sb.urls, quiet=True,
                         overrides={"handbid_org_id": self.sb.handbid_org_id})
        assert report.status == "succeeded", report.message

    def reconcile(self, *args: str) -> Result:
        env = {"BLOOMERANG_API_URL": self.sb.urls["bloomerang"], "WEGIVE_API_URL": self.sb.urls["wegive"],
               "HANDBID_API_URL": self.sb.urls["handbid"], "BLOOM_DATA_DIR": str(self.data_dir)}
        result = CliRunner().invoke(reconcile_command, ["--org", "demo", *args], env=env)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result

    def bloomerang_gift(self, field_id: int, value: str) -> dict[str, Any]:
        store = self.sb.stores["bloomerang"]
        found = [store.render_transaction(tid) for tid in list(store.transactions)
                 if any(cv.get("FieldId") == field_id and str((cv.get("Value") or {}).get("Value")) == value
                        for d in store.render_transaction(tid).get("Designations", [])
                        for cv in d.get("CustomValues") or [])]
        assert len(found) == 1, (value, found)
        return found[0]


def _one_fund_gift(wegive: Any) -> dict[str, Any]:
    """A plain one-fund WeGive gift: no schedule, not refunded."""
    return next(t for t in sorted(wegive.transactions.values(), key=lambda t: t["id"])
                if t["status"] == "Success" and len(t.get("fund_allocations") or []) == 1
                and not t.get("pledge_id") and not t.get("scheduled_donation_id"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    sb = Sandbox(donors=DONORS, seed=SEED, knobs=Knobs(rate_limit=None)).start()
    try:
        yield World(sb, tmp_path_factory.mktemp("reconcile") / "data")
    finally:
        sb.stop()


def test_a_clean_sync_reconciles(world: World) -> None:
    world.sync()
    result = world.reconcile(*WINDOW)
    assert result.exit_code == 0, result.output
    assert "every day and fund matches" in result.output.splitlines()[0]
    assert "differs" not in result.output
    store = StagingStore.for_org("demo", data_dir=world.data_dir)
    totals = store.read_frame("SELECT status, count(*) AS n, sum(bloomerang_amount) AS b, sum(source_amount) AS s "
                              "FROM reconciliation GROUP BY status")
    assert totals["status"].tolist() == ["match"]
    assert totals["b"][0] == totals["s"][0] > 0


def test_an_edit_a_deletion_and_a_quarantine_are_named(world: World) -> None:
    wegive, handbid, bloomerang = (world.sb.stores[k] for k in ("wegive", "handbid", "bloomerang"))
    with wegive.lock:
        base = _one_fund_gift(wegive)
        planted = copy.deepcopy(base)
        allocation = dict(planted["fund_allocations"][0], id=QUARANTINED_GIFT, amount=True,
                          transaction_id=QUARANTINED_GIFT)
        planted.update(id=QUARANTINED_GIFT, amount=True, fund_allocations=[allocation], bloomerang_id=None,
                       updated_at=wegive.now())
        wegive.transactions[QUARANTINED_GIFT] = planted
    world.sync()

    edited = world.bloomerang_gift(WEGIVE_TRANSACTION_FIELD, str(base["id"]))
    (designation,) = edited["Designations"]
    new_amount = round(edited["Amount"] + 10, 2)
    bloomerang.update_transaction(edited["Id"], {"Amount": new_amount,
                                                 "Designations": [{"Id": designation["Id"], "Amount": new_amount}]})
    reconciled = {a["id"] for a in handbid.auctions.values() if a["status"] == "reconciled"}
    payment = next(p for p in sorted(handbid.payments.values(), key=lambda p: p["id"])
                   if p["status"] == "succeeded" and p["auctionId"] in reconciled)
    deleted = world.bloomerang_gift(HANDBID_PAYMENT_FIELD, str(payment["id"]))
    bloomerang.delete_transaction(deleted["Id"])

    result = world.reconcile(*WINDOW)
    assert result.exit_code == 1, result.output
    output = result.output
    store = StagingStore.for_org("demo", data_dir=world.data_dir)
    records = store.read_frame("SELECT source, source_id, reason, detail, source_amount, bloomerang_amount, "
                               "bloomerang_id FROM reconciliation_records ORDER BY source, source_id")
    named = {(r["source"], r["source_id"]): r for r in records.to_dict("records")}
    assert set(named) == {("wegive", str(base["id"])), ("handbid", str(payment["id"])),
                          ("wegive", str(QUARANTINED_GIFT))}, records.to_dict("records")

    amount = named[("wegive", str(base["id"]))]
    assert amount["reason"] == "amount_differs" and "edited in Bloomerang" in amount["detail"], amount
    assert float(amount["bloomerang_amount"]) == new_amount and amount["bloomerang_id"] == edited["Id"]
    assert float(amount["source_amount"]) == pytest.approx(new_amount - 10)

    gone = named[("handbid", str(payment["id"]))]
    assert gone["reason"] == "deleted_in_bloomerang" and str(deleted["Id"]) in gone["detail"], gone
    assert float(gone["source_amount"]) == payment["amount"] / 100 and pd.isna(gone["bloomerang_amount"])

    held = named[("wegive", str(QUARANTINED_GIFT))]
    assert held["reason"] == "quarantined", held
    assert "Amount: not a number: true is a true/false value" in held["detail"]

    for key, row in named.items():  # the CLI names each record with its reason
        assert any(key[1] in line and row["reason"] in line for line in output.splitlines()), (key, output)
    differing = store.read_frame("SELECT day, fund, difference, records FROM reconciliation "
                                 "WHERE status = 'differs' ORDER BY day")
    # the planted gift is a copy of the edited one: same day and fund, so that row has two records
    assert differing["records"].tolist() == [1, 2] or differing["records"].tolist() == [2, 1], differing
    assert sorted(float(d) for d in differing["difference"]) == sorted([10.0, -payment["amount"] / 100]), (
        "the quarantined gift's amount cannot be read: it adds nothing to a total, and is listed")
