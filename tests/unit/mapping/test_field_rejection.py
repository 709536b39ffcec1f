"""Field-level rejection: an invalid optional value is left out of the payload with a recorded reason and the
record goes on; a required field (or `on_invalid: reject_record`) rejects the record; `mapping validate` checks
the key. Also the values the mapping must never take for an amount, a date or an id."""

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bloom_pipeline.mapping import transforms as t
from bloom_pipeline.mapping.cli import mapping
from bloom_pipeline.mapping.compile import id_problems, map_frame
from bloom_pipeline.mapping.engine import safe_text, shown_value
from bloom_pipeline.mapping.loader import load_org

from .conftest import CONTACT, DONOR, MAPPINGS, PAYMENT, TRANSACTION, errors, payloads, record

CTX = t.Context(timezone="America/Denver", phone_region="US")


def org_with(tmp_path: Path, overrides: str) -> Any:
    """The demo org with `overrides` (YAML text under `mappings:`), loaded as `mapping validate` loads it."""
    root = tmp_path / "mappings"
    shutil.copytree(MAPPINGS / "defaults", root / "defaults")
    (root / "orgs").mkdir()
    (root / "orgs" / "acme.yaml").write_text(
        "name: acme\nextends: [defaults/wegive, defaults/handbid]\ntimezone: America/Denver\n"
        "bloomerang: {api_key_env: ACME_KEY}\nwegive: {token_env: ACME_WEGIVE}\n"
        "handbid: {token_env: ACME_HANDBID, default: {fund: General Fund}}\n"
        "mappings:\n" + overrides)
    return root


def fields(result: Any) -> list[list[Any]]:
    return result.fields[["source_id", "field", "value", "kind"]].values.tolist()


# -- drop_field: the default for optional fields -----------------------------------------------------------


def test_an_invalid_email_is_left_out_and_the_donor_is_mapped(org):
    result = map_frame(org, "wegive.donors", [DONOR, record(DONOR, id=1040, email_1="ada@@example.org")])
    assert result.rejected.empty
    payload = payloads(result)["1040"]
    assert "PrimaryEmail" not in payload, "the const Type / IsPrimary do not make the object appear alone"
    assert payload["LastName"] == "Lovelace" and payload["PrimaryPhone"]["Number"] == "3035551212"
    row = result.mapped.set_index("source_id").loc["1040"]
    assert row["email"] is None or pd.isna(row["email"])
    assert fields(result) == [["1040", "PrimaryEmail.Value", "ada@@example.org", "field"]]
    assert result.fields["errors"][0] == [
        "PrimaryEmail.Value: 'ada@@example.org' is not a valid email address (from email_1)"]
    assert json.loads(result.fields["raw"][0])["id"] == 1040, "the record as received"


def test_a_handbid_contact_with_an_invalid_email_is_mapped_too(org):
    result = map_frame(org, "handbid.contacts", [record(CONTACT, email="nope")])
    assert result.rejected.empty and "PrimaryEmail" not in payloads(result)["501"]
    assert fields(result) == [["501", "PrimaryEmail.Value", "nope", "field"]]


def test_the_value_is_shown_safely():
    assert shown_value("a\nb\x1b[31m") == "a\\nb\\x1b[31m"
    assert len(shown_value("x" * 500)) == 80 and shown_value("x" * 500).endswith("…")
    assert shown_value({"a": [1]}) == '{"a": [1]}' and shown_value(None) is None
    assert safe_text("line\r\nforged: ok") == "line\\r\\nforged: ok"


def test_a_hostile_value_cannot_forge_a_line_in_the_reason(org):
    result = map_frame(org, "wegive.donors", [record(DONOR, email_1="x\n2026-01-01 ERROR forged" + "y" * 400)])
    (reason,), value = result.fields["errors"][0], result.fields["value"][0]
    assert "\n" not in reason and "\\n" in reason and len(reason) <= 300
    assert "\n" not in value and len(value) <= 80


def test_a_rejected_record_lists_its_dropped_values_among_its_reasons(tmp_path):
    root = org_with(tmp_path, "  wegive:\n    transactions:\n      fields:\n"
                              "        IsRefunded: {on_invalid: drop_field}\n")
    tx = record(TRANSACTION, status="Chargeback", created_at="someday")
    result = map_frame(load_org("acme", root), "wegive.transactions", [tx])
    assert result.fields.empty, "the record itself is quarantined: one row, every reason"
    assert errors(result)["88001"] == ["Date: 'someday' is not a date (from created_at)",
                                       "IsRefunded: no rule for 'Chargeback' (from status)"]


def test_a_stored_bloomerang_id_that_is_no_id_is_ignored_never_taken_for_one(org):
    rows = [record(DONOR, id=i, bloomerang_id=v) for i, v in enumerate([True, "12x", -4, 1.5, "77", 78, None])]
    result = map_frame(org, "wegive.donors", rows)
    got = dict(zip(result.mapped["source_id"], result.mapped["bloomerang_id"], strict=True))
    assert [None if pd.isna(got[str(i)]) else int(got[str(i)]) for i in range(7)] == [None] * 4 + [77, 78, None]
    assert sorted(result.fields.loc[result.fields["field"] == "bloomerang_id", "source_id"]) == ["0", "1", "2", "3"]


def test_an_unreadable_updated_at_is_left_empty_with_a_field_row(org):
    result = map_frame(org, "wegive.donors", [record(DONOR, updated_at="yesterday"), record(DONOR, id=2)])
    stamps = dict(zip(result.mapped["source_id"], result.mapped["source_updated_at"], strict=True))
    assert pd.isna(stamps["1012"]) and not pd.isna(stamps["2"])
    assert fields(result) == [["1012", "source_updated_at", "yesterday", "field"]]


def test_chunked_and_frame_inputs_give_the_same_field_rows(org):
    rows = [record(DONOR, id=i, email_1="bad@@x" if i % 3 == 0 else f"d{i}@example.org") for i in range(1, 30)]
    whole = map_frame(org, "wegive.donors", rows)
    assert len(whole.fields) == 9
    pd.testing.assert_frame_equal(map_frame(org, "wegive.donors", rows, chunk_rows=4).fields, whole.fields)
    frame = pd.json_normalize(rows).set_index(pd.Index(range(700, 729)))  # labels are not positions
    by_frame = map_frame(org, "wegive.donors", frame, chunk_rows=5).fields
    assert by_frame["source_id"].tolist() == whole.fields["source_id"].tolist()
    assert [json.loads(r)["id"] for r in by_frame["raw"]] == [int(s) for s in whole.fields["source_id"]]


@pytest.mark.slow  # seconds of work: kept out of the fast tier
def test_worker_processes_give_the_same_field_rows(org):
    rows = [record(DONOR, id=i, email_1="bad@@x" if i % 7 == 0 else f"d{i}@example.org") for i in range(1, 400)]
    serial = map_frame(org, "wegive.donors", rows, chunk_rows=100, workers=1)
    spread = map_frame(org, "wegive.donors", rows, chunk_rows=100, workers=2, parallel_min_rows=1)
    assert len(serial.fields) == 57
    pd.testing.assert_frame_equal(spread.fields, serial.fields)
    pd.testing.assert_frame_equal(spread.mapped, serial.mapped)


# -- reject_record, and what mapping validate says ---------------------------------------------------------


def test_on_invalid_reject_record_keeps_the_record_back(tmp_path):
    root = org_with(tmp_path, "  wegive:\n    donors:\n      branches:\n        individual:\n"
                              "          PrimaryEmail.Value: {on_invalid: reject_record}\n")
    org = load_org("acme", root)
    result = map_frame(org, "wegive.donors", [record(DONOR, email_1="ada@@example.org")])
    assert result.mapped.empty and result.fields.empty
    assert errors(result) == {"1012": ["PrimaryEmail.Value: 'ada@@example.org' is not a valid email address "
                                       "(from email_1)"]}


def test_a_value_missing_from_a_lookup_rejects_unless_the_rule_says_drop_field(org, tmp_path):
    odd = record(TRANSACTION, status="Chargeback")  # no rule says whether this is refunded
    assert errors(map_frame(org, "wegive.transactions", [odd])) == {
        "88001": ["IsRefunded: no rule for 'Chargeback' (from status)"]}
    root = org_with(tmp_path, "  wegive:\n    transactions:\n      fields:\n"
                              "        IsRefunded: {on_invalid: drop_field}\n")
    result = map_frame(load_org("acme", root), "wegive.transactions", [odd])
    assert len(result.mapped) == 1 and not bool(result.mapped["is_refunded"][0])
    assert fields(result) == [["88001", "IsRefunded", "Chargeback", "field"]]


def test_a_dropped_designation_value_takes_its_default_and_names_the_designation(tmp_path):
    root = org_with(tmp_path, "  handbid:\n    payments:\n      designations:\n        fields:\n"
                              "          AcknowledgementStatus: {on_invalid: drop_field}\n")
    result = map_frame(load_org("acme", root), "handbid.payments", [record(PAYMENT, receiptEmailed="maybe")])
    assert payloads(result)["9001"]["Designations"][0]["AcknowledgementStatus"] == "No"  # the rule's default
    assert fields(result) == [["9001", "Designations.AcknowledgementStatus", "maybe", "field"]]
    assert result.fields["errors"][0] == ["Designations.AcknowledgementStatus: no rule for 'maybe' "
                                          "(from receiptEmailed)"]


@pytest.mark.parametrize(("rule", "message"), [
    ("FirstName: {on_invalid: drop_field}",
     "mappings.wegive.donors.branches.individual.FirstName: a required field cannot be dropped: "
     "'on_invalid: drop_field' needs 'required: false' (an invalid value of a required field rejects the record)"),
    ("PrimaryEmail.Value: {on_invalid: skip}",
     "mappings.wegive.donors.branches.individual.PrimaryEmail.Value.on_invalid: "
     "Input should be 'drop_field' or 'reject_record'"),
])
def test_mapping_validate_checks_on_invalid(tmp_path, rule, message):
    root = org_with(tmp_path, f"  wegive:\n    donors:\n      branches:\n        individual:\n          {rule}\n")
    path = root / "orgs" / "acme.yaml"
    result = CliRunner().invoke(mapping, ["validate", str(path), "--mappings-dir", str(root)])
    assert result.exit_code == 2
    assert result.output.splitlines() == [f"{path}:12: {message}"]


def test_the_shipped_mappings_validate_with_the_new_key(tmp_path):
    root = org_with(tmp_path, "  wegive:\n    donors:\n      branches:\n        individual:\n"
                              "          PrimaryEmail.Value: {on_invalid: drop_field}\n"
                              "          LastName: {on_invalid: reject_record}\n")
    result = CliRunner().invoke(mapping, ["validate", "--mappings-dir", str(root)])
    assert result.exit_code == 0, result.output


# -- amounts --------------------------------------------------------------------------------------------------


def money(name: str, values: list[Any], dtype: Any = object) -> tuple[list[Any], list[Any]]:
    got, errs = t.REGISTRY[name].fn(pd.Series(values, dtype=dtype), CTX)
    return got.tolist(), [None if e is None or (isinstance(e, float) and np.isnan(e)) else e for e in errs]


@pytest.mark.parametrize(("value", "reason"), [
    (True, "not a number: true is a true/false value"),
    (False, "not a number: false is a true/false value"),
    (2**63, "amount out of range: 9223372036854775808 cents is more than 9,999,999,999,999.99 dollars"),
    (10**15, "amount out of range: 1000000000000000 cents"),
    (-(10**15), "amount out of range: -1000000000000000 cents"),
    (12.5, "'12.5' is not an amount in whole cents"),
    ("12.5", "'12.5' is not an amount in whole cents"),
    ("1e3", "not a number: '1e3'"),
    ("NaN", "not a number: 'NaN'"),
    ("Infinity", "not a number: 'Infinity'"),
    (float("inf"), "not a number: Infinity"),
    ("$50", "not a number: '$50'"),
    ("1,000", "not a number: '1,000'"),
    ({"amount": 5}, 'not a number: {"amount": 5}'),
    ([5000], "not a number: [5000]"),
])
def test_what_is_not_an_amount_in_cents(value, reason):
    got, errs = money("cents_to_dollars", [5000, value])
    assert got == [50.0, None]
    assert errs[0] is None and errs[1].startswith(reason), errs[1]


def test_a_boolean_never_shares_the_verdict_of_the_number_one():
    assert money("cents_to_dollars", [1, True, 1, False, 0]) == (
        [0.01, None, 0.01, None, 0.0],
        [None, "not a number: true is a true/false value", None, "not a number: false is a true/false value", None])
    assert money("cents_to_dollars", [True], dtype=bool)[0] == [None]


def test_the_largest_amount_and_numbers_as_text_are_exact():
    assert money("cents_to_dollars", [10**15 - 1, "5000", " 250 ", "7.00", -(10**15 - 1)])[0] == [
        9_999_999_999_999.99, 50.0, 2.5, 0.07, -9_999_999_999_999.99]
    assert money("cents_to_dollars", [10**15 - 1, 2**62], dtype="int64") == (
        [9_999_999_999_999.99, None],
        [None, "amount out of range: 4611686018427387904 cents is more than 9,999,999,999,999.99 dollars, the "
               "largest amount accepted"])
    assert money("dollars", ["12.345", "9999999999999.99", 10**13, True])[0] == [12.34, 9_999_999_999_999.99,
                                                                                 None, None]
    assert money("dollars", [12.34, 0.1, 12.345], dtype=float)[0] == [12.34, 0.1, 12.34]  # floats: half-even


def test_positive_refuses_booleans_and_infinity():
    got, errs = money("positive", [3.5, 0.0, True, float("inf"), None])
    assert got == [3.5, None, None, None, None]
    assert errs[:4] == [None, "0.0 must be a positive amount", "not a number: true is a true/false value",
                        "not a number: Infinity"]


@pytest.mark.parametrize(("amount", "reason"), [
    (True, "Amount: not a number: true is a true/false value (from amount)"),
    (2**63, "Amount: amount out of range: 9223372036854775808 cents"),
    (10**15, "Amount: amount out of range: 1000000000000000 cents"),
])
def test_a_gift_with_such_an_amount_is_rejected_with_the_reason(org, amount, reason):
    tx = record(TRANSACTION, amount=amount, fund_allocations=[])
    (first, *_), = errors(map_frame(org, "wegive.transactions", [tx])).values()
    assert first.startswith(reason)


# -- dates, whole numbers, ids -------------------------------------------------------------------------------


@pytest.mark.parametrize("created", ["31/02/2025", "2026-13-45", "2025-02-29T10:00:00Z", "9999-12-31T00:00:00Z",
                                     12345, True, {"date": "2025-03-02"}, ["2025-03-02"]])
def test_an_invalid_gift_date_rejects_the_gift_with_the_value(org, created):
    result = map_frame(org, "wegive.transactions", [record(TRANSACTION, created_at=created)])
    (reason,) = errors(result)["88001"]
    assert reason.startswith("Date: '") and reason.endswith("' is not a date (from created_at)")


@pytest.mark.parametrize("seconds", [1e20, 2**70, float("inf"), True, "soon", -1e12])
def test_epoch_dates_out_of_range_are_errors_not_crashes(seconds):
    got, errs = t.epoch_to_date(pd.Series([1716240000, seconds], dtype=object), CTX)
    assert got.tolist() == ["2024-05-20", None] and errs.tolist()[1].endswith("is not a date")


@pytest.mark.parametrize("value", ["1e400", "inf", 2**70, True, 1.5, {"a": 1}])
def test_integer_refuses_what_int64_cannot_hold(value):
    got, errs = t.integer(pd.Series([12, value], dtype=object), CTX)
    assert got.tolist() == [12, None] and errs.tolist()[1].endswith("is not a whole number")


def test_records_without_a_usable_id_and_every_copy_of_a_repeated_id_are_rejected(org):
    rows = [record(DONOR, id=1), {k: v for k, v in DONOR.items() if k != "id"}, record(DONOR, id=None),
            record(DONOR, id=True), record(DONOR, id={"n": 2}), record(DONOR, id=" "), record(DONOR, id=5),
            record(DONOR, id=5, first_name="Ann"), record(DONOR, id=5.0), "not an object"]
    result = map_frame(org, "wegive.donors", rows)
    assert result.mapped["source_id"].tolist() == ["1"]
    reasons = [e[0] for e in result.rejected["errors"]]
    assert reasons.count("id: missing id") == 4  # absent, null, blank, not an object
    assert "id: missing id (true is not an id)" in reasons and 'id: missing id ({"n": 2} is not an id)' in reasons
    assert reasons.count("id: duplicate id '5' (3 records of this extract carry it; none is staged)") == 3
    ids, why = id_problems(rows)
    assert ids.tolist()[:2] == ["1", None] and why.notna().sum() == 9


def test_chunks_never_hide_a_duplicate(org):
    rows = [record(TRANSACTION, id=i) for i in range(1, 10)] + [record(TRANSACTION, id=1)]
    result = map_frame(org, "wegive.transactions", rows, chunk_rows=3)
    assert sorted(result.rejected["source_id"]) == ["1", "1"] and len(result.mapped) == 8
