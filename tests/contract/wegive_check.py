"""Validate captured WeGive sandbox answers against ``wegive-openapi.json`` (jsonschema, Draft 2020-12).

``validate_wegive_exchange(entry)`` takes one ``faults.LogEntry`` captured with bodies and returns a
list of readable problems (empty = conforms). It checks the 2xx body of every operation the document
declares (plus the list rows, see below, and the two PUTs the sandbox adds), and error bodies against
``ModelNotFoundException`` / ``AuthorizationException`` / ``ValidationException``.

Two checks, both applied to every answer:

1. **Types and required properties** (jsonschema), with the document's generator artifacts relaxed below.
2. **No property the document does not name.** The document never sets ``additionalProperties: false``,
   so jsonschema alone accepts any invented key (``brand``, ``exp_month``, a list row's ``last_name``).
   ``undocumented`` walks every answer at every depth, every item of every list, and reports each key no
   applicable schema names. In an ``anyOf`` only the branches the value validates against count; an
   untyped property (see below) names nothing, so where a typed schema for the same property exists
   that one decides. Extra names are allowed only where a resource is documented to carry more
   (``DOCUMENTED_EXTRAS``, each with its source in the fact sheet contracts/wegive-handbid.md).

The document is machine-generated (Scramble) from WeGive's Laravel app; its artifacts are relaxed here,
explicitly and only here:

* **Spread markers.** ``...parent::toArray()`` shows up as a property named ``""`` and ``null`` in
  ``required``; both are dropped, and the raw columns the spread adds are the ``DOCUMENTED_EXTRAS``.
* **Untyped expressions.** Where Scramble could not infer a type it writes a bare ``{"type": "string"}``
  (no format, enum or pattern) — e.g. donor ``id``, transaction ``amount`` and ``fund``. As a property
  of a component schema a bare string accepts any value (our decided shapes — integer ids and integer
  cents — live exactly there). The inline list envelopes stay strict (``meta.total`` is a string, as
  documented), except ``data``, which must be an array.
* **Carbon dates.** ``{"type": ["object", "null"]}`` is how Scramble types a Carbon instance, which
  Laravel serialises as an ISO-8601 string: a string is accepted there too.
* **Absent relations.** A ``$ref`` to a resource may be ``null`` (Laravel renders a missing relation so).
* **Refined untyped properties** (``_refined``): where the fact sheet documents what an untyped
  property holds, that shape is checked — a transaction detail's ``source`` (as the table resource's),
  a transaction's ``fund`` (``FundSimpleResource``).

Because the envelope's ``data`` is untyped, list rows are validated against the resource the fact sheet
names for them (``ROW_SCHEMAS``): donors → ``DonorTableResource`` (§1.4: ``first_name`` and ``name``, no
``last_name`` / ``middle_name``), funds → ``FundResource``, fund allocations → ``FundAllocationResource``
(+ ``transaction_id``, §4.1), campaigns → ``Campaign``. Transaction rows are validated against both
``TransactionTableResource`` and ``TransactionViewResource`` (with its spread): a decided shape, the one
place a list row still carries detail keys (the pipeline reads the pledge link and ``updated_at`` from
the list).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SPEC_PATH = Path(__file__).resolve().parents[2] / "contracts" / "wegive-openapi.json"
_META = {"type", "example", "description", "title"}
_REF = "#/components/schemas/"

# Names a resource carries beyond its ``properties``, where the fact sheet documents them.
DOCUMENTED_EXTRAS: dict[str, frozenset[str]] = {
    # §1.4 / §4.1: the donor's Bloomerang id (WeGive's correlation field, a filterable column) and its
    # Laravel updated_at (W4 maps it to LastModified) arrive through the resource's spread.
    "DonorViewResource": frozenset({"bloomerang_id", "updated_at"}),
    # §1.5: the detail spreads the raw columns (id, source_type, correlation_id, fund_id, campaign_id,
    # updated_at, integration ids ...); §1.3 names the timestamp columns behind the range filters; the
    # foreign keys of the documented relations (pledge, scheduledDonation) are columns of the same table.
    "TransactionViewResource": frozenset({
        "id", "source_type", "source_id", "owner_type", "owner_id", "created_at", "updated_at", "succeeded_at",
        "refunded_at", "failed_at", "bloomerang_id", "correlation_id", "fund_id", "campaign_id", "pledge_id",
        "scheduled_donation_id"}),
    # The pledge's own spread: its id, and the pledge columns ``GET /dashboard/pledges`` filters and sorts
    # on (``donor_id``, ``installment_frequency``, ``start_date``, ``end_date``: §1.2, "same envelope").
    "PledgeViewResource": frozenset({"id", "donor_id", "installment_frequency", "start_date", "end_date"}),
}
# List template -> (resources a row must satisfy, names a row may carry beyond them)
ROW_SCHEMAS: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "/dashboard/donors": (("DonorTableResource",), frozenset()),
    "/dashboard/transactions": (("TransactionViewResource", "TransactionTableResource"), frozenset()),
    "/dashboard/funds": (("FundResource",), frozenset()),
    "/dashboard/fund-allocations": (("FundAllocationResource",), frozenset({"transaction_id"})),  # §4.1
    "/dashboard/campaigns": (("Campaign",), frozenset()),
    # The document names no row resource for these lists: a pledge row is the pledge's only documented shape
    # (PledgeViewResource); a scheduled-donation row is the ScheduledDonationResource (its detail is the
    # organization view resource, as a fund row is the FundResource).
    "/dashboard/pledges": (("PledgeViewResource",), frozenset()),
    "/dashboard/scheduled-donations": (("ScheduledDonationResource",), frozenset()),
}
# Operations the sandbox serves beyond the document (fact sheet §4.1): the simulated donor PUT answers
# ``{"data": Donor}`` like the show endpoint, and the fund PUT (a sandbox decision) like ``/funds/{fund}``.
SANDBOX_OPERATIONS: dict[tuple[str, str], str] = {
    ("put", "/dashboard/donors/{donor}"): "DonorViewResource",
    ("put", "/dashboard/funds/{fund}"): "FundResource",
}
_MESSAGE = {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}
_ROW_REFS = {template: [{"$ref": _REF + name} for name in names] for template, (names, _) in ROW_SCHEMAS.items()}
_SANDBOX_SCHEMAS = {key: {"type": "object", "properties": {"data": {"$ref": _REF + resource}}, "required": ["data"]}
                    for key, resource in SANDBOX_OPERATIONS.items()}


def _relax(node: Any, is_property: bool = False, loose: bool = True) -> Any:
    """Apply the relaxations above. A bare string is "untyped" only as a property (or item) schema of a
    *component* (``loose``); the inline envelope schemas of the paths stay strict (``meta.total`` really
    is a string), except the envelope's ``data``, which must be an array."""
    if isinstance(node, list):
        return [_relax(v, False, loose) for v in node]
    if not isinstance(node, dict):
        return node
    if is_property and loose and node.get("type") == "string" and set(node) <= _META:
        return {}
    if set(node) == {"$ref"} and node["$ref"].startswith(_REF):
        return {"anyOf": [node, {"type": "null"}]}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties" and isinstance(value, dict):
            out[key] = {k: _relax(v, True, loose) for k, v in value.items() if k != ""}
            if not loose and {"data", "meta"} <= set(value):
                out[key]["data"] = {"type": "array"}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _relax(value, True, loose)
        elif key == "required" and isinstance(value, list):
            out[key] = [k for k in value if isinstance(k, str) and k]
        elif key == "type" and value == ["object", "null"]:
            out[key] = ["object", "string", "null"]
        else:
            out[key] = _relax(value, False, loose)
    return out


@lru_cache(maxsize=1)
def load_spec() -> dict[str, Any]:
    spec = json.loads(SPEC_PATH.read_text())
    paths = _relax(spec["paths"], loose=False)
    components = _relax(spec["components"])
    schemas = components["schemas"]
    for (resource, name), refined in _refined(schemas).items():
        schemas[resource]["properties"][name] = refined
    return {"openapi": spec["openapi"], "paths": paths, "components": components}


def _refined(schemas: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """Untyped properties the fact sheet types: the detail's ``source`` is the same payment source the
    table resource types (§1.5: ``source`` on both); a transaction's ``fund`` is ``{"id", "name"}`` (§4.1)."""
    fund = {"anyOf": [{"$ref": _REF + "FundSimpleResource"}, {"type": "null"}]}
    return {("TransactionViewResource", "source"): schemas["TransactionTableResource"]["properties"]["source"],
            ("TransactionViewResource", "fund"): fund, ("TransactionTableResource", "fund"): fund}


_VALIDATORS: dict[int, tuple[dict[str, Any], Draft202012Validator]] = {}


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    """One validator per schema object. Every schema handed here lives in the cached spec or in a module
    constant; the cache holds the schema too, so its ``id`` cannot be reused by another object."""
    found = _VALIDATORS.get(id(schema))
    if found is None or found[0] is not schema:
        found = _VALIDATORS[id(schema)] = (schema, Draft202012Validator({**schema,
                                                                           "components": load_spec()["components"]}))
    return found[1]


def _leaves(error: Any) -> list[Any]:
    """The innermost errors: an ``anyOf`` failure is reported by what each branch rejected."""
    if not error.context:
        return [error]
    return [leaf for sub in error.context for leaf in _leaves(sub)]


def _errors(schema: dict[str, Any], body: Any, where: str) -> list[str]:
    leaves = [leaf for e in _validator(schema).iter_errors(body) for leaf in _leaves(e)]
    return [f"{where}{'/'.join(str(p) for p in e.absolute_path) or '$'}: {e.message[:200]}" for e in leaves][:10]


# -- the "no undocumented property" walk ----------------------------------------------------------------

Scoped = tuple[dict[str, Any], frozenset[str]]  # (schema, extra names allowed on the object it describes)


def _resolve(schema: Any) -> Scoped | None:
    extras: frozenset[str] = frozenset()
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 20:
        name = schema["$ref"].removeprefix(_REF)
        extras |= DOCUMENTED_EXTRAS.get(name, frozenset())
        schema, seen = load_spec()["components"]["schemas"].get(name), seen + 1
    return (schema, extras) if isinstance(schema, dict) else None


def _matching(schema: Any, extras: frozenset[str], value: Any) -> list[Scoped]:
    """The concrete schemas (``anyOf`` / ``oneOf`` expanded, refs resolved) ``value`` validates against."""
    resolved = _resolve(schema)
    if resolved is None:
        return []
    schema, more = resolved
    extras |= more
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return [m for branch in schema[key] for m in _matching(branch, extras, value)]
    if "allOf" in schema:
        return [m for part in schema["allOf"] for m in _matching(part, extras, value)]
    return [(schema, extras)] if _shallow_ok(schema, value) else []


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "null": (type(None),), "boolean": (bool,),
    "integer": (int,), "number": (int, float)}


def _shallow_ok(schema: dict[str, Any], value: Any) -> bool:
    """Whether ``value`` has the schema's type and required keys: enough to tell the branches of the
    document's ``anyOf``s apart (card / bank / donor / ``{"type"}`` sources), and far cheaper than a full
    validation at every depth (the full check of each answer is ``_errors``)."""
    kinds = schema.get("type")
    if kinds is not None:
        allowed = tuple(t for k in ([kinds] if isinstance(kinds, str) else kinds) for t in _JSON_TYPES.get(k, ()))
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            return False
    if isinstance(value, dict) and any(k not in value for k in schema.get("required", ())):
        return False
    return "enum" not in schema or value in schema["enum"]


def _untyped(schema: dict[str, Any]) -> bool:
    return not schema or (set(schema) <= _META and "type" not in schema)


def _walk(value: Any, candidates: list[Scoped], where: str, out: list[str]) -> None:
    matched = [m for schema, extras in candidates for m in _matching(schema, extras, value)]
    typed = [(s, e) for s, e in matched if not _untyped(s)]
    if not typed:
        return  # nothing documents this value's inner shape (or the type check already reported it)
    if isinstance(value, dict):
        structured = [(s, e) for s, e in typed if "properties" in s]
        if not structured:
            return  # a free-form object (additionalProperties, Carbon dates): no names to hold it to
        for key, item in value.items():
            subs = [(s["properties"][key], frozenset()) for s, _ in structured if key in s["properties"]]
            if not subs:
                if not any(key in e for _, e in structured):
                    out.append(f"{where}{key}: property not documented")
                continue
            _walk(item, subs, f"{where}{key}/", out)
    elif isinstance(value, list):
        items = [(s["items"], frozenset()) for s, _ in typed if isinstance(s.get("items"), dict)]
        if items:
            for index, item in enumerate(value):
                _walk(item, items, f"{where}{index}/", out)


def undocumented(value: Any, schemas: list[dict[str, Any]], where: str = "",
                 extras: frozenset[str] = frozenset()) -> list[str]:
    """Every key of ``value``, at any depth, that none of ``schemas`` (nor its documented extras) names."""
    out: list[str] = []
    _walk(value, [(schema, extras) for schema in schemas], where, out)
    return out[:10]


# -- answers --------------------------------------------------------------------------------------------

def _match(template: str, segments: list[str]) -> bool:
    parts = template.strip("/").split("/")
    return len(parts) == len(segments) and all(
        p == s or (p.startswith("{") and p.endswith("}")) for p, s in zip(parts, segments, strict=True))


def _operation(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """(template, 2xx JSON schema) of the document (or of a sandbox-added operation) for an ``/api/...`` path.
    A literal segment wins over a template (``/donors/find-or-create`` is not ``/donors/{donor}``)."""
    segments = path.removeprefix("/api").strip("/").split("/")
    found = []
    for template, item in load_spec()["paths"].items():
        if method.lower() in item and _match(template, segments):
            content = item[method.lower()].get("responses", {}).get("200", {}).get("content", {})
            found.append((template, content.get("application/json", {}).get("schema", {})))
    for (verb, template), schema in _SANDBOX_SCHEMAS.items():
        if verb == method.lower() and _match(template, segments):
            found.append((template, schema))
    found.sort(key=lambda t: t[0].count("{"))
    return found[0] if found else None


def validate_wegive_body(method: str, path: str, status: int, body: Any) -> list[str]:
    """Problems of one answer body (empty list = conforms, or nothing is declared to check it)."""
    where = f"{method} {path} {status}: "
    components = load_spec()["components"]
    if status == 422:
        schema = components["responses"]["ValidationException"]["content"]["application/json"]["schema"]
        return _errors(schema, body, where) + undocumented(body, [schema], where)
    if status in (401, 403, 404, 429) or status >= 500:
        return _errors(_MESSAGE, body, where) + undocumented(body, [_MESSAGE], where)
    found = _operation(method, path)
    if found is None or not 200 <= status < 300:
        return []
    template, schema = found
    problems = _errors(schema, body, where) + undocumented(body, [schema], where) if schema else []
    if template in ROW_SCHEMAS:
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            return [*problems, f"{where}data: a list envelope must carry an array"]
        rows, extras = _ROW_REFS[template], ROW_SCHEMAS[template][1]
        for index, row in enumerate(body["data"][:25]):
            here = f"{where}data/{index}/"
            for ref in rows:
                problems += _errors(ref, row, here)
            problems += undocumented(row, rows, here, extras)
    return problems


def validate_wegive_exchange(entry: Any) -> list[str]:
    """Validate one captured ``LogEntry`` of the WeGive simulator."""
    if entry.api != "wegive" or entry.body is None or entry.status is None:
        return []
    try:
        body = json.loads(entry.body)
    except ValueError:
        return [f"{entry.method} {entry.path} {entry.status}: body is not JSON"]
    return validate_wegive_body(entry.method, entry.path, entry.status, body)
