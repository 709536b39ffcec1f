"""The fund-name merge's pure parts (``sync/merge/funds.py``): which side renamed, and who owns a rename."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from bloom_pipeline.sync.merge.funds import FundDecision, FundPair, decide, fund_pairs, owned_by_merge, same_name


def pair(wegive: str, bloomerang: str, base_wegive: str | None = "Gala", base_bloomerang: str | None = "Gala"):
    return FundPair("3", 1001, wegive, bloomerang, base_wegive, base_bloomerang)


@pytest.mark.parametrize(("now", "expected"), [
    (pair("Gala", "Gala"), FundDecision("same")),
    (pair("Gala 2027", "Gala"), FundDecision("to_bloomerang", "Gala 2027")),
    (pair("Gala", "Spring Gala"), FundDecision("to_wegive", "Spring Gala")),
    (pair("Gala A", "Gala B"), FundDecision("conflict")),
    (pair("Spring Gala", "spring gala "), FundDecision("settle", "spring gala")),  # both renamed alike
    (pair("gala", "Gala", "gala", "Gala"), FundDecision("same")),  # linked by name, case differs: no rename
    (pair("Gala", "GALA", None, None), FundDecision("settle", "GALA")),
    (pair("Annual", "Capital", None, None), FundDecision("first_link")),
])
def test_decide(now: FundPair, expected: FundDecision) -> None:
    assert decide(now) == expected


def test_a_case_only_rename_is_a_rename() -> None:
    assert decide(pair("Gala", "GALA")) == FundDecision("to_wegive", "GALA")
    assert same_name(" Gala  Fund", "gala fund")


def _states(*rows: tuple[str, int, dict | None, dict | None]) -> pd.DataFrame:
    return pd.DataFrame([{"source": "wegive", "source_id": s, "bloomerang_id": b,
                          "source_snapshot": None if w is None else json.dumps(w),
                          "bloomerang_snapshot": None if x is None else json.dumps(x)} for s, b, w, x in rows])


def test_every_linked_wegive_fund_is_the_merges() -> None:
    states = _states(("1", 11, {"name": "A"}, {"name": "A"}), ("2", 12, None, None), ("3", None, None, None))
    assert owned_by_merge(states) == {("wegive", "1"), ("wegive", "2")}
    assert owned_by_merge(pd.DataFrame()) == set()


def test_pairs_take_bloomerang_names_and_a_new_fund_takes_the_wegive_name() -> None:
    states = _states(("1", 11, {"name": "A"}, {"name": "A"}), ("2", 12, None, None), ("9", 19, None, None),
                     ("4", 14, {"name": "D"}, {"name": "D"}))
    staged = pd.DataFrame({"source_id": ["1", "2", "4"], "name": ["A", "B new", "D new"]})
    pairs = fund_pairs(states, staged, [{"Id": 11, "Name": "A renamed"}])
    # 2 was just created (no base): it has the WeGive name; 4's Bloomerang name was not read: no guess
    assert pairs == [FundPair("1", 11, "A", "A renamed", "A", "A"), FundPair("2", 12, "B new", "B new", None, None)]


def test_a_reviewers_answer_names_the_side_to_rename() -> None:
    from bloom_pipeline.staging.review import ReviewItem
    from bloom_pipeline.sync.merge.funds import from_decision

    now = pair("Scholarships", "Scholarship Endowment")

    def item(decision: str, value: object = None) -> ReviewItem:
        return ReviewItem("funds", "wegive", "3", "name", now.wegive, now.bloomerang, "review", id=1,
                          status="resolved", decision=decision, decided_value=value)

    assert from_decision(now, item("source")) == FundDecision("to_bloomerang", "Scholarships")
    assert from_decision(now, item("bloomerang")) == FundDecision("to_wegive", "Scholarship Endowment")
    assert from_decision(now, item("value", " Scholarship Fund ")) == FundDecision("both", "Scholarship Fund")
    assert from_decision(now, item("value", "  ")) == FundDecision("same")
