"""A text Bloomerang would refuse (over its bound) is caught while mapping — left out of an optional field,
rejecting the record for a required one — and control characters never reach Bloomerang."""

import json

from bloom_pipeline.mapping.compile import map_frame
from bloom_pipeline.mapping.limits import text_limit

from .conftest import DONOR, errors, payloads, record


def test_bounds_per_field():
    assert text_limit("LastName") == 255 and text_limit("PrimaryAddress.Street") == 255
    assert text_limit("Note") == 4000 and text_limit("Website") == 2048


def test_a_10_kb_required_name_rejects_the_record_without_echoing_it(org):
    result = map_frame(org, "wegive.donors", [record(DONOR, last_name="L" * 10_000), record(DONOR, id=2)])
    assert errors(result) == {"1012": ["LastName: 10,000 characters, more than Bloomerang's 255 (from last_name)"]}
    assert list(payloads(result)) == ["2"]


def test_an_overlong_optional_value_is_left_out_and_the_donor_lands(org):
    result = map_frame(org, "wegive.donors", [record(DONOR, middle_name="M" * 300)])
    assert "MiddleName" not in payloads(result)["1012"]
    assert result.fields[["field", "kind"]].values.tolist() == [["MiddleName", "field"]]
    assert len(result.fields["value"][0]) <= 80, "the value shown is bounded"


def test_control_characters_are_removed_and_format_characters_kept(org):
    result = map_frame(org, "wegive.donors", [record(DONOR, first_name="\u200fAda\x00\x1b", last_name="Love\x7flace")])
    payload = payloads(result)["1012"]
    assert payload["FirstName"] == "\u200fAda" and payload["LastName"] == "Lovelace"
    assert result.rejected.empty and result.fields.empty
    assert "\\u0000" not in json.dumps(payload)
