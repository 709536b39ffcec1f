"""Handbid event participation over real HTTP: one Bloomerang interaction per contact and event, created once.

One small sandbox whose Handbid bidder lists are cut down to four registrations (two contacts checked in at
the closed "Harvest Dinner", two registered for the upcoming "Preview Night"), synced by the demo org, then:
a quiet rerun, a check-in at the door (flags now served as true/false) after a person added a line to the
registration's Note, a new registration whose create answer is lost (drop after commit), and a run after the
data folder was lost as well.

What it protects: the interaction's shape (InPerson, SpecialEvent, the event's date, "Attended" vs
"Registered for"); no second interaction on a rerun, on a check-in (the registration's one is updated, the
person's words kept), after a lost answer (failed, then found again) or without the staging file (found
again in Bloomerang by its marker, in pages).
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from bloom_pipeline.sync.people.events import event_date, read_marker
from bloom_pipeline.sync.runner import RunReport
from tests.pipeline.org_world import OrgWorld, open_world

pytestmark = pytest.mark.slow  # starts sandbox servers

WRITES = ("POST", "PUT", "DELETE")
CLOSED, UPCOMING = "closed", "preview"


@dataclass
class World(OrgWorld):
    """The demo org on the repo's mappings, its clock left alone, with the event registrations it was given."""

    attendees: list[int] = field(default_factory=list)  # Handbid contact ids checked in at the closed event
    registered: list[int] = field(default_factory=list)  # ... registered for the upcoming one
    first: RunReport | None = None
    first_interactions: list[dict[str, Any]] = field(default_factory=list)

    def auction(self, status: str) -> dict[str, Any]:
        return next(a for a in self.handbid.auctions.values() if a["status"] == status)

    def interactions(self) -> list[dict[str, Any]]:
        store = self.bloomerang
        return [store.render_activity("interaction", i) for i in list(store.interactions)
                if store.interactions[i].get("Purpose") == "SpecialEvent"]

    def constituent_of(self, source_id: int | str, source: str = "handbid") -> int:
        """The constituent a Handbid contact is linked to (this module's people all come from Handbid)."""
        return super().constituent_of(source_id, source)

    def interaction_writes(self) -> Counter:
        return Counter((e.method, e.path_template) for e in self.sandbox.request_log.entries
                       if e.api == "bloomerang" and e.method in WRITES and "interaction" in e.path_template)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with open_world(tmp_path_factory.mktemp("events"), "demo", donors=8, seed=3, kind=World, clocked=False,
                    own_mappings=False) as w:
        hb = w.handbid
        closed = next(a["id"] for a in hb.auctions.values() if a["status"] == CLOSED)
        upcoming = next(a["id"] for a in hb.auctions.values() if a["status"] == UPCOMING)
        came = [r for r in hb.bidders.values() if r["auctionId"] == closed and r["isCheckedIn"]][:2]
        hb.bidders = {r["id"]: r for r in came}
        contacts = sorted(hb.contacts)
        registered = [c for c in contacts if c not in {r["contactId"] for r in came}][:2]
        for contact in registered:
            hb.register_bidder(upcoming, contact)
        w.attendees, w.registered = [r["contactId"] for r in came], registered
        w.first = w.sync()
        w.first_interactions = w.interactions()
        yield w


@pytest.fixture(scope="module")
def checked_in(world: World) -> dict[str, Any]:
    """A quiet rerun; then a person adds a line to a registration's Note, the contact checks in at the door
    (the API now serving flags as true/false), and the next run updates that interaction."""
    quiet = world.sync()
    quiet_writes = world.interaction_writes()
    contact = world.registered[0]
    bid = world.constituent_of(contact)
    [mine] = [i for i in world.interactions() if i["AccountId"] == bid]
    world.bloomerang.update_activity("interaction", mine["Id"], {"Note": "Brought two guests.\n" + mine["Note"]})
    world.handbid.flags_as = "bool"
    world.handbid.check_in(world.auction(UPCOMING)["id"], contact)
    report = world.sync()
    return {"quiet": quiet, "quiet_writes": quiet_writes, "report": report, "writes": world.interaction_writes(),
            "id": mine["Id"], "bid": bid}


@pytest.fixture(scope="module")
def dropped(world: World, checked_in: dict[str, Any]) -> dict[str, Any]:
    """A third contact registers; Bloomerang applies the interaction but the answer is lost (drop after
    commit): the step looks it up at once by its marker; then the data folder is lost too, and a run with the
    network healthy again."""
    contact = next(c for c in sorted(world.handbid.contacts) if c not in world.attendees + world.registered)
    world.handbid.register_bidder(world.auction(UPCOMING)["id"], contact)
    world.sandbox.knobs["bloomerang"].drop_after_commit = 1.0
    try:
        lost = world.sync()
    finally:
        world.sandbox.knobs["bloomerang"].drop_after_commit = 0.0
    lost_writes = world.interaction_writes()
    log = [e for e in world.sandbox.request_log.entries if e.api == "bloomerang"]
    lost_at = next(i for i, e in enumerate(log) if e.method == "POST" and e.path_template == "/v2/interaction")
    lookups_after_loss = sum(1 for e in log[lost_at + 1:]
                             if e.method == "GET" and e.path_template == "/v2/interactions")
    bid = world.constituent_of(contact)
    before = sorted((i["Id"], i["Subject"]) for i in world.interactions())
    shutil.rmtree(world.data_dir)
    healed = world.sync()
    return {"bid": bid, "lost": lost, "lost_writes": lost_writes, "lookups_after_loss": lookups_after_loss,
            "before": before, "healed": healed,
            "healed_writes": world.interaction_writes(),
            "pages": world.sandbox.request_log.counts("bloomerang")[("bloomerang", "GET", "/v2/interactions")]}


def test_each_participant_gets_one_interaction_per_event(world: World) -> None:
    closed, upcoming = world.auction(CLOSED), world.auction(UPCOMING)
    got = sorted((i["AccountId"], i["Subject"], i["Date"], i["Channel"], i["Purpose"])
                 for i in world.first_interactions)
    expected = sorted(
        [(world.constituent_of(c), f"Attended {closed['name']}", event_date(closed, "America/Denver"),
          "InPerson", "SpecialEvent") for c in world.attendees]
        + [(world.constituent_of(c), f"Registered for {upcoming['name']}", event_date(upcoming, "America/Denver"),
            "InPerson", "SpecialEvent") for c in world.registered])
    assert got == expected
    assert world.first.counts["event_interactions"]["created"] == 4


def test_a_rerun_writes_no_interaction(checked_in: dict[str, Any]) -> None:
    assert checked_in["quiet_writes"] == Counter()
    assert "event_interactions" not in checked_in["quiet"].counts


def test_a_check_in_updates_the_registration_interaction(world: World, checked_in: dict[str, Any]) -> None:
    assert checked_in["writes"] == Counter({("PUT", "/v2/interaction/{id}"): 1})
    mine = world.bloomerang.render_activity("interaction", checked_in["id"])
    assert mine["Subject"] == f"Attended {world.auction(UPCOMING)['name']}"
    assert mine["Note"].startswith("Brought two guests.\n")  # the person's line is kept
    assert read_marker(mine["Note"]) == (world.auction(UPCOMING)["id"], "attended")
    assert len([i for i in world.interactions() if i["AccountId"] == checked_in["bid"]]) == 1
    assert len(world.interactions()) == 4


def test_a_lost_answer_is_looked_up_at_once_and_not_posted_twice(world: World, dropped: dict[str, Any]) -> None:
    assert dropped["lost_writes"] == Counter({("POST", "/v2/interaction"): 1})
    assert dropped["lookups_after_loss"] >= 1  # GET /interactions of that constituent, right after the lost POST
    counts = dropped["lost"].counts["event_interactions"]
    assert (counts["created"], counts["failed"], dropped["lost"].exit_code) == (1, 0, 0)
    assert [i["Subject"] for i in world.interactions() if i["AccountId"] == dropped["bid"]] == [
        f"Registered for {world.auction(UPCOMING)['name']}"]


def test_a_lost_data_folder_finds_every_interaction_again(world: World, dropped: dict[str, Any]) -> None:
    assert dropped["healed_writes"] == Counter()
    assert sorted((i["Id"], i["Subject"]) for i in world.interactions()) == dropped["before"]
    assert dropped["healed"].counts["event_interactions"]["adopted"] == len(dropped["before"]) == 5
    assert dropped["healed"].exit_code == 0
    assert dropped["pages"] == 1  # one page for the five, never a read per donor
