"""The pull direction: Bloomerang → WeGive donor / Handbid contact fields, derived from the same rules."""

import json

from bloom_pipeline.mapping.compile import map_frame, reverse_map, to_source_payload

from .conftest import CONTACT, DONOR, MAPPINGS, record


def as_read_shape(payload: dict, constituent_id: int) -> dict:
    """What GET /constituent returns for a body we wrote (ids added, custom values in the read shape)."""
    read = dict(payload, Id=constituent_id, AuditTrail={"LastModifiedDate": "2025-03-05T10:00:00Z"})
    read["CustomValues"] = [{"FieldId": cv["FieldId"], "Value": {"Id": 1, "Value": cv["Value"]}}
                            for cv in payload.get("CustomValues", [])]
    return read


def test_round_trip_wegive_bloomerang_wegive_preserves_bidirectional_fields(org):
    donors = [
        record(DONOR, mailing_address={**DONOR["mailing_address"], "address_2": "Apt 4"}),
        record(DONOR, id=2, first_name="Grace", middle_name=None, last_name="Hopper", email_1="grace@navy.mil",
               mobile_phone="7205550101", mailing_address=None),
        record(DONOR, id=3, type="company", name="Acme Foundation", first_name=None, middle_name=None,
               last_name=None, email_1=None, mobile_phone=None),
    ]
    mapped = map_frame(org, "wegive.donors", donors).mapped
    read = [as_read_shape(json.loads(p), 500 + i) for i, p in enumerate(mapped["payload"])]
    pulled = reverse_map(org, "wegive.donors", read)
    back = {row.correlation_id: json.loads(row.source_payload) for row in pulled.itertuples()}
    fields = ["type", "first_name", "middle_name", "last_name", "email_1", "mobile_phone"]
    for donor in donors[:2]:
        assert {k: back[str(donor["id"])].get(k) for k in fields} == {k: donor.get(k) for k in fields}
    assert back["1012"]["mailing_address"] == {"address_1": "1 Main St", "address_2": "Apt 4", "city": "Denver",
                                               "state": "CO", "zip": "80202", "country": "US"}
    assert back["3"]["type"] == "company" and back["3"]["name"] == "Acme Foundation"
    assert pulled["bloomerang_id"].tolist() == [500, 501, 502]
    # canonical columns agree with the forward mapping, so the sync compares like with like
    columns = ["constituent_type", "first_name", "last_name", "email", "phone", "street", "city"]
    assert pulled[columns].fillna("").values.tolist() == mapped[columns].fillna("").values.tolist()


def test_fnu_lnu_defaults_flow_back_as_empty(org):
    read = {"Id": 9, "Type": "Individual", "FirstName": "FNU", "LastName": "LNU"}
    assert json.loads(reverse_map(org, "wegive.donors", [read])["source_payload"][0])["first_name"] is None


def test_to_source_payload_for_wegive_and_handbid(org):
    canonical = {"constituent_type": "Individual", "first_name": "Ada", "middle_name": None, "last_name": "Lovelace",
                 "email": "ada@example.org", "phone": "(303) 555-1212", "street": "1 Main St\nApt 4",
                 "city": "Denver", "state": "CO", "postal_code": "80202", "country": "US", "bloomerang_id": 77}
    assert to_source_payload("wegive", canonical, org) == {
        "type": "individual", "first_name": "Ada", "middle_name": None, "last_name": "Lovelace",
        "email_1": "ada@example.org", "mobile_phone": "(303) 555-1212", "bloomerang_id": 77,
        "mailing_address": {"address_1": "1 Main St", "address_2": "Apt 4", "city": "Denver", "state": "CO",
                            "zip": "80202", "country": "US"}}
    assert to_source_payload("handbid", canonical, org) == {
        "firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.org", "userCellPhone": "(303) 555-1212",
        "addresses": [{"street1": "1 Main St", "street2": "Apt 4", "city": "Denver", "province": "CO",
                       "postalCode": "80202", "country": "US"}]}


def test_to_source_payload_without_org_uses_the_default_mapping():
    body = to_source_payload("wegive", {"constituent_type": "Organization", "full_name": "Acme"},
                             mappings_dir=str(MAPPINGS))
    assert body["type"] == "company" and body["name"] == "Acme"


def test_round_trip_handbid_contact(org):
    mapped = map_frame(org, "handbid.contacts", [CONTACT]).mapped
    pulled = reverse_map(org, "handbid.contacts", [as_read_shape(json.loads(mapped["payload"][0]), 9)])
    body = json.loads(pulled["source_payload"][0])
    assert pulled["correlation_id"][0] == "501"
    for key in ("firstName", "lastName", "email", "userCellPhone"):
        assert body[key] == CONTACT[key]
    assert body["addresses"][0] == {k: CONTACT["addresses"][0][k] for k in body["addresses"][0]}
