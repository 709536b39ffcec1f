"""Issue 6 end to end: linked donors merge three ways across the real WeGive, Handbid and Bloomerang sandboxes.

One scripted week on one world (syncs are the expensive part, so every merge case rides the same nights):
people edit their own linked donors in the simulators, the nightly sync runs in-process, and each test
checks what both systems then hold, the ledgers, and the requests sent. The ``bidir`` org (conftest_bidir)
makes ``middle_name`` a review field, ``email`` fill_empty, and sets the clock-skew tolerance to 5 minutes.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from bloom_pipeline.cli import cli
from tests.pipeline.conftest_bidir import ORG, BidirWorld

pytestmark = pytest.mark.slow  # starts sandbox servers or a Dagster instance

WEGIVE_PUT = ("wegive", "PUT", "/api/dashboard/donors/{id}")
HANDBID_PUT = ("handbid", "PUT", "/v3/manager/contacts/{id}")
BLOOMERANG_PUT = ("bloomerang", "PUT", "/v2/constituent/{id}")


def set_phone(world: BidirWorld, bloomerang_id: int, number: str) -> None:
    world.bloomerang.update_constituent(bloomerang_id, {"PrimaryPhone": {"Type": "Mobile", "Number": number}},
                                        actor="Front Desk")


def set_email(world: BidirWorld, bloomerang_id: int, address: str) -> None:
    world.bloomerang.update_constituent(bloomerang_id, {"PrimaryEmail": {"Type": "Home", "Value": address}},
                                        actor="Front Desk")


@dataclass
class Week:
    """Who was edited, when, and what each night's run did."""

    world: BidirWorld
    who: dict[str, tuple[str, int]] = field(default_factory=dict)
    at: dict[str, datetime] = field(default_factory=dict)
    before: dict[str, Any] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)
    writes: list[Counter] = field(default_factory=list)

    def night(self, direction: str = "both") -> None:
        self.runs.append(self.world.sync(direction).run_id)
        self.writes.append(self.world.writes())


@pytest.fixture(scope="module")
def week(bidir_world: BidirWorld) -> Week:  # noqa: F811
    world, pick = bidir_world, bidir_world.picker
    w = Week(world)
    w.night()  # night 0: the first sync's own writes come back once through the cursor, as no change
    for name, source, fields in (
        ("pushed", "wegive", ("city",)), ("pulled", "wegive", ("phone",)), ("contact", "handbid", ()),
        ("bloomerang_later", "wegive", ("phone",)), ("source_later", "wegive", ("phone",)),
        ("skew", "wegive", ("phone",)), ("resolved", "wegive", ("phone",)), ("review_field", "wegive", ()),
        ("one_sided_review_field", "wegive", ()), ("fill_kept", "wegive", ("email",)),
        ("fill_empty", "wegive", ("email",)), ("cleared", "wegive", ("phone",)),
    ):
        w.who[name] = pick.take(source, with_fields=fields)
    donor, contact, constituent = pick.take_shared()
    w.who["shared_donor"], w.who["shared_contact"] = (donor, constituent), (contact, constituent)
    w.before["street"] = world.constituent(w.who["pushed"][1])["PrimaryAddress"]["Street"]
    w.before["fill_kept"] = world.donor(w.who["fill_kept"][0])["email_1"]
    w.before["cleared"] = world.constituent(w.who["cleared"][1])["PrimaryPhone"]["Number"]
    stranger = world.bloomerang.create_constituent(
        {"Type": "Individual", "FirstName": "Walk", "LastName": "In",
         "PrimaryEmail": {"Type": "Home", "Value": "walk.in@example.org"}}, actor="Front Desk")
    w.who["stranger"] = ("", int(stranger["Id"]))

    # day 1 ---------------------------------------------------------------------------------------
    donor = lambda name: int(w.who[name][0])  # noqa: E731
    constituent = lambda name: w.who[name][1]  # noqa: E731
    w.at["day1"] = world.clock.now
    world.wegive.update_donor(donor("pushed"), {"mailing_address": {"city": "Boulder"}})
    set_phone(world, constituent("pulled"), "(720) 555-0142")
    world.handbid.edit_contact(donor("contact"), firstName="Roberta")
    world.bloomerang.update_constituent(constituent("contact"), {"LastName": "Okafor-Reyes"}, actor="Front Desk")
    world.wegive.update_donor(donor("bloomerang_later"), {"mobile_phone": "3035550111"})
    set_phone(world, constituent("source_later"), "(720) 555-0133")
    world.wegive.update_donor(donor("skew"), {"mobile_phone": "3035550155"})
    world.wegive.update_donor(donor("resolved"), {"mobile_phone": "3035550156"})
    world.wegive.update_donor(donor("review_field"), {"middle_name": "Ann"})
    # a middle name is only in WeGive's donor detail, never in the list row the nightly scan compares, so the
    # one-sided change of the review field is made where every edit shows: in Bloomerang
    world.bloomerang.update_constituent(constituent("one_sided_review_field"), {"MiddleName": "Lee"},
                                        actor="Front Desk")
    set_email(world, constituent("fill_kept"), "new@example.org")
    world.wegive.update_donor(donor("fill_empty"), {"email_1": None})
    world.wegive.update_donor(donor("cleared"), {"mobile_phone": None})
    set_phone(world, constituent("shared_donor"), "(720) 555-0177")
    w.at["skew"] = world.clock.advance(minutes=3)  # outside the 2-minute default, inside the org's 5 minutes
    set_phone(world, constituent("skew"), "(720) 555-0166")
    set_phone(world, constituent("resolved"), "(720) 555-0167")
    w.at["later"] = world.clock.advance(minutes=7)  # ten minutes after the first edits: twice the tolerance
    set_phone(world, constituent("bloomerang_later"), "(720) 555-0122")
    world.wegive.update_donor(donor("source_later"), {"mobile_phone": "3035550144"})
    world.bloomerang.update_constituent(constituent("review_field"), {"MiddleName": "Anne"}, actor="Front Desk")
    w.night()  # night 1

    # day 2 ---------------------------------------------------------------------------------------
    set_phone(world, constituent("cleared"), "(720) 555-0188")  # a real value refills the cleared side
    set_email(world, constituent("fill_empty"), "found@example.org")  # fills the now-empty WeGive email
    world.bloomerang.update_constituent(constituent("stranger"), {"FirstName": "Walker"}, actor="Front Desk")
    world.handbid.edit_contact(donor("shared_contact"), lastName="Quill")
    item = next(r for r in world.reviews(w.who["resolved"][0]) if r["status"] == "open")
    w.before["resolve"] = CliRunner().invoke(cli, ["review", "resolve", "--org", ORG, "--id", str(item["id"]),
                                                   "--take", "bloomerang"],
                                             env={"BLOOM_DATA_DIR": str(world.data_dir)})
    w.night()  # night 2
    w.night()  # night 3: the shared person's Handbid edit reaches their WeGive donor
    w.night()  # night 4: nothing changed anywhere
    return w


def test_the_first_sync_does_not_merge_what_it_just_wrote(week: Week) -> None:
    world = week.world
    first, run = world.history[0], world.reports[0].run_id
    assert first[("bloomerang", "POST", "/v2/constituent")] > 30
    assert HANDBID_PUT not in first, "nothing flows back to a source in the run that created its constituent"
    linked_donors = len(world.linked("wegive"))
    assert first[WEGIVE_PUT] <= linked_donors, "WeGive only receives its donors' Bloomerang ids"
    rows = world.query("SELECT source, source_id, count(*) AS n, max(direction) AS direction FROM sync_log "
                       "WHERE run_id = ? AND entity = 'constituents' GROUP BY ALL", [run])
    assert all(r["n"] == 1 and r["direction"] == "push" for r in rows), "one push row per donor"


def test_a_quiet_night_writes_nothing(week: Week) -> None:
    assert week.writes[0] == {}, "the first sync's own writes are not seen as changes"
    assert week.writes[4] == {}
    actions = {r["action"] for r in week.world.query(
        "SELECT DISTINCT action FROM sync_log WHERE run_id = ? AND entity = 'constituents'", [week.runs[4]])}
    assert actions <= {"unchanged", "quarantined"}
    assert not week.world.conflicts(week.runs[4])


def test_each_edit_costs_exactly_the_writes_it_needs(week: Week) -> None:
    # WeGive: pulled phone, bloomerang-later phone, shared donor's phone, one-sided middle name; Handbid: the
    # contact's last name, the shared contact's phone; Bloomerang: city, Handbid first name, source-later phone
    assert week.writes[1] == {WEGIVE_PUT: 4, HANDBID_PUT: 2, BLOOMERANG_PUT: 3}
    # night 2: refilled phone + filled email + resolved decision to WeGive; the shared contact's name to Bloomerang
    assert week.writes[2] == {WEGIVE_PUT: 3, BLOOMERANG_PUT: 1}
    assert week.writes[3] == {WEGIVE_PUT: 1}


def test_a_change_on_one_side_takes_that_sides_value(week: Week) -> None:
    world, who = week.world, week.who
    pushed = world.constituent(who["pushed"][1])
    assert pushed["PrimaryAddress"]["City"] == "Boulder"
    assert pushed["PrimaryAddress"]["Street"] == week.before["street"], "the rest of the address is kept"
    assert world.donor(who["pulled"][0])["mobile_phone"] == "(720) 555-0142", "the phone as typed in Bloomerang"
    contact = world.contact(who["contact"][0])
    assert (contact["firstName"], contact["lastName"]) == ("Roberta", "Okafor-Reyes")
    merged = world.constituent(who["contact"][1])
    assert (merged["FirstName"], merged["LastName"]) == ("Roberta", "Okafor-Reyes")

    run = week.runs[1]
    assert [(r["action"], r["direction"]) for r in world.log(run, "wegive", who["pulled"][0])] == [("updated", "pull")]
    assert [(r["action"], r["direction"]) for r in world.log(run, "wegive", who["pushed"][0])] == [("updated", "push")]
    diff = json.loads(world.log(run, "handbid", who["contact"][0])[0]["field_diff"])
    assert diff == {"to_bloomerang": {"first_name": "Roberta"}, "to_source": {"last_name": "Okafor-Reyes"}}


def test_one_person_in_both_sources_converges(week: Week) -> None:
    world = week.world
    (donor, constituent), contact = week.who["shared_donor"], week.who["shared_contact"][0]
    assert world.donor(donor)["mobile_phone"] == "(720) 555-0177"
    assert world.contact(contact)["userCellPhone"] == "(720) 555-0177"
    assert world.constituent(constituent)["LastName"] == "Quill"
    assert world.donor(donor)["last_name"] == "Quill"


def test_both_changed_the_later_side_wins_and_is_recorded(week: Week) -> None:
    world, who = week.world, week.who
    assert world.donor(who["bloomerang_later"][0])["mobile_phone"] == "(720) 555-0122"
    assert world.constituent(who["bloomerang_later"][1])["PrimaryPhone"]["Number"] == "(720) 555-0122"
    assert world.constituent(who["source_later"][1])["PrimaryPhone"]["Number"] == "3035550144"
    assert world.donor(who["source_later"][0])["mobile_phone"] == "3035550144"

    (row,) = world.conflicts(week.runs[1], who["bloomerang_later"][0])
    assert (row["field"], row["rule"], row["winner"]) == ("phone", "later_wins", "bloomerang")
    assert (json.loads(row["source_value"]), json.loads(row["bloomerang_value"])) == (
        "3035550111", "(720) 555-0122")
    assert (row["source_modified_at"], row["bloomerang_modified_at"]) == (week.at["day1"], week.at["later"])
    assert (row["bloomerang_id"], row["source"], row["entity"]) == (who["bloomerang_later"][1], "wegive",
                                                                   "constituents")
    (row,) = world.conflicts(week.runs[1], who["source_later"][0])
    assert (row["field"], row["rule"], row["winner"], row["bloomerang_id"]) == (
        "phone", "later_wins", "source", who["source_later"][1])
    assert (row["source_modified_at"], row["bloomerang_modified_at"]) == (week.at["later"], week.at["day1"])


def test_both_changed_inside_the_tolerance_goes_to_review_and_neither_side_is_written(week: Week) -> None:
    world = week.world
    donor, constituent = week.who["skew"]
    assert world.donor(donor)["mobile_phone"] == "3035550155"
    assert world.constituent(constituent)["PrimaryPhone"]["Number"] == "(720) 555-0166"
    (item,) = world.reviews(donor)
    assert (item["field"], item["reason"], item["status"], item["bloomerang_id"]) == (
        "phone", "within_skew", "open", constituent)
    assert (json.loads(item["source_value"]), json.loads(item["bloomerang_value"])) == (
        "3035550155", "(720) 555-0166")
    assert item["bloomerang_modified_at"] - item["source_modified_at"] == timedelta(minutes=3)
    (row,) = world.conflicts(week.runs[1], donor)
    assert (row["rule"], row["winner"], row["bloomerang_id"]) == ("within_skew", "review", constituent)
    assert not world.conflicts(week.runs[2], donor), "an open item waits quietly; it is not re-queued"


def test_review_fields_go_to_review_even_far_apart(week: Week) -> None:
    world, who = week.world, week.who
    (item,) = world.reviews(who["review_field"][0])
    assert (item["field"], item["reason"], item["status"]) == ("middle_name", "review_field", "open")
    assert world.donor(who["review_field"][0])["middle_name"] == "Ann"
    assert world.constituent(who["review_field"][1])["MiddleName"] == "Anne"
    assert [r["rule"] for r in world.conflicts(week.runs[1], who["review_field"][0])] == ["review_field"]
    assert world.donor(who["one_sided_review_field"][0])["middle_name"] == "Lee", (
        "a review field changed on one side only flows normally")


def test_fill_empty_never_overwrites_a_value_but_fills_an_empty_one(week: Week) -> None:
    world, who = week.world, week.who
    assert world.donor(who["fill_kept"][0])["email_1"] == week.before["fill_kept"]
    (row,) = world.conflicts(week.runs[1], who["fill_kept"][0])
    assert (row["field"], row["rule"], row["winner"]) == ("email", "fill_empty", "source")
    assert json.loads(row["bloomerang_value"]) == "new@example.org"
    assert world.donor(who["fill_empty"][0])["email_1"] == "found@example.org"
    assert world.constituent(who["fill_empty"][1])["PrimaryEmail"]["Value"] == "found@example.org"


def test_a_cleared_value_never_erases_the_other_side(week: Week) -> None:
    world, (donor, constituent) = week.world, week.who["cleared"]
    (row,) = world.conflicts(week.runs[1], donor)
    assert (row["field"], row["rule"], row["winner"]) == ("phone", "blank_protected", "bloomerang")
    assert json.loads(row["bloomerang_value"]) == week.before["cleared"]
    assert not world.log(week.runs[1], "wegive", donor)[0]["field_diff"], "nothing was written for it"
    assert world.donor(donor)["mobile_phone"] == "(720) 555-0188", "a later real value refills it"
    assert world.constituent(constituent)["PrimaryPhone"]["Number"] == "(720) 555-0188"


def test_a_review_decision_applies_on_the_next_run_and_is_logged(week: Week) -> None:
    world, (donor, constituent) = week.world, week.who["resolved"]
    assert week.before["resolve"].exit_code == 0, week.before["resolve"].output
    (item,) = world.reviews(donor)
    assert (item["status"], item["decision"], item["applied_run_id"]) == ("applied", "bloomerang", week.runs[2])
    assert world.donor(donor)["mobile_phone"] == "(720) 555-0167"
    assert world.constituent(constituent)["PrimaryPhone"]["Number"] == "(720) 555-0167"
    (log,) = world.log(week.runs[2], "wegive", donor)
    assert (log["action"], json.loads(log["field_diff"])["to_source"]) == ("updated", {"phone": "(720) 555-0167"})
    (row,) = world.conflicts(week.runs[2], donor)
    assert (row["rule"], row["winner"]) == ("decision", "bloomerang")


def test_unlinked_bloomerang_constituents_are_left_alone(week: Week) -> None:
    world, stranger = week.world, week.who["stranger"][1]
    linked = {b for source in ("wegive", "handbid") for _, b in world.linked(source)}
    assert stranger not in linked
    assert not world.query("SELECT * FROM sync_state WHERE bloomerang_id = ?", [stranger])
    assert not world.query("SELECT * FROM conflicts WHERE bloomerang_id = ?", [stranger])
