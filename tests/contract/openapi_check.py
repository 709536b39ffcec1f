"""Validate captured Bloomerang sandbox answers against the official OpenAPI document (openapi-core).

``validate_bloomerang_exchange(entry)`` takes one ``faults.LogEntry`` captured with
``RequestLog(capture_bodies=True)`` and returns a list of readable problems (empty = conforms). 2xx
answers are checked against the document; the document specifies no error bodies, so every other answer
must be the vendor's error shape observed live (contracts/bloomerang-v2.md §2): a JSON object of exactly
``{"Message": <string>, "ErrorCode": <integer>}`` under a JSON content type.

Quirks of the official document, handled here explicitly (and only here):

* **oneOf without discriminators.** Custom values (``OneValueAssignment`` vs ``MultipleValueAssignments``),
  designations and attachments are ``oneOf`` branches that declare no ``required`` properties and no
  ``additionalProperties: false``, so any conforming object matches several branches and a strict
  ``oneOf`` always fails — even for bodies copied from the live API. In *response* schemas we read
  ``oneOf`` as ``anyOf`` (at least one shape must match), which is what the authors meant.
* **text/json.** ``GET /transactions`` and ``GET /transactions/designations`` are documented as
  ``text/json``; openapi-core has no deserializer for it, so we register ``json.loads`` for it.
* **Trailing slashes.** ``/customFields/{type}/`` and ``/customFieldCategories/{type}/`` are published
  with a trailing slash, every other path without; the service ignores one trailing slash either way, so
  a request is looked up under the published spelling of its path.
* **Undeclared properties.** The document never sets ``additionalProperties: false``, so openapi-core
  alone would accept a misspelled field (``AccountID``). We additionally report every property that
  no applicable schema declares, at any depth and in every item of every list — our simulator must not
  invent fields. A literal path segment wins over a template (``/constituent/duplicates`` is not
  ``/constituent/{id}``), so each answer is held to its own operation's schema.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse

SPEC_PATH = Path(__file__).resolve().parents[2] / "contracts" / "bloomerang-v2-openapi.json"
HOST = "https://api.bloomerang.co"
_SLASHED = ("/v2/customFields/", "/v2/customFieldCategories/")


def _spec_file() -> Path:
    for candidate in (SPEC_PATH, Path(__file__).resolve().parents[2] / "contracts" / SPEC_PATH.name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"Bloomerang OpenAPI document not found at {SPEC_PATH}")


def one_of_as_any_of(node: Any) -> Any:
    """Every ``oneOf`` under ``node`` read as ``anyOf`` (see module docstring; also used to generate requests)."""
    if isinstance(node, dict):
        return {("anyOf" if k == "oneOf" else k): one_of_as_any_of(v) for k, v in node.items()}
    if isinstance(node, list):
        return [one_of_as_any_of(v) for v in node]
    return node


@lru_cache(maxsize=1)
def load_spec() -> dict[str, Any]:
    """The document with response schemas relaxed from oneOf to anyOf (see module docstring)."""
    spec = json.loads(_spec_file().read_text())
    for item in spec["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"] = one_of_as_any_of(copy.deepcopy(operation["responses"]))
    return spec


@lru_cache(maxsize=1)
def openapi() -> OpenAPI:
    """Built once per process: loading the 1.5 MB document takes ~0.4 s."""
    config = Config(spec_validator_cls=None, extra_media_type_deserializers={"text/json": json.loads})
    return OpenAPI.from_dict(load_spec(), config=config)


def _lookup_path(path: str) -> str:
    """The published spelling of a served path (one trailing slash is not significant to the service)."""
    bare = path[:-1] if len(path) > 1 and path.endswith("/") else path
    return bare + "/" if bare.startswith(_SLASHED) else bare


def _operation(method: str, path: str) -> dict[str, Any] | None:
    """The raw operation object for (method, concrete /v2 path), for the undeclared-property pass."""
    segments = path.removeprefix("/v2").strip("/").split("/")
    best: tuple[int, dict[str, Any]] | None = None
    for template, item in load_spec()["paths"].items():
        parts = template.strip("/").split("/")
        same_shape = len(parts) == len(segments) and all(
            p == s or (p.startswith("{") and p.endswith("}")) for p, s in zip(parts, segments, strict=True)
        )
        if same_shape and method.lower() in item:
            literal = sum(p == s for p, s in zip(parts, segments, strict=True))
            if best is None or literal > best[0]:
                best = (literal, item[method.lower()])
    return None if best is None else best[1]


def _parts(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The schema and every allOf/anyOf/oneOf part under it, flattened."""
    found = [schema]
    for key in ("allOf", "anyOf", "oneOf"):
        for part in schema.get(key, []):
            found += _parts(part)
    return found


def undeclared_properties(schemas: list[dict[str, Any]], data: Any, where: str = "$") -> list[str]:
    """Properties of ``data`` that none of ``schemas`` (or their parts) declares, recursively."""
    parts = [p for s in schemas for p in _parts(s)]
    problems: list[str] = []
    if isinstance(data, dict):
        props: dict[str, list[dict[str, Any]]] = {}
        for part in parts:
            for name, sub in part.get("properties", {}).items():
                props.setdefault(name, []).append(sub)
        if not props:
            return problems  # a free-form object schema
        for name, value in data.items():
            if name not in props:
                problems.append(f"{where}.{name}: property not declared by the OpenAPI schema")
            else:
                problems += undeclared_properties(props[name], value, f"{where}.{name}")
    elif isinstance(data, list):
        item_schemas = [p["items"] for p in parts if "items" in p]
        if item_schemas:
            for index, item in enumerate(data):
                problems += undeclared_properties(item_schemas, item, f"{where}[{index}]")
    return problems


_JSON_TYPES = ("application/json", "text/json")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_json(body: bytes) -> Any:
    """Parse as JSON proper: Python's ``json`` also reads ``NaN`` / ``Infinity``, which no JSON parser must."""
    return json.loads(body, parse_constant=_refuse_constant)


def error_shape_problems(entry: Any) -> list[str]:
    """A non-2xx answer is the vendor's error shape and nothing else (the document declares none)."""
    label = f"{entry.method} {entry.path}{'?' + entry.query if entry.query else ''} -> {entry.status}"
    media_type = (entry.content_type or "").split(";")[0].strip().lower()
    if media_type not in _JSON_TYPES:
        return [f"{label}: error answer has content type {entry.content_type!r}, not JSON"]
    try:
        data = strict_json(entry.body)
    except ValueError:
        return [f"{label}: error answer is not valid JSON"]
    if not isinstance(data, dict) or set(data) != {"Message", "ErrorCode"}:
        shown = sorted(data) if isinstance(data, dict) else type(data).__name__
        return [f"{label}: error answer must be exactly {{Message, ErrorCode}}, got {shown}"]
    if not isinstance(data["Message"], str) or isinstance(data["ErrorCode"], bool) \
            or not isinstance(data["ErrorCode"], int):
        return [f"{label}: error answer needs a string Message and an integer ErrorCode"]
    return []


def validate_bloomerang_exchange(entry: Any) -> list[str]:
    """Problems of one captured exchange (api, method, path, query, status, content_type, body)."""
    if getattr(entry, "api", "bloomerang") != "bloomerang" or entry.status is None or entry.body is None:
        return []
    if not 200 <= entry.status < 300:
        return error_shape_problems(entry)
    path = _lookup_path(entry.path)
    label = f"{entry.method} {entry.path}{'?' + entry.query if entry.query else ''} -> {entry.status}"
    args = dict(parse_qsl(entry.query or "", keep_blank_values=True))
    request = MockRequest(HOST, entry.method.lower(), path, args=args)
    media_type = (entry.content_type or "application/json").split(";")[0].strip()
    response = MockResponse(entry.body, status_code=entry.status, content_type=media_type)
    problems: list[str] = []
    try:
        openapi().validate_response(request, response)
    except Exception as error:  # openapi-core raises a family of errors; report them all alike
        problems.append(f"{label}: {_describe(error)}")
    operation = _operation(entry.method, path)
    if operation is None:
        return problems or [f"{label}: no such operation in the OpenAPI document"]
    content = operation.get("responses", {}).get(str(entry.status), {}).get("content", {})
    schema = (content.get(media_type) or next(iter(content.values()), {})).get("schema")
    if schema is not None:
        try:
            data = strict_json(entry.body)
        except ValueError:
            return problems + [f"{label}: body is not valid JSON"]
        problems += [f"{label}: {p}" for p in undeclared_properties([schema], data)]
    return problems


def _describe(error: Exception) -> str:
    details = [str(error)[:300]]
    cause = error.__cause__
    for schema_error in getattr(cause, "schema_errors", []) or []:
        location = "/".join(str(p) for p in schema_error.absolute_path)
        details.append(f"  at {location or '$'}: {schema_error.message[:300]}")
    return "\n".join(details)
