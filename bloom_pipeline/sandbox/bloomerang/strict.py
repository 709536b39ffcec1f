"""Strict decoding of Bloomerang request bodies: refuse what the real (.NET) service refuses, before any rule.

Why a module of its own: Python's ``json`` module and Starlette accept far more than the real service, and
each leniency hid a client bug or broke the simulator itself. ``NaN`` / ``Infinity`` literals and ``1e999``
(read as ``inf``) were stored and then served back as invalid JSON; integers of any size were accepted
where the document says int64; a body was read whatever its ``Content-Type``; a 1,000-deep body hit the
interpreter's recursion limit and answered a plain-text 500; strings had no length bound. The real API is
ASP.NET (Web API's messages, such as "Authorization has been denied for this request.", are observed live),
so its limits are the .NET ones. ``decode_body`` applies them all in one place and raises
``BloomerangError`` in the vendor's ``{"Message", "ErrorCode"}`` shape.

Rules (**decided** where the vendor is silent; contracts/bloomerang-v2.md §10 "The sandbox is strict"):

* Media type: a body is read only as ``application/json`` or ``text/json`` (the two media types of Web
  API's JSON formatter; parameters such as ``charset`` are allowed). Anything else, or a body with no
  ``Content-Type`` at all, is ``415`` (ErrorCode 415). An empty body with no ``Content-Type`` reads as
  null, which the write rules then refuse with 400.
* Nesting: at most 64 levels of objects / arrays (the default ``MaxDepth`` of both .NET serializers).
* Numbers: no ``NaN`` / ``Infinity`` literals and no number too large for a double (``1e999``); every
  integer literal within int64, wherever it stands (**decided**: the .NET binder reads integers as
  ``long``; the sandbox does not tell declared from ignored properties here). Amounts are further held to
  the range of .NET ``decimal`` by ``validation.money``.
* Strings: the document sets no ``maxLength`` anywhere, so the bounds are ours: 255 characters for any
  string property, except the long-text properties in ``LONG_TEXT`` (notes 4,000; URLs 2,048). Items of
  an array of strings take the bound of the array's property.

Errors of this module carry ErrorCode 100 (validation), like every other body rule, except the 415.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from bloom_pipeline.mapping.limits import LONG_TEXT, MAX_TEXT  # one decision, shared with the pipeline's check
from bloom_pipeline.sandbox.bloomerang.validation import INT64_MAX, INT64_MIN, BloomerangError, bad

JSON_MEDIA_TYPES = ("application/json", "text/json")
MAX_DEPTH = 64

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def unsupported_media_type(media_type: str | None) -> BloomerangError:
    shown = media_type or "application/octet-stream"
    return BloomerangError(415, f"The request entity's media type '{shown}' is not supported for this resource.",
                           415)


def media_type(content_type: str | None) -> str | None:
    """``"Application/JSON; charset=utf-8"`` → ``"application/json"``; None when the header is absent."""
    if content_type is None:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


def nesting_depth(raw: bytes, stop_after: int = MAX_DEPTH) -> int:
    """Deepest object/array nesting of a JSON text, counted without parsing (string contents skipped).

    Stops counting once ``stop_after`` is exceeded, so a hostile body costs one linear scan at most.
    """
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_after:
                    return deepest
        else:
            depth -= 1
    return deepest


def _constant(name: str) -> Any:
    raise bad(f"The request body is not valid JSON: {name} is not a number")


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > 19 or not INT64_MIN <= (value := int(text)) <= INT64_MAX:
        raise bad(f"The request body is not valid JSON: {text[:40]} is outside the int64 range")
    return value


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise bad(f"The request body is not valid JSON: {text[:40]} is not a finite number")
    return value


def check_string_lengths(value: Any) -> None:
    """Every string of a decoded body within the bound of the property holding it (iterative: no recursion)."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, key = stack.pop()
        if isinstance(item, str):
            limit = LONG_TEXT.get(key, MAX_TEXT)
            if len(item) > limit:
                raise bad(f"{key or 'The value'} must be at most {limit} characters long")
        elif isinstance(item, dict):
            stack.extend((v, k) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, key) for v in item)


def decode_body(raw: bytes, content_type: str | None) -> Any:
    """The request body as JSON under the rules of the module docstring (None for an empty body)."""
    kind = media_type(content_type)
    if not raw:
        if kind is not None and kind not in JSON_MEDIA_TYPES:
            raise unsupported_media_type(kind)
        return None
    if kind not in JSON_MEDIA_TYPES:
        raise unsupported_media_type(kind)
    if nesting_depth(raw) > MAX_DEPTH:
        raise bad(f"The request body is nested deeper than {MAX_DEPTH} levels")
    try:
        text = raw.decode("utf-8-sig")
        body = json.loads(text, parse_constant=_constant, parse_int=_integer, parse_float=_number)
    except (ValueError, RecursionError):
        raise bad("The request body is not valid JSON") from None
    check_string_lengths(body)
    return body

