"""A custom-field pair is skipped on a quiet night (`custom_fields._as_base`) only when the merge would leave it
exactly as it is: no write either way, nothing recorded, and the same base."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from bloom_pipeline.sync.merge.decisions import FieldRule
from bloom_pipeline.sync.merge.three_way import merge_record
from bloom_pipeline.sync.people.custom_fields import _as_base, _new_base, _Pair

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RULES = {"tier": FieldRule(policy="overwrite", direction="both"),
         "since": FieldRule(policy="fill_empty", direction="both"),
         "vip": FieldRule(policy="review", direction="push")}
# values at the edges of "the same": a blank that is not None, a number and its text, a flag and 1
VALUES = ["Gold", "gold", "", None, 3, "3", 3.0, True, 1]


def _pair(source: dict, bloomerang: dict, base: dict | None) -> _Pair:
    return _Pair(sid="7", bid=70, spelled={k: k for k in source}, source=source, bloomerang=bloomerang,
                 invalid=[], base=base)


def _merged_as_is(pair: _Pair) -> bool:
    result = merge_record(pair.base, pair.source, pair.bloomerang, AT, AT + timedelta(hours=1), RULES,
                          fields=list(pair.source), context={"source": "wegive", "source_id": pair.sid})
    held = {"source": {}, "bloomerang": {}}
    return (not result.to_bloomerang and not result.to_source and not result.conflicts and not result.review
            and _new_base(pair, result, held, set()) == pair.base)


CASES = [(
    {"tier": s, "since": "2020"}, {"tier": b, "since": "2020"},
    {"source": {"tier": bs, "since": "2020"}, "bloomerang": {"tier": bb, "since": "2020"}},
) for s, b, bs, bb in itertools.product(VALUES[:6], ["Gold", None, 3], VALUES[:5], ["Gold", None, "3"])]


@pytest.mark.parametrize(("source", "bloomerang", "base"), CASES)
def test_a_skipped_pair_is_one_the_merge_leaves_as_it_is(source, bloomerang, base):
    pair = _pair(source, bloomerang, base)
    if _as_base(pair):
        assert _merged_as_is(pair)


def test_the_cases_skip_some_pairs_and_merge_others():
    skipped = [_as_base(_pair(*case)) for case in CASES]
    assert any(skipped) and not all(skipped)


@pytest.mark.parametrize(("source", "bloomerang", "base"), [
    ({"tier": "Gold"}, {"tier": "Gold"}, None),                                           # never synced
    ({"tier": "Gold"}, {"tier": "Gold"}, {"source": {}, "bloomerang": {}}),               # field new to the base
    ({"tier": "Gold"}, {"tier": "Gold"}, {"source": {"tier": "gold"}, "bloomerang": {"tier": "Gold"}}),
    ({"tier": 3}, {"tier": 3}, {"source": {"tier": 3.0}, "bloomerang": {"tier": 3}}),      # another type
    ({"tier": ""}, {"tier": ""}, {"source": {"tier": ""}, "bloomerang": {"tier": ""}}),    # a blank stored as None
    ({}, {}, {"source": {}, "bloomerang": {}}),                                           # no valid field
])
def test_what_is_not_skipped(source, bloomerang, base):
    assert not _as_base(_pair(source, bloomerang, base))


def test_a_pair_as_stored_is_skipped():
    same = {"tier": "Gold", "since": None, "vip": True}
    assert _as_base(_pair(same, same, {"source": dict(same), "bloomerang": dict(same)}))
