"""The Bloomerang simulator refuses what the real (ASP.NET) service refuses, over real loopback HTTP.

One test per strictness rule (contracts/bloomerang-v2.md §10 "The sandbox is strict"; the decoding rules
live in ``sandbox/bloomerang/strict.py``): non-finite and out-of-range numbers, int64 overflow, dates with
trailing garbage, deep nesting, bodies that are not ``application/json``, string lengths, ``Allow`` on every
405, trailing slashes accepted, and every answer valid JSON in the vendor's ``{"Message", "ErrorCode"}``
shape. Every answer these tests provoke is also checked by the contract checker when the fixture tears down
(``tests/pipeline/conftest_bloomerang.py``) — 2xx against the document, the rest against the error shape.
"""

from __future__ import annotations

import json

import pytest
import requests

pytestmark = pytest.mark.slow  # starts the Bloomerang simulator (``bloomerang_server``, tests/conftest.py)

FUND_GENERAL = 1001
JSON = {"Content-Type": "application/json"}


def _smith(server) -> int:
    return next(i for i, c in server.store.constituents.items() if c.get("LastName") == "Smith")


def _gift_text(account_id: int, amount: str) -> str:
    """A transaction body with ``amount`` spliced in verbatim (``requests`` itself refuses to send NaN)."""
    template = ('{"AccountId": ACCOUNT, "Date": "2025-05-01", "Amount": AMOUNT, "Method": "Cash", "Designations": '
                '[{"Type": "Donation", "Amount": AMOUNT, "FundId": FUND}]}')
    return template.replace("ACCOUNT", str(account_id)).replace("AMOUNT", amount).replace("FUND", str(FUND_GENERAL))


def _refused(response: requests.Response, status: int, message: str | None = None) -> dict:
    """The answer is ``status`` with exactly the vendor's error shape, as strict JSON."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = json.loads(response.text, parse_constant=lambda name: pytest.fail(f"{name} in an answer"))
    assert set(body) == {"Message", "ErrorCode"} and isinstance(body["ErrorCode"], int)
    if message is not None:
        assert body["Message"] == message
    return body


@pytest.mark.parametrize(("amount", "message"), [
    ("NaN", "The request body is not valid JSON: NaN is not a number"),
    ("Infinity", "The request body is not valid JSON: Infinity is not a number"),
    ("-Infinity", "The request body is not valid JSON: -Infinity is not a number"),
    ("1e999", "The request body is not valid JSON: 1e999 is not a finite number"),
    ("-1e400", "The request body is not valid JSON: -1e400 is not a finite number"),
    ("1e29", "Amount is outside the range of a decimal number"),
])
def test_non_finite_and_out_of_range_numbers_are_400_and_nothing_is_stored(bloomerang_server, amount, message):
    s, url = bloomerang_server.session, bloomerang_server.url
    response = s.post(url + "/transaction", data=_gift_text(_smith(bloomerang_server), amount), headers=JSON)
    _refused(response, 400, message)
    assert bloomerang_server.store.transactions == {}
    listing = s.get(url + "/transactions")  # and nothing invalid can ever be served back
    json.loads(listing.text, parse_constant=lambda name: pytest.fail(f"{name} served"))


def test_a_finite_amount_in_exponent_form_is_accepted(bloomerang_server):
    s, url = bloomerang_server.session, bloomerang_server.url
    response = s.post(url + "/transaction", data=_gift_text(_smith(bloomerang_server), "2.5e1"), headers=JSON)
    assert response.status_code == 200, response.text
    assert response.json()["Amount"] == 25.0


@pytest.mark.parametrize("number", ["9223372036854775808", "-9223372036854775809", "1" + "0" * 40])
def test_integers_beyond_int64_are_400(bloomerang_server, number):
    s, url = bloomerang_server.session, bloomerang_server.url
    body = '{"AccountId": ' + number + ', "Type": "Home", "Value": "x@example.org"}'
    _refused(s.post(url + "/email", data=body, headers=JSON), 400,
             f"The request body is not valid JSON: {number[:40]} is outside the int64 range")
    assert s.post(url + "/email", data=body.replace(number, "9223372036854775807"),
                  headers=JSON).status_code == 400  # int64 max parses; it is simply no constituent
    _refused(s.get(url + "/constituents", params={"id": number}), 400,
             "id must be a pipe-separated list of integers")


def test_int32_properties_are_bounded(bloomerang_server):
    s, url = bloomerang_server.session, bloomerang_server.url
    _refused(s.post(url + "/fund", json={"Name": "Big", "SortIndex": 2**31}), 400,
             "SortIndex must be between -2147483648 and 2147483647")
    _refused(s.get(url + "/constituents", params={"skip": 2**31}), 400, "skip must be an integer")
    assert s.post(url + "/fund", json={"Name": "Big", "SortIndex": 2**31 - 1}).status_code == 200


@pytest.mark.parametrize("raw", ["1_000", " 5", "٣", "5.0", "0x10"])
def test_query_integers_are_ascii_digits_only(bloomerang_server, raw):
    _refused(bloomerang_server.session.get(bloomerang_server.url + "/constituents", params={"skip": raw}), 400,
             "skip must be an integer")


@pytest.mark.parametrize("raw", ["nan", "inf", "-Infinity", "1e999", "1_0"])
def test_query_numbers_are_finite_decimals(bloomerang_server, raw):
    _refused(bloomerang_server.session.get(bloomerang_server.url + "/transactions", params={"minAmount": raw}),
             400, "minAmount must be a number")


@pytest.mark.parametrize("day", ["2025-01-01garbage", "2025-01-01 ", " 2025-01-01", "2025-1-1", "2025-02-30",
                                 "2025-01-01T25:00:00", "20250101", "01/32/2025"])
def test_dates_must_be_the_whole_string(bloomerang_server, day):
    s, url = bloomerang_server.session, bloomerang_server.url
    gift = json.loads(_gift_text(_smith(bloomerang_server), "50")) | {"Date": day}
    _refused(s.post(url + "/transaction", json=gift), 400, "Date must be a date (YYYY-MM-DD)")


@pytest.mark.parametrize(("path", "body", "message"), [
    ("/fund", {"Name": "F", "QuickbooksAccountIds": 5}, "QuickbooksAccountIds must be a list of integer ids"),
    ("/constituent", {"Type": "Individual", "FirstName": "A", "LastName": "B", "CommunicationRestrictions": 5},
     "CommunicationRestrictions must be a list"),
    ("/email", {"AccountId": "\u00b2", "Type": "Home", "Value": "x@example.org"}, "AccountId must be an integer id"),
])
def test_a_value_of_the_wrong_shape_is_a_400_not_a_500(bloomerang_server, path, body, message):
    # each crashed the simulator before: iterating an int, int("²") after str.isdigit() said yes
    _refused(bloomerang_server.session.post(bloomerang_server.url + path, json=body), 400, message)


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "2025-01-01garbage"])
def test_timestamps_beyond_the_calendar_in_utc_are_a_400_not_a_500(bloomerang_server, moment):
    _refused(bloomerang_server.session.get(bloomerang_server.url + "/constituents", params={"lastModified": moment}),
             400, "lastModified must be an ISO-8601 date-time")


@pytest.mark.parametrize(("day", "stored"), [("2025-01-01", "2025-01-01"), ("2025-01-01T10:30:00Z", "2025-01-01"),
                                             ("2025-01-01T10:30:00.1234567-05:00", "2025-01-01"),
                                             ("05/01/2025", "2025-05-01")])
def test_dates_a_dotnet_binder_reads_are_accepted(bloomerang_server, day, stored):
    gift = json.loads(_gift_text(_smith(bloomerang_server), "50")) | {"Date": day}
    response = bloomerang_server.session.post(bloomerang_server.url + "/transaction", json=gift)
    assert response.status_code == 200, response.text
    assert response.json()["Date"] == stored


@pytest.mark.parametrize("depth", [65, 1000, 100_000])
def test_deep_nesting_is_a_json_400_not_a_plain_text_500(bloomerang_server, depth):
    s, url = bloomerang_server.session, bloomerang_server.url
    for body in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        _refused(s.post(url + "/constituent", data=body, headers=JSON), 400,
                 "The request body is nested deeper than 64 levels")


def test_nesting_up_to_64_levels_is_read(bloomerang_server):
    s, url = bloomerang_server.session, bloomerang_server.url
    nested = '{"Type": "Individual", "FirstName": "Deep", "LastName": "Nest", "X": ' + "[" * 63 + "]" * 63 + "}"
    assert s.post(url + "/constituent", data=nested, headers=JSON).status_code == 200
    brackets_in_text = {"Type": "Individual", "FirstName": "[" * 300, "LastName": "{" * 200}
    _refused(s.post(url + "/constituent", json=brackets_in_text), 400,
             "FirstName must be at most 255 characters long")  # string contents are not nesting


@pytest.mark.parametrize(("content_type", "shown"), [
    (None, "application/octet-stream"), ("text/plain", "text/plain"),
    ("application/x-www-form-urlencoded", "application/x-www-form-urlencoded"),
    ("application/problem+json", "application/problem+json"), ("multipart/form-data; boundary=x",
                                                              "multipart/form-data"),
])
def test_a_body_that_is_not_json_is_415(bloomerang_server, content_type, shown):
    s, url = bloomerang_server.session, bloomerang_server.url
    body = b'{"Type": "Individual", "FirstName": "A", "LastName": "B"}'
    request = requests.Request("POST", url + "/constituent", data=body).prepare()
    request.headers.pop("Content-Type", None)
    if content_type is not None:
        request.headers["Content-Type"] = content_type
    request.headers.update(s.headers)
    response = s.send(request)
    _refused(response, 415, f"The request entity's media type '{shown}' is not supported for this resource.")
    assert len(bloomerang_server.store.constituents) == 2


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "Application/JSON", "text/json"])
def test_json_media_types_are_read(bloomerang_server, content_type):
    body = '{"Type": "Individual", "FirstName": "A", "LastName": "B"}'
    response = bloomerang_server.session.post(bloomerang_server.url + "/constituent", data=body,
                                              headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text


def test_an_empty_body_without_content_type_is_a_400_not_a_415(bloomerang_server):
    s, url = bloomerang_server.session, bloomerang_server.url
    _refused(s.post(url + "/constituent"), 400, "The request body must be a JSON object")
    _refused(s.post(url + "/constituent", headers={"Content-Type": "text/plain"}), 415)


@pytest.mark.parametrize(("field", "limit"), [("FirstName", 255), ("JobTitle", 255), ("Website", 2048)])
def test_string_properties_are_bounded(bloomerang_server, field, limit):
    s, url = bloomerang_server.session, bloomerang_server.url
    body = {"Type": "Individual", "FirstName": "A", "LastName": "B"}
    prefix = "https://example.org/" if field == "Website" else ""
    value = prefix + "x" * (limit - len(prefix))
    assert s.post(url + "/constituent", json=body | {field: value}).status_code == 200
    _refused(s.post(url + "/constituent", json=body | {field: value + "x"}), 400,
             f"{field} must be at most {limit} characters long")


def test_long_text_and_nested_strings_are_bounded(bloomerang_server):
    s, url = bloomerang_server.session, bloomerang_server.url
    smith = _smith(bloomerang_server)
    note = {"AccountId": smith, "Date": "2025-05-01", "Note": "n" * 4000}
    assert s.post(url + "/note", json=note).status_code == 200
    _refused(s.post(url + "/note", json=note | {"Note": "n" * 4001}), 400, "Note must be at most 4000 characters long")
    nested = {"Type": "Individual", "FirstName": "A", "LastName": "B",
              "PrimaryAddress": {"Type": "Home", "Country": "US", "City": "c" * 256}}
    _refused(s.post(url + "/constituent", json=nested), 400, "City must be at most 255 characters long")
    listed = {"Type": "Individual", "FirstName": "A", "LastName": "B", "CommunicationRestrictions": ["x" * 256]}
    _refused(s.post(url + "/constituent", json=listed), 400,
             "CommunicationRestrictions must be at most 255 characters long")


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("DELETE", "/constituents", "GET"),
    ("PATCH", "/constituent/{smith}", "GET, PUT, DELETE"),
    ("POST", "/constituent/{smith}", "GET, PUT, DELETE"),
    ("GET", "/constituent", "POST"),
    ("DELETE", "/fund/1001", "GET, PUT"),
    ("POST", "/refund/5", "GET, PUT, DELETE"),
    ("PUT", "/customFields/Constituent/", "GET"),
    ("HEAD", "/constituent/{smith}", "GET, PUT, DELETE"),
    ("OPTIONS", "/constituent/duplicates", "GET, POST"),
])
def test_every_405_names_the_allowed_methods(bloomerang_server, method, path, allow):
    s, url = bloomerang_server.session, bloomerang_server.url
    response = s.request(method, url + path.format(smith=_smith(bloomerang_server)))
    assert response.status_code == 405
    assert response.headers["Allow"] == allow
    if method != "HEAD":
        _refused(response, 405, "The requested method is not allowed")


@pytest.mark.parametrize("path", ["/constituents/", "/constituent/{smith}/", "/customFields/Constituent/",
                                  "/customFields/Constituent", "/funds/", "/user/current/"])
def test_one_trailing_slash_is_ignored_as_by_the_real_service(bloomerang_server, path):
    s, url = bloomerang_server.session, bloomerang_server.url
    slashed = s.get(url + path.format(smith=_smith(bloomerang_server)))
    bare = s.get(url + path.format(smith=_smith(bloomerang_server)).rstrip("/"))
    assert slashed.status_code == bare.status_code == 200
    assert slashed.json() == bare.json()


def test_a_trailing_slash_works_for_writes_too(bloomerang_server):
    s, url = bloomerang_server.session, bloomerang_server.url
    created = s.post(url + "/constituent/", json={"Type": "Individual", "FirstName": "Tr", "LastName": "Ail"})
    assert created.status_code == 200, created.text
    updated = s.put(url + f"/constituent/{created.json()['Id']}/", json={"JobTitle": "Slash"})
    assert updated.status_code == 200 and updated.json()["JobTitle"] == "Slash"
    _refused(s.get(url + "/constituents//"), 404)  # only one slash is forgiven


def test_unknown_paths_and_bad_keys_answer_json_too(bloomerang_server):
    s, url = bloomerang_server.session, bloomerang_server.url
    _refused(s.get(url + "/no-such-thing"), 404, "The requested resource does not exist")
    _refused(requests.get(url + "/constituents", timeout=5), 401)
    _refused(s.post(url + "/constituent", data="{not json", headers=JSON), 400, "The request body is not valid JSON")
    _refused(s.post(url + "/constituent", data=b'{"FirstName": "\xff"}', headers=JSON), 400,
             "The request body is not valid JSON")
