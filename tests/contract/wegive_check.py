"""Validate captured WeGive sandbox answers against ``wegive-openapi.json`` (jsonschema, Draft 2020-12).

``validate_wegive_exchange(entry)`` takes one ``faults.LogEntry`` captured with bodies and returns a
list of readable problems (empty = conforms). It checks the 2xx body of every operation the document
declares (plus the list rows, see below), and 404/422 bodies against ``ModelNotFoundException`` /
``ValidationException``.

The document is machine-generated (Scramble) from WeGive's Laravel app; its artifacts are relaxed here,
explicitly and only here:

* **Spread markers.** ``...parent::toArray()`` shows up as a property named ``""`` and ``null`` in
  ``required``; both are dropped.
* **Untyped expressions.** Where Scramble could not infer a type it writes a bare ``{"type": "string"}``
  (no format, enum or pattern) — e.g. donor ``id``, transaction ``amount`` and ``fund``. As a property
  of a component schema a bare string accepts any value (our decided shapes — integer ids and integer
  cents — live exactly there). The inline list envelopes stay strict (``meta.total`` is a string, as
  documented), except ``data``, which must be an array.
* **Carbon dates.** ``{"type": ["object", "null"]}`` is how Scramble types a Carbon instance, which
  Laravel serialises as an ISO-8601 string: a string is accepted there too.
* **Absent relations.** A ``$ref`` to a resource may be ``null`` (Laravel renders a missing relation so).

Because the envelope's ``data`` is untyped, list rows are validated against the resource of the
matching show endpoint (donors → ``DonorViewResource``, transactions → ``TransactionViewResource`` and
``TransactionTableResource``, funds → ``FundResource``, fund allocations → ``FundAllocationResource``),
and ``data`` must be an array.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SPEC_PATH = Path(__file__).resolve().parents[2] / "contracts" / "wegive-openapi.json"
_META = {"type", "example", "description", "title"}
ROW_SCHEMAS = {
    "/dashboard/donors": ["DonorViewResource"],
    "/dashboard/transactions": ["TransactionViewResource", "TransactionTableResource"],
    "/dashboard/funds": ["FundResource"],
    "/dashboard/fund-allocations": ["FundAllocationResource"],
}


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
    if set(node) == {"$ref"} and node["$ref"].startswith("#/components/schemas/"):
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
    return {"openapi": spec["openapi"], "paths": paths, "components": _relax(spec["components"])}


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    root = {**schema, "components": load_spec()["components"]}
    return Draft202012Validator(root)


def _leaves(error: Any) -> list[Any]:
    """The innermost errors: an ``anyOf`` failure is reported by what each branch rejected."""
    if not error.context:
        return [error]
    return [leaf for sub in error.context for leaf in _leaves(sub)]


def _errors(schema: dict[str, Any], body: Any, where: str) -> list[str]:
    leaves = [leaf for e in _validator(schema).iter_errors(body) for leaf in _leaves(e)]
    return [f"{where}{'/'.join(str(p) for p in e.absolute_path) or '$'}: {e.message[:200]}" for e in leaves][:10]


def _operation(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """(template, operation) of the spec for a concrete ``/api/...`` path."""
    segments = path.removeprefix("/api").strip("/").split("/")
    for template, item in load_spec()["paths"].items():
        parts = template.strip("/").split("/")
        if len(parts) == len(segments) and method.lower() in item and all(
            p == s or (p.startswith("{") and p.endswith("}")) for p, s in zip(parts, segments, strict=True)
        ):
            return template, item[method.lower()]
    return None


def validate_wegive_body(method: str, path: str, status: int, body: Any) -> list[str]:
    """Problems of one answer body (empty list = conforms, or nothing is declared to check it)."""
    where = f"{method} {path} {status}: "
    components = load_spec()["components"]
    if status == 422:
        return _errors(components["responses"]["ValidationException"]["content"]["application/json"]["schema"],
                       body, where)
    if status in (403, 404):
        return _errors({"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]},
                       body, where)
    found = _operation(method, path)
    if found is None or not 200 <= status < 300:
        return []
    template, operation = found
    content = operation.get("responses", {}).get(str(status), {}).get("content", {}).get("application/json", {})
    problems = _errors(content["schema"], body, where) if "schema" in content else []
    if template in ROW_SCHEMAS:
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            return [*problems, f"{where}data: a list envelope must carry an array"]
        for name in ROW_SCHEMAS[template]:
            for index, row in enumerate(body["data"][:25]):
                problems += _errors({"$ref": f"#/components/schemas/{name}"}, row, f"{where}data/{index}/")
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
