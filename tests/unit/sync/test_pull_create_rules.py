"""The pure part of ``sync/people/wegive_creates.py``: which unlinked constituents may become WeGive donors,
and the find-or-create body they are sent with."""

from __future__ import annotations

from bloom_pipeline.mapping.spec import CustomFieldMatch, PullCreateFilter
from bloom_pipeline.sync.people import wegive_creates as wc

PULL_MARKS = ("DoNotSolicit", "OptedOut")


def person(**extra):
    return {"Id": 1, "Type": "Individual", "Status": "Active", "FirstName": "Ada", "LastName": "Lovelace",
            "PrimaryEmail": {"Value": "ada@example.org"},
            "CustomValues": [{"FieldId": 950, "Value": {"Id": 5001, "Value": "Yes "}}], **extra}


def test_the_filter_needs_every_criterion() -> None:
    by_type = PullCreateFilter(constituent_type="Individual")
    by_field = PullCreateFilter(custom_field=CustomFieldMatch(id=950, value="yes"))
    both = PullCreateFilter(constituent_type="Organization", custom_field=CustomFieldMatch(id=950, value="Yes"))
    assert wc.in_filter(person(), by_type, None) and wc.in_filter(person(), by_field, 950)
    assert not wc.in_filter(person(), both, 950)
    assert not wc.in_filter(person(CustomValues=[]), by_field, 950)
    assert not wc.in_filter(person(), None, None)  # no filter: nobody


def test_a_multi_pick_custom_field_matches_any_of_its_values() -> None:
    values = [{"FieldId": 950, "Value": [{"Id": 1, "Value": "Board"}, {"Id": 2, "Value": "WeGive"}]}]
    assert wc.custom_texts(values, 950) == {"board", "wegive"}
    assert wc.custom_texts(values, 951) == set()


def test_who_is_not_sent_even_inside_the_filter() -> None:
    assert wc.skip_reason(person(), PULL_MARKS, set()) is None
    assert wc.skip_reason(person(PrimaryEmail=None), PULL_MARKS, set()) == "no_email"
    assert wc.skip_reason(person(PrimaryEmail={"Value": "not an email"}), PULL_MARKS, set()) == "no_email"
    assert wc.skip_reason(person(Status="Deceased"), PULL_MARKS, set()) == "inactive"
    assert wc.skip_reason(person(CommunicationRestrictions=["DoNotSolicit"]), PULL_MARKS, set()) == "opted_out"
    assert wc.skip_reason(person(EmailInterestType="OptedOut"), PULL_MARKS, set()) == "opted_out"
    assert wc.skip_reason(person(CommunicationRestrictions=["DoNotCall"]), PULL_MARKS, set()) is None
    assert wc.skip_reason(person(), PULL_MARKS, {"ada@example.org"}) == "email_in_wegive"


def test_the_find_or_create_body_has_documented_keys_only() -> None:
    body = wc.donor_body(person(PrimaryPhone={"Number": "303-555-1212"},
                                PrimaryAddress={"Street": "1 Main St\nApt 2", "City": "Denver", "State": "CO",
                                                "PostalCode": "80202", "Country": "US"}))
    assert body == {"type": "individual", "email": "ada@example.org", "first_name": "Ada", "last_name": "Lovelace",
                    "phone": "303-555-1212",
                    "address": {"address_1": "1 Main St", "address_2": "Apt 2", "city": "Denver", "state": "CO",
                                "zip": "80202", "country": "US"}}
    company = wc.donor_body({"Type": "Organization", "FullName": "Acme Foundation",
                             "PrimaryEmail": {"Value": "give@acme.org"}})
    assert company == {"type": "company", "email": "give@acme.org", "first_name": "Acme Foundation"}
