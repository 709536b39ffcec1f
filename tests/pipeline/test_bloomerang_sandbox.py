"""The Bloomerang v2 simulator enforces the documented rules, over real loopback HTTP.

Every 2xx body these tests provoke is also validated against the official OpenAPI document when the
fixture tears down (see ``conftest_bloomerang.py``), so a shape drift fails here first.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.pipeline import conftest_bloomerang as cb

pytestmark = pytest.mark.slow  # starts sandbox servers or a Dagster instance

TEST_KEY = cb.TEST_KEY

FUND_GENERAL = 1001
CAMPAIGN = 1004
APPEAL = 1005


def _ids(server):
    smith = next(i for i, c in server.store.constituents.items() if c.get("LastName") == "Smith")
    return smith


def _gift(account_id, amount=50.0, **extra):
    body = {"AccountId": account_id, "Date": "2025-05-01", "Amount": amount, "Method": "Cash",
            "Designations": [{"Type": "Donation", "Amount": amount, "FundId": FUND_GENERAL}]}
    return body | extra


def _error(response, status, message):
    assert response.status_code == status, response.text
    assert response.json()["Message"] == message
    assert isinstance(response.json()["ErrorCode"], int)


# -- auth, errors, paging ------------------------------------------------------------------------
def test_missing_or_unknown_key_is_401_and_header_name_is_case_insensitive(bloomerang_server):
    url = bloomerang_server.url + "/constituents"
    missing = requests.get(url, timeout=5)
    wrong = requests.get(url, headers={"X-API-KEY": "not-the-key"}, timeout=5)
    assert missing.status_code == wrong.status_code == 401
    assert set(wrong.json()) == {"Message", "ErrorCode"}
    assert requests.get(url, headers={"x-api-key": TEST_KEY}, timeout=5).status_code == 200


def test_unknown_id_is_404_with_bloomerang_message(bloomerang_server):
    response = bloomerang_server.session.get(bloomerang_server.url + "/constituent/999999")
    assert response.status_code == 404
    assert response.json() == {"Message": "No constituent with id 999999 found", "ErrorCode": 202}


def test_take_over_50_is_rejected_and_envelope_pages(bloomerang_server):
    s, url = bloomerang_server.session, bloomerang_server.url
    _error(s.get(url + "/constituents", params={"take": 51}), 400, "take must be between 1 and 50")
    for n in range(5):
        assert s.post(url + "/constituent", json={"Type": "Individual", "FirstName": f"P{n}",
                                                    "LastName": "Pager"}).status_code == 200
    page = s.get(url + "/constituents", params={"skip": 2, "take": 2}).json()
    assert (page["Total"], page["TotalFiltered"], page["Start"], page["ResultCount"]) == (7, 7, 2, 2)
    ids = [c["Id"] for c in s.get(url + "/constituents", params={"take": 50}).json()["Results"]]
    assert [c["Id"] for c in page["Results"]] == ids[2:4]
    piped = s.get(url + "/constituents", params={"id": f"{ids[0]}|{ids[3]}"}).json()
    assert [c["Id"] for c in piped["Results"]] == [ids[0], ids[3]]


# -- constituents --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"FirstName": "A", "LastName": "B"}, "Type is required"),
        ({"Type": "Individual", "FirstName": "A", "LastName": "B", "FullName": None},
         "Cannot set FullName for individuals"),
        ({"Type": "Individual", "FirstName": "A"}, "LastName is required for individuals"),
        ({"Type": "Organization"}, "FullName is required for organizations"),
        ({"Type": "Household", "FullName": "X"}, "Invalid Type 'Household'. Valid values: Individual, Organization"),
        ({"Type": "Individual", "FirstName": "A", "LastName": "B", "Gender": "M"},
         "Invalid Gender 'M'. Valid values: Male, Female, Other"),
        ({"Type": "Individual", "FirstName": "A", "LastName": "B",
          "CustomValues": [{"FieldId": 901, "Value": {"Id": 5, "Value": "x"}}]},
         "Custom value for field 901 is in the read format; write {FieldId, Value}, {FieldId, ValueId} or "
         "{FieldId, ValueIds}"),
        ({"Type": "Individual", "FirstName": "A", "LastName": "B", "CustomValues": [{"FieldId": 4242, "Value": "x"}]},
         "No Constituent custom field with id 4242 found"),
        ({"Type": "Individual", "FirstName": "A", "LastName": "B", "CustomValues": [{"FieldId": 911, "Value": "x"}]},
         "No Constituent custom field with id 911 found"),
        ({"Type": "Individual", "FirstName": "A", "LastName": "B", "PrimaryEmail": {"Type": "Home", "Value": "nope"}},
         "'nope' is not a valid email address"),
        ({"Type": "Individual", "FirstName": "A", "LastName": "B", "PrimaryAddress": {"Type": "Home", "Street": "1"}},
         "Address Country is required"),
    ],
)
def test_constituent_validation_rejects_with_exact_message(bloomerang_server, body, message):
    before = len(bloomerang_server.store.constituents)
    _error(bloomerang_server.session.post(bloomerang_server.url + "/constituent", json=body), 400, message)
    assert len(bloomerang_server.store.constituents) == before  # nothing half-created


def test_create_computes_fullname_creates_contact_records_and_omits_nulls(bloomerang_server):
    s, url = bloomerang_server.session, bloomerang_server.url
    response = s.post(url + "/constituent", json={
        "Type": "Individual", "FirstName": "Ada", "MiddleName": None, "LastName": "Lovelace", "Suffix": "III",
        "PrimaryEmail": {"Type": "Home", "Value": "ada@example.org"},
        "PrimaryPhone": {"Type": "Mobile", "Number": "317-555-0100"},
        "CustomValues": [{"FieldId": 901, "Value": "wg-77"}],
    })
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["FullName"] == "Ada Lovelace III"
    assert "null" not in response.text and "MiddleName" not in body
    assert body["EmailIds"] == [body["PrimaryEmail"]["Id"]] and body["PrimaryEmail"]["AccountId"] == body["Id"]
    assert body["PhoneIds"] == [body["PrimaryPhone"]["Id"]] and body["AddressIds"] == []
    assert body["CustomValues"][0]["FieldId"] == 901 and body["CustomValues"][0]["Value"]["Value"] == "wg-77"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["AuditTrail"]["CreatedDate"])
    email = s.get(url + f"/email/{body['PrimaryEmail']['Id']}").json()
    assert email["Value"] == "ada@example.org" and email["IsPrimary"] is True


def test_put_is_patch_like_updates_audit_trail_and_keeps_contacts_consistent(bloomerang_server):
    s, url, store = bloomerang_server.session, bloomerang_server.url, bloomerang_server.store
    smith = _ids(bloomerang_server)
    before = s.get(url + f"/constituent/{smith}").json()
    store.clock = lambda: datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    after = s.put(url + f"/constituent/{smith}", json={
        "Type": "Individual", "JobTitle": "Treasurer",
        "PrimaryEmail": {"Type": "Work", "Value": "bob@work.example.org"},
    }).json()
    assert after["FirstName"] == "Robert" and after["JobTitle"] == "Treasurer"
    assert after["PrimaryPhone"] == before["PrimaryPhone"]  # omitted → preserved
    assert after["EmailIds"] == before["EmailIds"] and after["PrimaryEmail"]["Value"] == "bob@work.example.org"
    assert after["AuditTrail"]["LastModifiedDate"] == "2030-01-02T03:04:05Z"
    assert after["AuditTrail"]["CreatedDate"] == before["AuditTrail"]["CreatedDate"]
    _error(s.put(url + f"/constituent/{smith}", json={"FullName": "Bob Smith"}), 400,
           "Cannot set FullName for individuals")
    cleared = s.put(url + f"/constituent/{smith}", json={"JobTitle": None}).json()
    assert "JobTitle" not in cleared


def test_last_modified_is_strictly_after_in_utc(bloomerang_server):
    s, url, store = bloomerang_server.session, bloomerang_server.url, bloomerang_server.store
    t0 = datetime(2031, 6, 1, 12, 0, 0, tzinfo=UTC)
    store.clock = lambda: t0
    smith = _ids(bloomerang_server)
    s.put(url + f"/constituent/{smith}", json={"JobTitle": "Chair"})
    at = {"lastModified": "2031-06-01T12:00:00Z"}
    assert s.get(url + "/constituents", params=at).json()["TotalFiltered"] == 0
    earlier = {"lastModified": "2031-06-01T07:59:59-04:00"}  # one second before t0, as an offset
    assert [c["Id"] for c in s.get(url + "/constituents", params=earlier).json()["Results"]] == [smith]
    store.touch("constituent", smith, at=t0 + timedelta(seconds=1), actor="Jane Staff")
    touched = s.get(url + "/constituents", params=at | {"orderBy": "LastModifiedDate"}).json()["Results"]
    assert [c["AuditTrail"]["LastModifiedName"] for c in touched] == ["Jane Staff"]


def test_custom_field_filter_finds_the_record(bloomerang_server):
    s, url = bloomerang_server.session, bloomerang_server.url
    found = s.get(url + "/constituents", params={"customFieldId": 901, "customFieldValue": "wg-1001"}).json()
    assert [c["LastName"] for c in found["Results"]] == ["Smith"]
    none = s.get(url + "/constituents", params={"customFieldId": 901, "customFieldValue": "wg-9"}).json()
    assert none["TotalFiltered"] == 0


@pytest.mark.parametrize(
    ("query", "matches"),
    [
        ({"FirstName": "Bob", "LastName": "Smith", "EmailAddress": "ROBERT.SMITH@example.org"}, True),
        ({"FirstName": "Rob", "LastName": "Smith", "Street": "98123 Main St."}, True),
        ({"FirstName": "Robert", "LastName": "Smith", "PhoneNumber": "(317) 555-9091"}, False),
        ({"FirstName": "Robert", "LastName": "Smith", "PhoneNumber": "1-317-555-9090"}, True),
        ({"FirstName": "Alice", "LastName": "Jones", "EmailAddress": "robert.smith@example.org"}, False),
        ({"EmailAddress": "robert.smith@example.org"}, False),
        ({"FirstName": "Robert", "LastName": "Smith"}, False),
        ({"FirstName": "Robert", "LastName": "Smithers", "EmailAddress": "robert.smith@example.org"}, False),
        ({"OrganizationName": "Acme Foundation", "Type": "Organization",
          "EmailAddress": "grants@acme.example.org"}, True),
    ],
)
def test_duplicate_rule_needs_name_and_one_contact_point(bloomerang_server, query, matches):
    s, url = bloomerang_server.session, bloomerang_server.url
    posted = s.post(url + "/constituent/duplicates", json=query).json()
    camel = {k[0].lower() + k[1:]: v for k, v in query.items()}
    fetched = s.get(url + "/constituent/duplicates", params=camel).json()
    assert (posted["TotalFiltered"] == 1) is matches
    assert fetched["TotalFiltered"] == posted["TotalFiltered"]


# -- transactions and refunds ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"Amount": 60.0}, "Amount 60.00 must equal the sum of the designation amounts 50.00"),
        ({"Designations": [{"Type": "Donation", "Amount": 50.0, "FundId": 424242}]}, "No fund with id 424242 found"),
        ({"Designations": [{"Type": "Donation", "Amount": 50.0}]}, "FundId is required for Donation designations"),
        ({"Method": "Check"}, "CheckNumber is required for Check transactions"),
        ({"Method": "InKind"}, "InKindDescription is required for InKind transactions"),
        ({"Method": "PayPal"}, "WalletItemId is required for PayPal transactions"),
        ({"Method": "Venmo", "WalletItemId": 77}, "No wallet item with id 77 found"),
        ({"Method": "Bitcoin"}, "Invalid Method 'Bitcoin'. Valid values: None, Cash, Check, CreditCard, Eft, "
                                "InKind, ApplePay, GooglePay, PayPal, Venmo"),
        ({"Method": "CreditCard", "CreditCardType": "Visa"}, "CreditCard transactions need a WalletItemId or all "
         "of CreditCardType, CreditCardLastFourDigits, CreditCardExpMonth, CreditCardExpYear"),
        ({"AccountId": 424242}, "No constituent with id 424242 found"),
        ({"Designations": [{"Type": "PledgePayment", "Amount": 50.0, "PledgeId": 1}]},
         "No Pledge designation with id 1 found"),
        ({"Designations": [{"Type": "Donation", "Amount": 50.0, "FundId": FUND_GENERAL,
                            "AcknowledgementStatus": "Maybe"}]},
         "Invalid AcknowledgementStatus 'Maybe'. Valid values: Yes, No, DoNotAcknowledge"),
        ({"Designations": [{"Type": "Donation", "Amount": 50.0, "FundId": FUND_GENERAL, "CampaignId": 5}]},
         "No campaign with id 5 found"),
    ],
)
def test_transaction_validation_rejects_with_exact_message(bloomerang_server, change, message):
    body = _gift(_ids(bloomerang_server)) | change
    _error(bloomerang_server.session.post(bloomerang_server.url + "/transaction", json=body), 400, message)
    assert bloomerang_server.store.transactions == {}


def test_transaction_read_shape_filters_and_refund_flow(bloomerang_server):
    s, url = bloomerang_server.session, bloomerang_server.url
    smith = _ids(bloomerang_server)
    card = _gift(smith, 75.5, Method="CreditCard", CreditCardType="Visa", CreditCardLastFourDigits="4242",
                 CreditCardExpMonth=12, CreditCardExpYear=2030, CheckNumber="ignored")
    card["Designations"] = [
        {"Type": "Donation", "Amount": 50.5, "FundId": FUND_GENERAL, "CampaignId": CAMPAIGN, "AppealId": APPEAL,
         "CustomValues": [{"FieldId": 911, "Value": "wg-t-1"}]},
        {"Type": "Donation", "Amount": 25.0, "FundId": 1002, "AcknowledgementStatus": "Yes"},
    ]
    created = s.post(url + "/transaction", json=card)
    assert created.status_code == 200, created.text
    gift = created.json()
    assert gift["IsRefunded"] == "No" and gift["RefundIds"] == [] and "CheckNumber" not in gift
    first = gift["Designations"][0]
    assert first["Fund"] == {"Id": FUND_GENERAL, "Name": "General Fund"}
    assert first["Campaign"]["Name"] == "Annual Campaign 2025" and first["AcknowledgementStatus"] == "No"
    assert s.post(url + "/transaction", json=_gift(smith, 10.0, Date="2025-07-01")).status_code == 200

    listing = s.get(url + "/transactions", params={"accountId": smith})
    assert listing.headers["content-type"].startswith("text/json")
    assert [t["Date"] for t in listing.json()["Results"]] == ["2025-07-01", "2025-05-01"]  # Date Desc default
    by_field = s.get(url + "/transactions", params={"customFieldId": 911, "customFieldValue": "wg-t-1"}).json()
    assert [t["Id"] for t in by_field["Results"]] == [gift["Id"]]
    assert s.get(url + "/transactions", params={"minAmount": 20, "maxAmount": 75.5}).json()["TotalFiltered"] == 1

    _error(s.post(url + "/refund", json={"TransactionId": gift["Id"]}), 400, "Date is required")
    refund = s.post(url + "/refund", json={"TransactionId": gift["Id"], "Date": "2025-05-03",
                                           "Note": "duplicate charge", "RunProcessorRefund": False}).json()
    assert refund["Amount"] == 75.5 and refund["TransactionId"] == gift["Id"]
    after = s.get(url + f"/transaction/{gift['Id']}").json()
    assert after["IsRefunded"] == "Yes" and after["RefundIds"] == [refund["Id"]]
    assert s.get(url + "/refunds", params={"transactionId": gift["Id"]}).json()["ResultCount"] == 1
    _error(s.post(url + "/refund", json={"TransactionId": gift["Id"], "Date": "2025-05-04"}), 400,
           f"Transaction {gift['Id']} has already been refunded")


def test_transaction_put_keeps_designation_ids_and_revalidates(bloomerang_server):
    s, url = bloomerang_server.session, bloomerang_server.url
    gift = s.post(url + "/transaction", json=_gift(_ids(bloomerang_server))).json()
    designation = gift["Designations"][0]
    updated = s.put(url + f"/transaction/{gift['Id']}", json={
        "Amount": 80.0, "Designations": [{"Id": designation["Id"], "Amount": 80.0}],
    }).json()
    assert updated["Designations"][0]["Id"] == designation["Id"] and updated["Amount"] == 80.0
    _error(s.put(url + f"/transaction/{gift['Id']}", json={"Amount": 81.0}), 400,
           "Amount 81.00 must equal the sum of the designation amounts 80.00")


def test_schedules_and_payments_link_by_designation_id(bloomerang_server):
    s, url = bloomerang_server.session, bloomerang_server.url
    smith = _ids(bloomerang_server)
    schedule = s.post(url + "/transaction", json=_gift(smith, 20.0, Method="None", Designations=[
        {"Type": "RecurringDonation", "Amount": 20.0, "FundId": FUND_GENERAL,
         "RecurringDonationStartDate": "2025-01-01", "RecurringDonationFrequency": "Monthly"}]))
    assert schedule.status_code == 200, schedule.text
    schedule_designation = schedule.json()["Designations"][0]["Id"]
    payment = s.post(url + "/transaction", json=_gift(smith, 20.0, Designations=[
        {"Type": "RecurringDonationPayment", "Amount": 20.0, "RecurringDonationId": schedule_designation,
         "IsExtraPayment": False}])).json()
    assert payment["Designations"][0]["Fund"]["Id"] == FUND_GENERAL  # inherited from the schedule
    line = s.get(url + f"/transactions/designation/{schedule_designation}").json()
    assert line["RecurringDonationPaymentIds"] == [payment["Designations"][0]["Id"]]


def test_funds_custom_fields_and_user(bloomerang_server):
    s, url = bloomerang_server.session, bloomerang_server.url
    _error(s.post(url + "/fund", json={"IsActive": True}), 400, "Name is required")
    fund = s.post(url + "/fund", json={"Name": "Building Fund"}).json()
    assert "AuditTrail" not in fund and fund["IsActive"] is True
    active = s.get(url + "/funds", params={"isActive": "false"}).json()
    assert [f["Name"] for f in active["Results"]] == ["Old Fund"]
    assert [f["Name"] for f in s.get(url + "/funds", params={"search": "gala"}).json()["Results"]] == ["Gala Fund"]
    fields = s.get(url + "/customFields/Constituent/").json()
    assert [(f["Id"], f["Name"]) for f in fields] == [(901, "WeGive Donor ID"), (902, "Handbid Contact ID")]
    assert [f["Id"] for f in s.get(url + "/customFields/Transaction").json()] == [911, 912]
    assert s.get(url + "/user/current").json()["IsActive"] is True
    assert json.loads(s.get(url + "/database").text)["Flavor"] == "Demo"


def test_refund_update_and_delete_per_the_document(bloomerang_server):
    s, url = bloomerang_server.session, bloomerang_server.url
    gift = s.post(url + "/transaction", json=_gift(_ids(bloomerang_server))).json()
    other = s.post(url + "/transaction", json=_gift(_ids(bloomerang_server), 5.0)).json()
    refund = s.post(url + "/refund", json={"TransactionId": gift["Id"], "Date": "2025-05-03",
                                           "RunProcessorRefund": False}).json()
    rid = refund["Id"]
    _error(s.put(url + f"/refund/{rid}", json={"Note": "x"}), 400, "Id is required")
    _error(s.put(url + f"/refund/{rid}", json={"Id": rid + 1, "Note": "x"}), 400,
           f"Id {rid + 1} does not match refund {rid} of the path")
    _error(s.put(url + f"/refund/{rid}", json={"Id": rid, "TransactionId": other["Id"]}), 400,
           "Cannot move a refund to another transaction")
    updated = s.put(url + f"/refund/{rid}", json={"Id": rid, "Date": "2025-05-04", "Note": "card disputed",
                                                  "TransactionId": gift["Id"]}).json()
    assert (updated["Date"], updated["Note"], updated["Amount"]) == ("2025-05-04", "card disputed", 50.0)
    assert s.get(url + f"/refund/{rid}").json() == updated
    cleared = s.put(url + f"/refund/{rid}", json={"Id": rid, "Note": None}).json()
    assert "Note" not in cleared
    assert s.delete(url + f"/refund/{rid}").json() == {"Id": rid, "Type": "Refund", "Deleted": True}
    after = s.get(url + f"/transaction/{gift['Id']}").json()
    assert after["IsRefunded"] == "No" and after["RefundIds"] == []
    _error(s.get(url + f"/refund/{rid}"), 404, f"No refund with id {rid} found")
    assert s.post(url + "/refund", json={"TransactionId": gift["Id"], "Date": "2025-06-01"}).status_code == 200


# -- interactions, notes, communication settings ---------------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"AccountId": None}, "AccountId is required"),
        ({"Subject": None}, "Subject is required"),
        ({"Subject": "  "}, "Subject cannot be empty"),
        ({"Channel": "Fax"}, "Invalid Channel 'Fax'. Valid values: Email, MassEmail, Phone, TextMessage, Mail, "
                             "InPerson, SocialMedia, Website, Twitter, Other, EngagementSurveyEmail, EngagementSurvey"),
        ({"Purpose": None}, "Purpose is required"),
        ({"Date": "2025-13-01"}, "Date must be a date (YYYY-MM-DD)"),
        ({"AccountId": 424242}, "No constituent with id 424242 found"),
        ({"IsInbound": "yes"}, "IsInbound must be true or false"),
        ({"Attachments": [{"Name": "a.pdf", "Url": "https://example.org/a.pdf"}]},
         "Attachments are not supported: send none (or an empty list)"),
        ({"CustomValues": [{"FieldId": 901, "Value": "x"}]}, "No Interaction custom field with id 901 found"),
    ],
)
def test_interaction_validation_rejects_with_exact_message(bloomerang_server, change, message):
    body = {"AccountId": _ids(bloomerang_server), "Date": "2025-05-01", "Channel": "Email", "Purpose": "Receipt",
            "Subject": "Thank you"} | change
    _error(bloomerang_server.session.post(bloomerang_server.url + "/interaction", json=body), 400, message)
    assert bloomerang_server.store.interactions == {}


def test_interactions_create_list_get_update_delete(bloomerang_server):
    s, url, store = bloomerang_server.session, bloomerang_server.url, bloomerang_server.store
    smith = _ids(bloomerang_server)
    acme = next(i for i, c in store.constituents.items() if c.get("FullName") == "Acme Foundation")
    store.clock = lambda: datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    first = s.post(url + "/interaction", json={"AccountId": smith, "Date": "2025-05-01", "Channel": "Email",
                                               "Purpose": "Receipt", "Subject": "Thank you"})
    assert first.status_code == 200, first.text
    made = first.json()
    assert made["IsInbound"] is False and made["AttachmentIds"] == [] and made["CustomValues"] == []
    assert made["AuditTrail"]["CreatedDate"] == "2030-01-02T03:04:05Z" and "Note" not in made
    call = s.post(url + "/interaction", json={"AccountId": acme, "Date": "2025-06-01", "Channel": "Phone",
                                              "Purpose": "Solicitation", "Subject": "Ask", "IsInbound": True,
                                              "Note": "Pledged next month"}).json()
    assert s.get(url + f"/interaction/{made['Id']}").json() == made
    listing = s.get(url + "/interactions").json()
    assert [i["Id"] for i in listing["Results"]] == [call["Id"], made["Id"]]  # Date Desc by default
    assert [i["Id"] for i in s.get(url + "/interactions", params={"channel": "Phone|Mail"}).json()["Results"]] \
        == [call["Id"]]
    assert s.get(url + "/interactions", params={"purpose": "Receipt", "constituent": acme}).json()["Results"] == []
    _error(s.get(url + "/interactions", params={"channel": "Fax"}), 400,
           "Invalid channel 'Fax'. Valid values: Email, MassEmail, Phone, TextMessage, Mail, InPerson, SocialMedia, "
           "Website, Twitter, Other, EngagementSurveyEmail, EngagementSurvey")
    _error(s.put(url + f"/interaction/{made['Id']}", json={"AccountId": acme}), 400,
           "Cannot move an interaction to another constituent")
    updated = s.put(url + f"/interaction/{made['Id']}", json={"Note": "Replied", "Purpose": "Acknowledgement"}).json()
    assert (updated["Note"], updated["Purpose"], updated["Subject"]) == ("Replied", "Acknowledgement", "Thank you")
    assert "Note" not in s.put(url + f"/interaction/{made['Id']}", json={"Note": None}).json()
    _error(s.put(url + f"/interaction/{made['Id']}", json={"Subject": None}), 400, "Subject cannot be empty")
    assert s.delete(url + f"/interaction/{made['Id']}").json() == {"Id": made["Id"], "Type": "Interaction",
                                                                   "Deleted": True}
    _error(s.get(url + f"/interaction/{made['Id']}"), 404, f"No interaction with id {made['Id']} found")


def test_notes_create_list_get_update_delete_and_go_with_their_constituent(bloomerang_server):
    s, url, store = bloomerang_server.session, bloomerang_server.url, bloomerang_server.store
    smith = _ids(bloomerang_server)
    _error(s.post(url + "/note", json={"AccountId": smith, "Date": "2025-05-01"}), 400, "Note is required")
    _error(s.post(url + "/note", json={"Date": "2025-05-01", "Note": "x"}), 400, "AccountId is required")
    note = s.post(url + "/note", json={"AccountId": smith, "Date": "2025-05-01", "Note": "Met at the gala"}).json()
    assert set(note) == {"Id", "AccountId", "Date", "Note", "AttachmentIds", "CustomValues", "AuditTrail"}
    assert s.get(url + "/notes", params={"constituent": smith}).json()["Results"] == [note]
    newcomer = s.post(url + "/constituent", json={"Type": "Individual", "FirstName": "N", "LastName": "Ew"}).json()
    moved = s.put(url + f"/note/{note['Id']}", json={"AccountId": newcomer["Id"], "Date": "2025-05-02"}).json()
    assert (moved["AccountId"], moved["Date"], moved["Note"]) == (newcomer["Id"], "2025-05-02", "Met at the gala")
    _error(s.put(url + f"/note/{note['Id']}", json={"Note": ""}), 400, "Note cannot be empty")
    assert s.delete(url + f"/constituent/{newcomer['Id']}").status_code == 200
    assert store.notes == {}  # deleted with its constituent
    _error(s.delete(url + f"/note/{note['Id']}"), 404, f"No note with id {note['Id']} found")


def test_update_communication_settings_needs_reasons_and_sets_all_three(bloomerang_server):
    s, url = bloomerang_server.session, bloomerang_server.url
    smith = _ids(bloomerang_server)
    path = url + f"/constituent/{smith}/updateCommunicationSettings"
    _error(s.put(path, json={}), 400,
           "Send at least one of CommunicationRestrictions, PreferredChannel, EmailInterests")
    _error(s.put(path, json={"CommunicationRestrictions": {"CommunicationRestrictions": ["DoNotCall"]}}), 400,
           "CommunicationRestrictions.UpdateReason is required")
    _error(s.put(path, json={"EmailInterests": {"UpdateReason": "asked", "EmailInterestType": "Custom"}}), 400,
           "CustomEmailInterestIds is required when EmailInterestType is Custom")
    _error(s.put(path, json={"EmailInterests": {"UpdateReason": "asked", "EmailInterestType": "Custom",
                                                "CustomEmailInterestIds": [999]}}), 400,
           "No email interest with id 999 found")
    _error(s.put(path, json={"Id": smith + 1, "PreferredChannel": {"PreferredCommunicationChannel": "Mail"}}), 400,
           f"Id {smith + 1} does not match constituent {smith} of the path")
    _error(s.put(url + "/constituent/424242/updateCommunicationSettings",
                 json={"PreferredChannel": {"PreferredCommunicationChannel": "Mail"}}), 404,
           "No constituent with id 424242 found")
    settings = s.put(path, json={
        "Id": smith,
        "CommunicationRestrictions": {"UpdateReason": "Donor asked", "CommunicationRestrictions": ["DoNotCall"]},
        "PreferredChannel": {"PreferredCommunicationChannel": "Mail"},
        "EmailInterests": {"UpdateReason": "Newsletter only", "EmailInterestType": "Custom",
                           "CustomEmailInterestIds": [701]},
    })
    assert settings.status_code == 200, settings.text
    body = settings.json()
    assert body["CommunicationRestrictions"] == ["DoNotCall"]
    assert body["CommunicationRestrictionsUpdateReason"] == "Donor asked"
    assert body["PreferredCommunicationChannel"] == "Mail"
    assert (body["EmailInterestType"], body["EmailInterestsUpdateReason"]) == ("Custom", "Newsletter only")
    assert body["CustomEmailInterests"] == [{"Id": 701, "Name": "Newsletter"}]
    assert s.get(url + f"/constituent/{smith}").json() == body
    _error(s.put(url + f"/constituent/{smith}", json={"EmailInterestType": "Custom"}), 400,
           "EmailInterestType cannot be set to Custom through the API")
    opted_out = s.put(path, json={"EmailInterests": {"UpdateReason": "Unsubscribed",
                                                     "EmailInterestType": "OptedOut"}}).json()
    assert opted_out["EmailInterestType"] == "OptedOut" and "CustomEmailInterests" not in opted_out
    assert opted_out["PreferredCommunicationChannel"] == "Mail"  # sections not sent are kept
