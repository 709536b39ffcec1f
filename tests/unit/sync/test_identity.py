"""Identity resolution: every rule of the match order, cross-source people, ambiguity, uniqueness."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from bloom_pipeline.sync.identity import names
from bloom_pipeline.sync.identity.by_reference import resolve_funds, resolve_transactions
from bloom_pipeline.sync.identity.constituents import resolve_constituents

PERSON = {"constituent_type": "Individual", "first_name": None, "middle_name": None, "last_name": None,
          "full_name": None, "email": None, "phone": None, "street": None, "city": None, "state": None,
          "postal_code": None, "country": None, "bloomerang_id": None}


def staged(*rows: dict) -> pd.DataFrame:
    frame = pd.DataFrame([{**PERSON, "source": "wegive", "source_id": str(i + 1), **row} for i, row in enumerate(rows)])
    frame["bloomerang_id"] = frame["bloomerang_id"].astype("Int64")
    return frame


def snapshot(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame([{**PERSON, "suffix": None, "corr_wegive": None, "corr_handbid": None, **row} for row in rows])


def one(result: pd.DataFrame, source_id: str = "1", source: str = "wegive") -> dict:
    return result[(result["source"] == source) & (result["source_id"] == source_id)].iloc[0].to_dict()


BOB = {"first_name": "Bob", "last_name": "Smith"}
ROBERT_B = {"bloomerang_id": 700, "first_name": "Robert", "last_name": "Smith"}

RULE_CASES = [
    pytest.param({**BOB}, [{"bloomerang_id": 500, **BOB}], {"source": "wegive", "source_id": "1", "bloomerang_id": 500},
                 500, "linked", id="linked-by-sync-state"),
    pytest.param({**BOB, "bloomerang_id": 501}, [{"bloomerang_id": 501, "first_name": "Zed", "last_name": "Q"}], None,
                 501, "correlation_id", id="wegive-bloomerang-id"),
    pytest.param({**BOB}, [{"bloomerang_id": 502, "first_name": "Other", "last_name": "X", "corr_wegive": "1"}], None,
                 502, "custom_field", id="custom-field-holds-source-id"),
    pytest.param({**BOB, "email": "  Bob.Smith@Example.ORG "},
                 [{"bloomerang_id": 503, "first_name": "B", "last_name": "S", "email": "bob.smith@example.org"}], None,
                 503, "email", id="email-case-insensitive-trimmed"),
    pytest.param({"constituent_type": "Organization", "full_name": "Acme  Widgets", "street": "1 Elm Street",
                  "city": "Denver"},
                 [{"bloomerang_id": 504, "constituent_type": "Organization", "full_name": "ACME WIDGETS",
                   "street": "1 elm st.", "city": "denver"}], None,
                 504, "name_address", id="organization-name-and-address"),
    pytest.param({**BOB, "street": "123 Main Street"}, [{**ROBERT_B, "street": "123 main st."}], None,
                 700, "duplicate_rule", id="duplicate-rule-nickname-and-street"),
    pytest.param({**BOB, "phone": "(303) 555-1234"}, [{**ROBERT_B, "phone": "+1 720 555 1234"}], None,
                 700, "duplicate_rule", id="duplicate-rule-last-seven-phone-digits"),
    pytest.param({**BOB, "last_name": "Smith Jr.", "phone": "555-1234"},
                 [{**ROBERT_B, "suffix": "Jr.", "phone": "3035551234"}], None,
                 700, "duplicate_rule", id="suffix-equal-when-both-have-one"),
    pytest.param({**BOB, "last_name": "Smith", "phone": "555-1234"},
                 [{**ROBERT_B, "suffix": "Sr.", "phone": "3035551234"}], None,
                 700, "duplicate_rule", id="suffix-ignored-when-only-one-has-it"),
    pytest.param({**BOB, "last_name": "Smith Jr.", "phone": "555-1234"},
                 [{**ROBERT_B, "suffix": "Sr.", "phone": "3035551234"}], None,
                 None, "new", id="suffix-differs-no-match"),
    pytest.param({**BOB, "phone": "555-1234"}, [{**ROBERT_B, "first_name": "William", "phone": "3035551234"}], None,
                 None, "new", id="first-name-not-a-nickname-no-match"),
    pytest.param({**BOB}, [{**ROBERT_B}], None, None, "new", id="name-alone-never-matches"),
    pytest.param({**BOB, "email": "bob@example.org"}, [], None, None, "new", id="no-match-is-new"),
]


@pytest.mark.parametrize(("record", "bloomerang", "link", "expected_id", "expected_rule"), RULE_CASES)
def test_each_identity_rule(record, bloomerang, link, expected_id, expected_rule):
    links = pd.DataFrame([link]) if link else pd.DataFrame(columns=["source", "source_id", "bloomerang_id"])
    row = one(resolve_constituents(staged(record), snapshot(*bloomerang), links))
    assert row["rule"] == expected_rule
    assert (None if pd.isna(row["bloomerang_id"]) else int(row["bloomerang_id"])) == expected_id
    assert (row["create_key"] == "wegive:1") == (expected_id is None)


def test_match_order_prefers_the_custom_field_over_email():
    result = resolve_constituents(staged({**BOB, "email": "bob@example.org"}), snapshot(
        {"bloomerang_id": 10, **BOB, "email": "bob@example.org"}, {"bloomerang_id": 20, "corr_wegive": "1"}), None)
    assert (one(result)["bloomerang_id"], one(result)["rule"]) == (20, "custom_field")


def test_a_bloomerang_id_bloomerang_does_not_have_is_ignored_and_matching_goes_on():
    result = resolve_constituents(staged({**BOB, "bloomerang_id": 999, "email": "bob@example.org"}),
                                  snapshot({"bloomerang_id": 10, **BOB, "email": "bob@example.org"}), None)
    row = one(result)
    assert (row["bloomerang_id"], row["rule"]) == (10, "email")
    assert "999" in row["note"]


def test_one_person_on_wegive_and_handbid_becomes_one_create():
    frame = pd.concat([
        staged({"first_name": "Robert", "last_name": "Smith", "email": "rs@example.org"}),
        staged({"first_name": "Bob", "last_name": "Smith", "email": "RS@example.org"}).assign(
            source="handbid", source_id="501"),
    ], ignore_index=True)
    result = resolve_constituents(frame, snapshot(), None)
    assert result["create_key"].tolist() == ["wegive:1", "wegive:1"]
    assert result["bloomerang_id"].isna().all()


def test_a_handbid_contact_inherits_the_id_its_wegive_twin_matched():
    frame = pd.concat([
        staged({**BOB, "email": "bob@example.org"}),
        staged({"first_name": "Robert", "last_name": "Smith", "street": "9 Oak Avenue", "email": "bob@example.org"})
        .assign(source="handbid", source_id="501"),
    ], ignore_index=True)
    result = resolve_constituents(frame, snapshot({"bloomerang_id": 42, "corr_wegive": "1"}), None)
    assert one(result, "501", "handbid")["bloomerang_id"] == 42
    assert one(result, "501", "handbid")["create_key"] is None
    assert "wegive:1" in one(result, "501", "handbid")["note"]


def test_cross_source_duplicate_rule_without_email():
    frame = pd.concat([
        staged({**BOB, "phone": "303-555-0101"}),
        staged({"first_name": "Robert", "last_name": "smith", "phone": "(720) 555 0101"}).assign(
            source="handbid", source_id="7"),
    ], ignore_index=True)
    assert resolve_constituents(frame, snapshot(), None)["create_key"].nunique() == 1


def test_two_bloomerang_matches_are_flagged_and_the_lowest_id_is_chosen():
    result = resolve_constituents(staged({**BOB, "email": "bob@example.org"}), snapshot(
        {"bloomerang_id": 88, **BOB, "email": "bob@example.org"}, {"bloomerang_id": 12, "email": "BOB@example.org"}),
        None)
    row = one(result)
    assert (row["bloomerang_id"], row["ambiguous"]) == (12, True)
    assert "12" in row["note"] and "88" in row["note"]


def test_email_is_unique_per_individual_only():
    frame = staged({**BOB, "email": "family@example.org"}, {"first_name": "Jane", "last_name": "Doe",
                                                              "email": "family@example.org"},
                   {"constituent_type": "Organization", "full_name": "Doe Family Trust", "email": "family@example.org"})
    other_org = {"bloomerang_id": 5, "constituent_type": "Organization", "full_name": "Other Org",
                 "email": "family@example.org"}
    result = resolve_constituents(frame, snapshot(other_org), None)
    assert result["create_key"].tolist()[:2] == ["wegive:1", "wegive:1"]   # one person per e-mail
    assert one(result, "3")["create_key"] == "wegive:3"                    # an organisation is not that person
    assert pd.isna(one(result, "3")["bloomerang_id"])


def test_organization_names_must_be_identical_up_to_case_and_spaces():
    org = {"constituent_type": "Organization", "street": "1 Elm St", "city": "Denver"}
    result = resolve_constituents(staged({**org, "full_name": "Acme, Inc."}),
                                  snapshot({"bloomerang_id": 3, **org, "full_name": "Acme Inc"}), None)
    assert one(result)["rule"] == "new"


@pytest.mark.parametrize(("left", "right"), [
    ("123 Main Street", "123 main st."), ("45 N. Oak Avenue, Apt #4", "45 north oak ave apt 4"),
    ("9 West Elm Boulevard\nSuite 200", "9 W Elm Blvd Ste 200"),
])
def test_streets_are_standardized(left, right):
    assert names.street_key(left) == names.street_key(right)


def test_transactions_are_deduplicated_by_source_reference():
    txns = pd.DataFrame({"source": ["wegive", "wegive", "wegive", "handbid"], "source_id": ["1", "2", "3", "9"],
                         "bloomerang_id": pd.array([None, 77, None, None], dtype="Int64")})
    links = pd.DataFrame({"source": ["wegive"], "source_id": ["1"], "bloomerang_id": [55]})
    bloomerang = pd.DataFrame({"bloomerang_id": [66], "corr_wegive": [None], "corr_handbid": ["9"]})
    result = resolve_transactions(txns, bloomerang, links).set_index("source_id")
    assert result["bloomerang_id"].tolist() == [55, 77, pd.NA, 66]
    assert result["rule"].tolist() == ["linked", "correlation_id", "new", "custom_field"]


def test_funds_match_by_name_case_insensitively_and_missing_ones_are_created_once():
    funds = pd.DataFrame({"source": ["wegive"] * 3, "source_id": ["1", "2", "3"],
                          "name": ["gala fund ", "Playground", "PLAYGROUND"], "bloomerang_id": [None] * 3})
    result = resolve_funds(funds, pd.DataFrame({"bloomerang_id": [4], "name": ["Gala Fund"]}), None)
    assert result["bloomerang_id"].tolist()[0] == 4
    assert result["create_key"].tolist()[1:] == ["wegive:2", "wegive:2"]


def test_ten_thousand_records_against_fifty_thousand_resolve_in_seconds():
    firsts = ["Robert", "Bob", "Mary", "Ann", "Jim", "James", "Liz", "Elizabeth"]
    rows = [{"first_name": firsts[i % 8], "last_name": f"Name{i % 900}", "email": f"p{i}@example.org",
             "street": f"{i} Main Street", "phone": f"303555{i:04d}"} for i in range(10_000)]
    frame = staged(*rows)
    bloomerang = snapshot(*[{"bloomerang_id": 10_000 + i, "first_name": firsts[(i + 1) % 8],
                             "last_name": f"Name{i % 900}", "email": f"b{i}@example.org",
                             "street": f"{i % 20_000} Main St", "phone": f"720555{i % 10_000:04d}"}
                            for i in range(50_000)])
    started = time.perf_counter()
    result = resolve_constituents(frame, bloomerang, None)
    assert len(result) == 10_000
    assert time.perf_counter() - started < 15
