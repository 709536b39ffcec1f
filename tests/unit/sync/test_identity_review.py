"""Identity items in the review queue: a record that waits is held (never created or linked), its item is
raised once, a reviewer's decision is applied by the next identity step, and the item closes once
``sync_state`` links the record. Also the ``review list`` / ``review resolve`` commands for such items."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from bloom_pipeline.cli import cli
from bloom_pipeline.staging import ledgers, review
from bloom_pipeline.staging.store import StagingStore
from bloom_pipeline.sync.identity.constituents import IdentityDecision, resolve_constituents
from bloom_pipeline.sync.plan import entities

FIELDS = ("first_name", "middle_name", "last_name", "full_name", "email", "phone", "street", "city", "state",
          "postal_code", "country")


def donor(source_id: str, source: str = "wegive", **values) -> dict:
    row = {"source": source, "source_id": source_id, "constituent_type": "Individual", "bloomerang_id": None,
           "source_updated_at": pd.Timestamp("2026-11-20T10:00:00Z"), **dict.fromkeys(FIELDS), **values}
    body = {"Type": "Individual", "FirstName": row["first_name"], "LastName": row["last_name"],
            "PrimaryEmail": {"Type": "Home", "Value": row["email"]}}
    return {**row, "payload": json.dumps(body), "payload_hash": f"h{source}{source_id}"}


def constituent(bid: int, **values) -> dict:
    return {"bloomerang_id": bid, "constituent_type": "Individual", "suffix": None, "corr_wegive": None,
            "corr_handbid": None, "last_modified": pd.Timestamp("2026-11-25T09:00:00Z"), **dict.fromkeys(FIELDS),
            **values}


def frame(*rows: dict) -> pd.DataFrame:
    out = pd.DataFrame(list(rows))
    out["bloomerang_id"] = out["bloomerang_id"].astype("Int64")
    return out


def snapshot(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(constituent(0)))


JANE = {"first_name": "Jane", "last_name": "Smith", "email": "smiths@example.org", "street": "12 Oak St",
        "city": "Denver"}
JOHN = constituent(2451, first_name="John", last_name="Smith", full_name="John Smith", email="smiths@example.org",
                   street="12 Oak St", city="Denver", state="CO")
NO_LINKS = pd.DataFrame(columns=["source", "source_id", "bloomerang_id"])


def by_key(result: pd.DataFrame) -> dict[str, dict]:
    return {f"{r['source']}:{r['source_id']}": r for r in result.to_dict("records")}


# -- the pure resolution: decisions and records that are one person --------------------------------------

def test_a_link_decision_links_to_the_chosen_constituent_and_a_create_decision_creates():
    staged = frame(donor("1040", **JANE))
    linked = by_key(resolve_constituents(staged, snapshot(JOHN), NO_LINKS,
                                         {("wegive", "1040"): IdentityDecision(3, 2451)}))["wegive:1040"]
    assert (linked["bloomerang_id"], linked["rule"], linked["decision_id"], linked["review"]) == (2451, "review", 3,
                                                                                                 None)
    created = by_key(resolve_constituents(staged, snapshot(JOHN), NO_LINKS,
                                          {("wegive", "1040"): IdentityDecision(3, None)}))["wegive:1040"]
    assert pd.isna(created["bloomerang_id"]) and created["create_key"] == "wegive:1040"
    assert created["review"] is None and created["waiting_for"] is None


def test_a_decision_for_a_constituent_bloomerang_no_longer_has_is_ignored():
    result = by_key(resolve_constituents(frame(donor("1040", **JANE)), snapshot(JOHN), NO_LINKS,
                                         {("wegive", "1040"): IdentityDecision(3, 999)}))["wegive:1040"]
    assert result["review"]["reason"] == "email_name_mismatch" and "999" in result["note"]


def test_the_same_person_on_wegive_and_handbid_waits_together_and_follows_one_answer():
    staged = frame(donor("1040", **JANE), donor("501", "handbid", **JANE))
    waiting = by_key(resolve_constituents(staged, snapshot(JOHN), NO_LINKS))
    assert {k: r["waiting_for"] for k, r in waiting.items()} == {"wegive:1040": "wegive:1040",
                                                                 "handbid:501": "handbid:501"}
    decided = by_key(resolve_constituents(staged, snapshot(JOHN), NO_LINKS,
                                          {("wegive", "1040"): IdentityDecision(3, None)}))
    assert [decided[k]["create_key"] for k in ("wegive:1040", "handbid:501")] == ["wegive:1040", "wegive:1040"]
    assert decided["handbid:501"]["review"] is None, "the WeGive answer settles the Handbid twin too"
    linked = by_key(resolve_constituents(staged, snapshot(JOHN), NO_LINKS,
                                         {("handbid", "501"): IdentityDecision(4, 2451)}))
    assert [linked[k]["bloomerang_id"] for k in ("wegive:1040", "handbid:501")] == [2451, 2451]


def test_a_sibling_without_a_question_waits_with_the_record_that_has_one():
    staged = frame(donor("1040", **JANE, phone="303-555-0101"),
                   donor("501", "handbid", first_name="Jane", last_name="Smith", phone="(303) 555 0101"))
    result = by_key(resolve_constituents(staged, snapshot(JOHN), NO_LINKS))
    assert result["handbid:501"]["waiting_for"] == "wegive:1040" and result["handbid:501"]["review"] is None
    assert result["handbid:501"]["create_key"] is None, "not created while its twin's identity is open"


def test_a_sibling_found_by_its_correlation_id_answers_the_question():
    staged = frame(donor("1040", **JANE), donor("501", "handbid", **JANE))
    jane = constituent(2460, first_name="Jane", last_name="Smith", corr_handbid="501")
    result = by_key(resolve_constituents(staged, snapshot(JOHN, jane), NO_LINKS))
    assert result["wegive:1040"]["bloomerang_id"] == 2460 and result["wegive:1040"]["review"] is None
    assert "awaiting" not in (result["wegive:1040"]["note"] or "")


# -- the queue around it: raised once, decided, applied, closed -------------------------------------------

@pytest.fixture
def store(tmp_path, monkeypatch) -> StagingStore:
    monkeypatch.setenv("BLOOM_DATA_DIR", str(tmp_path))
    store = StagingStore.for_org("acme")
    with store.write():
        pass
    return store


def plan(store: StagingStore, staged: pd.DataFrame, snap: pd.DataFrame, run_id: str) -> pd.DataFrame:
    with store.connect() as con:
        states = ledgers.states_frame(con, "constituents")
    links = states.dropna(subset=["bloomerang_id"])[["source", "source_id", "bloomerang_id"]]
    resolved = entities.resolve_constituents(staged, snap, links, store=store, run_id=run_id)
    return entities.plan_constituents(staged, resolved, states, snap, policies={})


def identity_items(store: StagingStore) -> list[review.ReviewItem]:
    with store.connect() as con:
        return [i for i in review.list_reviews(con, None) if i.is_identity]


def link(store: StagingStore, source_id: str, bloomerang_id: int, run_id: str) -> None:
    with store.write() as con:
        ledgers.upsert_state(con, ledgers.SyncState("constituents", "wegive", source_id, bloomerang_id=bloomerang_id,
                                                    last_run_id=run_id))


def test_a_waiting_record_is_skipped_with_its_item_raised_once(store):
    staged = frame(donor("1040", **JANE))
    first = plan(store, staged, snapshot(JOHN), "run-1").iloc[0]
    (item,) = identity_items(store)
    assert (first["action"], first["reason"]) == ("skipped", f"awaiting identity review #{item.id}")
    assert pd.isna(first["bloomerang_id"]) and not first["link"]
    assert (item.field, item.reason, item.status, item.bloomerang_id) == ("identity", "email_name_mismatch", "open",
                                                                          2451)
    assert item.source_value["name"] == "Jane Smith" and item.source_value["email"] == "smiths@example.org"
    assert item.bloomerang_value == [{"id": 2451, "type": "Individual", "name": "John Smith",
                                      "email": "smiths@example.org", "phone": None,
                                      "address": "12 Oak St, Denver, CO"}]
    for night in ("run-2", "run-3"):
        assert plan(store, staged, snapshot(JOHN), night).iloc[0]["reason"] == f"awaiting identity review #{item.id}"
    assert [i.id for i in identity_items(store)] == [item.id], "raised once, not every night"


def test_an_open_item_follows_its_candidates(store):
    staged = frame(donor("1040", **JANE))
    plan(store, staged, snapshot(JOHN), "run-1")
    other = constituent(2460, first_name="Jim", last_name="Smith", email="smiths@example.org")
    plan(store, staged, snapshot(JOHN, other), "run-2")
    (item,) = identity_items(store)
    assert item.candidate_ids == [2451, 2460] and item.bloomerang_id is None


def test_a_link_decision_is_applied_by_the_next_plan_and_closes_once_linked(store):
    staged = frame(donor("1040", **JANE))
    plan(store, staged, snapshot(JOHN), "run-1")
    (item,) = identity_items(store)
    with store.write() as con:
        review.resolve_review(con, int(item.id), "bloomerang")
    row = plan(store, staged, snapshot(JOHN), "run-2").iloc[0]
    assert (row["action"], row["bloomerang_id"], row["link"]) == ("update", 2451, True)
    assert json.loads(row["diff"])["first_name"] == ["John", "Jane"], "then compared / updated as any match"
    assert "identity review" in row["reason"]
    assert identity_items(store)[0].status == "resolved", "not applied before the link exists"
    link(store, "1040", 2451, "run-2")
    plan(store, staged.iloc[0:0], snapshot(JOHN), "run-3")
    (done,) = identity_items(store)
    assert (done.status, done.decision, done.decided_value, done.applied_run_id, done.bloomerang_id) == (
        "applied", "bloomerang", 2451, "run-2", 2451)


def test_a_create_decision_creates_and_a_failed_create_keeps_the_decision(store):
    staged = frame(donor("1040", **JANE))
    plan(store, staged, snapshot(JOHN), "run-1")
    (item,) = identity_items(store)
    with store.write() as con:
        review.resolve_review(con, int(item.id), "source")
    for night in ("run-2", "run-3"):  # run-2's create failed: nothing linked, so run-3 creates again
        row = plan(store, staged, snapshot(JOHN), night).iloc[0]
        assert (row["action"], row["create_key"]) == ("create", "wegive:1040")
    assert [i.status for i in identity_items(store)] == ["resolved"]
    link(store, "1040", 3001, "run-3")
    plan(store, staged.iloc[0:0], snapshot(JOHN), "run-4")
    (done,) = identity_items(store)
    assert (done.status, done.decision, done.bloomerang_id, done.applied_run_id) == ("applied", "source", 3001,
                                                                                     "run-3")


def test_a_decision_bloomerang_merged_away_reopens_its_item(store):
    staged = frame(donor("1040", **JANE))
    jim = constituent(2460, first_name="Jim", last_name="Smith", email="smiths@example.org")
    plan(store, staged, snapshot(JOHN, jim), "run-1")
    (item,) = identity_items(store)
    with store.write() as con:
        review.resolve_review(con, int(item.id), "bloomerang:2460")
    row = plan(store, staged, snapshot(JOHN), "run-2").iloc[0]
    (again,) = identity_items(store)
    assert (again.id, again.status, again.decision) == (item.id, "open", None)
    assert row["action"] == "skipped"


def test_a_question_that_went_away_closes_without_a_decision(store):
    staged = frame(donor("1040", **JANE))
    plan(store, staged, snapshot(JOHN), "run-1")
    jane = constituent(2470, first_name="Jane", last_name="Smith", email="smiths@example.org")
    row = plan(store, staged, snapshot(JOHN, jane), "run-2").iloc[0]  # an admin added Jane in Bloomerang
    assert (row["action"], row["bloomerang_id"]) == ("update", 2470)
    link(store, "1040", 2470, "run-2")
    plan(store, staged.iloc[0:0], snapshot(JOHN, jane), "run-3")
    (done,) = identity_items(store)
    assert (done.status, done.decision, done.bloomerang_id) == ("applied", None, 2470)


def test_identity_decisions_are_not_field_decisions_and_gifts_of_a_waiting_donor_are_blocked(store):
    staged = frame(donor("1040", **JANE))
    constituents_plan = plan(store, staged, snapshot(JOHN), "run-1")
    (item,) = identity_items(store)
    with store.write() as con:
        review.resolve_review(con, int(item.id), "source")
        assert review.resolved_decisions(con, "constituents").empty, "the merge must not see identity items"
    assert entities.awaiting_review_refs(constituents_plan) == {
        "ref:wegive.donors:1040": f"awaiting identity review #{item.id}"}


# -- the CLI ------------------------------------------------------------------------------------------------

def _run(*args: str):
    return CliRunner().invoke(cli, list(args))


def _lines(output: str) -> list[str]:
    """The output's lines with runs of spaces as one (the columns are aligned to their widest cell)."""
    return [" ".join(line.split()) for line in output.splitlines()]


def _queue(store: StagingStore, *candidates: dict, source: str = "wegive", source_id: str = "1040") -> int:
    staged = frame(donor(source_id, source, **JANE))
    plan(store, staged, snapshot(*candidates), "run-1")
    return int(next(i.id for i in identity_items(store) if i.source_id == source_id))


def test_review_list_shows_both_candidates_and_what_each_choice_does(store):
    item_id = _queue(store, JOHN)
    listed = _run("review", "list", "--org", "acme")
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if line.split()[0] == str(item_id))
    for expected in ("wegive:1040", "bloomerang:2451", "identity", "Jane Smith", "2451 John Smith",
                     "email_name_mismatch"):
        assert expected in row
    lines = _lines(listed.output)
    for expected in ("WeGive donor 1040 Jane Smith smiths@example.org - 12 Oak St, Denver",
                     "constituent 2451 John Smith smiths@example.org - 12 Oak St, Denver, CO",
                     "--take bloomerang link WeGive donor 1040 to constituent 2451",
                     "--take source create a new constituent"):
        assert expected in lines


def test_with_several_candidates_take_bloomerang_must_say_which(store):
    jim = constituent(2460, first_name="Jim", last_name="Smith", email="smiths@example.org")
    item_id = _queue(store, JOHN, jim, source="handbid", source_id="501")
    listed = _lines(_run("review", "list", "--org", "acme").output)
    assert "--take bloomerang:2451 link Handbid contact 501 to constituent 2451" in listed
    assert "--take bloomerang:2460 link Handbid contact 501 to constituent 2460" in listed
    vague = _run("review", "resolve", "--org", "acme", "--id", str(item_id), "--take", "bloomerang")
    assert vague.exit_code == 2 and "bloomerang:2451, bloomerang:2460" in vague.output
    stranger = _run("review", "resolve", "--org", "acme", "--id", str(item_id), "--take", "bloomerang:99")
    assert stranger.exit_code == 2 and "not a candidate" in stranger.output
    typed = _run("review", "resolve", "--org", "acme", "--id", str(item_id), "--take", "value:Jane")
    assert typed.exit_code == 2
    chosen = _run("review", "resolve", "--org", "acme", "--id", str(item_id), "--take", "bloomerang:2460")
    assert chosen.exit_code == 0, chosen.output
    assert "Handbid contact 501 will be linked to constituent 2460; the next sync run applies it" in chosen.output
    (item,) = identity_items(store)
    assert (item.status, item.decision, item.decided_value) == ("resolved", "bloomerang", 2460)
    created = _run("review", "resolve", "--org", "acme", "--id", str(item_id), "--take", "source")
    assert created.exit_code == 0 and "a new constituent will be created for Handbid contact 501" in created.output
    shown = _run("review", "list", "--org", "acme", "--all").output
    assert "create new" in shown and "decided: create new" in shown


def test_take_bloomerang_id_is_for_identity_items_only(store):
    with store.write() as con:
        field_item = review.add_review(con, "run-1", review.ReviewItem(
            "constituents", "wegive", "7", "email", "a@x.org", "b@x.org", "within_skew", bloomerang_id=501))
    wrong = _run("review", "resolve", "--org", "acme", "--id", str(field_item), "--take", "bloomerang:501")
    assert wrong.exit_code == 2 and "identity items" in wrong.output
    assert _run("review", "resolve", "--org", "acme", "--id", str(field_item), "--take", "bloomerang").exit_code == 0
    assert _run("review", "resolve", "--org", "acme", "--id", "1", "--take", "bloomerang:x").exit_code == 2
