"""Every row of the reference's donor tables: WeGive donor → Bloomerang constituent write body."""

import pytest

from bloom_pipeline.mapping.compile import map_frame

from .conftest import DONOR, errors, payloads, record

ADDRESS = {"Type": "Home", "Street": "1 Main St", "City": "Denver", "State": "CO", "PostalCode": "80202",
           "Country": "US", "IsPrimary": True}

# (case, source record, expected subset of the payload)
INDIVIDUAL_CASES = [
    ("individual becomes Individual", record(DONOR), {"Type": "Individual"}),
    ("first_name → FirstName", record(DONOR, first_name="Grace"), {"FirstName": "Grace"}),
    ("blank first_name → FNU", record(DONOR, first_name="  "), {"FirstName": "FNU"}),
    ("missing first_name → FNU", record(DONOR, first_name=None), {"FirstName": "FNU"}),
    ("middle_name → MiddleName", record(DONOR, middle_name="King"), {"MiddleName": "King"}),
    ("last_name → LastName", record(DONOR, last_name="Hopper"), {"LastName": "Hopper"}),
    ("blank last_name → LNU", record(DONOR, last_name=""), {"LastName": "LNU"}),
    ("email_1 → PrimaryEmail.Value", record(DONOR, email_1=" ada@example.org "),
     {"PrimaryEmail": {"Type": "Home", "Value": "ada@example.org", "IsPrimary": True}}),
    ("mobile_phone as provided", record(DONOR, mobile_phone="303.555.1212"),
     {"PrimaryPhone": {"Type": "Mobile", "Number": "303.555.1212", "IsPrimary": True}}),
    ("an extension kept", record(DONOR, mobile_phone=" +1 303-555-1212 ext. 4 "),
     {"PrimaryPhone": {"Type": "Mobile", "Number": "+1 303-555-1212 ext. 4", "IsPrimary": True}}),
    ("foreign phone international", record(DONOR, mobile_phone="+44 20 7946 0958"),
     {"PrimaryPhone": {"Type": "Mobile", "Number": "+44 20 7946 0958", "IsPrimary": True}}),
    ("unparseable phone kept as provided", record(DONOR, mobile_phone="ext. 12"),
     {"PrimaryPhone": {"Type": "Mobile", "Number": "ext. 12", "IsPrimary": True}}),
    ("mailing_address → PrimaryAddress", record(DONOR), {"PrimaryAddress": ADDRESS}),
    ("address_2 joins Street", record(DONOR, mailing_address={**DONOR["mailing_address"], "address_2": "Apt 4"}),
     {"PrimaryAddress": {**ADDRESS, "Street": "1 Main St\nApt 4"}}),
    ("id stored as correlation custom value", record(DONOR), {"CustomValues": [{"FieldId": 901, "Value": "1012"}]}),
]


@pytest.mark.parametrize(("case", "donor", "expected"), INDIVIDUAL_CASES, ids=[c[0] for c in INDIVIDUAL_CASES])
def test_individual_rule(org, case, donor, expected):
    payload = payloads(map_frame(org, "wegive.donors", [donor]))["1012"]
    assert {k: payload.get(k) for k in expected} == expected


@pytest.mark.parametrize(("case", "donor", "absent"), [
    ("no middle name, no key", record(DONOR, middle_name=None), "MiddleName"),
    ("no email, no PrimaryEmail", record(DONOR, email_1=None), "PrimaryEmail"),
    ("no phone, no PrimaryPhone", record(DONOR, mobile_phone=""), "PrimaryPhone"),
    ("no address, no PrimaryAddress", record(DONOR, mailing_address=None), "PrimaryAddress"),
    ("an individual never sends FullName", record(DONOR), "FullName"),
])
def test_individual_omits(org, case, donor, absent):
    assert absent not in payloads(map_frame(org, "wegive.donors", [donor]))["1012"]


def test_company_becomes_organization_with_full_name(org):
    company = record(DONOR, type="company", name="Acme Foundation", first_name=None, middle_name=None,
                     last_name=None, email_1=None, mobile_phone=None)
    payload = payloads(map_frame(org, "wegive.donors", [company]))["1012"]
    assert payload == {"Type": "Organization", "FullName": "Acme Foundation",
                       "PrimaryAddress": {**ADDRESS, "Type": "Work"},
                       "CustomValues": [{"FieldId": 901, "Value": "1012"}]}


def test_company_without_name_is_rejected_naming_the_field(org):
    company = record(DONOR, type="company", name="  ")
    result = map_frame(org, "wegive.donors", [company])
    assert errors(result) == {"1012": ["FullName: required but empty (from name)"]}
    assert result.mapped.empty


def test_invalid_email_is_dropped_with_field_and_value(org):
    result = map_frame(org, "wegive.donors", [record(DONOR, email_1="ada@@example")])
    assert result.rejected.empty and result.mapped["source_id"].tolist() == ["1012"]
    assert dict(zip(result.fields["source_id"], result.fields["errors"], strict=True)) == {
        "1012": ["PrimaryEmail.Value: 'ada@@example' is not a valid email address (from email_1)"]}
    assert result.fields["kind"].tolist() == ["field"]


def test_unknown_donor_type_is_rejected(org):
    result = map_frame(org, "wegive.donors", [record(DONOR, type="household")])
    assert errors(result) == {"1012": ["type: no mapping branch for 'household'"]}


def test_canonical_columns(org):
    row = map_frame(org, "wegive.donors", [record(DONOR, bloomerang_id=77)]).mapped.iloc[0]
    assert row["source"] == "wegive" and row["source_id"] == "1012"
    assert (row["constituent_type"], row["first_name"], row["middle_name"], row["last_name"]) == (
        "Individual", "Ada", "King", "Lovelace")
    assert (row["email"], row["phone"], row["street"], row["city"], row["state"], row["postal_code"],
            row["country"]) == ("ada@example.org", "3035551212", "1 Main St", "Denver", "CO", "80202", "US")
    assert row["bloomerang_id"] == 77
    assert str(row["source_updated_at"]) == "2025-03-04 09:00:00+00:00"


def test_an_organization_donor_keeps_its_email_and_phone_both_ways(org):
    from bloom_pipeline.mapping.reverse import to_source_payload

    company = record(DONOR, type="company", name="Acme Foundation", first_name=None, middle_name=None,
                     last_name=None, email_1="info@acme.org", mobile_phone=None, office_phone="3035550100")
    result = map_frame(org, "wegive.donors", [company])
    payload = payloads(result)["1012"]
    assert payload["PrimaryEmail"] == {"Type": "Work", "Value": "info@acme.org", "IsPrimary": True}
    assert payload["PrimaryPhone"]["Type"] == "Work" and payload["PrimaryPhone"]["IsPrimary"] is True
    assert "".join(ch for ch in payload["PrimaryPhone"]["Number"] if ch.isdigit()) == "3035550100"
    back = to_source_payload("wegive", {"constituent_type": "Organization", "full_name": "Acme Foundation",
                                        "email": "grants@acme.org", "phone": "(720) 555-0199"}, org)
    assert back["type"] == "company" and back["email_1"] == "grants@acme.org"
    assert "".join(ch for ch in back["mobile_phone"] if ch.isdigit()) == "7205550199", "the field WeGive's PUT takes"
