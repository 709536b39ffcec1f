"""Pull creates over real HTTP: a Bloomerang constituent linked to no source becomes one WeGive donor, once.

One small sandbox, four constituents typed into Bloomerang by a person (none linked to a source): Ada
(Individual, e-mail, custom field "Sync to WeGive" = Yes), Bo (the same, no e-mail), Cy (e-mail, the field
says No) and Dee Corp (an Organization with e-mail and Yes). The demo org syncs once as it ships
(``create_missing: none``), then with ``pull: {create_missing: wegive, create_filter: {constituent_type:
Individual, custom_field: {name: Sync to WeGive, value: "Yes"}}}``; then again, and again after the data
folder was lost.

What it protects: none creates nothing; wegive calls find-or-create exactly once, for Ada only, links the
donor both ways (the constituent's WeGive correlation value, the donor's ``bloomerang_id``), counts the one
without an e-mail; no rerun — with or without the staging file — calls find-or-create again, and the new
donor is never pushed back as a second constituent.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from bloom_pipeline.sync.runner import RunReport
from tests.pipeline.bloomerang_records import custom_value
from tests.pipeline.org_world import OrgWorld, open_world

pytestmark = pytest.mark.slow  # starts sandbox servers

WEGIVE_FIELD, FILTER_FIELD = 901, 950
FIND_OR_CREATE = ("wegive", "POST", "/api/dashboard/donors/find-or-create")
PULL = """
pull:
  create_missing: wegive
  create_filter:
    constituent_type: Individual
    custom_field: {name: Sync to WeGive, value: "Yes"}
"""


def typed(first: str, last: str, email: str | None, sync: str | None, kind: str = "Individual") -> dict[str, Any]:
    body: dict[str, Any] = {"Type": kind}
    body |= {"FullName": first} if kind == "Organization" else {"FirstName": first, "LastName": last}
    if email:
        body["PrimaryEmail"] = {"Type": "Home", "Value": email}
    if sync:
        body["CustomValues"] = [{"FieldId": FILTER_FIELD, "Value": sync}]
    return body


@dataclass
class World(OrgWorld):
    """The demo org on a copy of the mappings (its clock left alone), with what each run did to find-or-create."""

    people: dict[str, int] = field(default_factory=dict)  # name -> Bloomerang id
    calls: list[int] = field(default_factory=list)  # find-or-create calls per run
    bloomerang_writes: list[list[str]] = field(default_factory=list)  # "METHOD path" per run
    donors_before: int = 0
    donors_after_none: int = 0

    def sync(self, direction: str = "both", *, dry_run: bool = False) -> RunReport:
        report = super().sync(direction, dry_run=dry_run)
        self.calls.append(self.sandbox.request_log.counts("wegive")[FIND_OR_CREATE])
        self.bloomerang_writes.append([f"{e.method} {e.path}" for e in self.sandbox.request_log.entries
                                       if e.api == "bloomerang" and e.method in ("POST", "PUT", "DELETE")])
        return report

    def donors_with(self, email: str) -> list[dict[str, Any]]:
        wegive = self.wegive
        return [wegive.render_donor(i) for i in list(wegive.donors)
                if (wegive.donors[i].get("email_1") or "").lower() == email]

    def constituent(self, name: str) -> dict[str, Any]:
        return self.bloomerang.render_constituent(self.people[name])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with open_world(tmp_path_factory.mktemp("pull_create"), "demo", donors=8, seed=3, kind=World,
                    clocked=False) as w:
        bloomerang = w.bloomerang
        bloomerang.add_custom_field({"Id": FILTER_FIELD, "Name": "Sync to WeGive", "ObjectType": "Constituent"})
        ada = typed("Ada", "Quillfeather", "ada.quillfeather@example.org", "Yes") | {
            "PrimaryPhone": {"Type": "Mobile", "Number": "(303) 555-1212"},
            "PrimaryAddress": {"Type": "Home", "Street": "1 Main St\nApt 2", "City": "Denver", "State": "CO",
                               "PostalCode": "80202", "Country": "US"}}
        for name, body in {"ada": ada,
                           "bo": typed("Bo", "Quillfeather", None, "Yes"),
                           "cy": typed("Cy", "Quillfeather", "cy.quillfeather@example.org", "No"),
                           "dee": typed("Dee Corp", "", "give@deecorp.example.org", "Yes", "Organization")}.items():
            w.people[name] = int(bloomerang.create_constituent(body)["Id"])
        w.donors_before = len(w.wegive.donors)
        w.sync()  # as the demo org ships: create_missing none
        w.donors_after_none = len(w.wegive.donors)
        assert w.mappings_dir is not None
        demo = w.mappings_dir / "orgs" / "demo.yaml"
        demo.write_text(demo.read_text() + PULL)
        w.sync()  # creates Ada's donor
        w.sync()  # a rerun
        shutil.rmtree(w.data_dir)
        w.sync()  # a rerun with the data folder lost
        yield w


def test_create_missing_none_creates_nothing(world: World) -> None:
    assert world.calls[0] == 0
    assert world.donors_after_none == world.donors_before
    assert "wegive_creates" not in world.reports[0].counts


def test_wegive_creates_one_donor_for_the_one_constituent_that_qualifies(world: World) -> None:
    assert world.calls[1] == 1
    [donor] = world.donors_with("ada.quillfeather@example.org")
    assert (donor["type"], donor["first_name"], donor["last_name"]) == ("individual", "Ada", "Quillfeather")
    assert world.donors_with("cy.quillfeather@example.org") == []  # outside the filter (No)
    assert world.donors_with("give@deecorp.example.org") == []  # outside the filter (an Organization)
    assert len(world.wegive.donors) == world.donors_before + 1
    counts = world.reports[1].counts["wegive_creates"]
    assert (counts["created"], counts["skipped_no_email"], counts["failed"]) == (1, 1, 0)  # Bo has no e-mail


def test_the_donor_is_linked_both_ways(world: World) -> None:
    [donor] = world.donors_with("ada.quillfeather@example.org")
    assert custom_value(world.constituent("ada"), WEGIVE_FIELD) == str(donor["id"])
    stored = world.wegive.donors[int(donor["id"])]  # the raw column (served on the detail)
    assert str(stored.get("bloomerang_id")) == str(world.people["ada"])
    for name in ("bo", "cy", "dee"):
        assert custom_value(world.constituent(name), WEGIVE_FIELD) is None


def test_no_rerun_creates_the_donor_again_even_without_the_data_folder(world: World) -> None:
    assert world.calls[2:] == [0, 0]
    assert len(world.donors_with("ada.quillfeather@example.org")) == 1
    assert len(world.wegive.donors) == world.donors_before + 1
    bloomerang = world.bloomerang
    adas = [i for i in list(bloomerang.constituents)
            if (bloomerang.render_constituent(i).get("PrimaryEmail") or {}).get("Value")
            == "ada.quillfeather@example.org"]
    assert adas == [world.people["ada"]]  # the new donor was linked, never pushed back as a second Ada
    typed_by_a_person = f"/v2/constituent/{world.people['ada']}"
    assert [w for run in world.bloomerang_writes[2:] for w in run if w.endswith(typed_by_a_person)] == []
    assert all(r.exit_code == 0 for r in world.reports), [json.dumps(r.counts) for r in world.reports]
