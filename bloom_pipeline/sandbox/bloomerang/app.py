"""Bloomerang REST API v2 simulator (Starlette), faithful to the official OpenAPI document.

Serves under ``/v2`` the endpoints our client and sync use: constituents (+ duplicates, search,
communication settings), emails / phones / addresses, transactions + designations, refunds (create, read,
update, delete), interactions, notes, funds, campaigns, appeals, tributes, custom fields, ``/user/current`` and
``/database``. This module is only the HTTP layer; business rules live in the store modules of this
package (``store``, ``people``, ``gifts``, ``activities``, ``validation``, ``duplicates``); list rules in
``queries``; body decoding (media type, depth, numbers, string lengths) in ``strict``. Success bodies are
compact JSON with nulls omitted; errors are ``{"Message", "ErrorCode"}`` pretty-printed with CRLF, as
observed live. ``GET /transactions``, ``GET /transactions/designations`` and ``GET /pledge/{id}/installments``
answer ``text/json`` because the spec labels them so — a client must treat any JSON content type as JSON.

The HTTP layer behaves as the real ASP.NET service (**decided**, contracts/bloomerang-v2.md §10): one
trailing slash is ignored (``/v2/constituents/`` is ``/v2/constituents``; the document itself publishes
``/customFields/{type}/``), a method a path does not serve is ``405`` with an ``Allow`` header naming the
ones it does (``HEAD`` is not served), and every answer — even an unexpected failure — is JSON.

Auth (``X-API-KEY``, header name case-insensitive) is checked by ``FaultMiddleware`` before the rate
budget and faults, so a bad key always gets its 401 and never spends budget.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bloom_pipeline.sandbox.answer_text import JsonText
from bloom_pipeline.sandbox.bloomerang import queries as q
from bloom_pipeline.sandbox.bloomerang.activities import CHANNELS as INTERACTION_CHANNELS
from bloom_pipeline.sandbox.bloomerang.activities import PURPOSES as INTERACTION_PURPOSES
from bloom_pipeline.sandbox.bloomerang.store import BloomerangStore
from bloom_pipeline.sandbox.bloomerang.strict import decode_body
from bloom_pipeline.sandbox.bloomerang.validation import (
    CONSTITUENT_TYPES,
    CUSTOM_FIELD_TYPES,
    DESIGNATION_TYPES,
    BloomerangError,
)
from bloom_pipeline.sandbox.faults import FaultMiddleware, Knobs, RequestLog

__all__ = ["BloomerangStore", "create_app"]

Handler = Callable[[Request, BloomerangStore], Any]
_TEXT_JSON = {"/transactions", "/transactions/designations", "/pledge/{id:int}/installments"}
_DUPLICATE_KEYS = {"firstName": "FirstName", "lastName": "LastName", "organizationName": "OrganizationName",
                   "street": "Street", "phoneNumber": "PhoneNumber", "emailAddress": "EmailAddress",
                   "type": "Type"}
USER = {"Id": 1, "Name": "Sandbox API", "Email": "api@example.org", "IsActive": True, "UserName": "sandbox.api",
        "PermissionLevel": "Admin", "UserTimeZone": {"Id": "UTC", "Name": "(UTC) Coordinated Universal Time",
                                                     "UtcOffset": "00:00:00"}}
DATABASE = {"Id": "bloom-sandbox", "Name": "Bloom Pipeline Sandbox", "Flavor": "Demo",
            "BaseLicenseProvider": "Bloomerang", "AccountingIntegration": "None"}


def _json(payload: Any, status: int = 200, media_type: str = "application/json") -> Response:
    # allow_nan=False: a non-finite number must fail loudly here, never go out as invalid JSON
    if isinstance(payload, JsonText):  # a page assembled from its records' cached texts (answer_text.py)
        return Response(payload, status, media_type=media_type)
    return Response(json.dumps(payload, separators=(",", ":"), allow_nan=False), status, media_type=media_type)


def _error(error: BloomerangError) -> Response:
    body = json.dumps(error.body(), indent=2).replace("\n", "\r\n")
    return Response(body, error.status, media_type="application/json")


async def _body(request: Request) -> Any:
    return decode_body(await request.body(), request.headers.get("content-type"))


def _endpoint(handler: Handler, store: BloomerangStore, path: str) -> Callable[[Request], Awaitable[Response]]:
    media_type = "text/json; charset=utf-8" if path in _TEXT_JSON else "application/json"

    async def endpoint(request: Request) -> Response:
        if request.method == "HEAD":  # Starlette serves HEAD with every GET; the real service does not
            raise HTTPException(405)
        try:
            result = handler(request, store)
            if hasattr(result, "__await__"):
                result = await result
            return _json(result, media_type=media_type)
        except BloomerangError as error:
            return _error(error)

    return endpoint


def _id(request: Request, name: str = "id") -> int:
    return int(request.path_params[name])


def _area(request: Request) -> str:
    area = request.path_params["type"]
    if area not in CUSTOM_FIELD_TYPES:
        raise q.query_error(f"Invalid type '{area}'. Valid values: {', '.join(CUSTOM_FIELD_TYPES)}")
    return area


# -- constituents ---------------------------------------------------------------------------------
def list_constituents(request: Request, store: BloomerangStore, texts: q.ConstituentTexts) -> dict[str, Any]:
    """``texts``: the store's kept record texts (``_routes`` makes one per store)."""
    params = request.query_params
    page = q.Page(params)
    ids = q.pipe_ints(params, "id")
    kind = q.choice(params, "type", CONSTITUENT_TYPES, None)
    since = q.last_modified(params)
    favorite = q.bool_param(params, "isFavorite")
    custom = q.custom_field_filter(params)
    order_by = q.choice(params, "orderBy", ("Id", "CreatedDate", "LastModifiedDate"), "Id")
    direction = q.choice(params, "orderDirection", ("Asc", "Desc"), "Asc")
    with store.lock:
        table, text = store.constituents, texts.text
        if ids is None and custom is None and kind is None and favorite is None:  # a page cut from an index
            if order_by == "LastModifiedDate":
                filtered, rows = page.in_modified_order(store.modified_order["constituent"], since, direction, table)
                return page.window_text(len(table), filtered, rows, text)
            if order_by == "Id" and since is None:
                return page.window_text(len(table), len(table), page.in_id_order(table, direction), text)
        if ids is not None:
            candidates: Any = [table[i] for i in ids if i in table]
        elif custom is not None:
            candidates = store.with_custom_value("constituent", *custom)
        elif since is not None:
            candidates = [table[i] for i in store.modified_order["constituent"].ids_after(since)]
        else:
            candidates = table.values()
        matched = [
            r for r in candidates
            if (ids is None or r["Id"] in ids) and (kind is None or r["Type"] == kind)
            and q.modified_after(r, since) and (favorite is None or r.get("IsFavorite") == favorite)
            and (custom is None or store.custom_value_matches(r["_custom"], *custom))
        ]
        ordered = q.order(matched, q.audit_key(order_by), direction)
        return page.envelope_text(len(table), ordered, text)


def duplicates(request: Request, store: BloomerangStore) -> Any:
    async def run() -> dict[str, Any]:
        if request.method == "POST":
            body = await _body(request)
            query = body if isinstance(body, dict) else {}
        else:
            query = {pascal: request.query_params.get(camel) for camel, pascal in _DUPLICATE_KEYS.items()}
        found = store.find_duplicates({k: v for k, v in query.items() if isinstance(v, str)})
        return {"Total": len(store.constituents), "TotalFiltered": len(found), "Start": 0,
                "ResultCount": len(found), "Results": found}

    return run()


def search_constituents(request: Request, store: BloomerangStore) -> dict[str, Any]:
    params = request.query_params
    page = q.Page(params)
    kind = q.choice(params, "type", (*CONSTITUENT_TYPES, "Household"), None)
    found = store.search_constituents(params.get("search") or "", kind)
    return {"Total": len(store.constituents), "TotalFiltered": len(found), "Start": page.skip,
            "ResultCount": len(found[page.skip : page.skip + page.take]),
            "Results": found[page.skip : page.skip + page.take]}


def _write(method: Callable[..., dict[str, Any]], *path_args: str) -> Handler:
    async def handler(request: Request, store: BloomerangStore) -> dict[str, Any]:
        body = await _body(request)
        return method(store, *[_id(request, a) for a in path_args], body)

    return lambda request, store: handler(request, store)


# -- contacts -----------------------------------------------------------------------------------------
def _contact_list(kind: str, table: str, modified: bool) -> Handler:
    def handler(request: Request, store: BloomerangStore) -> dict[str, Any]:
        accounts = q.pipe_ints(request.query_params, "constituent")
        with store.lock:
            return q.simple_list(
                request.query_params, getattr(store, table), lambda r: store.render_contact(kind, r["Id"]),
                modified=modified, extra=lambda r: accounts is None or r["AccountId"] in accounts,
            )

    return handler


# -- transactions -----------------------------------------------------------------------------------
def list_transactions(request: Request, store: BloomerangStore) -> dict[str, Any]:
    params = request.query_params
    page = q.Page(params)
    ids, accounts = q.pipe_ints(params, "id"), q.pipe_ints(params, "accountId")
    numbers = q.pipe_ints(params, "transactionNumber")
    kinds = q.pipe_strings(params, "type", DESIGNATION_TYPES)
    low, high = q.number_param(params, "minAmount"), q.number_param(params, "maxAmount")
    since, custom = q.last_modified(params), q.custom_field_filter(params)
    order_by = q.choice(params, "orderBy", ("CreatedDate", "Date", "LastModifiedDate"), "Date")
    direction = q.choice(params, "orderDirection", ("Asc", "Desc"), "Desc")
    with store.lock:
        table, render = store.transactions, (lambda t: store.render_transaction(t["Id"]))
        unfiltered = all(f is None for f in (ids, accounts, numbers, kinds, low, high, custom))
        if unfiltered and order_by == "LastModifiedDate":  # a page cut from the index
            filtered, rows = page.in_modified_order(store.modified_order["transaction"], since, direction, table)
            return page.window(len(table), filtered, rows, render)
        by_date = store.transactions_by_date
        if unfiltered and order_by == "Date" and since is None and len(by_date) == len(table):  # the index too
            filtered, rows = page.in_modified_order(by_date, None, direction, table)
            return page.window(len(table), filtered, rows, render)
        if ids is not None:
            candidates: Any = [table[i] for i in ids if i in table]
        elif custom is not None:
            holders = {d["TransactionId"] for d in store.with_custom_value("designation", *custom)}
            candidates = [table[i] for i in sorted(holders) if i in table]
        elif since is not None:
            candidates = [table[i] for i in store.modified_order["transaction"].ids_after(since)]
        else:
            candidates = table.values()
        matched = [
            t for t in candidates
            if (ids is None or t["Id"] in ids) and (accounts is None or t["AccountId"] in accounts)
            and (numbers is None or t["TransactionNumber"] in numbers) and q.modified_after(t, since)
            and (low is None or t["Amount"] >= low) and (high is None or t["Amount"] <= high)
            and (kinds is None or any(d["Type"] in kinds for d in store.designations_of(t["Id"])))
            and (custom is None or any(store.custom_value_matches(d["_custom"], *custom)
                                       for d in store.designations_of(t["Id"])))
        ]
        key = (lambda t: t["Date"]) if order_by == "Date" else q.audit_key(order_by)
        ordered = q.order(matched, key, direction)
        return page.envelope(len(table), ordered, render)


def list_designations(request: Request, store: BloomerangStore) -> dict[str, Any]:
    params = request.query_params
    page = q.Page(params)
    ids, numbers = q.pipe_ints(params, "id"), q.pipe_ints(params, "designationNumbers")
    transactions = q.pipe_ints(params, "transactionIds")
    order_by = q.choice(params, "orderBy", ("CreatedDate", "Date", "LastModifiedDate"), "Date")
    direction = q.choice(params, "orderDirection", ("Asc", "Desc"), "Desc")
    with store.lock:
        matched = [
            d for d in store.designations.values()
            if (ids is None or d["Id"] in ids) and (numbers is None or d["DesignationNumber"] in numbers)
            and (transactions is None or d["TransactionId"] in transactions)
        ]
        key = ((lambda d: store.transactions[d["TransactionId"]]["Date"]) if order_by == "Date"
               else q.audit_key(order_by))
        return page.envelope(len(store.designations), q.order(matched, key, direction),
                             lambda d: store.render_designation(d["Id"]))


def pledge_installments(request: Request, store: BloomerangStore) -> dict[str, Any]:
    page = q.Page(request.query_params)
    installments = store.pledge_installments(_id(request))
    return page.envelope(len(installments), installments, lambda i: i)


def list_refunds(request: Request, store: BloomerangStore) -> dict[str, Any]:
    params = request.query_params
    page = q.Page(params)
    ids, transactions = q.pipe_ints(params, "id"), q.pipe_ints(params, "transactionId")
    since = q.last_modified(params)
    order_by = q.choice(params, "orderBy", ("CreatedDate", "Date", "LastModifiedDate"), "Date")
    direction = q.choice(params, "orderDirection", ("Asc", "Desc"), "Desc")
    with store.lock:
        matched = [r for r in store.refunds.values()
                   if (ids is None or r["Id"] in ids) and (transactions is None or r["TransactionId"] in transactions)
                   and q.modified_after(r, since)]
        key = (lambda r: r["Date"]) if order_by == "Date" else q.audit_key(order_by)
        return page.envelope(len(store.refunds), q.order(matched, key, direction),
                             lambda r: store.render_refund(r["Id"]))


# -- interactions and notes ---------------------------------------------------------------------
def _activity_list(kind: str) -> Handler:
    def handler(request: Request, store: BloomerangStore) -> dict[str, Any]:
        params = request.query_params
        page = q.Page(params)
        ids, accounts = q.pipe_ints(params, "id"), q.pipe_ints(params, "constituent")
        channels = q.pipe_strings(params, "channel", INTERACTION_CHANNELS) if kind == "interaction" else None
        purposes = q.pipe_strings(params, "purpose", INTERACTION_PURPOSES) if kind == "interaction" else None
        order_by = q.choice(params, "orderBy", ("CreatedDate", "Date", "LastModifiedDate"), "Date")
        direction = q.choice(params, "orderDirection", ("Asc", "Desc"), "Desc")
        with store.lock:
            table = store.table(kind)
            matched = [r for r in table.values()
                       if (ids is None or r["Id"] in ids) and (accounts is None or r["AccountId"] in accounts)
                       and (channels is None or r["Channel"] in channels)
                       and (purposes is None or r["Purpose"] in purposes)]
            key = (lambda r: r["Date"]) if order_by == "Date" else q.audit_key(order_by)
            return page.envelope(len(table), q.order(matched, key, direction),
                                 lambda r: store.render_activity(kind, r["Id"]))

    return handler


# -- reference data ---------------------------------------------------------------------------------
def _named_list(kind: str, modified: bool) -> Handler:
    def handler(request: Request, store: BloomerangStore) -> dict[str, Any]:
        has_goal = q.bool_param(request.query_params, "hasGoal") if kind == "campaign" else None
        with store.lock:
            return q.simple_list(
                request.query_params, store.table(kind), lambda r: store.render_named(kind, r["Id"]),
                name_search=True, modified=modified,
                extra=lambda r: has_goal is None or (r.get("Goal") is not None) == has_goal,
            )

    return handler


def custom_fields(request: Request, store: BloomerangStore) -> list[dict[str, Any]]:
    area = _area(request)
    active = q.bool_param(request.query_params, "isActive")
    active = True if active is None else active
    since = q.last_modified(request.query_params)
    with store.lock:
        return [store.render_custom_field(f) for f in sorted(store.custom_fields.values(), key=lambda f: f["Id"])
                if f["ObjectType"] == area and f["IsActive"] == active and q.modified_after(f, since)]


def custom_categories(request: Request, store: BloomerangStore) -> list[dict[str, Any]]:
    area = _area(request)
    with store.lock:
        categories = sorted(store.custom_field_categories.values(), key=lambda c: c["Id"])
        return [{k: v for k, v in c.items() if k != "ObjectType"} for c in categories
                if c["ObjectType"] == area]


def custom_values(request: Request, store: BloomerangStore) -> list[dict[str, Any]]:
    area = _area(request)
    field_id = int(request.path_params["fieldId"]) if "fieldId" in request.path_params else None
    active = q.bool_param(request.query_params, "isActive")
    since = q.last_modified(request.query_params)
    with store.lock:
        if field_id is not None and store.custom_fields.get(field_id, {}).get("ObjectType") != area:
            raise BloomerangError(404, f"No custom field with id {field_id} found", 202)
        return [store.render_pick_value(v) for v in sorted(store.pick_values.values(), key=lambda v: v["Id"])
                if store.custom_fields[v["FieldId"]]["ObjectType"] == area
                and (field_id is None or v["FieldId"] == field_id)
                and (active is None or v["IsActive"] == active) and q.modified_after(v, since)]


def _routes(store: BloomerangStore) -> list[Route]:
    S = BloomerangStore
    constituent_texts = q.ConstituentTexts(store)  # kept from each record's first render (queries.py)
    table: list[tuple[str, str, Handler]] = [
        ("GET", "/constituents", lambda r, s: list_constituents(r, s, constituent_texts)),
        ("GET", "/constituents/search", search_constituents),
        ("GET", "/constituent/duplicates", duplicates),
        ("POST", "/constituent/duplicates", duplicates),
        ("POST", "/constituent", _write(lambda s, b: s.create_constituent(b))),
        ("GET", "/constituent/{id:int}", lambda r, s: s.render_constituent(_id(r))),
        ("PUT", "/constituent/{id:int}", _write(S.update_constituent, "id")),
        ("DELETE", "/constituent/{id:int}", lambda r, s: s.delete_constituent(_id(r))),
        ("PUT", "/constituent/{id:int}/updateCommunicationSettings", _write(S.update_communication_settings, "id")),
        ("GET", "/transactions", list_transactions),
        ("GET", "/transactions/designations", list_designations),
        ("GET", "/transactions/designation/{id:int}", lambda r, s: s.render_designation(_id(r))),
        ("POST", "/transaction", _write(S.create_transaction)),
        ("GET", "/transaction/{id:int}", lambda r, s: s.render_transaction(_id(r))),
        ("PUT", "/transaction/{id:int}", _write(S.update_transaction, "id")),
        ("DELETE", "/transaction/{id:int}", lambda r, s: s.delete_transaction(_id(r))),
        ("GET", "/pledge/{id:int}/installments", pledge_installments),
        ("GET", "/refunds", list_refunds),
        ("POST", "/refund", _write(S.create_refund)),
        ("GET", "/refund/{id:int}", lambda r, s: s.render_refund(_id(r))),
        ("PUT", "/refund/{id:int}", _write(S.update_refund, "id")),
        ("DELETE", "/refund/{id:int}", lambda r, s: s.delete_refund(_id(r))),
        ("GET", "/user/current", lambda r, s: USER),
        ("GET", "/database", lambda r, s: DATABASE),
    ]
    for kind, plural, table_name, modified in (("email", "emails", "emails", True),
                                               ("phone", "phones", "phones", False),
                                               ("address", "addresses", "addresses", True)):
        table += [
            ("GET", f"/{plural}", _contact_list(kind, table_name, modified)),
            ("POST", f"/{kind}", _write(lambda s, b, k=kind: s.create_contact(k, b))),
            ("GET", f"/{kind}/{{id:int}}", lambda r, s, k=kind: s.render_contact(k, _id(r))),
            ("PUT", f"/{kind}/{{id:int}}", _write(lambda s, i, b, k=kind: s.update_contact(k, i, b), "id")),
            ("DELETE", f"/{kind}/{{id:int}}", lambda r, s, k=kind: s.delete_contact(k, _id(r))),
        ]
    for kind, plural in (("interaction", "interactions"), ("note", "notes")):
        table += [
            ("GET", f"/{plural}", _activity_list(kind)),
            ("POST", f"/{kind}", _write(lambda s, b, k=kind: s.create_activity(k, b))),
            ("GET", f"/{kind}/{{id:int}}", lambda r, s, k=kind: s.render_activity(k, _id(r))),
            ("PUT", f"/{kind}/{{id:int}}", _write(lambda s, i, b, k=kind: s.update_activity(k, i, b), "id")),
            ("DELETE", f"/{kind}/{{id:int}}", lambda r, s, k=kind: s.delete_activity(k, _id(r))),
        ]
    for kind, plural, modified in (("fund", "funds", False), ("campaign", "campaigns", True),
                                   ("appeal", "appeals", True), ("tribute", "tributes", False)):
        table += [
            ("GET", f"/{plural}", _named_list(kind, modified)),
            ("POST", f"/{kind}", _write(lambda s, b, k=kind: s.create_named(k, b))),
            ("GET", f"/{kind}/{{id:int}}", lambda r, s, k=kind: s.render_named(k, _id(r))),
            ("PUT", f"/{kind}/{{id:int}}", _write(lambda s, i, b, k=kind: s.update_named(k, i, b), "id")),
        ]
    table += [("GET", "/customFieldCategories/{type}", custom_categories),
              ("GET", "/customFields/{type}", custom_fields),
              ("GET", "/customValues/{type}", custom_values),
              ("GET", "/customValues/{type}/{fieldId:int}", custom_values)]
    return [Route("/v2" + path, _endpoint(handler, store, path), methods=[method])
            for method, path, handler in table]


_HTTP_MESSAGES = {404: "The requested resource does not exist", 405: "The requested method is not allowed"}
_METHOD_ORDER = ("GET", "POST", "PUT", "DELETE")


def _allowed_methods(routes: list[Route], path: str) -> str:
    """Every method some route serves at ``path`` — Starlette's own ``Allow`` names only one route's."""
    methods = {m for r in routes if r.path_regex.match(path) for m in (r.methods or ())}
    return ", ".join(m for m in _METHOD_ORDER if m in methods)


async def _server_error(request: Request, exc: Exception) -> Response:
    """A bug in the simulator still answers in the vendor's JSON shape (and as a 500, so tests see it)."""
    return _error(BloomerangError(500, "An error has occurred.", 500))


class _IgnoreTrailingSlash:
    """ASP.NET routing matches ``/v2/constituents/`` as ``/v2/constituents``: strip one trailing slash."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/"):
            raw = scope.get("raw_path")
            scope = dict(scope, path=path[:-1])
            if isinstance(raw, bytes) and raw.endswith(b"/"):
                scope["raw_path"] = raw[:-1]
        await self.app(scope, receive, send)


def create_app(store: BloomerangStore, knobs: Knobs, request_log: RequestLog, api_key: str) -> Any:
    """The ASGI app: routes wrapped by ``FaultMiddleware`` (auth → rate budget → faults)."""
    routes = _routes(store)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        response = _error(BloomerangError(status, _HTTP_MESSAGES.get(status, "Request failed"), status))
        if status == 405:
            response.headers["Allow"] = _allowed_methods(routes, request.url.path)
        return response

    app = Starlette(routes=routes, middleware=[Middleware(_IgnoreTrailingSlash)],
                    exception_handlers={HTTPException: http_error, Exception: _server_error})
    app.router.redirect_slashes = False
    expected = api_key.encode()

    def headers_auth(headers: dict[str, str]) -> str | None:
        given = headers.get("x-api-key")
        return given if given and hmac.compare_digest(given.encode(), expected) else None

    return FaultMiddleware(
        app, api="bloomerang", knobs=knobs, request_log=request_log, headers_auth=headers_auth,
        unauthorized={"Message": "Authorization has been denied for this request.", "ErrorCode": 401},
        error_body=lambda status: {
            "Message": "Too many requests" if status == 429 else "An error has occurred.", "ErrorCode": status,
        },
    )
