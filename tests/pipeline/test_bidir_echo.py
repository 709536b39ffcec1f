"""Echo suppression, run directions and review resolution over the real sandboxes (issue 6).

A value we write must not come back as a change: not on the next pull, not the night after — whatever
formatting each system applies (phones in another format, multi-line streets split into address lines, case).
A push-only run leaves Bloomerang's changes pending for the next run that may pull, and vice versa.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from bloom_pipeline.cli import cli
from tests.pipeline.conftest_bidir import ORG, BidirWorld, Picker

pytestmark = pytest.mark.slow  # starts sandbox servers or a Dagster instance

WEGIVE_PUT = ("wegive", "PUT", "/api/dashboard/donors/{id}")
HANDBID_PUT = ("handbid", "PUT", "/v3/manager/contacts/{id}")
BLOOMERANG_PUT = ("bloomerang", "PUT", "/v2/constituent/{id}")


@pytest.fixture(scope="module")
def pick(bidir_world: BidirWorld) -> Picker:  # noqa: F811
    bidir_world.sync()  # the first sync's own writes come back once through the cursor
    return bidir_world.picker


def _address(world: BidirWorld, bloomerang_id: int, **fields: str) -> None:
    world.bloomerang.update_constituent(bloomerang_id, {"PrimaryAddress": {"Type": "Home", **fields}},
                                        actor="Front Desk")


def test_values_we_write_are_not_seen_as_changes_over_three_runs(bidir_world: BidirWorld,  # noqa: F811
                                                                  pick: Picker) -> None:
    world = bidir_world
    donor, donor_constituent = pick.take("wegive", with_fields=("city",))
    contact, contact_constituent = pick.take("handbid", with_fields=("city",))
    company, company_constituent = pick.take("wegive", kind="Organization")
    pushed, pushed_constituent = pick.take("wegive", with_fields=("city",))
    renamed, renamed_constituent = pick.take("wegive", kind="Organization")
    _address(world, donor_constituent, Street="12 Elm St\nUnit 4", City="Golden")
    _address(world, contact_constituent, Street="400 Pine Rd\nSuite 9")
    world.bloomerang.update_constituent(contact_constituent, {"PrimaryPhone": {"Type": "Mobile",
                                                                               "Number": "+1 303-555-0199"}},
                                        actor="Front Desk")
    world.bloomerang.update_constituent(company_constituent, {"FullName": "Acme Foundation of Denver"},
                                        actor="Front Desk")
    world.wegive.update_donor(int(pushed), {"first_name": "  Mary   Jo ", "mobile_phone": "303.555.0177",
                                            "mailing_address": {"state": "co", "zip": "80302-1234"}})
    world.wegive.update_donor(int(renamed), {"name": "Front Range Rotary Club"})

    first = world.sync()
    sent = world.writes()
    assert sent == {WEGIVE_PUT: 2, HANDBID_PUT: 1, BLOOMERANG_PUT: 2}, sent
    mailing = world.donor(donor)["mailing_address"]
    assert (mailing["address_1"], mailing["address_2"], mailing["city"]) == ("12 Elm St", "Unit 4", "Golden")
    address = world.contact(contact)["addresses"][0]
    assert (address["street1"], address["street2"]) == ("400 Pine Rd", "Suite 9")
    assert world.contact(contact)["userCellPhone"] == "+1 303-555-0199"  # as typed in Bloomerang
    assert world.donor(company)["name"] == "Acme Foundation of Denver"
    assert world.constituent(renamed_constituent)["FullName"] == "Front Range Rotary Club"
    person = world.constituent(pushed_constituent)
    assert person["FirstName"].split() == ["Mary", "Jo"]
    assert person["PrimaryAddress"]["State"].casefold() == "co"
    assert person["PrimaryPhone"]["Number"].replace("-", "").replace(".", "").endswith("3035550177"[-7:])

    for night in (2, 3):
        report = world.sync()
        assert world.writes() == {}, f"night {night}: no POST or PUT to any API"
        assert report.conflicts == 0 and report.review_items == 0
        updated = world.query("SELECT * FROM sync_log WHERE run_id = ? AND entity = 'constituents' "
                              "AND action NOT IN ('unchanged', 'quarantined')", [report.run_id])
        assert updated == [], f"night {night}: every donor unchanged"
    assert first.run_id != report.run_id


def test_pull_only_and_push_only_runs_each_leave_the_other_direction_pending(bidir_world: BidirWorld,  # noqa: F811
                                                                             pick: Picker) -> None:
    world = bidir_world
    pull_me, pull_constituent = pick.take("wegive", with_fields=("phone",))
    push_me, push_constituent = pick.take("wegive")
    world.bloomerang.update_constituent(pull_constituent, {"PrimaryPhone": {"Type": "Mobile",
                                                                            "Number": "(720) 555-0101"}},
                                        actor="Front Desk")
    world.wegive.update_donor(int(push_me), {"last_name": "Vasquez-Lind"})
    newcomer = str(world.wegive.find_or_create_donor({"type": "individual", "email": "nova.newcomer@example.org",
                                                      "first_name": "Nova", "last_name": "Newcomer"})["id"])

    pulled = world.sync("pull")
    assert world.writes() == {WEGIVE_PUT: 1}, "a pull run never writes to Bloomerang"
    assert world.donor(pull_me)["mobile_phone"] == "(720) 555-0101"
    assert world.constituent(push_constituent)["LastName"] != "Vasquez-Lind"
    (log,) = world.log(pulled.run_id, "wegive", newcomer)
    assert (log["action"], log["error"]) == ("skipped", "pull-only run: the planned create is left for a push run")

    pushed = world.sync("push")  # Bloomerang's cursor has moved on: the stored snapshot keeps the state
    assert world.writes() == {BLOOMERANG_PUT: 1, ("bloomerang", "POST", "/v2/constituent"): 1,
                              WEGIVE_PUT: 1}, "the update, the new donor, and its Bloomerang id kept in WeGive"
    assert world.constituent(push_constituent)["LastName"] == "Vasquez-Lind"
    assert world.donor(pull_me)["mobile_phone"] == "(720) 555-0101"
    assert world.donor(newcomer)["bloomerang_id"] == world.log(pushed.run_id, "wegive", newcomer)[0]["bloomerang_id"]

    world.sync("both")
    assert world.writes() == {}


def test_review_list_and_resolve_with_a_typed_value(bidir_world: BidirWorld, pick: Picker) -> None:  # noqa: F811
    world = bidir_world
    donor, constituent = pick.take("wegive", with_fields=("phone",))
    world.wegive.update_donor(int(donor), {"mobile_phone": "3035550101"})
    world.bloomerang.update_constituent(constituent, {"PrimaryPhone": {"Type": "Mobile",
                                                                       "Number": "(720) 555-0102"}},
                                        actor="Front Desk")
    queued = world.sync()
    assert world.writes() == {} and queued.review_items == 1

    runner, env = CliRunner(), {"BLOOM_DATA_DIR": str(world.data_dir)}
    listed = runner.invoke(cli, ["review", "list", "--org", ORG], env=env)
    assert listed.exit_code == 0, listed.output
    (item,) = world.reviews(donor)
    line = next(line for line in listed.output.splitlines() if line.split() and line.split()[0] == str(item["id"]))
    assert donor in line and "phone" in line and "3035550101" in line and "(720) 555-0102" in line
    resolved = runner.invoke(cli, ["review", "resolve", "--org", ORG, "--id", str(item["id"]),
                                   "--take", "value:(720) 555-0123"], env=env)
    assert resolved.exit_code == 0, resolved.output
    assert world.reviews(donor)[0]["status"] == "resolved"
    assert world.donor(donor)["mobile_phone"] == "3035550101", "a decision waits for the next run"

    applied = world.sync()
    assert world.writes() == {WEGIVE_PUT: 1, BLOOMERANG_PUT: 1}, "a typed value is written to both sides"
    assert world.donor(donor)["mobile_phone"] == "(720) 555-0123"
    assert world.constituent(constituent)["PrimaryPhone"]["Number"] == "(720) 555-0123"
    (item,) = world.reviews(donor)
    assert (item["status"], item["decision"], json.loads(item["decided_value"]), item["applied_run_id"]) == (
        "applied", "value", "(720) 555-0123", applied.run_id)
    (log,) = world.log(applied.run_id, "wegive", donor)
    assert json.loads(log["field_diff"]) == {"to_bloomerang": {"phone": "(720) 555-0123"},
                                             "to_source": {"phone": "(720) 555-0123"}}
    (row,) = world.conflicts(applied.run_id, donor)
    assert (row["rule"], row["winner"], row["bloomerang_id"]) == ("decision", "manual", constituent)

    world.sync()
    assert world.writes() == {}
    again = runner.invoke(cli, ["review", "resolve", "--org", ORG, "--id", str(item["id"]), "--take", "source"],
                          env=env)
    assert again.exit_code != 0, "an applied decision cannot be changed"
