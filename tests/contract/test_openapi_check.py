"""The contract checker itself catches what it claims to catch (a checker that cannot fail is useless)."""

import json

from openapi_check import validate_bloomerang_exchange

from bloom_pipeline.sandbox.faults import LogEntry


def _entry(path, body, status=200, content_type="application/json", method="GET"):
    return LogEntry(api="bloomerang", method=method, path=path, path_template="", query="", status=status,
                    content_type=content_type, body=json.dumps(body).encode())


def test_wrong_type_enum_and_undeclared_property_are_reported():
    problems = validate_bloomerang_exchange(_entry("/v2/constituent/5", {"Id": "x", "AccountID": 3}))
    assert any("'x' is not of type 'integer'" in p for p in problems)
    assert any("$.AccountID: property not declared" in p for p in problems)


def test_live_shaped_custom_values_and_text_json_lists_conform():
    constituent = {"Id": 5, "Type": "Individual", "CustomValues": [{"FieldId": 9, "Value": {"Id": 1, "Value": "a"}}]}
    assert validate_bloomerang_exchange(_entry("/v2/constituent/5", constituent)) == []
    envelope = {"Total": 0, "TotalFiltered": 0, "Start": 0, "ResultCount": 0, "Results": []}
    assert validate_bloomerang_exchange(_entry("/v2/transactions", envelope, content_type="text/json")) == []
    assert validate_bloomerang_exchange(_entry("/v2/customFields/Constituent", [])) == []


def test_error_answers_are_not_checked():
    assert validate_bloomerang_exchange(_entry("/v2/constituent/5", {"Message": "x", "ErrorCode": 1}, 404)) == []
