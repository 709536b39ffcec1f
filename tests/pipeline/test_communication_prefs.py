"""Communication preferences over real HTTP: an opt-out reaches the other system and no opt-in ever undoes it.

One 40-donor sandbox, synced once so every donor is linked, then edited the way people edit the two systems
(WeGive's ``do_not_contact`` in its database, Bloomerang's settings through its own endpoint) with syncs in
between, one shared clock moving an hour per run (as in conftest_bidir.py). Each test takes its own donors.

What it protects: a WeGive opt-out becomes DoNotCall / DoNotMail / DoNotSolicit and EmailInterestType OptedOut
in Bloomerang with the reason the API requires; a second run writes nothing anywhere; a Bloomerang opt-in
after that is undone (the opt-out wins) and recorded in ``conflicts``; a WeGive opt-in never removes a
Bloomerang opt-out; a Bloomerang opt-out is sent to WeGive as ``do_not_contact: true`` without widening the
Bloomerang side.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.pipeline.org_world import OrgWorld, open_world, org_yaml

pytestmark = pytest.mark.slow  # starts sandbox servers

ORG = "comms"
ALL_RESTRICTIONS = ["DoNotCall", "DoNotMail", "DoNotSolicit"]
SETTINGS = "/v2/constituent/{id}/updateCommunicationSettings"


class World(OrgWorld):
    """The comms org's world, with the two systems' communication settings at hand."""

    def settings(self, bid: int) -> tuple[list[str], str]:
        record = self.bloomerang.render_constituent(bid)
        return sorted(record.get("CommunicationRestrictions") or []), record.get("EmailInterestType")

    def set_do_not_contact(self, donor_id: int, value: bool) -> None:
        """What a WeGive admin's edit leaves in its database (the list row shows it)."""
        donor = self.wegive.donors[donor_id]
        donor["do_not_contact"] = value
        donor["updated_at"] = self.wegive.now()

    def do_not_contact(self, donor_id: int) -> Any:
        return self.wegive.render_donor_row(donor_id).get("do_not_contact")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with open_world(tmp_path_factory.mktemp("comms"), ORG, donors=40, seed=11, kind=World, capture_bodies=True,
                    yaml=org_yaml(ORG)) as w:
        w.sync()
        yield w


@pytest.fixture(scope="module")
def opted_out(world: World) -> dict[str, Any]:
    """Two WeGive donors (a, b) who asked not to be contacted, the run that carried it to Bloomerang, and the
    quiet run after it (its writes kept before the next run clears the log)."""
    (a, a_bid), (b, b_bid) = world.take(), world.take()
    assert world.settings(a_bid) == ([], "All")
    world.set_do_not_contact(a, True)
    world.set_do_not_contact(b, True)
    report = world.sync()
    settled = {bid: world.settings(bid) for bid in (a_bid, b_bid)}
    world.sync()
    return {"a": (a, a_bid), "b": (b, b_bid), "report": report, "settled": settled, "quiet": world.writes()}


@pytest.fixture(scope="module")
def edited(world: World, opted_out: dict[str, Any]) -> dict[str, Any]:
    """One run after people edited both systems: a's Bloomerang opts back in (keeping DoNotMail), b's WeGive
    clears do_not_contact, c unsubscribes from e-mail in Bloomerang; then one more run."""
    (_, a_bid), (b, _) = opted_out["a"], opted_out["b"]
    c, c_bid = world.take()
    world.bloomerang.update_communication_settings(a_bid, {
        "CommunicationRestrictions": {"UpdateReason": "donor called", "CommunicationRestrictions": ["DoNotMail"]},
        "EmailInterests": {"UpdateReason": "donor called", "EmailInterestType": "All"}})
    world.set_do_not_contact(b, False)
    world.bloomerang.update_communication_settings(c_bid, {
        "EmailInterests": {"UpdateReason": "unsubscribed from a Bloomerang e-mail", "EmailInterestType": "OptedOut"}})
    report = world.sync()
    out = {"report": report, "c": (c, c_bid), "writes": world.writes(),
           "settings_body": world.sent("PUT", f"/constituent/{a_bid}/updateCommunicationSettings"),
           "to_b": world.sent("PUT", f"/dashboard/donors/{b}"), "to_c": world.sent("PUT", f"/dashboard/donors/{c}"),
           "conflicts": world.query("SELECT * FROM conflicts WHERE run_id = ? AND field = 'communication_preferences'"
                                    " ORDER BY source_id", [report.run_id])}
    world.sync()
    out["after"] = world.writes()
    return out


def test_a_wegive_opt_out_reaches_bloomerang_communication_settings(world: World, opted_out) -> None:
    (_, a_bid), (_, b_bid), report = opted_out["a"], opted_out["b"], opted_out["report"]
    assert opted_out["settled"] == {a_bid: (ALL_RESTRICTIONS, "OptedOut"), b_bid: (ALL_RESTRICTIONS, "OptedOut")}
    stored = world.bloomerang.constituents[a_bid]
    assert stored["CommunicationRestrictionsUpdateReason"] and stored["EmailInterestsUpdateReason"]
    assert report.counts["communication"] == {"opted_out_in_bloomerang": 2, "opted_out_in_wegive": 0, "failed": 0}


def test_a_second_run_writes_nothing(opted_out) -> None:
    assert opted_out["quiet"] == Counter()


def test_an_opt_in_in_bloomerang_never_undoes_a_wegive_opt_out(world: World, opted_out, edited) -> None:
    a, a_bid = opted_out["a"]
    assert world.settings(a_bid) == (ALL_RESTRICTIONS, "OptedOut")
    [body] = edited["settings_body"]
    assert body["CommunicationRestrictions"]["CommunicationRestrictions"][0] == "DoNotMail"  # kept, then added
    rows = [r for r in edited["conflicts"] if r["source_id"] == str(a)]
    assert [(r["bloomerang_id"], r["winner"], r["rule"]) for r in rows] == [(a_bid, "source", "opt_out_wins")]
    assert json.loads(rows[0]["bloomerang_value"]) == {"marks": ["DoNotMail"]}


def test_an_opt_in_in_wegive_never_undoes_the_bloomerang_opt_out(world: World, opted_out, edited) -> None:
    _, b_bid = opted_out["b"]
    assert world.settings(b_bid) == (ALL_RESTRICTIONS, "OptedOut")
    assert edited["to_b"] == [{"do_not_contact": True}]  # the opt-out is put back, never the opt-in pushed


def test_a_bloomerang_opt_out_is_sent_to_wegive_without_widening_bloomerang(world: World, edited) -> None:
    _, c_bid = edited["c"]
    assert edited["to_c"] == [{"do_not_contact": True}]
    assert world.settings(c_bid) == ([], "OptedOut")
    assert edited["writes"][("bloomerang", "PUT", "/v2/constituent/{id}/updateCommunicationSettings")] == 1  # a's


def test_a_later_run_writes_nothing_to_bloomerang(edited) -> None:
    assert not [w for w in edited["after"] if w[0] == "bloomerang"]


def test_a_bloomerang_opt_out_reaches_wegive_do_not_contact(world: World, opted_out, edited) -> None:
    (b, _), (c, _) = opted_out["b"], edited["c"]
    assert world.do_not_contact(c) in (True, "1", "true")
    assert world.do_not_contact(b) in (True, "1", "true")
    assert [r["winner"] for r in edited["conflicts"] if r["source_id"] == str(b)] == ["bloomerang"]
    assert edited["report"].counts["communication"]["failed"] == 0
    assert edited["after"] == Counter()
