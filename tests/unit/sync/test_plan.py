"""The push plan: create / update with a diff / unchanged / blocked, field policies, dedupe, rendering."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from bloom_pipeline.sync.identity.by_reference import resolve_transactions
from bloom_pipeline.sync.identity.constituents import resolve_constituents
from bloom_pipeline.sync.plan.records import apply_order, plan_records
from bloom_pipeline.sync.plan.render import render_plan

FIELDS = ("first_name", "middle_name", "last_name", "full_name", "email", "phone", "street", "city", "state",
          "postal_code", "country")


def donor(source_id: str = "1", source: str = "wegive", payload_hash: str = "h1", **values) -> dict:
    row = {"source": source, "source_id": source_id, "constituent_type": "Individual", "bloomerang_id": None,
           **dict.fromkeys(FIELDS), **values}
    body = {"Type": "Individual", "FirstName": row["first_name"], "LastName": row["last_name"],
            "PrimaryEmail": {"Type": "Home", "Value": row["email"]},
            "PrimaryAddress": {"Type": "Home", "Street": row["street"], "City": row["city"]},
            "CustomValues": [{"FieldId": 901 if source == "wegive" else 902, "Value": source_id}]}
    return {**row, "payload": json.dumps(body), "payload_hash": payload_hash}


def bloomerang(bid: int, **values) -> dict:
    return {"bloomerang_id": bid, "constituent_type": "Individual", "suffix": None, "corr_wegive": None,
            "corr_handbid": None, **dict.fromkeys(FIELDS), **values}


def plan_for(staged_rows, snapshot_rows=(), state_rows=(), **kwargs) -> pd.DataFrame:
    staged = pd.DataFrame(staged_rows)
    snapshot = pd.DataFrame(list(snapshot_rows), columns=list(bloomerang(0)))
    state = pd.DataFrame(list(state_rows), columns=["source", "source_id", "bloomerang_id", "source_hash",
                                                   "source_snapshot", "bloomerang_snapshot", "bloomerang_hash"])
    resolved = resolve_constituents(staged, snapshot, state)
    return plan_records("constituents", staged, resolved, state, snapshot, **kwargs)


def row_of(plan: pd.DataFrame, source_id: str = "1") -> dict:
    row = plan[plan["source_id"] == source_id].iloc[0].to_dict()
    return {**row, "diff": json.loads(row["diff"]), "payload": json.loads(row["payload"])}


BOB = {"first_name": "Bob", "last_name": "Smith", "email": "bob@example.org"}


def test_no_link_and_no_match_is_a_create_with_the_staged_payload():
    row = row_of(plan_for([donor(**BOB)]))
    assert row["action"] == "create"
    assert row["payload"]["FirstName"] == "Bob"
    assert row["diff"]["email"] == [None, "bob@example.org"]


def test_a_match_never_synced_is_an_update_with_the_field_diff_and_the_correlation_id():
    row = row_of(plan_for([donor(**BOB, city="Denver")], [bloomerang(7, **BOB, city="Boulder")]))
    assert (row["action"], row["bloomerang_id"], row["link"]) == ("update", 7, True)
    assert row["diff"] == {"city": ["Boulder", "Denver"], "correlation_id": [None, "1"]}
    assert row["payload"]["PrimaryAddress"] == {"Type": "Home", "City": "Denver"}
    assert row["payload"]["CustomValues"] == [{"FieldId": 901, "Value": "1"}]
    assert "FirstName" not in row["payload"]


def test_a_match_with_nothing_to_change_is_unchanged_but_still_linked():
    row = row_of(plan_for([donor(**BOB)], [bloomerang(7, **BOB, corr_wegive="1")]))
    assert (row["action"], row["link"], row["payload"]) == ("unchanged", True, {})


def test_linked_with_equal_hashes_and_bloomerang_untouched_is_unchanged():
    snap = json.dumps({**dict.fromkeys(FIELDS), **BOB})
    state = {"source": "wegive", "source_id": "1", "bloomerang_id": 7, "source_hash": "h1",
             "source_snapshot": snap, "bloomerang_snapshot": snap, "bloomerang_hash": None}
    row = row_of(plan_for([donor(**BOB)], [bloomerang(7, **BOB, corr_wegive="1")], [state]))
    assert (row["action"], row["link"], row["reason"]) == ("unchanged", False, None)


def test_linked_source_change_pushes_only_what_the_source_changed():
    base = json.dumps({**dict.fromkeys(FIELDS), **BOB, "city": "Denver"})
    state = {"source": "wegive", "source_id": "1", "bloomerang_id": 7, "source_hash": "old",
             "source_snapshot": base, "bloomerang_snapshot": base, "bloomerang_hash": None}
    changed = donor(**{**BOB, "email": "new@example.org"}, city="Denver")
    # meanwhile someone corrected the city in Bloomerang: that edit must not be reverted
    row = row_of(plan_for([changed], [bloomerang(7, **BOB, city="Aurora", corr_wegive="1")], [state]))
    assert row["action"] == "update"
    assert row["diff"] == {"email": ["bob@example.org", "new@example.org"]}
    assert row["payload"] == {"PrimaryEmail": {"Type": "Home", "Value": "new@example.org"}}


def test_fill_empty_only_writes_into_empty_targets():
    plan = plan_for([donor("1", **BOB, city="Denver", street="1 Elm St")],
                    [bloomerang(7, **BOB, city="Boulder", corr_wegive="1")],
                    policies={"city": "fill_empty", "street": "fill_empty"})
    row = row_of(plan)
    assert row["diff"] == {"street": [None, "1 Elm St"]}
    assert row["payload"]["PrimaryAddress"] == {"Type": "Home", "Street": "1 Elm St", "City": "Boulder"}


def test_a_blank_source_value_never_erases_a_bloomerang_value():
    row = row_of(plan_for([donor(**BOB, phone=None, city="  ")],
                          [bloomerang(7, **BOB, phone="303-555-0100", city="Denver", corr_wegive="1")]))
    assert (row["action"], row["diff"]) == ("unchanged", {})


def test_review_fields_are_never_pushed():
    row = row_of(plan_for([donor(**BOB, city="Denver")], [bloomerang(7, **BOB, city="Boulder", corr_wegive="1")],
                          policies={"city": "review"}))
    assert row["action"] == "skipped"
    assert "awaiting review: city" in row["reason"]


def test_a_record_that_failed_validation_is_blocked():
    row = row_of(plan_for([donor(**BOB)], blocked={("wegive", "1"): "invalid email"}))
    assert (row["action"], row["reason"], row["payload"]) == ("blocked", "invalid email", {})


def test_the_same_person_from_two_sources_is_created_once_and_the_other_follows():
    plan = plan_for([donor("1", **BOB), donor("501", source="handbid", first_name="Robert", last_name="Smith",
                                              email="BOB@example.org", city="Denver")])
    leader, follower = row_of(plan, "1"), row_of(plan, "501")
    assert leader["action"] == "create"
    assert (follower["action"], follower["target_ref"]) == ("update", "ref:wegive.donors:1")
    assert follower["diff"] == {"city": [None, "Denver"]}           # fills what the leader lacks, nothing else
    assert follower["payload"]["CustomValues"] == [{"FieldId": 902, "Value": "501"}]


def transactions(*rows) -> pd.DataFrame:
    return pd.DataFrame([{"source": "wegive", "donor_source_id": "1", "date": "2026-05-01", "amount": 25.0,
                          "method": "Cash", "is_refunded": False, "fund_source_ids": "[3]", "bloomerang_id": None,
                          "payload_hash": "t1", **r} for r in rows])


def test_transactions_are_never_created_twice_and_blocked_with_their_donor():
    staged = transactions(
        {"source_id": "10", "payload": json.dumps({"AccountId": "ref:wegive.donors:1", "Amount": 25.0})},
        {"source_id": "11", "payload": json.dumps({"AccountId": "ref:wegive.donors:2", "Amount": 25.0})},
        {"source_id": "12", "payload": json.dumps({"AccountId": "ref:wegive.donors:1", "Amount": 25.0})},
        {"source_id": "13", "payload_hash": "t2", "amount": 30.0,
         "payload": json.dumps({"AccountId": "ref:wegive.donors:1", "Amount": 30.0})},
    )
    state = pd.DataFrame({"source": ["wegive", "wegive"], "source_id": ["12", "13"], "bloomerang_id": [900, 901],
                          "source_hash": ["t1", "t1"], "source_snapshot": [None, json.dumps({"amount": 25.0})]})
    bloom = pd.DataFrame({"bloomerang_id": [950], "corr_wegive": ["10"], "corr_handbid": [None]})
    resolved = resolve_transactions(staged, bloom, state)
    plan = plan_records("transactions", staged, resolved, state, None,
                        blocked_refs={"ref:wegive.donors:2": "blocked: invalid email"})
    by_id = plan.set_index("source_id")
    assert by_id.loc["10", "action"] == "unchanged" and by_id.loc["10", "bloomerang_id"] == 950  # found by custom field
    assert by_id.loc["10", "link"]
    assert by_id.loc["11", "action"] == "blocked" and "ref:wegive.donors:2" in by_id.loc["11", "reason"]
    assert by_id.loc["12", "action"] == "unchanged"
    assert by_id.loc["13", "action"] == "update"
    assert json.loads(by_id.loc["13", "diff"])["amount"] == [25.0, 30.0]
    assert (plan["action"] == "create").sum() == 0


def test_apply_order_is_funds_then_constituents_then_transactions():
    assert apply_order() == ("funds", "constituents", "transactions")


def test_render_plan_counts_per_entity_and_action_and_truncates():
    plan = plan_for([donor(str(i), first_name=f"P{i}", last_name="X", email=f"p{i}@example.org") for i in range(30)]
                    + [donor("99", **BOB, city="Denver")], [bloomerang(7, **BOB, city="Boulder", corr_wegive="99")])
    text = render_plan(plan, max_records=5)
    assert "constituents" in text and "create" in text
    header, counts = text.splitlines()[2:4]
    assert counts.split()[1:] == ["30", "1", "0", "0", "0"]
    assert "... 25 more" in text
    assert '"Boulder" → "Denver"' in text
    assert "dry run" in text


@pytest.mark.parametrize("empty", [pd.DataFrame(), None])
def test_render_plan_of_nothing(empty):
    assert "nothing to do" in render_plan(empty)


def test_when_the_leader_of_a_new_person_is_blocked_the_next_record_is_created_instead():
    plan = plan_for([donor("1", **BOB), donor("501", source="handbid", **BOB)], blocked=[("wegive", "1")])
    assert row_of(plan, "1")["action"] == "blocked"
    assert (row_of(plan, "501")["action"], row_of(plan, "501")["create_key"]) == ("create", "handbid:501")


def test_a_record_planned_beside_others_is_planned_as_when_alone():
    """Each pass plans a subset of the staged records (the later pass of a constituent linked twice): it looks
    up only those records' states and constituents, and a record's row never depends on the others'."""
    states, snapshot, staged = [], [], []
    for n in range(1, 6):
        sid, person = str(n), {**BOB, "first_name": f"Bob{n}", "email": f"bob{n}@example.org"}
        snap = json.dumps({**dict.fromkeys(FIELDS), **person, "city": {2: "Golden", 3: "Aurora"}.get(n)})
        states.append({"source": "wegive", "source_id": n, "bloomerang_id": 100 + n, "source_hash": "h1",
                       "source_snapshot": snap, "bloomerang_snapshot": snap, "bloomerang_hash": None})
        snapshot.append(bloomerang(100 + n, **person, corr_wegive=sid, city={2: "Arvada", 3: "Boulder"}.get(n)))
        city = {2: "Denver", 3: "Aurora"}.get(n)  # 3: Bloomerang's Boulder is an edit there, not to be overwritten
        staged.append(donor(sid, **person, city=city, payload_hash="h2" if n == 2 else "h1"))
    together = plan_for(staged, snapshot, states)
    for n in (2, 3):
        alone = plan_for([staged[n - 1]], snapshot, states)
        assert row_of(alone, str(n)) == row_of(together, str(n))
    assert row_of(together, "2")["diff"] == {"city": ["Arvada", "Denver"]}  # against Bloomerang now
    assert row_of(together, "3")["action"] == "unchanged"
    assert row_of(together, "2")["bloomerang_id"] == 102
