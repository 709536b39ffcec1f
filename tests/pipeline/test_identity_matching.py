"""A couple sharing one e-mail is never merged on its own: the record waits for a person, and the answer is
applied by the next run — over real HTTP, against the sandbox.

Bloomerang knows John Smith and Peter Lee; WeGive gets Jane Smith (John's e-mail) with a gift, and Mary Lee
(Peter's e-mail). Neither is created nor linked while their identity items are open (and Jane's gift waits
with her); the items are raised once, however many nights they wait. Then a reviewer links Jane to John's
record and says Mary is someone new: the next run does exactly that, and a further run creates nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from bloom_pipeline.cli import cli
from bloom_pipeline.sandbox.data.wegive import wegive_donor

pytestmark = pytest.mark.slow

SyncHarness = Any  # the ``harness`` fixture (tests/pipeline/conftest.py)


def _add_donor(h: SyncHarness, first: str, last: str, email: str) -> str:
    wegive = h.sb.stores["wegive"]
    with wegive.lock:
        donor_id = max(wegive.donors) + 1
        person = {"is_company": False, "company": None, "first_name": first, "middle_name": None, "last_name": last,
                  "email": email, "mobile_phone": None, "home_phone": None,
                  "address": {"address_1": "12 Oak Street", "city": "Denver", "state": "CO", "zip": "80202",
                              "country": "US"}}
        now = wegive.clock()
        wegive.donors[donor_id] = wegive_donor(donor_id, person, now, now)
    return str(donor_id)


def _add_constituent(h: SyncHarness, first: str, last: str, email: str) -> int:
    body = {"Type": "Individual", "FirstName": first, "LastName": last,
            "PrimaryEmail": {"Type": "Home", "Value": email}}
    return int(h.bloomerang.create_constituent(body)["Id"])


def _identity_items(h: SyncHarness, *donor_ids: str) -> dict[str, dict[str, Any]]:
    rows = h.frame("SELECT * FROM review_queue WHERE field = 'identity' AND source = 'wegive' ORDER BY id")
    rows = rows[rows["source_id"].isin(donor_ids)]
    assert rows["source_id"].is_unique, "an identity item is raised once per record"
    return {r["source_id"]: r for r in rows.to_dict("records")}


def _plan_row(h: SyncHarness, run_id: str, entity: str, source_id: str) -> dict[str, Any]:
    plan = h.frame("SELECT * FROM push_plan WHERE run_id = ? AND entity = ? AND source = 'wegive' AND source_id = ?",
                   [run_id, entity, source_id])
    assert len(plan) == 1, plan
    return plan.iloc[0].to_dict()


def _state(h: SyncHarness, source_id: str) -> int | None:
    rows = h.frame("SELECT bloomerang_id FROM sync_state WHERE entity = 'constituents' AND source = 'wegive' "
                   "AND source_id = ?", [source_id])
    return None if rows.empty or rows.iloc[0, 0] is None else int(rows.iloc[0, 0])


def test_a_shared_email_waits_for_review_and_the_next_run_applies_the_answer(harness: SyncHarness, monkeypatch):
    h = harness
    john = _add_constituent(h, "John", "Smith", "smiths@example.org")
    peter = _add_constituent(h, "Peter", "Lee", "lees@example.org")
    jane, mary = _add_donor(h, "Jane", "Smith", "smiths@example.org"), _add_donor(h, "Mary", "Lee", "lees@example.org")
    wegive = h.sb.stores["wegive"]
    before = set(wegive.transactions)
    wegive.add_transaction(int(jane), 2500)
    (gift,) = (str(t) for t in set(wegive.transactions) - before)

    # -- two nights without an answer: nothing created or linked, one item each, the gift waits too -------
    first = h.sync()
    assert first.exit_code == 0 and not first.problems, first.message
    items = _identity_items(h, jane, mary)
    assert {k: (r["status"], r["reason"], r["bloomerang_id"]) for k, r in items.items()} == {
        jane: ("open", "email_name_mismatch", john), mary: ("open", "email_name_mismatch", peter)}
    assert json.loads(items[jane]["bloomerang_value"])[0]["name"] == "John Smith"
    assert json.loads(items[jane]["source_value"])["name"].startswith("Jane")
    row = _plan_row(h, first.run_id, "constituents", jane)
    assert (row["action"], row["reason"]) == ("skipped", f"awaiting identity review #{items[jane]['id']}")
    gift_row = _plan_row(h, first.run_id, "transactions", gift)
    assert gift_row["action"] == "blocked" and "awaiting identity review" in gift_row["reason"]
    created = h.constituents_by(h.WEGIVE_DONOR_FIELD)
    assert jane not in created and mary not in created
    assert (_state(h, jane), _state(h, mary)) == (None, None)
    count = len(h.constituents())

    second = h.sync()
    assert second.exit_code == 0 and not second.problems, second.message
    again = _identity_items(h, jane, mary)
    assert {k: r["id"] for k, r in again.items()} == {k: r["id"] for k, r in items.items()}
    assert len(h.constituents()) == count and h.bloomerang.render_constituent(john)["FirstName"] == "John"

    # -- the reviewer answers: Jane is John's record, Mary is someone new --------------------------------
    monkeypatch.setenv("BLOOM_DATA_DIR", str(h.data_dir))
    runner = CliRunner()
    listed = runner.invoke(cli, ["review", "list", "--org", "demo"])
    assert listed.exit_code == 0, listed.output
    lines = [" ".join(line.split()) for line in listed.output.splitlines()]
    assert f"--take bloomerang link WeGive donor {jane} to constituent {john}" in lines
    assert "--take source create a new constituent" in lines
    for item, take in ((items[jane]["id"], "bloomerang"), (items[mary]["id"], "source")):
        resolved = runner.invoke(cli, ["review", "resolve", "--org", "demo", "--id", str(item), "--take", take])
        assert resolved.exit_code == 0, resolved.output

    third = h.sync()
    assert third.exit_code == 0 and not third.problems, third.message
    assert _state(h, jane) == john, "linked to the constituent the reviewer chose"
    linked = h.bloomerang.render_constituent(john)
    assert (linked["FirstName"], h.custom_value(linked, h.WEGIVE_DONOR_FIELD)) == ("Jane", jane), (
        "then compared and updated as any matched record")
    by_donor = h.constituents_by(h.WEGIVE_DONOR_FIELD)
    assert [c["Id"] for c in by_donor[mary]] == [_state(h, mary)] and _state(h, mary) not in (john, peter)
    assert h.bloomerang.render_constituent(peter)["FirstName"] == "Peter", "Peter's record is left alone"
    assert len(h.constituents()) == count + 1, "only Mary's constituent is new"
    gifts = h.transactions_by(h.WEGIVE_TRANSACTION_FIELD)
    assert [t["AccountId"] for t in gifts[gift]] == [john], "the gift that waited goes to the linked record"

    # -- a further night: nothing created twice, both items closed by the run that applied them ------------
    fourth = h.sync()
    assert fourth.exit_code == 0 and not fourth.problems, fourth.message
    assert len(h.constituents()) == count + 1
    assert h.duplicates(h.constituents_by(h.WEGIVE_DONOR_FIELD)) == {}
    assert h.duplicates(h.transactions_by(h.WEGIVE_TRANSACTION_FIELD)) == {}
    done = _identity_items(h, jane, mary)
    assert {k: (r["status"], r["decision"], r["applied_run_id"]) for k, r in done.items()} == {
        jane: ("applied", "bloomerang", third.run_id), mary: ("applied", "source", third.run_id)}
    assert int(done[mary]["bloomerang_id"]) == _state(h, mary)
