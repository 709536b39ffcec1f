"""Every field of a gift (issue 14, "Money"): fee, receipt id, campaign map, acknowledgement, the refund's own
date, and the Handbid "Send to CRM" selection — the mapping rules, their validation, the preview, and the
writer / planner code that turns the planned refund into the POST /refund body."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from bloom_pipeline.mapping.cli import mapping
from bloom_pipeline.mapping.compile import map_frame
from bloom_pipeline.mapping.jsonbuild import payload_hash
from bloom_pipeline.mapping.loader import load_org, validate_paths
from bloom_pipeline.sync.apply.writers import TransactionWriter, refund_body
from bloom_pipeline.sync.plan import entities
from bloom_pipeline.sync.stage import enrich_payments

from .conftest import MAPPINGS, PAYMENT, TRANSACTION, payloads, record

REFUNDED = {"status": "Refunded", "refunded_at": "2025-03-10T03:30:00.000000Z"}  # 9 March in Denver


def _tx(**changes: Any) -> dict[str, Any]:
    return record(TRANSACTION, **changes)


def _designation(org, **changes: Any) -> dict[str, Any]:
    return payloads(map_frame(org, "wegive.transactions", [_tx(**changes)]))["88001"]["Designations"][0]


# -- fee ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("changes", "fee"), [
    ({"fee": 175}, 1.75),                         # a list row: `fee` only
    ({"fee": 175, "fee_amount": 205}, 2.05),      # the detail's fee_amount (the processing fee) wins
    ({"fee": 0}, 0.0),                            # WeGive says no fee: that is a fact, sent as 0.00
    ({"fee": None}, None),                        # no fee known: left out, not guessed
])
def test_fee_amount_from_fee_amount_else_fee_in_dollars(org, changes, fee):
    payload = payloads(map_frame(org, "wegive.transactions", [_tx(**changes)]))["88001"]
    assert payload.get("FeeAmount") == fee


# -- receipt id, acknowledgement -----------------------------------------------------------------------------

def test_receipt_id_is_the_designation_note_and_acknowledges_in_demo(org):
    designation = _designation(org, receipt_id="R-88001")
    assert designation["Note"] == "R-88001"
    assert designation["AcknowledgementStatus"] == "Yes"


def test_no_receipt_id_no_note_and_no_acknowledgement_invented(org):
    designation = _designation(org, receipt_id=None)
    assert "Note" not in designation and "AcknowledgementStatus" not in designation


def test_receipt_note_and_method_note_are_both_kept(org):
    designation = _designation(org, receipt_id="R-88001", source_type="paypal", source={"type": "paypal"})
    assert designation["Note"] == "R-88001 | Paid with PayPal (WeGive)"


def test_default_mapping_leaves_wegive_acknowledgement_to_bloomerang(tmp_path):
    acme = _org(tmp_path, "")
    assert "AcknowledgementStatus" not in _designation(acme, receipt_id="R-88001")


# -- campaign ------------------------------------------------------------------------------------------------

def test_campaign_by_name_through_the_org_map(org):
    assert _designation(org, campaign="Spring Gala")["CampaignId"] == "ref:bloomerang.campaigns:name=Spring Gala 2026"


def test_unknown_campaign_gets_the_org_default_and_is_noted(org):
    result = map_frame(org, "wegive.transactions", [_tx(campaign="Giving Tuesday")])
    designation = payloads(result)["88001"]["Designations"][0]
    assert designation["CampaignId"] == "ref:bloomerang.campaigns:name=Annual Fund 2026"
    assert list(result.fields["field"]) == ["Designations.CampaignId"]
    assert list(result.fields["errors"].iloc[0]) == [
        "Designations.CampaignId: no rule for 'Giving Tuesday' (from parent.campaign)"]


def test_gift_without_campaign_gets_the_default_without_a_note(org):
    result = map_frame(org, "wegive.transactions", [_tx(campaign=None)])
    assert payloads(result)["88001"]["Designations"][0]["CampaignId"].endswith("name=Annual Fund 2026")
    assert result.fields.empty


def test_campaign_map_takes_ids_too(tmp_path):
    acme = _org(tmp_path, CAMPAIGNS.format(value="12"))
    assert _designation(acme, campaign="Spring Gala")["CampaignId"] == 12


# -- refunds -------------------------------------------------------------------------------------------------

def test_refund_is_planned_with_refunded_at_in_the_org_time_zone(org):
    result = map_frame(org, "wegive.transactions", [_tx(**REFUNDED)])
    payload = payloads(result)["88001"]
    assert payload["Refund"] == {"Date": "2025-03-09"} and payload["Date"] == "2025-03-02"
    assert bool(result.mapped["is_refunded"].iloc[0]) is True


def test_no_refund_on_a_gift_that_is_not_refunded(org):
    payload = payloads(map_frame(org, "wegive.transactions", [_tx(refunded_at="2025-03-10T00:00:00Z")]))["88001"]
    assert "Refund" not in payload


def test_refunded_without_refunded_at_plans_no_date(org):
    payload = payloads(map_frame(org, "wegive.transactions", [_tx(status="Refunded", refunded_at=None)]))["88001"]
    assert "Refund" not in payload  # the writer then dates the refund like the gift (Bloomerang needs a date)


class FakeClient:
    def __init__(self) -> None:
        self.refunds: list[dict[str, Any]] = []
        self.created: list[dict[str, Any]] = []

    def create_transaction(self, body: dict[str, Any]) -> dict[str, Any]:
        self.created.append(body)
        return {"Id": 7, "Date": body["Date"], "IsRefunded": "No"}

    def get_transaction(self, bloomerang_id: int) -> dict[str, Any]:
        return {"Id": bloomerang_id, "Date": "2025-03-02", "IsRefunded": "No"}

    def create_refund(self, body: dict[str, Any]) -> dict[str, Any]:
        self.refunds.append(body)
        return {"Id": 70}


def test_writer_posts_the_refund_dated_by_the_source_and_keeps_it_out_of_the_transaction():
    client = FakeClient()
    writer = TransactionWriter(client, {"wegive": 911})
    writer.create("wegive", "88001", {"Date": "2025-03-02", "Amount": 50.0, "Designations": [],
                                      "IsRefunded": True, "Refund": {"Date": "2025-03-09"}})
    assert "Refund" not in client.created[0] and "IsRefunded" not in client.created[0]
    assert client.refunds == [refund_body(7, "2025-03-09", "wegive", "88001")]
    assert client.refunds[0]["RunProcessorRefund"] is False


def test_refund_alone_is_dated_by_the_source_and_without_a_date_by_the_gift():
    client = FakeClient()
    writer = TransactionWriter(client, {})
    writer.update(7, {"IsRefunded": True, "Refund": {"Date": "2025-03-09"}})
    writer.update(8, {"IsRefunded": True})
    assert [r["Date"] for r in client.refunds] == ["2025-03-09", "2025-03-02"]


def test_a_gift_refunded_after_its_sync_sends_the_refund_alone_with_its_date(org):
    before = map_frame(org, "wegive.transactions", [_tx()]).mapped
    after = map_frame(org, "wegive.transactions", [_tx(**REFUNDED)]).mapped
    staged, unrefunded = entities._with_refunds(after.assign(source="wegive"))
    assert unrefunded[("wegive", "88001")] == before["payload_hash"].iloc[0] == payload_hash(before["payload"].iloc[0])
    plan = pd.DataFrame([{"source": "wegive", "source_id": "88001", "action": "update",
                          "payload": staged["payload"].iloc[0], "diff": "{}"}])
    state = pd.DataFrame([{"source": "wegive", "source_id": "88001", "source_hash": before["payload_hash"].iloc[0]}])
    planned = entities._refund_only_updates(plan, state, unrefunded)
    assert json.loads(planned["payload"].iloc[0]) == {"IsRefunded": True, "Refund": {"Date": "2025-03-09"}}


def test_preview_shows_the_refund_beside_the_payload(tmp_path):
    path = tmp_path / "tx.json"
    path.write_text(json.dumps([_tx(**REFUNDED), _tx(id=88002)]))
    result = CliRunner().invoke(mapping, ["preview", "--org", "demo", "--entity", "wegive.transactions",
                                          "--input", str(path), "--mappings-dir", str(MAPPINGS)])
    assert result.exit_code == 0, result.output
    mapped = {m["source_id"]: m for m in json.loads(result.output)["mapped"]}
    assert mapped["88001"]["refund"] == {"TransactionId": "ref:wegive.transactions:88001",
                                         "RunProcessorRefund": False, "Date": "2025-03-09",
                                         "Note": "Refunded in wegive 88001"}
    assert "Refund" not in mapped["88001"]["payload"] and "refund" not in mapped["88002"]


def test_preview_dates_a_handbid_refund_like_the_gift(tmp_path):
    path = tmp_path / "payments.json"
    path.write_text(json.dumps([record(PAYMENT, status="refunded")]))
    result = CliRunner().invoke(mapping, ["preview", "--org", "demo", "--entity", "handbid.payments",
                                          "--input", str(path), "--mappings-dir", str(MAPPINGS)])
    mapped = json.loads(result.output)["mapped"][0]
    assert mapped["refund"]["Date"] == mapped["payload"]["Date"] == "2024-05-20"


# -- Handbid selection ---------------------------------------------------------------------------------------

EVENTS = """handbid:
  token_env: ACME_HANDBID_TOKEN
  default: {fund: General Fund}
  events:
    "45417": {exclude_payments: [9002]}
    Golf Day: {send: none}
"""


def test_selection_per_event_and_payment(tmp_path):
    acme = _org(tmp_path, EVENTS, extends="[defaults/wegive, defaults/handbid]")
    assert acme.handbid_selection(45417, "Spring Gala", 9001) == "send"
    assert acme.handbid_selection(45417, "Spring Gala", 9002) == "payment_held"
    assert acme.handbid_selection(46000, "Golf Day", 9003) == "event_held"
    assert acme.handbid_sends_event("46000", "Golf Day") is False and acme.handbid_sends_event("45417") is True


def test_held_payments_are_excluded_with_their_reason_never_dropped(tmp_path):
    acme = _org(tmp_path, EVENTS, extends="[defaults/wegive, defaults/handbid]")
    payments = [record(PAYMENT, id=9001), record(PAYMENT, id=9002), record(PAYMENT, id=9003, auctionId=46000)]
    auctions = [{"id": 45417, "name": "Spring Gala"}, {"id": 46000, "name": "Golf Day"}]
    enriched = enrich_payments(payments, [], auctions, acme)
    assert [p["crmSelection"] for p in enriched] == ["send", "payment_held", "event_held"]
    result = map_frame(acme, "handbid.payments", enriched)
    assert list(result.mapped["source_id"]) == ["9001"]
    rejected = dict(zip(result.rejected["source_id"], zip(result.rejected["kind"], result.rejected["errors"],
                                                          strict=True), strict=True))
    assert rejected["9002"][0] == rejected["9003"][0] == "excluded"
    assert list(rejected["9002"][1]) == ["crmSelection: 'payment_held' excluded — the org YAML holds this payment "
                                         "back (handbid.events: exclude_payments)"]
    assert "send: none" in rejected["9003"][1][0]


def test_without_an_org_nothing_is_selected(org):
    assert "crmSelection" not in enrich_payments([dict(PAYMENT)], [], [])[0]
    assert list(map_frame(org, "handbid.payments", [PAYMENT]).mapped["source_id"]) == ["9001"]


# -- validation: FILE:LINE: KEY ------------------------------------------------------------------------------

ORG = ("name: acme\nextends: {extends}\ntimezone: America/Denver\n"
       "bloomerang: {{api_key_env: ACME_BLOOMERANG_API_KEY}}\nwegive: {{token_env: ACME_WEGIVE_TOKEN}}\n")
CAMPAIGNS = ("mappings:\n  wegive:\n    transactions:\n      designations:\n        fields:\n"
             "          CampaignId:\n            from: parent.campaign\n"
             "            lookup: {{Spring Gala: {value}}}\n            on_invalid: drop_field\n")


def _write(tmp_path: Path, extra: str, extends: str = "[defaults/wegive]") -> Path:
    (tmp_path / "orgs").mkdir(exist_ok=True)
    if not (tmp_path / "defaults").exists():
        (tmp_path / "defaults").symlink_to(MAPPINGS / "defaults")
    path = tmp_path / "orgs" / "acme.yaml"
    path.write_text(ORG.format(extends=extends) + extra)
    return path


def _org(tmp_path: Path, extra: str, extends: str = "[defaults/wegive]"):
    _write(tmp_path, extra, extends)
    return load_org("acme", tmp_path)


def _problems(tmp_path: Path, extra: str, extends: str = "[defaults/wegive, defaults/handbid]") -> list[str]:
    path = _write(tmp_path, extra, extends)
    return [f"{p.line}: {p.key}: {p.message}" for p in validate_paths([path], tmp_path)]


@pytest.mark.parametrize(("extra", "expected"), [
    ("handbid:\n  token_env: ACME_HANDBID_TOKEN\n  events:\n    Golf Day: {send: some}\n",
     "9: handbid.events.Golf Day.send: Input should be 'all' or 'none'"),
    ("handbid:\n  token_env: ACME_HANDBID_TOKEN\n  events:\n    \"45417\": {exclude_payments: [9001, pay-2]}\n",
     "9: handbid.events.45417.exclude_payments: 'pay-2' is not a Handbid payment id (a whole number)"),
    (CAMPAIGNS.format(value="0"), "13: mappings.wegive.transactions.designations.fields.CampaignId.lookup."
                                  "Spring Gala: '0' is not a Bloomerang campaign name or id"),
    (CAMPAIGNS.format(value="true"), "13: mappings.wegive.transactions.designations.fields.CampaignId.lookup."
                                     "Spring Gala: 'True' is not a Bloomerang campaign name or id"),
    ("mappings:\n  handbid:\n    payments:\n      exclude_when:\n        - field: crmSelection\n"
     "          in: [event_hold]\n          reason: held\n",
     "11: mappings.handbid.payments.exclude_when[0].in: 'event_hold' is not a value of crmSelection "
     "(known: send, event_held, payment_held)"),
])
def test_new_keys_are_validated_with_file_line_key(tmp_path, extra, expected):
    assert expected in _problems(tmp_path, extra)


def test_repository_mappings_validate(tmp_path):
    assert validate_paths([], MAPPINGS) == []
