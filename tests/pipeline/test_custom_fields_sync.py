"""Org custom fields over real HTTP: WeGive donor custom fields <-> Bloomerang Constituent custom fields.

One 12-donor sandbox and one org whose YAML maps five WeGive donor custom fields (a PickOne, a PickMultiple, a
Text named by id, a Date and a Currency) and one Bloomerang lacks, with one shared clock moving an hour per run
(as in test_communication_prefs.py). Before the first run two donors carry values: ``a`` valid ones (in
WeGive's own spelling: lower-case pick text, a grouped amount), ``b`` a size the pick list lacks and a date that
is none. WeGive serves ``custom_fields`` in the sandbox's default, the less convenient list shape.

What it protects: each value reaches Bloomerang in the documented *write* shape (``ValueId`` / ``ValueIds`` /
``Value``) and reads back as Bloomerang's read shape; a pick-list mismatch and a bad date are quarantined (kind
'field', with the reason) while the rest of that donor — its constituent, its valid field — still lands; a
second run writes nothing; a Bloomerang edit of a ``both`` field reaches WeGive through ``PUT
/dashboard/donors/{id}`` while a ``push`` field stays put and a Bloomerang clear never erases what WeGive holds;
a dry run (and every run) names the field Bloomerang lacks, and no run crashes on it; the sandbox refuses an
unknown pick value id with the documented error shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pytest
import requests

from bloom_pipeline.sync.runner import RunReport
from tests.pipeline.org_world import OrgWorld, open_world, org_yaml

pytestmark = pytest.mark.slow  # starts sandbox servers

ORG = "cfields"
CUSTOM_FIELDS = """\
mappings:
  wegive:
    donors:
      custom_fields:
        - {wegive: tshirt_size, bloomerang: T-Shirt Size, direction: both}
        - {wegive: volunteer_interests, bloomerang: volunteer interests, direction: both}
        - {wegive: dietary_notes, bloomerang: 923, direction: both}
        - {wegive: member_since, bloomerang: Member Since}
        - {wegive: giving_capacity, bloomerang: Giving Capacity, policy: fill_empty}
        - {wegive: shoe_size, bloomerang: Shoe Size, direction: both}
"""
SIZE, INTERESTS, NOTES, SINCE, CAPACITY = 921, 922, 923, 924, 925
MISSING = "Bloomerang has no Constituent custom field named 'Shoe Size'; not synced"


class World(OrgWorld):
    """The cfields org's world, with the constituents' custom values and pick values at hand."""

    def values(self, bid: int) -> dict[int, Any]:
        """Field id -> the read-shape value(s) the constituent's GET answers."""
        out = {}
        for item in self.bloomerang.render_constituent(bid).get("CustomValues", []):
            out[item["FieldId"]] = (sorted(v["Value"] for v in item["Values"]) if "Values" in item
                                    else item["Value"]["Value"])
        return out

    def pick_id(self, field_id: int, text: str) -> int:
        return next(v["Id"] for v in self.bloomerang.pick_values.values()
                    if v["FieldId"] == field_id and v["Value"] == text)


def _individuals(store: Any, n: int) -> list[int]:
    return [d for d in sorted(store.donors) if store.donors[d].get("type") == "individual"][:n]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with open_world(tmp_path_factory.mktemp("cfields"), ORG, donors=12, seed=5, kind=World, capture_bodies=True,
                    yaml=org_yaml(ORG, CUSTOM_FIELDS)) as w:
        yield w


@pytest.fixture(scope="module")
def first(world: World) -> dict[str, Any]:
    """The dry run, then the first real run, with ``a`` and ``b`` carrying values in WeGive beforehand."""
    a, b = _individuals(world.wegive, 2)
    world.wegive.donors[a]["custom_fields"] = {
        "tshirt_size": "m", "volunteer_interests": ["mentoring", "Events"], "dietary_notes": " Vegetarian ",
        "member_since": "2019-05-01", "giving_capacity": "1,250.5"}
    world.wegive.donors[b]["custom_fields"] = {"tshirt_size": "XXL", "dietary_notes": "No nuts",
                                               "member_since": "31/02/2020"}
    dry = world.sync(dry_run=True)
    dry_writes = [e for e in world.sandbox.request_log.entries if e.method in ("POST", "PUT", "DELETE")]
    report = world.sync()
    a_bid, b_bid = world.constituent_of(a), world.constituent_of(b)
    return {"a": a, "b": b, "a_bid": a_bid, "b_bid": b_bid, "dry": dry, "dry_writes": dry_writes,
            "report": report, "to_a": world.sent("PUT", f"/constituent/{a_bid}"),
            "quarantine": world.query("SELECT * FROM quarantine WHERE run_id = ? AND kind = 'field' "
                                      "ORDER BY field", [report.run_id])}


@pytest.fixture(scope="module")
def quiet(world: World, first: dict[str, Any]) -> RunReport:
    report = world.sync()
    report.custom_log = world.query("SELECT * FROM custom_field_log WHERE run_id = ?", [report.run_id])
    report.donor_puts = world.sent("PUT", f"/dashboard/donors/{first['a']}")
    return report


@pytest.fixture(scope="module")
def pulled(world: World, first: dict[str, Any], quiet: RunReport) -> dict[str, Any]:
    """Staff edit ``a`` in Bloomerang: a new size, notes cleared, a new member-since date (a push-only field)."""
    a, a_bid = first["a"], first["a_bid"]
    world.bloomerang.update_constituent(a_bid, {"CustomValues": [
        {"FieldId": SIZE, "ValueId": world.pick_id(SIZE, "L")}, {"FieldId": NOTES, "Value": None},
        {"FieldId": INTERESTS, "ValueIds": [world.pick_id(INTERESTS, "Office Help")]},
        {"FieldId": SINCE, "Value": "2020-01-01"}]}, actor="Development Staff")
    report = world.sync()
    return {"report": report, "sent": world.sent("PUT", f"/dashboard/donors/{a}"),
            "held": dict(world.wegive.donors[a]["custom_fields"]), "served": world.wegive.render_donor(a)}


def test_a_dry_run_names_the_field_bloomerang_lacks_and_writes_nothing(first) -> None:
    assert MISSING in (first["dry"].message or "")
    assert first["dry_writes"] == []


def test_a_missing_field_does_not_stop_the_run_and_is_reported(first) -> None:
    assert MISSING in (first["report"].message or "")


def test_values_reach_bloomerang_in_the_write_shape(world: World, first) -> None:
    assert world.values(first["a_bid"]).items() >= {
        SIZE: "M", INTERESTS: ["Events", "Mentoring"], NOTES: "Vegetarian", SINCE: "2019-05-01",
        CAPACITY: "1250.50"}.items()
    items = {i["FieldId"]: i for body in first["to_a"] for i in body.get("CustomValues", [])}
    assert items[SIZE] == {"FieldId": SIZE, "ValueId": world.pick_id(SIZE, "M")}
    assert sorted(items[INTERESTS]["ValueIds"]) == sorted([world.pick_id(INTERESTS, "Events"),
                                                           world.pick_id(INTERESTS, "Mentoring")])
    assert items[NOTES] == {"FieldId": NOTES, "Value": "Vegetarian"}
    assert items[CAPACITY] == {"FieldId": CAPACITY, "Value": "1250.50"}


def test_a_pick_list_mismatch_is_quarantined_and_the_rest_of_the_record_lands(world: World, first) -> None:
    rows = [r for r in first["quarantine"] if r["source_id"] == str(first["b"])]
    assert [r["field"] for r in rows] == ["custom_field:Member Since", "custom_field:T-Shirt Size"]
    reasons = {r["field"]: r["reasons"][0] for r in rows}
    assert "'XXL' is not in the pick list of Bloomerang custom field 'T-Shirt Size'" in reasons[
        "custom_field:T-Shirt Size"]
    assert "'31/02/2020' is not a date" in reasons["custom_field:Member Since"]
    assert {r["value"] for r in rows} == {"'XXL'", "'31/02/2020'"}
    held = world.values(first["b_bid"])
    assert held.get(NOTES) == "No nuts" and SIZE not in held and SINCE not in held
    assert first["report"].counts["custom_fields"]["values_quarantined"] == 2


def test_a_second_run_writes_nothing(quiet) -> None:
    assert [r for r in quiet.custom_log if r["action"] != "skipped"] == []
    assert quiet.donor_puts == []


def test_a_bloomerang_edit_reaches_wegive_and_a_clear_erases_nothing(first, pulled) -> None:
    custom = pulled["held"]
    assert {"api_name": "tshirt_size", "name": "T-Shirt Size", "value": "L"} in pulled["served"]["custom_fields"]
    assert pulled["sent"] == [{"custom_fields": {"tshirt_size": "L", "volunteer_interests": ["Office Help"]}}]
    assert custom["tshirt_size"] == "L" and custom["volunteer_interests"] == ["Office Help"]
    assert custom["dietary_notes"] == " Vegetarian "  # Bloomerang's clear did not erase what WeGive holds
    assert custom["member_since"] == "2019-05-01"  # a push-only field does not come back
    assert pulled["report"].counts["custom_fields"]["updated_in_wegive"] == 1


def test_the_sandbox_refuses_an_unknown_pick_value_with_the_documented_error(world: World, first) -> None:
    url = world.sandbox.urls["bloomerang"].rstrip("/")
    answer = requests.put(f"{url}/constituent/{first['a_bid']}", timeout=10,
                          headers={"X-API-KEY": world.sandbox.keys["bloomerang"]},
                          json={"CustomValues": [{"FieldId": SIZE, "ValueId": 999999}]})
    assert answer.status_code == 400
    assert set(answer.json()) == {"Message", "ErrorCode"} and "999999" in answer.json()["Message"]
    answer = requests.put(f"{url}/constituent/{first['a_bid']}", timeout=10,
                          headers={"X-API-KEY": world.sandbox.keys["bloomerang"]},
                          json={"CustomValues": [{"FieldId": SINCE, "Value": "soon"}]})
    assert answer.status_code == 400 and "must be a date" in answer.json()["Message"]


def test_the_wegive_sandbox_takes_known_custom_fields_only_and_serves_either_shape(world: World, first) -> None:
    url, b = world.sandbox.urls["wegive"].rstrip("/"), first["b"]
    headers = {"Authorization": f"Bearer {world.sandbox.keys['wegive']}"}
    answer = requests.put(f"{url}/dashboard/donors/{b}", timeout=10, headers=headers,
                          json={"custom_fields": {"shoe_size": "9", "tshirt_size": ["S", 2]}})
    assert answer.status_code == 422
    assert set(answer.json()["errors"]) == {"custom_fields.shoe_size", "custom_fields.tshirt_size"}
    world.wegive.donor_custom_fields = "object"
    try:
        served = requests.get(f"{url}/dashboard/donors/{b}", timeout=10, headers=headers).json()["data"]
    finally:
        world.wegive.donor_custom_fields = "list"
    assert served["custom_fields"] == {"tshirt_size": "XXL", "dietary_notes": "No nuts", "member_since": "31/02/2020"}


@pytest.fixture(scope="module")
def reviewed(world: World, first: dict[str, Any], pulled: dict[str, Any]) -> dict[str, Any]:
    """Both sides change ``a``'s dietary notes within the skew tolerance (one clock): the field waits in review;
    a reviewer takes WeGive's value, and the next run writes it to Bloomerang and marks the decision applied."""
    from bloom_pipeline.staging import review

    a, a_bid = first["a"], first["a_bid"]
    donor = world.wegive.donors[a]
    donor["custom_fields"] = {**donor["custom_fields"], "dietary_notes": "Pescatarian"}
    donor["home_phone"] = "3035550199"  # a list-row change, so the run reads the donor's detail again
    donor["updated_at"] = world.wegive.now()
    world.bloomerang.update_constituent(a_bid, {"CustomValues": [{"FieldId": NOTES, "Value": "Kosher"}]},
                                        actor="Development Staff")
    report = world.sync()
    items = world.query("SELECT id, field, reason, status FROM review_queue WHERE source = 'wegive' "
                        "AND source_id = ? AND field LIKE 'custom_field:%'", [str(a)])
    held = (world.values(a_bid).get(NOTES), world.wegive.donors[a]["custom_fields"]["dietary_notes"])
    con = duckdb.connect(str(world.data_dir / f"{ORG}_staging.duckdb"))
    try:
        review.resolve_review(con, items[0]["id"], "source")
    finally:
        con.close()
    after = world.sync()
    status = world.query("SELECT status FROM review_queue WHERE id = ?", [items[0]["id"]])[0]["status"]
    return {"report": report, "items": items, "held": held, "after": world.values(a_bid).get(NOTES),
            "status": status, "after_report": after}


def test_a_both_sides_change_waits_in_review_and_the_decision_is_applied(reviewed) -> None:
    assert [(i["field"], i["reason"], i["status"]) for i in reviewed["items"]] == [
        ("custom_field:923", "within_skew", "open")]
    assert reviewed["held"] == ("Kosher", "Pescatarian")  # neither side was written while it waited
    assert reviewed["report"].review_items >= 1
    assert reviewed["after"] == "Pescatarian" and reviewed["status"] == "applied"
