"""Three-way field merge, echo suppression and review decisions (bloom_pipeline.sync.merge / echo)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from bloom_pipeline.sync.fields import CANONICAL_FIELDS, as_utc, column_hashes, normalise, record_hash, same
from bloom_pipeline.sync.merge.baseline import base_hashes, unchanged_mask
from bloom_pipeline.sync.merge.decisions import Decision, FieldRule, apply_decision, parse_take
from bloom_pipeline.sync.merge.three_way import merge_frame, merge_record, summarise_conflicts

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BASE = {"email": "ann@example.org", "phone": "555-010-2030", "city": "Boston"}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def merge(source: dict, bloomerang: dict, *, base: dict | None = BASE, s_at: Any = at(10), b_at: Any = at(20),
          rules: dict | None = None, **kwargs: Any):
    """merge_record over BASE with per-side overrides (a field not overridden still holds its base value)."""
    src = {**(base or {}), **source}
    blm = {**(base or {}), **bloomerang}
    return merge_record(base, src, blm, s_at, b_at, rules or {}, **kwargs)


def only(result) -> tuple[str, str] | None:
    """(rule, winner) of the single conflict row, or None when there is none."""
    assert len(result.conflicts) <= 1, result.conflicts
    return (result.conflicts[0]["rule"], result.conflicts[0]["winner"]) if result.conflicts else None


# -- normalisation: formatting is not a change -----------------------------------------------------------

@pytest.mark.parametrize(
    ("field_name", "left", "right"),
    [
        ("email", "Ann@Example.org", " ann@example.org "),
        ("phone", "+1 (555) 010-2030", "555.010.2030"),
        ("city", "New   York", " New York"),
        ("state", "ma", "MA"),
        ("postal_code", "k1a 0b1", "K1A 0B1"),
        ("street", None, ""),
        ("street", "   ", None),
        ("street", float("nan"), pd.NA),
    ],
)
def test_formatting_only_differences_are_equal(field_name, left, right):
    assert same(field_name, left, right)


@pytest.mark.parametrize(
    ("field_name", "left", "right"),
    [
        ("last_name", "mcdonald", "McDonald"),
        ("phone", "555-010-2030", "555-010-2031"),
        ("email", "a@x.org", None),
    ],
)
def test_real_differences_are_not_equal(field_name, left, right):
    assert not same(field_name, left, right)


def test_formatting_only_change_on_one_side_writes_nothing():
    result = merge({"email": "ANN@example.org ", "phone": "(555) 010 2030"}, {"city": " Boston "})
    assert (result.to_bloomerang, result.to_source, result.conflicts) == ({}, {}, [])


def test_record_hash_ignores_formatting_and_sees_real_changes():
    assert record_hash({"email": "Ann@Example.org", "phone": "555 010 2030"}) == record_hash(
        {"email": "ann@example.org", "phone": "+15550102030", "city": ""}
    )
    assert record_hash({"email": "ann@example.org"}) != record_hash({"email": "ann@example.com"})


def test_column_hashes_match_record_hash_row_by_row():
    rows = [
        {"email": "Ann@Example.org", "phone": "555 010 2030", "city": None},
        {"email": None, "phone": float("nan"), "city": "  Boston "},
        {"first_name": "Zoë", "postal_code": "02110", "state": "ma"},
    ]
    columns = {name: [row.get(name) for row in rows] for name in CANONICAL_FIELDS}
    assert column_hashes(columns, CANONICAL_FIELDS, len(rows)) == [record_hash(row) for row in rows]


def test_timestamps_are_compared_in_utc():
    assert as_utc("2026-03-01T12:00:00Z") == T0
    assert as_utc(datetime(2026, 3, 1, 12, 0)) == T0  # naive means UTC
    assert as_utc(T0.timestamp()) == T0  # Handbid's epoch seconds
    assert as_utc(pd.Timestamp("2026-03-01 07:00", tz="America/New_York")) == T0
    assert as_utc(None) is None and as_utc(pd.NaT) is None


# -- the three-way merge cases ---------------------------------------------------------------------------

FILL = {"city": FieldRule(policy="fill_empty")}
REVIEW = {"city": FieldRule(policy="review")}
BLANK_OK = {"city": FieldRule(allow_blank=True)}

# (case, source changes, Bloomerang changes, source at, Bloomerang at, rules,
#  expected to_bloomerang, expected to_source, expected (rule, winner) of the conflict row, goes to review)
CASES = [
    ("nothing changed", {}, {}, at(10), at(20), {}, {}, {}, None, False),
    ("changed at source only", {"city": "Salem"}, {}, at(10), at(20), {}, {"city": "Salem"}, {}, None, False),
    ("changed in Bloomerang only", {}, {"city": "Lynn"}, at(10), at(20), {},
     {}, {"city": "Lynn"}, None, False),
    ("both changed, source later", {"city": "Salem"}, {"city": "Lynn"}, at(30), at(20), {},
     {"city": "Salem"}, {}, ("later_wins", "source"), False),
    ("both changed, Bloomerang later", {"city": "Salem"}, {"city": "Lynn"}, at(10), at(20), {},
     {}, {"city": "Lynn"}, ("later_wins", "bloomerang"), False),
    ("both changed inside the skew", {"city": "Salem"}, {"city": "Lynn"}, at(10), at(11), {},
     {}, {}, ("within_skew", "review"), True),
    ("both changed exactly at the skew", {"city": "Salem"}, {"city": "Lynn"}, at(10), at(12), {},
     {}, {}, ("within_skew", "review"), True),
    ("both changed just past the skew", {"city": "Salem"}, {"city": "Lynn"}, at(10), at(12.02), {},
     {}, {"city": "Lynn"}, ("later_wins", "bloomerang"), False),
    ("both changed, a timestamp missing", {"city": "Salem"}, {"city": "Lynn"}, at(10), None, {},
     {}, {}, ("no_timestamp", "review"), True),
    ("both changed to the same value", {"city": "Salem"}, {"city": "Salem "}, at(10), at(11), {},
     {}, {}, None, False),
    ("review field changed on both, far apart", {"city": "Salem"}, {"city": "Lynn"}, at(10), at(300), REVIEW,
     {}, {}, ("review_field", "review"), True),
    ("review field changed on one side flows", {"city": "Salem"}, {}, at(10), at(20), REVIEW,
     {"city": "Salem"}, {}, None, False),
    ("fill_empty never overwrites Bloomerang", {"city": "Salem"}, {}, at(10), at(20), FILL,
     {}, {}, ("fill_empty", "bloomerang"), False),
    ("fill_empty never overwrites the source", {}, {"city": "Lynn"}, at(10), at(20), FILL,
     {}, {}, ("fill_empty", "source"), False),
    ("fill_empty fills an empty Bloomerang", {"city": "Salem"}, {"city": None}, at(10), at(5), FILL,
     {"city": "Salem"}, {}, ("blank_protected", "source"), False),
    ("fill_empty keeps the loser's value", {"city": "Salem"}, {"city": "Lynn"}, at(30), at(20), FILL,
     {}, {}, ("fill_empty", "bloomerang"), False),
    ("a blank at the source never erases", {"city": ""}, {}, at(10), at(20), {},
     {}, {}, ("blank_protected", "bloomerang"), False),
    ("a blank in Bloomerang never erases", {}, {"city": None}, at(10), at(20), {},
     {}, {}, ("blank_protected", "source"), False),
    ("allow_blank lets a clear flow", {"city": "  "}, {}, at(10), at(20), BLANK_OK,
     {"city": None}, {}, None, False),
    ("a cleared source is refilled by a real edit", {"city": None}, {"city": "Lynn"}, at(30), at(20), {},
     {}, {"city": "Lynn"}, ("blank_protected", "bloomerang"), False),
]


@pytest.mark.parametrize(
    ("source", "bloomerang", "s_at", "b_at", "rules", "to_bloomerang", "to_source", "conflict", "review"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_merge_case(source, bloomerang, s_at, b_at, rules, to_bloomerang, to_source, conflict, review):
    result = merge(source, bloomerang, s_at=s_at, b_at=b_at, rules=rules)
    assert result.to_bloomerang == to_bloomerang
    assert result.to_source == to_source
    assert only(result) == conflict
    assert [row["field"] for row in result.review] == (["city"] if review else [])


def test_skew_tolerance_is_configurable():
    result = merge({"city": "Salem"}, {"city": "Lynn"}, s_at=at(10), b_at=at(15), skew=timedelta(minutes=10))
    assert only(result) == ("within_skew", "review")
    result = merge({"city": "Salem"}, {"city": "Lynn"}, s_at=at(10), b_at=at(15), skew=timedelta(0))
    assert only(result) == ("later_wins", "bloomerang")


def test_conflict_row_carries_record_values_timestamps_and_context():
    result = merge({"city": "Salem"}, {"city": "Lynn"}, s_at=at(30), b_at=at(20),
                   context={"source": "wegive", "source_id": "1012", "bloomerang_id": 77, "run_id": "r1"})
    assert result.conflicts == [{
        "source": "wegive", "source_id": "1012", "bloomerang_id": 77, "run_id": "r1", "field": "city",
        "source_value": "Salem", "bloomerang_value": "Lynn", "source_modified_at": at(30),
        "bloomerang_modified_at": at(20), "rule": "later_wins", "winner": "source", "value": "Salem",
    }]


def test_review_row_fingerprint_ignores_formatting_and_nothing_is_written():
    one = merge({"email": "new@x.org"}, {"email": "other@x.org"}, s_at=at(10), b_at=at(10.5))
    two = merge({"email": "NEW@x.org "}, {"email": "Other@X.org"}, s_at=at(10), b_at=at(10.5))
    assert one.review[0]["fingerprint"] == two.review[0]["fingerprint"]
    assert one.review[0]["reason"] == "within_skew"
    assert not one.has_writes


def test_fields_merge_independently_within_one_record():
    result = merge({"city": "Salem", "email": "s@x.org"}, {"phone": "555-999-0000", "email": "b@x.org"},
                   s_at=at(10), b_at=at(10.5))
    assert result.to_bloomerang == {"city": "Salem"}
    assert result.to_source == {"phone": "555-999-0000"}
    assert [row["field"] for row in result.review] == ["email"]


# -- never synced: push semantics -------------------------------------------------------------------------

def test_first_sync_pushes_source_values_and_brings_nothing_back():
    source = {"first_name": "Ann", "email": "ann@x.org", "city": "", "phone": "555-010-2030",
              "street": "1 Elm"}
    bloomerang = {"first_name": "Anne", "city": "Boston", "phone": "(555) 010-2030", "state": "MA"}
    rules = {"street": FieldRule(policy="fill_empty"), "first_name": FieldRule(policy="fill_empty")}
    result = merge_record(None, source, bloomerang, at(0), at(5), rules)
    # overwrite by default; fill_empty only into empty; a blank source never erases; no pull on first link
    assert result.to_bloomerang == {"email": "ann@x.org", "street": "1 Elm"}
    assert result.to_source == {}
    assert only(result) == ("fill_empty", "bloomerang")
    assert result.new_base["bloomerang"]["city"] == "Boston" and result.new_base["source"]["city"] is None


def test_first_sync_of_a_review_field_with_differing_values_asks_a_human():
    result = merge_record(None, {"email": "a@x.org"}, {"email": "b@x.org"}, at(0), at(5),
                          {"email": FieldRule(policy="review")})
    assert not result.has_writes and result.review[0]["reason"] == "review_field"


def test_field_added_to_the_mapping_later_is_treated_as_never_synced():
    base = {"email": "ann@x.org"}  # the snapshot predates the city field
    result = merge_record(base, {"email": "ann@x.org", "city": "Salem"},
                          {"email": "ann@x.org", "city": "Lynn"},
                          at(0), at(60), {})
    assert result.to_bloomerang == {"city": "Salem"} and result.conflicts == []


# -- direction ---------------------------------------------------------------------------------------------

def test_push_only_field_changed_in_bloomerang_is_left_alone_and_stays_quiet():
    rules = {"city": FieldRule(direction="push")}
    first = merge({}, {"city": "Lynn"}, rules=rules)
    assert not first.has_writes and first.conflicts == []
    second = merge_record(first.new_base, BASE, {**BASE, "city": "Lynn"}, at(10), at(20), rules)
    assert not second.has_writes and second.conflicts == []


def test_pull_only_field_changed_at_source_is_not_pushed():
    result = merge({"city": "Salem"}, {}, rules={"city": FieldRule(direction="pull")})
    assert not result.has_writes


def test_push_only_field_changed_on_both_with_bloomerang_later_writes_nothing():
    result = merge({"city": "Salem"}, {"city": "Lynn"}, s_at=at(10), b_at=at(60),
                   rules={"city": FieldRule(direction="push")})
    assert not result.has_writes and only(result) == ("later_wins", "bloomerang")


def test_a_push_run_leaves_bloomerang_changes_pending_for_a_later_run():
    pushed = merge({"email": "new@x.org"}, {"city": "Lynn"}, direction="push")
    assert (pushed.to_bloomerang, pushed.to_source) == ({"email": "new@x.org"}, {})
    later = merge_record(pushed.new_base, {**BASE, "email": "new@x.org"}, {**BASE, "email": "new@x.org",
                         "city": "Lynn"}, at(10), at(40), {})
    assert (later.to_bloomerang, later.to_source) == ({}, {"city": "Lynn"})


def test_a_pull_run_never_links_a_record_that_was_never_synced():
    result = merge_record(None, {"email": "a@x.org"}, {}, at(0), None, {}, direction="pull")
    assert not result.has_writes and result.new_base is None


# -- decisions from the review queue --------------------------------------------------------------------

@pytest.mark.parametrize(
    ("take", "to_bloomerang", "to_source", "winner"),
    [
        ("source", {"city": "Salem"}, {}, "source"),
        ("bloomerang", {}, {"city": "Lynn"}, "bloomerang"),
        ("value:Beverly", {"city": "Beverly"}, {"city": "Beverly"}, "manual"),
        ("value:", {"city": None}, {"city": None}, "manual"),  # a person may clear a field on purpose
    ],
)
def test_decision_overrides_the_merge_for_its_field(take, to_bloomerang, to_source, winner):
    result = merge({"city": "Salem"}, {"city": "Lynn"}, s_at=at(10), b_at=at(10.5), decisions={"city": take},
                   rules=FILL)
    assert (result.to_bloomerang, result.to_source) == (to_bloomerang, to_source)
    assert only(result) == ("decision", winner)
    assert result.decisions_applied == ["city"] and result.review == []
    again = merge_record(result.new_base, {**BASE, "city": "Salem", **result.to_source},
                         {**BASE, "city": "Lynn", **result.to_bloomerang}, at(11), at(12), FILL)
    assert not again.has_writes and again.conflicts == []


def test_decision_waits_when_the_run_may_not_write_where_it_must():
    result = merge({"city": "Salem"}, {"city": "Lynn"}, decisions={"city": "bloomerang"}, direction="push")
    assert result.decisions_deferred == ["city"] and result.decisions_applied == []
    assert not result.has_writes and result.new_base["source"]["city"] == "Boston"


def test_parse_take_and_apply_decision():
    assert parse_take("source") == Decision("source")
    assert parse_take("value:12 Main St: Apt 2") == Decision("value", "12 Main St: Apt 2")
    assert apply_decision("a", "b", "bloomerang") == "b"
    assert apply_decision("a", "b", ("value", "c")) == "c"
    with pytest.raises(ValueError, match="--take"):
        parse_take("newest")
    with pytest.raises(ValueError):
        FieldRule(policy="sometimes")  # type: ignore[arg-type]


# -- echo suppression across runs -----------------------------------------------------------------------

@dataclass
class System:
    """An in-memory system whose last-modified time moves on every write (ours or a person's)."""

    values: dict[str, Any]
    modified_at: datetime
    writes: int = 0
    history: list[dict] = field(default_factory=list)

    def write(self, changes: dict[str, Any], when: datetime) -> None:
        if changes:
            self.values.update(changes)
            self.modified_at = when
            self.writes += 1
            self.history.append(changes)


def sync(base, source: System, bloomerang: System, when: datetime, rules=None):
    result = merge_record(base, source.values, bloomerang.values, source.modified_at, bloomerang.modified_at,
                          rules or {})
    # both sides reformat what they receive: the echo must still be recognised as ours
    received = {k: (v.upper() if k == "email" and v else v) for k, v in result.to_bloomerang.items()}
    bloomerang.write(received, when)
    source.write(result.to_source, when)
    return result


def test_echo_suppression_over_consecutive_runs():
    source = System({"first_name": "Ann", "email": "ann@x.org", "phone": "555-010-2030", "city": "Boston"},
                    at(0))
    bloomerang = System({"first_name": "Ann", "email": "", "phone": "(555) 010 2030", "city": "Boston"},
                        at(0))

    run1 = sync(None, source, bloomerang, at(60))
    assert run1.to_bloomerang == {"email": "ann@x.org"} and bloomerang.writes == 1
    run2 = sync(run1.new_base, source, bloomerang, at(120))  # Bloomerang's modified time moved: our echo
    run3 = sync(run2.new_base, source, bloomerang, at(180))
    assert not run2.has_writes and not run3.has_writes and run2.conflicts == run3.conflicts == []
    assert (source.writes, bloomerang.writes) == (0, 1)

    bloomerang.write({"city": "Lynn"}, at(200))  # a real edit by a person in Bloomerang
    run4 = sync(run3.new_base, source, bloomerang, at(240))
    assert run4.to_source == {"city": "Lynn"} and run4.to_bloomerang == {}
    run5 = sync(run4.new_base, source, bloomerang, at(300))
    run6 = sync(run5.new_base, source, bloomerang, at(360))
    assert not run5.has_writes and not run6.has_writes
    assert (source.writes, bloomerang.writes) == (1, 2)


def test_a_pending_review_does_not_repeat_every_night():
    source = System({**BASE, "city": "Salem"}, at(10))
    bloomerang = System({**BASE, "city": "Lynn"}, at(10.5))
    first = sync(BASE, source, bloomerang, at(60))
    assert len(first.review) == 1
    second = sync(first.new_base, source, bloomerang, at(120))
    assert not second.has_writes and second.review == [] and second.conflicts == []


def test_review_resolution_loop_applies_the_decision_once_then_goes_quiet():
    source = System({**BASE, "city": "Salem"}, at(10))
    bloomerang = System({**BASE, "city": "Lynn"}, at(10.5))
    flagged = sync(BASE, source, bloomerang, at(60))
    assert flagged.review[0]["reason"] == "within_skew" and not flagged.has_writes
    quiet = sync(flagged.new_base, source, bloomerang, at(120))
    assert not quiet.has_writes and quiet.review == []
    resolved = merge_record(quiet.new_base, source.values, bloomerang.values, source.modified_at,
                            bloomerang.modified_at, {}, decisions={"city": parse_take("value:Beverly")})
    bloomerang.write(resolved.to_bloomerang, at(180))
    source.write(resolved.to_source, at(180))
    assert resolved.decisions_applied == ["city"] and source.values["city"] == bloomerang.values["city"]
    after = sync(resolved.new_base, source, bloomerang, at(240))
    assert not after.has_writes and after.conflicts == []


def test_a_failed_write_keeps_the_old_base_and_the_next_run_converges():
    source = System({**BASE, "email": "new@x.org"}, at(10))
    bloomerang = System({**BASE, "city": "Lynn"}, at(20))
    result = merge_record(BASE, source.values, bloomerang.values, at(10), at(20), {})
    source.write(result.to_source, at(30))  # the pull succeeded, the push to Bloomerang failed: keep BASE
    retry = merge_record(BASE, source.values, bloomerang.values, at(30), at(20), {})
    assert (retry.to_bloomerang, retry.to_source, retry.conflicts) == ({"email": "new@x.org"}, {}, [])


def test_base_may_be_json_or_flat():
    result = merge({"city": "Salem"}, {})
    synced = {**BASE, "city": "Salem"}
    as_json = merge_record(json.dumps(result.new_base), synced, synced, at(1), at(1), {})
    flat = merge_record(synced, synced, synced, at(1), at(1), {})  # a flat base: both sides held it
    assert not as_json.has_writes and not flat.has_writes
    assert base_hashes(result.new_base) == result.hashes() == (record_hash(synced), record_hash(synced))


def test_a_snapshot_missing_a_field_has_no_hash_so_the_record_is_merged():
    assert base_hashes(BASE) is None
    assert base_hashes({name: BASE.get(name) for name in CANONICAL_FIELDS}) is not None


# -- frames and summaries -----------------------------------------------------------------------------------

def _frame(rows: list[dict]) -> pd.DataFrame:
    records = []
    for row in rows:
        record = {"source": "wegive", "source_id": row["id"], "base": row.get("base"),
                  "source_modified_at": at(10), "bloomerang_modified_at": at(20)}
        record.update({f"{k}_source": v for k, v in row["source"].items()})
        record.update({f"{k}_bloomerang": v for k, v in row["bloomerang"].items()})
        records.append(record)
    return pd.DataFrame(records)


def test_merge_frame_skips_unchanged_rows_and_merges_the_rest():
    full = {name: BASE.get(name) for name in CANONICAL_FIELDS}
    snapshot = {"source": full, "bloomerang": full}
    frame = _frame([
        {"id": "1", "base": snapshot, "source": BASE, "bloomerang": {**BASE, "phone": "(555) 010-2030"}},
        {"id": "2", "base": snapshot, "source": {**BASE, "city": "Salem"}, "bloomerang": BASE},
        {"id": "3", "base": None, "source": {**BASE, "email": "c@x.org"}, "bloomerang": {}},
        {"id": "4", "base": snapshot, "source": BASE, "bloomerang": BASE},
    ])
    mask = unchanged_mask(frame, CANONICAL_FIELDS)
    assert mask.tolist() == [True, False, False, True]
    decisions = {("wegive", "4"): {"city": "value:Lynn"}}
    out = merge_frame(frame, {}, context={"run_id": "r9"}, decisions=decisions)
    assert out.skipped == 1
    writes = out.records.set_index("source_id")
    assert writes.loc["2", "to_bloomerang"] == {"city": "Salem"}
    assert writes.loc["3", "to_bloomerang"] == {**BASE, "email": "c@x.org"}
    assert writes.loc["4", "decisions_applied"] == ["city"]
    assert out.conflicts[["source_id", "rule", "run_id"]].values.tolist() == [["4", "decision", "r9"]]
    assert writes.loc["2", "source_hash"] == record_hash({**BASE, "city": "Salem"})


def test_merge_frame_uses_stored_hashes_when_given():
    frame = _frame([{"id": "1", "source": BASE, "bloomerang": BASE}])
    frame["base_source_hash"] = frame["base_bloomerang_hash"] = record_hash(BASE)
    assert merge_frame(frame, {}).skipped == 1


def test_summarise_conflicts_counts_by_field_rule_and_winner():
    rows = [{"field": "city", "rule": "later_wins", "winner": "source"}] * 2 + [
        {"field": "email", "rule": "within_skew", "winner": "review"}
    ]
    table = summarise_conflicts(rows)
    assert table.splitlines()[2] == "| city | later_wins | source | 2 |"
    assert "| email | within_skew | review | 1 |" in table and table.endswith("| 3 |")
    assert summarise_conflicts([]) == "No conflicts."


def test_normalise_keeps_numbers_comparable():
    assert normalise("postal_code", 2110) == normalise("postal_code", 2110.0)
