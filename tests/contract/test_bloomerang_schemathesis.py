"""Property-based contract tests: schemathesis generates requests from Bloomerang's official OpenAPI document
(``contracts/bloomerang-v2-openapi.json``) and sends them to the simulator running as a real server on loopback.

Why: hand-written tests only try the inputs someone thought of. Generated ones — valid and deliberately
invalid (schemathesis' positive and negative modes), plus the coverage phase's boundary values and
undeclared methods — find the inputs where the simulator crashes (a 5xx), accepts what it should refuse
and then serves a body the document does not allow, or answers a wrong method without ``405`` + ``Allow``.

Bounded to fit CI (marked ``slow``; under a minute): the 30 operations the pipeline calls plus the ones the
simulator serves beyond them (interactions, notes, communication settings, refund read / update / delete);
operations without a body get the coverage phase plus ``MAX_EXAMPLES`` fuzzed cases, POST / PUT get
``BODY_EXAMPLES`` fuzzed cases and no coverage phase (it would enumerate ~900 body variants each, ~9,000
for a transaction — and schemathesis builds coverage cases when the module is collected); a fixed seed (a
failure reproduces), no example database. ``pytest -s`` prints the cases, 2xx / 4xx and the most common
refusal per operation.

Checks on every answer: no 5xx (``not_a_server_error``); and ``openapi_check.validate_bloomerang_exchange``
— the same checker the contract plugin runs over the whole suite: each 2xx body valid against the document
(``oneOf`` read as ``anyOf``, see ``openapi_check``) with no property the schema does not name, and every
other answer exactly the vendor's ``{"Message", "ErrorCode"}`` JSON; plus ``unsupported_method`` (405 and
``Allow``) in the coverage phase. schemathesis' own ``response_schema_conformance`` is not used: it reads
the document's ``oneOf`` strictly, which no real Bloomerang body can pass.

The document is fed to schemathesis with two of its quirks read as its authors meant them: every ``oneOf``
as ``anyOf`` (requests included) — its ``oneOf`` branches (custom values, attachments, designations)
require nothing, so a strict ``oneOf`` can generate no value at all; and a schema that lists
``properties`` without a ``type`` as an object — many request bodies (``updateCommunicationSettings``,
parts of the refund and transaction bodies) have no ``type``, which JSON Schema reads as "any value", so
"valid" cases would mostly be strings and numbers.

To reach real records (random ids are almost always 404) about half of the cases are anchored at call time:
path ids and ``AccountId`` / ``TransactionId`` / ``FundId`` / ``Id`` in bodies become ids of records the
store holds (seeded below), and the business rules no schema states (a transaction's amount is the sum of
its designations, an individual has a first and last name, ...) are repaired while every generated value
they do not touch is kept; so 2xx answers — the ones held to the document — are generated too.
"""

from __future__ import annotations

import json
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from openapi_check import SPEC_PATH, one_of_as_any_of, validate_bloomerang_exchange
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import unsupported_method

from bloom_pipeline.sandbox.faults import Knobs, LogEntry
from bloom_pipeline.sandbox.server import Sandbox
from bloom_pipeline.settings import SANDBOX_KEYS

MAX_EXAMPLES = 6
BODY_EXAMPLES = 40
SEED = 20260401
KEY = SANDBOX_KEYS["bloomerang"]

# The pipeline's calls (bloom_pipeline/sync via clients/bloomerang.py) ...
PIPELINE_OPERATIONS = [
    "GET /constituents", "POST /constituent", "GET /constituent/{id}", "PUT /constituent/{id}",
    "GET /transactions", "POST /transaction", "GET /transaction/{id}", "PUT /transaction/{id}",
    "POST /refund", "GET /funds", "POST /fund", "PUT /fund/{id}", "GET /campaigns", "GET /appeals",
    "GET /customFields/{type}/", "GET /user/current", "GET /tributes", "POST /tribute",
]
# ... and what the simulator serves beyond them.
SERVED_OPERATIONS = [
    "GET /interactions", "POST /interaction", "GET /interaction/{id}", "PUT /interaction/{id}",
    "DELETE /interaction/{id}", "GET /notes", "POST /note", "GET /note/{id}", "PUT /note/{id}",
    "DELETE /note/{id}", "PUT /constituent/{id}/updateCommunicationSettings", "GET /refund/{id}",
    "PUT /refund/{id}", "DELETE /refund/{id}", "GET /pledge/{id}/installments",
]
OPERATIONS = PIPELINE_OPERATIONS + SERVED_OPERATIONS
# Operations with a request body: the coverage phase would enumerate ~900 body cases for each (~9,000 for a
# transaction) when the module is collected, so they get fuzzed cases only.
BODY_OPERATIONS = tuple(label for label in OPERATIONS if label.split()[0] in ("POST", "PUT"))

# path prefix of an operation -> the store table its {id} names
_ID_TABLES = {"constituent": "constituents", "transaction": "transactions", "refund": "refunds", "fund": "funds",
              "interaction": "interactions", "note": "notes"}
_BODY_TABLES = {"AccountId": "constituents", "TransactionId": "transactions", "FundId": "funds"}

_live: dict[str, Any] = {}  # the running store and HTTP session (the schema is built before they exist)
cases: Counter[str] = Counter()
answered: Counter[tuple[str, int]] = Counter()
refusals: defaultdict[str, Counter[str]] = defaultdict(Counter)


def _typed_objects(node: Any) -> Any:
    """A schema with ``properties`` but no ``type`` is an object (JSON Schema alone would also allow a string)."""
    if isinstance(node, dict):
        out = {k: _typed_objects(v) for k, v in node.items()}
        if isinstance(node.get("properties"), dict) and "type" not in node:
            out["type"] = "object"
        return out
    if isinstance(node, list):
        return [_typed_objects(v) for v in node]
    return node


def _document() -> dict[str, Any]:
    """The document as generated from (module docstring), with only the path items of ``OPERATIONS`` (all
    their methods, so the coverage phase knows which methods a path does not serve)."""
    document = json.loads(SPEC_PATH.read_text())
    paths = {label.split(" ", 1)[1] for label in OPERATIONS}
    document["paths"] = {path: item for path, item in document["paths"].items() if path in paths}
    return _typed_objects(one_of_as_any_of(document))


def _config() -> schemathesis.Config:
    return schemathesis.Config.from_dict({
        "seed": SEED,
        "headers": {"X-API-KEY": KEY},
        "generation": {"max-examples": MAX_EXAMPLES, "mode": "all", "with-security-parameters": False,
                       "database": "none", "deterministic": True},
        "phases": {"examples": {"enabled": False}, "stateful": {"enabled": False}},
        # The transaction bodies' nested designations make the coverage phase enumerate ~9,000 cases per
        # operation (two thirds of the whole budget): they get fuzzed cases only.
        "operations": [{"include-name": list(BODY_OPERATIONS), "phases": {"coverage": {"enabled": False}},
                        "generation": {"max-examples": BODY_EXAMPLES}}],
    })


def _ids(table: str) -> list[int]:
    store = _live["store"]
    with store.lock:
        return sorted(getattr(store, table))


def _anchor(case: Any, path_pick: int | None, picks: dict[str, int | None]) -> Any:
    """The case pointed at existing records, its body repaired to pass the business rules (module docstring)."""
    if path_pick is not None and isinstance(case.path_parameters, dict) and "id" in case.path_parameters:
        case.path_parameters = dict(case.path_parameters, id=path_pick)
    if isinstance(case.body, dict):
        body = {k: v for k, v in case.body.items() if k not in ("CustomValues", "Attachments", "HouseholdId")}
        for key, pick in picks.items():
            if key in body and pick is not None:
                body[key] = pick
        if "Id" in body and path_pick is not None:
            body["Id"] = path_pick
        repair = _REPAIRS.get(case.operation.path.removesuffix("/{id}"))
        case.body = body if repair is None else repair(body, case.operation.method.upper(), picks)
    return case


def _text(body: dict[str, Any], key: str, fallback: str) -> None:
    """A required text property present and not blank (the generator's own value kept when it is)."""
    value = body.get(key)
    body[key] = value if isinstance(value, str) and value.strip() else fallback


def _repair_constituent(body: dict[str, Any], method: str, picks: dict[str, Any]) -> dict[str, Any]:
    for key in ("SecondaryEmails", "SecondaryPhones", "SecondaryAddresses"):
        body.pop(key, None)
    if body.get("EmailInterestType") == "Custom":
        body.pop("EmailInterestType")
    if method == "PUT":
        body.pop("Type", None)
        body.pop("FullName", None)
        body.pop("FirstName", None)
        body.pop("LastName", None)
    elif body.get("Type") == "Organization":
        _text(body, "FullName", "Generated Org")
        for key in ("FirstName", "LastName", "MiddleName"):
            body.pop(key, None)
    else:
        body["Type"] = "Individual"
        body.pop("FullName", None)
        _text(body, "FirstName", "Gen")
        _text(body, "LastName", "Erated")
    for key, fix in (("PrimaryEmail", {"Value": "generated@example.org"}), ("PrimaryPhone", {"Number": "317-555-0100"}),
                     ("PrimaryAddress", {"Country": "US"})):
        if isinstance(body.get(key), dict):
            body[key] = {k: v for k, v in body[key].items() if k not in ("Id", "AccountId")} | fix
    return body


def _repair_transaction(body: dict[str, Any], method: str, picks: dict[str, Any]) -> dict[str, Any]:
    amount = abs(body["Amount"]) if isinstance(body.get("Amount"), int | float) else 10.0
    body["Amount"] = amount
    if body.get("Method") not in ("Cash", "None", "Check", "InKind"):
        body["Method"] = "Cash"
    _text(body, "CheckNumber", "1001")
    _text(body, "InKindDescription", "Goods")
    designations = body.get("Designations")
    first = designations[0] if isinstance(designations, list) and designations else {}
    first = {k: v for k, v in (first if isinstance(first, dict) else {}).items()
             if k in ("Note", "AcknowledgementStatus", "NonDeductibleAmount")}
    body["Designations"] = [first | {"Type": "Donation", "Amount": amount, "FundId": picks["FundId"]}]
    return body


def _repair_activity(body: dict[str, Any], method: str, picks: dict[str, Any]) -> dict[str, Any]:
    for key, fallback in (("Subject", "Generated subject"), ("Note", "Generated note")):
        if key in body:
            _text(body, key, fallback)
    body.pop("AccountId", None) if method == "PUT" else None
    return body


def _repair_communication(body: dict[str, Any], method: str, picks: dict[str, Any]) -> dict[str, Any]:
    for section in ("CommunicationRestrictions", "EmailInterests"):
        if isinstance(body.get(section), dict):
            _text(body[section], "UpdateReason", "Asked by the donor")
    interests = body.get("EmailInterests")
    if isinstance(interests, dict):
        custom = interests.get("EmailInterestType") == "Custom"
        interests["CustomEmailInterestIds"] = [701] if custom else []
    return body


def _repair_refund(body: dict[str, Any], method: str, picks: dict[str, Any]) -> dict[str, Any]:
    if method == "PUT":
        body.pop("TransactionId", None)
    elif not (isinstance(body.get("Date"), str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", body["Date"])):
        body["Date"] = "2025-06-01"  # required by the document, yet not among the create model's properties
    return body


def _repair_fund(body: dict[str, Any], method: str, picks: dict[str, Any]) -> dict[str, Any]:
    _text(body, "Name", "Generated Fund")
    return body


def _repair_tribute(body: dict[str, Any], method: str, picks: dict[str, Any]) -> dict[str, Any]:
    _text(body, "Name", "Generated Tribute")
    if body.get("TributeType") not in ("InHonorOf", "InMemoryOf"):
        body["TributeType"] = "InHonorOf"
    body.pop("NotificantAccountIds", None)  # ids of constituents the generator cannot know
    return body


_REPAIRS = {"/constituent": _repair_constituent, "/transaction": _repair_transaction, "/interaction": _repair_activity,
            "/note": _repair_activity, "/refund": _repair_refund, "/fund": _repair_fund,
            "/tribute": _repair_tribute,
            "/constituent/{id}/updateCommunicationSettings": _repair_communication}


def _pick(table: str, salt: int) -> int | None:
    """An id of ``table`` chosen by ``salt`` (the case's own hash: the same case always picks the same)."""
    store = _live["store"]
    with store.lock:
        ids = sorted(getattr(store, table))
    return ids[salt % len(ids)] if ids else None


def _seed_records(store: Any) -> None:
    """Transactions, refunds, interactions and notes for the id-anchored cases (the world holds none)."""
    accounts = sorted(store.constituents)[:12]
    fund = sorted(store.funds)[0]
    for n, account in enumerate(accounts):
        gift = store.create_transaction({"AccountId": account, "Date": f"2025-03-{n + 1:02d}", "Amount": 25 + n,
                                         "Method": "Cash",
                                         "Designations": [{"Type": "Donation", "Amount": 25 + n, "FundId": fund}]})
        if n % 2:
            store.create_refund({"TransactionId": gift["Id"], "Date": "2025-04-01", "RunProcessorRefund": False})
        store.create_activity("interaction", {"AccountId": account, "Date": "2025-03-05", "Channel": "Email",
                                              "Purpose": "Receipt", "Subject": f"Thank you {n}"})
        store.create_activity("note", {"AccountId": account, "Date": "2025-03-06", "Note": f"Called donor {n}"})


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(donors=30, seed=3, knobs=Knobs(rate_limit=None)) as sb, requests.Session() as session:
        _seed_records(sb.stores["bloomerang"])
        _live.update(store=sb.stores["bloomerang"], session=session)
        yield sb
        _live.clear()
    counts = sorted(cases.items())
    print(f"\nschemathesis: {sum(cases.values())} cases over {len(counts)} operations")
    for label, count in counts:
        common = refusals[label].most_common(1)
        print(f"  {count:5d}  {label}  (2xx {answered[label, 2]}, 4xx {answered[label, 4]})"
              + (f"  most refused: {common[0][0]!r} x{common[0][1]}" if common else ""))


def _maybe_anchor(case: Any) -> Any:
    """Anchor about half of the cases, at call time (the coverage phase builds its cases at collection, before
    the store exists). The choice is the case's own CRC, so a case always gets the same treatment."""
    salt = zlib.crc32(json.dumps([case.path_parameters, case.query, case.body], sort_keys=True, default=str).encode())
    if salt % 2:
        return case
    first = case.operation.path.strip("/").split("/")[0]
    path_table = _ID_TABLES.get(first) if "{id}" in case.operation.path else None
    path_pick = _pick(path_table, salt // 2) if path_table else None
    picks = {key: _pick(table, salt // 3) for key, table in _BODY_TABLES.items()}
    return _anchor(case, path_pick, picks)


# Built at collection (schemathesis 4.32's lazy ``from_fixture`` needs ``Node._nodeid``, gone in pytest 9.2);
# the live sandbox is reached through ``_live`` and ``base_url`` at call time.
schema = schemathesis.openapi.from_dict(_document(), config=_config()).exclude(
    lambda ctx: ctx.operation.label not in OPERATIONS)  # ``include(name=...)`` is lost next to ``operations``


@schemathesis.check
def bloomerang_contract(ctx: Any, response: Any, case: Any) -> None:
    """The suite's own contract checker on this answer (2xx bodies and error shapes)."""
    request = response.request
    path, _, query = request.url.partition("://")[2].partition("/")[2].partition("?")
    entry = LogEntry(api="bloomerang", method=request.method, path="/" + path, path_template="", query=query,
                     status=response.status_code, content_type=response.headers.get("content-type", [""])[0],
                     body=response.content)
    problems = validate_bloomerang_exchange(entry)
    if problems:
        raise AssertionError("\n".join(problems[:10]))


@pytest.mark.slow
@schema.parametrize()
def test_generated_requests_get_no_5xx_and_documented_answers(case: Any, sandbox: Sandbox) -> None:
    _maybe_anchor(case)
    response = case.call_and_validate(
        base_url=sandbox.urls["bloomerang"], session=_live["session"],
        checks=[not_a_server_error, unsupported_method, bloomerang_contract],
    )
    cases[case.operation.label] += 1
    answered[case.operation.label, response.status_code // 100] += 1
    if response.status_code >= 400:
        refusals[case.operation.label][json.loads(response.content).get("Message", "")[:70]] += 1


# -- the checker this module (and the contract plugin) relies on catches what it claims to ------------------
def _entry(path: str, body: Any, status: int = 200, content_type: str = "application/json",
           method: str = "GET") -> LogEntry:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return LogEntry(api="bloomerang", method=method, path=path, path_template="", query="", status=status,
                    content_type=content_type, body=raw)


def test_checker_reports_an_undeclared_property_in_every_list_item_and_new_operation():
    rows = [{"Id": n} for n in range(30)] + [{"Id": 31, "Invented": True}]
    envelope = {"Total": 31, "TotalFiltered": 31, "Start": 0, "ResultCount": 31, "Results": rows}
    assert validate_bloomerang_exchange(_entry("/v2/constituents", envelope)) == [
        "GET /v2/constituents -> 200: $.Results[30].Invented: property not declared by the OpenAPI schema"]
    for path, method in (("/v2/interaction/5", "GET"), ("/v2/note/5", "PUT"), ("/v2/refund/5", "DELETE"),
                         ("/v2/constituent/5/updateCommunicationSettings", "PUT")):
        problems = validate_bloomerang_exchange(_entry(path, {"Id": 5, "Invented": 1}, method=method))
        assert problems == [f"{method} {path} -> 200: $.Invented: property not declared by the OpenAPI schema"]


def test_checker_looks_paths_up_as_published_and_literal_segments_first():
    assert validate_bloomerang_exchange(_entry("/v2/constituents/", {"Total": 0, "Results": []})) == []
    assert validate_bloomerang_exchange(_entry("/v2/customFields/Constituent", [])) == []
    duplicates = {"Total": 1, "TotalFiltered": 0, "Start": 0, "ResultCount": 0, "Results": []}
    assert validate_bloomerang_exchange(_entry("/v2/constituent/duplicates", duplicates)) == []
    assert validate_bloomerang_exchange(_entry("/v2/nowhere", {"Id": 1}))[0].startswith("GET /v2/nowhere -> 200:")


def test_checker_holds_every_other_answer_to_the_error_shape_and_to_strict_json():
    assert validate_bloomerang_exchange(_entry("/v2/x", {"Message": "No", "ErrorCode": 100}, 400)) == []
    assert validate_bloomerang_exchange(_entry("/v2/x", b"Internal Server Error", 500, "text/plain")) == [
        "GET /v2/x -> 500: error answer has content type 'text/plain', not JSON"]
    assert validate_bloomerang_exchange(_entry("/v2/x", {"Message": "No", "ErrorCode": 1, "Detail": 2}, 404)) == [
        "GET /v2/x -> 404: error answer must be exactly {Message, ErrorCode}, got ['Detail', 'ErrorCode', 'Message']"]
    assert validate_bloomerang_exchange(_entry("/v2/x", {"Message": "No", "ErrorCode": "1"}, 400)) == [
        "GET /v2/x -> 400: error answer needs a string Message and an integer ErrorCode"]
    nan = b'{"Id": 5, "Amount": NaN, "TransactionId": 1}'
    problems = validate_bloomerang_exchange(_entry("/v2/refund/5", nan))
    assert "GET /v2/refund/5 -> 200: body is not valid JSON" in problems
