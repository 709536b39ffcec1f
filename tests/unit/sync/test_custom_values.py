"""Org custom fields, the pure part: resolving the Bloomerang field, validating a WeGive value against its type and
pick list, reading both sides' shapes and building the write shape (bloom_pipeline/sync/people/custom_values.py)."""

from __future__ import annotations

import pytest

from bloom_pipeline.mapping.spec import CustomFieldMap
from bloom_pipeline.sync.people.custom_values import (
    BloomerangField,
    bloomerang_value,
    resolve,
    validate,
    wegive_values,
    write_shape,
)

SIZES = {"s": (11, "S"), "m": (12, "M"), "xl": (13, "XL")}
SIZE = BloomerangField(921, "T-Shirt Size", "Text", "PickOne", SIZES)
INTERESTS = BloomerangField(922, "Volunteer Interests", "Text", "PickMultiple",
                            {"events": (21, "Events"), "mentoring": (22, "Mentoring"),
                             "office help, admin": (23, "Office Help, Admin")})


def freeform(kind: str) -> BloomerangField:
    return BloomerangField(930, f"A {kind}", kind, "Freeform")


@pytest.mark.parametrize(("field", "raw", "expected"), [
    (SIZE, "m", "M"), (SIZE, " XL ", "XL"), (SIZE, ["s"], "S"),
    (INTERESTS, ["mentoring", "Events", "events"], ["Events", "Mentoring"]),
    (INTERESTS, "Events; mentoring", ["Events", "Mentoring"]),
    (INTERESTS, "Office Help, Admin", ["Office Help, Admin"]),  # one pick text holding a comma stays whole
    (freeform("Text"), "  Vegan  ", "Vegan"), (freeform("Text"), 42, "42"),
    (freeform("Date"), "2024-02-29", "2024-02-29"), (freeform("Date"), "03/01/2024", "2024-03-01"),
    (freeform("Date"), "2024-03-01T23:30:00-07:00", "2024-03-01"),
    (freeform("Currency"), "1,250.5", "1250.50"), (freeform("Currency"), "$20", "20.00"),
    (freeform("Currency"), 12.25, "12.25"), (freeform("Decimal"), "3.1400", "3.14"), (freeform("Decimal"), 0, "0"),
    (freeform("Year"), "1998", "1998"), (freeform("Year"), 2031, "2031"),
    (SIZE, None, None), (SIZE, "  ", None), (INTERESTS, [], None), (freeform("Date"), "", None),
])
def test_a_value_that_fits_is_given_its_canonical_form(field, raw, expected) -> None:
    assert validate(field, raw) == (expected, None)


@pytest.mark.parametrize(("field", "raw", "reason"), [
    (SIZE, "XXL", "'XXL' is not in the pick list of Bloomerang custom field 'T-Shirt Size' (values: M, S, XL)"),
    (SIZE, ["S", "M"], "takes one value"), (SIZE, True, "is not a value of"),
    (INTERESTS, ["Events", "Gardening"], "'Gardening' is not in the pick list"),
    (INTERESTS, {"a": 1}, "is not a list of values"),
    (freeform("Date"), "31/02/2020", "is not a date"), (freeform("Date"), "2025-02-30", "is not a date"),
    (freeform("Date"), "yesterday", "is not a date"), (freeform("Date"), "2025-01-01garbage", "is not a date"),
    (freeform("Currency"), "12.345", "more than two decimals"), (freeform("Currency"), "1.250,50", "not a number"),
    (freeform("Currency"), "NaN", "not a number"), (freeform("Currency"), "1e999", "not a number"),
    (freeform("Decimal"), "12,5", "not a number"), (freeform("Decimal"), True, "is not a decimal value"),
    (freeform("Year"), "98", "not a year"), (freeform("Year"), "1998.0", "not a year"),
    (freeform("Year"), "0999", "not a year"), (freeform("Text"), "x" * 256, "longer than 255"),
    (freeform("Text"), ["a"], "is not a text value"),
])
def test_a_value_that_does_not_fit_is_refused_with_the_reason(field, raw, reason) -> None:
    value, why = validate(field, raw)
    assert value is None and why is not None and reason in why


def test_a_reason_shows_the_value_escaped_and_cut() -> None:
    _, why = validate(SIZE, "bad\nsize" + "z" * 200)
    assert "\n" not in why and "bad\\nsize" in why and "..." in why


def test_write_shapes_follow_the_pick_type() -> None:
    assert write_shape(SIZE, "M") == {"FieldId": 921, "ValueId": 12}
    assert write_shape(SIZE, None) == {"FieldId": 921, "ValueId": None}
    assert write_shape(INTERESTS, ["Events", "Mentoring"]) == {"FieldId": 922, "ValueIds": [21, 22]}
    assert write_shape(INTERESTS, None) == {"FieldId": 922, "ValueIds": []}
    assert write_shape(freeform("Date"), "2024-03-01") == {"FieldId": 930, "Value": "2024-03-01"}


def test_bloomerang_read_shapes_give_the_canonical_value() -> None:
    values = [{"FieldId": 901, "Value": {"Id": 5, "Value": "1001"}},
              {"FieldId": 921, "FieldText": "T-Shirt Size", "Value": {"Id": 12, "Value": "M"}},
              {"FieldId": 922, "Values": [{"Id": 22, "Value": "Mentoring"}, {"Id": 21, "Value": "Events"}]},
              {"FieldId": 930, "Value": {"Id": 77, "Value": "1250.5"}}]
    assert bloomerang_value(values, SIZE) == "M"
    assert bloomerang_value(values, INTERESTS) == ["Events", "Mentoring"]
    assert bloomerang_value(values, freeform("Currency")) == "1250.50"
    assert bloomerang_value([], SIZE) is None and bloomerang_value(None, SIZE) is None


@pytest.mark.parametrize("served", [
    {"tshirt_size": "M"},
    '{"tshirt_size": "M"}',
    [{"id": 3, "api_name": "tshirt_size", "name": "T-Shirt Size", "value": "M"}],
    '[{"api_name": "tshirt_size", "name": "T-Shirt Size", "answer": "M"}]',
])
def test_wegive_custom_fields_read_in_each_plausible_shape(served) -> None:
    assert wegive_values(served)["tshirt_size"] == ("tshirt_size", "M")


def test_wegive_list_shape_is_also_found_by_the_field_name() -> None:
    held = wegive_values([{"api_name": "tshirt_size", "name": "T-Shirt Size", "value": "M"}])
    assert held["t-shirt size"] == ("tshirt_size", "M")  # written back under the api_name
    assert wegive_values(None) == {} and wegive_values("not json") == {} and wegive_values(7) == {}


FIELDS = [{"Id": 901, "Name": "WeGive Donor ID", "DataType": "Text", "PickType": "Freeform"},
          {"Id": 921, "Name": "T-Shirt Size", "DataType": "Text", "PickType": "PickOne"},
          {"Id": 923, "Name": "Dietary Notes", "DataType": "Text", "PickType": "Freeform"},
          {"Id": 940, "Name": "Twice", "DataType": "Text", "PickType": "Freeform"},
          {"Id": 941, "Name": "twice", "DataType": "Text", "PickType": "Freeform"},
          {"Id": 911, "Name": "Gift Notes", "DataType": "Text", "PickType": "Freeform", "Area": "Transaction"}]
VALUES = [{"Id": 12, "FieldId": 921, "Value": "M", "IsActive": True},
          {"Id": 14, "FieldId": 921, "Value": "XXL", "IsActive": False}]


def entry(bloomerang) -> CustomFieldMap:
    return CustomFieldMap(wegive="x", bloomerang=bloomerang)


def test_fields_resolve_by_name_or_id_with_their_active_pick_values() -> None:
    found = resolve([entry("t-shirt size"), entry(923), entry("923")], FIELDS, VALUES, reserved=[901])
    assert found.problems == ()
    assert found.fields["custom_field:t-shirt size"][1] == BloomerangField(921, "T-Shirt Size", "Text", "PickOne",
                                                                           {"m": (12, "M")})
    assert found.fields["custom_field:923"][1].name == "Dietary Notes"


@pytest.mark.parametrize(("wanted", "problem"), [
    ("Shoe Size", "Bloomerang has no Constituent custom field named 'Shoe Size'; not synced"),
    (999, "Bloomerang has no Constituent custom field with id 999; not synced"),
    ("Gift Notes", "no Constituent custom field named 'Gift Notes'"),  # a Transaction field is not a person's
    ("Twice", "more than one Constituent custom field named 'Twice'"),
    ("WeGive Donor ID", "holds the pipeline's correlation ids"),
])
def test_a_field_bloomerang_lacks_or_that_cannot_be_used_is_a_problem_not_a_crash(wanted, problem) -> None:
    found = resolve([entry(wanted)], FIELDS, VALUES, reserved=[901])
    assert found.fields == {} and len(found.problems) == 1 and problem in found.problems[0]
