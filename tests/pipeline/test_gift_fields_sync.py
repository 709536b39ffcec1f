"""Every field of a gift over real HTTP (issue 14): the demo org, with one Handbid event set to `send: none`
and one payment held back by `exclude_payments`, synced once against the sandbox APIs as `bloom-pipeline sync`
runs it.

What it protects: a WeGive gift's fee reaches Bloomerang's `FeeAmount`; its campaign reaches the designation's
campaign through the org's map (an unmapped one gets the default, noted); a gift with a receipt id is
acknowledged and keeps the id in its note; a refunded gift is refunded with its own `refunded_at` date, not the
gift's; a held Handbid event posts nothing, and its payments and the held payment are quarantined as
'excluded' with the reason. The strict Bloomerang sandbox refuses any undocumented input, so a payload field
the OpenAPI lacks (the planned `Refund`) would fail the run.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from bloom_pipeline.sandbox.faults import Knobs
from bloom_pipeline.sandbox.server import Sandbox
from bloom_pipeline.staging.store import StagingStore
from bloom_pipeline.sync.cli import run_org
from bloom_pipeline.sync.runner import RunReport

pytestmark = pytest.mark.slow  # starts sandbox servers

DONORS, SEED = 40, 2
WEGIVE_TRANSACTION_FIELD, HANDBID_PAYMENT_FIELD = 911, 912
REPO = Path(__file__).resolve().parents[2]
DENVER = ZoneInfo("America/Denver")


@dataclass
class World:
    sb: Sandbox
    data_dir: Path
    mappings: Path
    held_event: int = 0
    held_payment: int = 0
    reports: list[RunReport] = field(default_factory=list)

    @property
    def store(self) -> StagingStore:
        return StagingStore.for_org("demo", data_dir=self.data_dir)

    def sync(self) -> RunReport:
        report = run_org("demo", direction="push", dry_run=False, since=None, mappings_dir=str(self.mappings),
                         data_dir=str(self.data_dir), urls=self.sb.urls, quiet=True,
                         overrides={"handbid_org_id": self.sb.handbid_org_id})
        self.reports.append(report)
        return report

    def gifts(self, field_id: int) -> dict[str, dict[str, Any]]:
        """Bloomerang's transactions by the correlation value of their designations."""
        store = self.sb.stores["bloomerang"]
        out = {}
        for tid in list(store.transactions):
            record = store.render_transaction(tid)
            for designation in record.get("Designations", []):
                for value in designation.get("CustomValues") or []:
                    if value.get("FieldId") == field_id:
                        inner = value.get("Value")
                        out[str(inner.get("Value") if isinstance(inner, dict) else inner)] = record
        return out


def _mappings(root: Path, event: int, payment: int) -> Path:
    """The repository's mappings with the demo org holding one event and one payment of another."""
    shutil.copytree(REPO / "mappings", root)
    path = root / "orgs" / "demo.yaml"
    data = yaml.safe_load(path.read_text())
    data["handbid"]["events"] = {str(event): {"send": "none"}}
    data["handbid"]["default"]["exclude_payments"] = [payment]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return root


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    sb = Sandbox(donors=DONORS, seed=SEED, knobs=Knobs(rate_limit=None)).start()
    try:
        handbid = sb.stores["handbid"]
        reconciled = sorted(a["id"] for a in handbid.auctions.values() if a["status"] == "reconciled")
        assert len(reconciled) >= 2, "the sandbox world has two reconciled events"
        held_event = reconciled[0]
        held_payment = next(p["id"] for p in handbid.payments.values()
                            if p["auctionId"] == reconciled[1] and p.get("status") == "succeeded")
        root = tmp_path_factory.mktemp("gift_fields")
        w = World(sb, root / "data", _mappings(root / "mappings", held_event, held_payment), held_event, held_payment)
        w.sync()
        yield w
    finally:
        sb.stop()


def _wegive(world: World, status: str | None = None) -> list[dict[str, Any]]:
    return [t for t in world.sb.stores["wegive"].transactions.values() if status is None or t["status"] == status]


def _local_date(stamp: str) -> str:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(DENVER).date().isoformat()


def test_the_run_succeeds(world: World) -> None:
    assert [r.status for r in world.reports] == ["succeeded"], [r.message for r in world.reports]


def test_fee_reaches_fee_amount(world: World) -> None:
    gifts = world.gifts(WEGIVE_TRANSACTION_FIELD)
    with_fee = [t for t in _wegive(world) if t["fee_amount"] and str(t["id"]) in gifts]
    assert with_fee, "the sandbox world has gifts with a fee"
    for txn in with_fee:
        assert Decimal(str(gifts[str(txn["id"])]["FeeAmount"])) == Decimal(txn["fee_amount"]) / 100, txn["id"]


def test_campaign_by_the_org_map_and_unmapped_gets_the_default(world: World) -> None:
    campaigns = {c["Id"]: c["Name"] for c in world.sb.stores["bloomerang"].campaigns.values()}
    gifts = world.gifts(WEGIVE_TRANSACTION_FIELD)
    expected = {"Spring Gala": "Spring Gala 2026", "Spring Appeal": "Annual Fund 2026", None: "Annual Fund 2026",
                "Year-End Giving": "Annual Fund 2026", "Giving Tuesday": "Annual Fund 2026"}
    seen = set()
    for txn in _wegive(world):
        gift = gifts.get(str(txn["id"]))
        if gift is None:
            continue
        for designation in gift["Designations"]:
            campaign = designation.get("Campaign") or {}
            assert campaigns.get(campaign.get("Id")) == expected[txn["campaign"]], txn["id"]
        seen.add(txn["campaign"])
    assert {"Spring Gala", None} <= seen
    noted = world.store.read_frame("SELECT DISTINCT field FROM quarantine WHERE kind = 'field' AND entity = "
                                   "'transactions' AND source = 'wegive'")
    assert ("Giving Tuesday" not in seen) or "Designations.CampaignId" in set(noted["field"])


def test_receipted_gift_is_acknowledged_and_keeps_its_receipt_id(world: World) -> None:
    gifts = world.gifts(WEGIVE_TRANSACTION_FIELD)
    checked = 0
    for txn in _wegive(world, "Success"):
        gift = gifts.get(str(txn["id"]))
        if gift is None or not txn.get("receipt_id"):
            continue
        for designation in gift["Designations"]:
            assert designation["AcknowledgementStatus"] == "Yes"
            assert designation["Note"].startswith(txn["receipt_id"])
        checked += 1
    assert checked


def test_refund_is_dated_refunded_at(world: World) -> None:
    bloomerang = world.sb.stores["bloomerang"]
    gifts = world.gifts(WEGIVE_TRANSACTION_FIELD)
    refunds = {r["TransactionId"]: r for r in bloomerang.refunds.values()}
    refunded = [t for t in _wegive(world, "Refunded") if str(t["id"]) in gifts]
    assert refunded, "the sandbox world has refunded gifts"
    differs = 0
    for txn in refunded:
        gift = gifts[str(txn["id"])]
        refund = refunds[gift["Id"]]
        assert str(refund["Date"]) == _local_date(txn["refunded_at"]), txn["id"]
        assert refund["_run_processor_refund"] is False
        differs += str(refund["Date"]) != str(gift["Date"])
    assert differs, "a refund date that is the gift's date proves nothing"


def test_held_event_posts_nothing_and_is_quarantined_as_excluded(world: World) -> None:
    handbid = world.sb.stores["handbid"]
    held = {str(p["id"]) for p in handbid.payments.values() if p["auctionId"] == world.held_event}
    sent = world.gifts(HANDBID_PAYMENT_FIELD)
    assert held and not held & set(sent)
    assert str(world.held_payment) not in sent
    others = {str(p["id"]) for p in handbid.payments.values()
              if p["auctionId"] != world.held_event and p.get("status") == "succeeded"} - {str(world.held_payment)}
    assert others & set(sent), "the other events' payments are sent"
    rows = world.store.read_frame("SELECT source_id, kind, reasons FROM quarantine WHERE source = 'handbid' "
                                  "AND entity = 'payments'")
    excluded = {r["source_id"]: " ".join(r["reasons"]) for r in rows.to_dict("records") if r["kind"] == "excluded"}
    live = {str(p["id"]) for p in handbid.payments.values()
            if p["auctionId"] == world.held_event and p.get("status") != "voided"}
    assert all("send: none" in excluded[pid] for pid in live)
    assert "exclude_payments" in excluded[str(world.held_payment)]
