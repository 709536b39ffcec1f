"""BloomerangClient walked through every endpoint the Bloomerang sandbox serves, over real HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest

from bloom_pipeline.clients.bloomerang import BloomerangClient
from bloom_pipeline.clients.http import AuthError
from bloom_pipeline.errors import ApiError
from bloom_pipeline.sandbox.bloomerang import app as bloomerang_app
from bloom_pipeline.sandbox.faults import Knobs, RequestLog
from bloom_pipeline.sandbox.server import Sandbox

pytestmark = pytest.mark.slow  # starts sandbox servers or a Dagster instance

WEGIVE_DONOR_FIELD, WEGIVE_TX_FIELD = 901, 911


@pytest.fixture(scope="module")
def sb():
    with Sandbox(donors=60, seed=7, knobs=Knobs(rate_limit=None)) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def bc(sb, tmp_path_factory):
    client = BloomerangClient(sb.urls["bloomerang"], sb.keys["bloomerang"], rate_budget=1000,
                              budget_dir=tmp_path_factory.mktemp("budget"))
    yield client
    client.close()


def person(n: int, **extra) -> dict:
    return {"Type": "Individual", "FirstName": f"Walker{n}", "LastName": "Pagetest",
            "PrimaryEmail": {"Type": "Home", "Value": f"walker{n}@example.org"},
            "CustomValues": [{"FieldId": WEGIVE_DONOR_FIELD, "Value": f"wg-{n}"}], **extra}


def queries(sb, path: str, since: int = 0) -> list[dict]:
    """Query strings of the requests to ``path`` logged after entry number ``since``."""
    return [parse_qs(e.query) for e in sb.request_log.entries[since:] if e.api == "bloomerang" and e.path == path]


def test_lists_page_with_take_50_until_total_filtered(sb, bc):
    before = sum(1 for _ in bc.iter_constituents())
    created = [bc.create_constituent(person(n)) for n in range(60 - before)]
    assert all(c["Id"] for c in created)
    mark = len(sb.request_log.entries)
    everyone = list(bc.iter_constituents())
    assert len(everyone) == 60 and len({c["Id"] for c in everyone}) == 60
    pages = queries(sb, "/v2/constituents", mark)
    assert [(q["skip"], q["take"]) for q in pages] == [(["0"], ["50"]), (["50"], ["50"])]


def test_constituent_crud_and_lookups(sb, bc):
    made = bc.create_constituent(person(900, PrimaryPhone={"Type": "Mobile", "Number": "3035551212"}))
    cid = made["Id"]
    assert bc.get_constituent(cid)["FirstName"] == "Walker900"
    assert bc.update_constituent(cid, {"Type": "Individual", "FirstName": "Ada", "LastName": "Pagetest"})[
        "FirstName"] == "Ada"
    found = bc.find_constituents_by_custom_field(WEGIVE_DONOR_FIELD, "wg-900")
    assert [c["Id"] for c in found] == [cid]
    assert [c["Id"] for c in bc.iter_constituents(ids=[cid])] == [cid]
    assert all(c["Type"] == "Organization" for c in bc.iter_constituents(type="Organization"))
    dupes = bc.find_duplicates(first_name="Ada", last_name="Pagetest", email_address="walker900@example.org")
    assert cid in [c["Id"] for c in dupes]
    assert cid in [c["Id"] for c in bc.post_duplicates({"Type": "Individual", "FirstName": "Ada",
                                                        "LastName": "Pagetest", "PhoneNumber": "3035551212"})]
    assert cid in [c["Id"] for c in bc.search_constituents("Pagetest")]
    temp = bc.create_constituent({"Type": "Organization", "FullName": "Walker Temp Org"})
    assert bc.delete_constituent(temp["Id"])["Deleted"] is True


def test_last_modified_is_sent_as_utc_z_and_means_after(sb, bc):
    time.sleep(1.1)  # audit stamps have one-second resolution
    mark = datetime.now(UTC)
    time.sleep(1.1)
    changed = bc.create_constituent(person(901))
    logged = len(sb.request_log.entries)
    recent = list(bc.iter_constituents(last_modified=mark, order_by="LastModifiedDate", order_direction="Asc"))
    assert [c["Id"] for c in recent] == [changed["Id"]]
    sent = queries(sb, "/v2/constituents", logged)[0]["lastModified"][0]
    assert sent.endswith("Z") and sent == mark.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_contact_records(bc):
    cid = bc.create_constituent(person(902))["Id"]
    email = bc.create_email({"AccountId": cid, "Type": "Work", "Value": "work902@example.org"})
    assert bc.get_email(email["Id"])["Value"] == "work902@example.org"
    assert bc.update_email(email["Id"], {"Value": "w902@example.org"})["Value"] == "w902@example.org"
    assert email["Id"] in [e["Id"] for e in bc.iter_emails(constituent_ids=[cid])]
    assert [e["Id"] for e in bc.iter_emails(ids=[email["Id"]], last_modified=datetime(2000, 1, 1))] == [email["Id"]]
    phone = bc.create_phone({"AccountId": cid, "Type": "Mobile", "Number": "3035550000"})
    assert bc.get_phone(phone["Id"])["Number"]
    assert bc.update_phone(phone["Id"], {"Extension": "12"})["Extension"] == "12"
    assert [p["Id"] for p in bc.iter_phones(constituent_ids=[cid])] == [phone["Id"]]
    address = bc.create_address({"AccountId": cid, "Type": "Home", "Street": "1 Main St", "City": "Denver",
                                 "State": "CO", "PostalCode": "80202", "Country": "United States"})
    assert bc.get_address(address["Id"])["City"] == "Denver"
    assert bc.update_address(address["Id"], {"City": "Boulder"})["City"] == "Boulder"
    assert address["Id"] in [a["Id"] for a in bc.iter_addresses(constituent_ids=[cid])]
    assert bc.delete_phone(phone["Id"])["Deleted"] is True
    assert bc.delete_email(email["Id"])["Deleted"] is True
    assert bc.delete_address(address["Id"])["Deleted"] is True


def test_reference_data(bc):
    fund = bc.create_fund({"Name": "Walker Fund"})
    assert bc.get_fund(fund["Id"])["Name"] == "Walker Fund"
    assert bc.update_fund(fund["Id"], {"Name": "Walker Fund II"})["Name"] == "Walker Fund II"
    assert fund["Id"] in [f["Id"] for f in bc.iter_funds(search="Walker")]
    assert [f["Id"] for f in bc.iter_funds(ids=[fund["Id"]], is_active=True)] == [fund["Id"]]
    campaign = bc.create_campaign({"Name": "Walker Campaign"})
    assert bc.get_campaign(campaign["Id"])["Name"] == "Walker Campaign"
    assert bc.update_campaign(campaign["Id"], {"Goal": 5000})["Goal"] == 5000
    assert campaign["Id"] in [c["Id"] for c in bc.iter_campaigns(last_modified=datetime(2000, 1, 1))]
    appeal = bc.create_appeal({"Name": "Walker Appeal"})
    assert bc.get_appeal(appeal["Id"])["Name"] == "Walker Appeal"
    assert bc.update_appeal(appeal["Id"], {"IsActive": False})["IsActive"] is False
    assert appeal["Id"] in [a["Id"] for a in bc.iter_appeals(is_active=False)]


def test_transactions_designations_and_refunds(bc):
    cid = bc.create_constituent(person(903))["Id"]
    fund_id = next(iter(bc.iter_funds()))["Id"]
    body = {"AccountId": cid, "Date": "2026-05-01", "Amount": 50.0, "Method": "Cash",
            "Designations": [{"Type": "Donation", "Amount": 50.0, "FundId": fund_id,
                              "CustomValues": [{"FieldId": WEGIVE_TX_FIELD, "Value": "wgt-903"}]}]}
    tx = bc.create_transaction(body)
    assert bc.get_transaction(tx["Id"])["Amount"] == 50.0
    updated = bc.update_transaction(tx["Id"], {**body, "Date": "2026-05-02"})
    assert updated["Date"] == "2026-05-02"
    assert [t["Id"] for t in bc.iter_transactions(account_ids=[cid])] == [tx["Id"]]
    assert [t["Id"] for t in bc.find_transactions_by_custom_field(WEGIVE_TX_FIELD, "wgt-903")] == [tx["Id"]]
    assert tx["Id"] in [t["Id"] for t in bc.iter_transactions(last_modified=datetime.now(UTC) - timedelta(hours=1),
                                                             types=["Donation"], min_amount=10, max_amount=60)]
    designation_id = updated["Designations"][0]["Id"]  # a PUT may replace the designations
    assert [d["Id"] for d in bc.iter_designations(transaction_ids=[tx["Id"]])] == [designation_id]
    assert bc.get_designation(designation_id)["TransactionId"] == tx["Id"]
    refund = bc.create_refund({"TransactionId": tx["Id"], "Date": "2026-05-03", "RunProcessorRefund": False})
    assert bc.get_refund(refund["Id"])["TransactionId"] == tx["Id"]
    assert [r["Id"] for r in bc.iter_refunds(transaction_ids=[tx["Id"]])] == [refund["Id"]]
    assert bc.get_transaction(tx["Id"])["IsRefunded"] == "Yes"
    other = bc.create_transaction({**body, "Designations": [{"Type": "Donation", "Amount": 50.0, "FundId": fund_id}]})
    assert bc.delete_transaction(other["Id"])["Deleted"] is True


def test_pledge_installments_funds_tributes_and_interactions(bc):
    """The routes the Money and People steps call: a pledge's installment plan, a fund read and renamed,
    tributes listed and created, interactions created, read, listed by constituent and updated."""
    cid = bc.create_constituent(person(904))["Id"]
    fund_id = next(iter(bc.iter_funds()))["Id"]
    plan = [{"Date": f"2026-{m:02d}-15", "Amount": 10.0} for m in range(1, 13)]
    pledge = bc.create_transaction({"AccountId": cid, "Date": "2026-01-15", "Amount": 120.0, "Method": "None",
                                    "Designations": [{"Type": "Pledge", "Amount": 120.0, "FundId": fund_id,
                                                      "PledgeFrequency": "Monthly", "PledgeInstallments": plan}]})
    designation = pledge["Designations"][0]["Id"]
    installments = list(bc.iter_pledge_installments(designation))
    assert [i["Amount"] for i in installments] == [10.0] * 12
    name = bc.get_fund(fund_id)["Name"]
    assert bc.update_fund(fund_id, {"Name": name + " (renamed)"})["Name"] == name + " (renamed)"
    bc.update_fund(fund_id, {"Name": name})
    tribute = bc.create_tribute({"Name": "In memory of Ada Walker", "TributeType": "InMemoryOf"})
    assert tribute["Id"] in [t["Id"] for t in bc.iter_tributes()]
    assert [t["Name"] for t in bc.iter_tributes(ids=[tribute["Id"]])] == ["In memory of Ada Walker"]
    made = bc.create_interaction({"AccountId": cid, "Date": "2026-04-18", "Channel": "InPerson",
                                  "Purpose": "SpecialEvent", "Subject": "Attended Spring Gala", "Note": "x"})
    assert bc.get_interaction(made["Id"])["Subject"] == "Attended Spring Gala"
    assert [i["Id"] for i in bc.iter_interactions(constituent_ids=[cid], purposes=["SpecialEvent"])] == [made["Id"]]
    assert bc.update_interaction(made["Id"], {"Subject": "Registered for Spring Gala"})["Subject"] \
        == "Registered for Spring Gala"


def test_custom_fields_user_and_database(bc):
    fields = {f["Id"]: f["Name"] for f in bc.custom_fields("Constituent")}
    assert fields[901] == "WeGive Donor ID" and fields[902] == "Handbid Contact ID"
    assert {f["Id"] for f in bc.custom_fields("Transaction", is_active=True)} >= {911, 912}
    assert bc.custom_field_categories("Constituent")
    assert isinstance(bc.custom_values("Constituent"), list)
    assert isinstance(bc.custom_values("Transaction", field_id=911), list)
    assert bc.current_user()["Id"] and bc.database()["Name"]


def test_errors_carry_the_apis_message(sb, bc):
    with pytest.raises(ApiError) as err:
        bc.create_constituent({"Type": "Individual", "FirstName": "A", "LastName": "B", "FullName": "A B"})
    assert err.value.status == 400 and "FullName" in err.value.message
    with pytest.raises(ApiError) as missing:
        bc.get_constituent(99_999_999)
    assert missing.value.status == 404
    bad = BloomerangClient(sb.urls["bloomerang"], "not-the-key-123456", rate_budget=None,
                           key_env="DEMO_BLOOMERANG_API_KEY")
    with pytest.raises(AuthError, match="DEMO_BLOOMERANG_API_KEY"):
        bad.current_user()


# Served by the sandbox (they are in Bloomerang's document) but not yet called by the pipeline's client:
# notes, a tribute by id (read and edit), communication settings, an interaction's delete and refund edits are
# exercised by the sandbox's own tests.
NOT_YET_CLIENT_ROUTES = ("/v2/note", "/v2/constituent/{id:int}/updateCommunicationSettings", "/v2/tribute/{id:int}")


def test_every_served_route_was_walked(sb, bc):
    """Runs last in this module: each route of the Bloomerang app saw at least one request
    (``/customFields/{type}`` and its published trailing-slash twin count as one route)."""
    routes = bloomerang_app.create_app(sb.stores["bloomerang"], Knobs(), RequestLog(), "k").app.routes
    seen = [(e.method, p) for e in sb.request_log.entries if e.api == "bloomerang"
            for p in (e.path, e.path.rstrip("/"))]
    missing = [f"{sorted(r.methods - {'HEAD'})} {r.path}" for r in routes
               if not any(m in r.methods and r.path_regex.match(p) for m, p in seen)
               and not r.path.startswith(NOT_YET_CLIENT_ROUTES)
               and not (r.path == "/v2/refund/{id:int}" and r.methods & {"PUT", "DELETE"})
               and not (r.path == "/v2/interaction/{id:int}" and "DELETE" in r.methods)]
    assert missing == []


def test_pages_read_several_at_a_time_are_the_pages_read_one_after_another(sb, bc, tmp_path):
    """``read_connections`` (the org's ``bloomerang.read_connections``): the same requests, the same records in
    the same order as one page at a time, over real HTTP."""
    several = BloomerangClient(sb.urls["bloomerang"], sb.keys["bloomerang"], rate_budget=1000, budget_dir=tmp_path,
                               read_connections=4)
    try:
        for n in range(3000, 3000 + 170):  # some pages to read (the module's world holds 60 constituents)
            bc.create_constituent(person(n))
        read = {}
        for name, client in (("one", bc), ("several", several)):
            mark = len(sb.request_log.entries)
            read[name] = [c["Id"] for c in client.iter_constituents(order_by="LastModifiedDate",
                                                                     order_direction="Asc")]
            read[name + " skips"] = sorted(int(q["skip"][0]) for q in queries(sb, "/v2/constituents", mark))
        assert len(read["one"]) > 200 and read["several"] == read["one"]
        assert read["several skips"] == read["one skips"] == list(range(0, len(read["one"]), 50))
    finally:
        several.close()
