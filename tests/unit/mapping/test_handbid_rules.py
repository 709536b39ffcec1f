"""Handbid contacts → constituents and payments → transactions (the sync guide's notes and acknowledgement)."""

import pytest

from bloom_pipeline.mapping.compile import map_frame
from bloom_pipeline.mapping.loader import load_org

from .conftest import CONTACT, MAPPINGS, PAYMENT, errors, payloads, record


def test_contact_becomes_individual(org):
    assert payloads(map_frame(org, "handbid.contacts", [CONTACT]))["501"] == {
        "Type": "Individual", "FirstName": "Ada", "LastName": "Lovelace",
        "PrimaryEmail": {"Type": "Home", "Value": "ada@example.org", "IsPrimary": True},
        "PrimaryPhone": {"Type": "Mobile", "Number": "3035551212", "IsPrimary": True},
        "PrimaryAddress": {"Type": "Home", "Street": "1 Main St", "City": "Denver", "State": "CO",
                           "PostalCode": "80202", "Country": "US", "IsPrimary": True},
        "CustomValues": [{"FieldId": 902, "Value": "501"}],
    }


@pytest.mark.parametrize(("changes", "expected"), [
    ({"firstName": ""}, {"FirstName": "FNU"}),
    ({"lastName": None}, {"LastName": "LNU"}),
    ({"userCellPhone": None, "userPhone": "720-555-0101"},
     {"PrimaryPhone": {"Type": "Mobile", "Number": "720-555-0101", "IsPrimary": True}}),
    ({"addresses": []}, {"PrimaryAddress": None}),
])
def test_contact_rules(org, changes, expected):
    payload = payloads(map_frame(org, "handbid.contacts", [record(CONTACT, **changes)]))["501"]
    assert {k: payload.get(k) for k in expected} == expected


def test_payment_becomes_transaction_with_event_note_and_acknowledgement(org):
    result = map_frame(org, "handbid.payments", [PAYMENT])
    assert payloads(result)["9001"] == {
        "AccountId": "ref:handbid.contacts:501", "Amount": 250.0, "Date": "2024-05-20", "Method": "Cash",
        "Designations": [{"Type": "Donation", "Amount": 250.0, "FundId": "ref:bloomerang.funds:name=General Fund",
                          "Note": "Spring Gala; Wine basket; Ski trip", "AcknowledgementStatus": "Yes",
                          "CustomValues": [{"FieldId": 912, "Value": "9001"}]}],
    }
    assert result.mapped.iloc[0]["donor_source_id"] == "501"


@pytest.mark.parametrize(("emailed", "status"), [(True, "Yes"), (False, "No"), (None, "No")])
def test_acknowledged_when_receipt_emailed(org, emailed, status):
    payload = payloads(map_frame(org, "handbid.payments", [record(PAYMENT, receiptEmailed=emailed)]))["9001"]
    assert payload["Designations"][0]["AcknowledgementStatus"] == status


@pytest.mark.parametrize(("method", "reference", "expected"), [
    ("cash", None, {"Method": "Cash"}),
    ("check", "check #1042", {"Method": "Check", "CheckNumber": "1042"}),
    ("check", None, {"Method": "None", "CheckNumber": None}),
    ("handbid_card", "ch_abc", {"Method": "None"}),
    ("external_card", None, {"Method": "None"}),
    ("credit", None, {"Method": "None"}),
])
def test_payment_methods(org, method, reference, expected):
    payload = payloads(map_frame(org, "handbid.payments", [record(PAYMENT, method=method, reference=reference)]))
    assert {k: payload["9001"].get(k) for k in expected} == expected


def test_refunded_and_voided(org):
    result = map_frame(org, "handbid.payments", [record(PAYMENT, status="refunded"),
                                                 record(PAYMENT, id=9002, status="voided")])
    assert result.mapped["is_refunded"].tolist() == [True]
    assert result.rejected[["source_id", "kind"]].values.tolist() == [["9002", "excluded"]]


def test_per_event_fund_appeal_campaign(tmp_path):
    (tmp_path / "orgs").mkdir()
    (tmp_path / "defaults").symlink_to(MAPPINGS / "defaults")
    (tmp_path / "orgs" / "gala.yaml").write_text(
        "name: gala\nextends: [defaults/handbid]\ntimezone: America/Denver\n"
        "bloomerang: {api_key_env: GALA_KEY}\nhandbid:\n  token_env: GALA_HANDBID\n"
        "  default: {fund: 7}\n  events:\n    '45417': {fund: Gala Fund, appeal: 31, campaign: Spring 2024}\n"
        "    Golf Day: {fund: 8}\n")
    gala = load_org("gala", tmp_path)
    result = map_frame(gala, "handbid.payments", [
        PAYMENT, record(PAYMENT, id=2, auctionId=1, auctionName="Golf Day"), record(PAYMENT, id=3, auctionId=2)])
    designations = {sid: p["Designations"][0] for sid, p in payloads(result).items()}
    assert designations["9001"]["FundId"] == "ref:bloomerang.funds:name=Gala Fund"
    assert designations["9001"]["AppealId"] == 31
    assert designations["9001"]["CampaignId"] == "ref:bloomerang.campaigns:name=Spring 2024"
    assert designations["2"]["FundId"] == 8 and "AppealId" not in designations["2"]
    assert designations["3"]["FundId"] == 7


def test_payment_without_any_fund_configured_is_rejected(tmp_path):
    (tmp_path / "orgs").mkdir()
    (tmp_path / "defaults").symlink_to(MAPPINGS / "defaults")
    (tmp_path / "orgs" / "nofund.yaml").write_text(
        "name: nofund\nextends: [defaults/handbid]\ntimezone: UTC\n"
        "bloomerang: {api_key_env: K}\nhandbid: {token_env: T}\n")
    result = map_frame(load_org("nofund", tmp_path), "handbid.payments", [PAYMENT])
    assert errors(result) == {"9001": ["Designations.FundId: required but empty (from auctionId / auctionName)"]}
