"""The pure part of ``sync/people/events.py``: who took part in an event, and what the interaction says."""

from __future__ import annotations

import pytest

from bloom_pipeline.sync.people import events as ev

AUCTION = {"id": 45407, "name": "Fall Festival Auction", "startTime": 1764640800,  # 2025-12-02 02:00 UTC
           "timeZone": "America/Denver"}


@pytest.mark.parametrize(("row", "mode", "expected"), [
    ({"isCheckedIn": 1, "isBidder": 1}, "registered", "attended"),
    ({"isCheckedIn": True}, "attended", "attended"),
    ({"isCheckedIn": "0", "isBidder": "1"}, "registered", "registered"),
    ({"isCheckedIn": 0, "isBidder": 0, "isComing": True}, "registered", "registered"),
    ({"isCheckedIn": False, "isBidder": True}, "attended", None),
    ({"isCheckedIn": 0, "isBidder": 0, "isComing": 0, "isInvited": 1}, "registered", None),  # invited only
    ({}, "registered", None),
])
def test_participation_reads_flags_served_as_bools_ints_or_strings(row, mode, expected) -> None:
    assert ev.participation(row, mode) == expected


def test_the_date_is_the_event_start_in_its_own_time_zone() -> None:
    assert ev.event_date(AUCTION, "UTC") == "2025-12-01"  # 19:00 the evening before, in Denver
    assert ev.event_date({**AUCTION, "timeZone": "Not/AZone"}, "UTC") == "2025-12-02"


def test_the_body_is_an_in_person_special_event_with_a_marker_for_the_event() -> None:
    body = ev.interaction_body(AUCTION, "registered", 1074, "UTC")
    assert {k: body[k] for k in ("AccountId", "Channel", "Purpose", "Subject", "IsInbound")} == {
        "AccountId": 1074, "Channel": "InPerson", "Purpose": "SpecialEvent",
        "Subject": "Registered for Fall Festival Auction", "IsInbound": False}
    assert ev.read_marker(body["Note"]) == (45407, "registered")
    long = ev.subject({**AUCTION, "name": "x" * 300}, "attended")
    assert len(long) == ev.SUBJECT_MAX and long.startswith("Attended x")


def test_a_check_in_update_keeps_what_a_person_wrote() -> None:
    ours = ev.interaction_body(AUCTION, "registered", 1, "UTC")
    edited = {"Subject": ours["Subject"], "Note": "Sat with the Hendersons.\n" + ours["Note"]}
    body = ev.update_body(edited, AUCTION, "registered", "attended")
    assert body["Subject"] == "Attended Fall Festival Auction"
    assert body["Note"].startswith("Sat with the Hendersons.") and ev.read_marker(body["Note"]) == (45407,
                                                                                                     "attended")
    renamed = ev.update_body({"Subject": "Table 4 host", "Note": "no marker here"}, AUCTION, "registered",
                             "attended")
    assert "Subject" not in renamed  # a Subject a person rewrote is theirs
    assert renamed["Note"].startswith("no marker here\n") and ev.read_marker(renamed["Note"]) == (45407, "attended")


def test_one_interaction_per_constituent_and_event_the_strongest_participation() -> None:
    other = {**AUCTION, "id": 45408}
    bidders = [(AUCTION, {"contactId": 501, "isBidder": 1, "isCheckedIn": 0}),
               (AUCTION, {"contactId": 502, "isBidder": 1, "isCheckedIn": 1}),  # 502 is 501's twin: one person
               (other, {"contactId": 501, "isBidder": 1, "isCheckedIn": 0}),
               (other, {"contactId": 999, "isBidder": 1, "isCheckedIn": 1})]  # not linked yet: waits
    wanted, waiting = ev.wanted_participations(bidders, {"501": 7, "502": 7}, "registered")
    assert wanted == {(45407, 7): ("attended", "502"), (45408, 7): ("registered", "501")}
    assert waiting == 1
    only_visits, _ = ev.wanted_participations(bidders, {"501": 7, "502": 7}, "attended")
    assert only_visits == {(45407, 7): ("attended", "502")}
