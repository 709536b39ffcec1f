"""Names the org YAML gives that Bloomerang lacks (``sync/plan/named.py``): found, counted, blocked or created."""

from __future__ import annotations

import json

from bloom_pipeline.sync.plan import named


def _gift(*refs: str) -> str:
    return json.dumps({"AccountId": "ref:wegive.donors:1",
                       "Designations": [{"FundId": ref} for ref in refs]})


KNOWN = {"funds": ["General Fund", "Gala Fund"], "campaigns": ["Annual Fund 2026"], "appeals": []}


def test_a_known_name_matches_whatever_its_case_and_spaces() -> None:
    gifts = [_gift("ref:bloomerang.funds:name= general fund "), _gift("ref:bloomerang.funds:name=GALA FUND")]
    assert named.missing_names(gifts, KNOWN, create_missing=False) == {}


def test_each_missing_name_counts_the_gifts_naming_it() -> None:
    gifts = [_gift("ref:bloomerang.funds:name=Gala Fnd"), _gift("ref:bloomerang.funds:name=Gala Fnd"),
             _gift("ref:bloomerang.appeals:name=Spring", "ref:bloomerang.funds:name=General Fund")]
    missing = named.missing_names(gifts, KNOWN, create_missing=False)
    assert {(m.entity, m.name, m.gifts) for m in missing.values()} == {("funds", "Gala Fnd", 2),
                                                                       ("appeals", "Spring", 1)}


def test_source_references_ids_and_tributes_are_not_checked() -> None:
    gifts = [_gift("ref:wegive.funds:3", "ref:bloomerang.funds:12", "ref:bloomerang.tributes:name=Jane")]
    assert named.missing_names(gifts, KNOWN, create_missing=False) == {}


def test_blocked_only_when_not_created_and_the_reason_names_the_name() -> None:
    gifts = [(("handbid", "7"), _gift("ref:bloomerang.funds:name=Gala Fnd")),
             (("handbid", "8"), _gift("ref:bloomerang.funds:name=General Fund"))]
    payloads = [p for _, p in gifts]
    blocked = named.blocked_gifts(gifts, named.missing_names(payloads, KNOWN, create_missing=False))
    assert list(blocked) == [("handbid", "7")]
    assert "ref:bloomerang.funds:name=Gala Fnd" in blocked[("handbid", "7")]
    assert "no fund named 'Gala Fnd'" in blocked[("handbid", "7")]
    assert named.blocked_gifts(gifts, named.missing_names(payloads, KNOWN, create_missing=True)) == {}


def test_report_lines_say_what_happens_to_the_gifts() -> None:
    gifts = [_gift("ref:bloomerang.funds:name=Gala Fnd")] * 3
    blocked = named.report_lines(named.missing_names(gifts, KNOWN, create_missing=False).values())
    assert "create_missing: false" in blocked[0] and blocked[1] == "  fund 'Gala Fnd': blocks 3 gift(s)"
    created = named.report_lines(named.missing_names(gifts, KNOWN, create_missing=True).values())
    assert "created on the first real run" in created[0]
    assert named.report_lines([]) == []
