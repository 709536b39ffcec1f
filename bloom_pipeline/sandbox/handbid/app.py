"""Handbid manager API simulator (Starlette), the **decided** shape of contract §4.2.

* Base URL is the server root; ``Authorization: Bearer <token>``; 401 ``{"error": "unauthorized", …}``
  comes before any rate limit or fault. Errors are ``{"error": code, "message"}`` (``validation_error``
  400, ``not_found`` 404, ``rate_limited`` 429 + ``Retry-After``, ``server_error`` 5xx).
* Lists take ``limit`` (default 20, 0..100; 0 = counts only; > 100 → 400 ``validation_error``) and
  ``offset`` (≥ 0; past the end → empty list) and return ``{"<things>": [...], "totalCount": n}``,
  ordered by id (stable pages); the rows ``store.served_as_is`` holds follow the table's own, in the order
  given (``sandbox/data/messy.py``).
* ``GET /v3/manager/organizations/{orgId}/auctions?status=a,b`` — status filter (unknown status → 400).
* ``GET /v3/manager/organizations/{orgId}/contacts?updatedSince=<epoch>`` — ``dateUpdated`` strictly
  greater. Times are epoch *seconds*: a client keeping a cursor should re-ask from cursor − 1 and dedupe.
* ``GET|PUT /v3/manager/contacts/{id}`` — PUT returns ``{"contact": {...}}`` and bumps ``dateUpdated``.
* ``GET /v3/manager/auctions/{id}/receipts|payments|items`` — served for an auction in **any** status; a
  receipt's ``emailed`` / ``emailedAt`` say whether it was emailed (→ Bloomerang "acknowledged").
* ``GET /v3/manager/auctions/{id}/bidders`` — the event's registrations (**assumed**: the auction <-> user
  relation of the V3 hints, ``isBidder``, ``isComing``, ``isCheckedIn``, ``currentPaddleNumber``), flags as
  the store's ``flags_as`` knob says (0/1 by default).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bloom_pipeline.sandbox.faults import FaultMiddleware, Knobs, RequestLog
from bloom_pipeline.sandbox.handbid.store import (
    AUCTION_STATUSES,
    BIDDER_FLAGS,
    HandbidError,
    HandbidStore,
    invalid,
    not_found,
    updated_after,
)
from bloom_pipeline.sandbox.page_index import IdOrder, ValueGroups
from bloom_pipeline.sandbox.tree import copy_tree

__all__ = ["HandbidStore", "create_app"]

MAX_LIMIT = 100
DEFAULT_LIMIT = 20


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(f"{name} must be an integer") from None
    if value < 0:
        raise invalid(f"{name} must be >= 0")
    return value


def _page(request: Request, key: str, rows: list[dict[str, Any]],
          as_is: list[dict[str, Any]] | None = None) -> JSONResponse:
    """One ``limit``/``offset`` page of ``rows`` (by id), then of ``as_is`` (rows served as given, after the
    sorted ones so every page of the table's rows stays where it is without them)."""
    limit = _int_param(request, "limit", DEFAULT_LIMIT)
    if limit > MAX_LIMIT:
        raise invalid(f"limit must be between 0 and {MAX_LIMIT}")
    offset = _int_param(request, "offset", 0)
    rows = sorted(rows, key=lambda r: int(r["id"])) + list(as_is or [])
    return JSONResponse({key: rows[offset:offset + limit], "totalCount": len(rows)})


def _id_page(request: Request, key: str, ids: Sequence[int], row: Callable[[int], dict[str, Any]],
             as_is: list[dict[str, Any]]) -> JSONResponse:
    """``_page`` of the table rows whose ids (ascending) are ``ids``, then of ``as_is``: only the rows of the
    page are read and copied (``row``), so a page costs O(limit), whatever the table holds."""
    limit = _int_param(request, "limit", DEFAULT_LIMIT)
    if limit > MAX_LIMIT:
        raise invalid(f"limit must be between 0 and {MAX_LIMIT}")
    offset = _int_param(request, "offset", 0)
    tail = as_is[max(0, offset - len(ids)):max(0, offset + limit - len(ids))]
    return JSONResponse({key: [row(i) for i in ids[offset:offset + limit]] + tail,
                         "totalCount": len(ids) + len(as_is)})


def _path_id(request: Request, name: str, what: str) -> int:
    value = request.path_params[name]
    if not value.isdigit():
        raise not_found(what)
    return int(value)


def create_app(store: HandbidStore, knobs: Knobs, request_log: RequestLog, token: str) -> Any:
    """The Handbid app wrapped in the fault middleware (auth is checked there, first)."""
    # Serving-side indexes (page_index): the contacts in id order, each event's rows by ``auctionId`` (set when a
    # row is made, never changed by the store). The store counts no writes, so they follow its tables' sizes.
    with store.lock:
        contact_ids = IdOrder(lambda: store.contacts)
        by_auction = {table: ValueGroups(lambda table=table: getattr(store, table), "auctionId")
                      for table in ("receipts", "payments", "items", "bidders")}

    def of_auction(table: str, auction_id: int) -> list[int]:
        """The ids of ``table``'s rows of ``auction_id``, ascending (``store.of_auction``'s rows, by id)."""
        rows = getattr(store, table)
        return sorted(i for i in by_auction[table].ids(auction_id)
                      if i in rows and rows[i]["auctionId"] == auction_id)

    def bidder(row_id: int) -> dict[str, Any]:
        """A registration as ``store.bidders_of`` serves it (flags as 0/1 unless ``flags_as`` is ``"bool"``)."""
        row = copy_tree(store.bidders[row_id])
        if store.flags_as == "int":
            for key in BIDDER_FLAGS:
                row[key] = int(bool(row.get(key)))
        return row

    def org(request: Request) -> None:
        if _path_id(request, "org_id", "Organization") != store.org_id:
            raise not_found("Organization")

    async def list_auctions(request: Request) -> JSONResponse:
        org(request)
        wanted = {s.strip().lower() for s in request.query_params.get("status", "").split(",") if s.strip()}
        if wanted - set(AUCTION_STATUSES):
            raise invalid(f"status must be one of {', '.join(AUCTION_STATUSES)}")
        with store.lock:
            rows = [dict(a) for a in store.auctions.values() if not wanted or a["status"] in wanted]
        return _page(request, "auctions", rows)

    async def list_contacts(request: Request) -> JSONResponse:
        org(request)
        since = request.query_params.get("updatedSince")
        floor = _int_param(request, "updatedSince", 0) if since not in (None, "") else None
        with store.lock:  # only the page's contacts are copied; updatedSince is a scan (dateUpdated is not indexed)
            ids = contact_ids.sorted_ids() if floor is None else sorted(
                cid for cid, c in store.contacts.items() if updated_after(c["dateUpdated"], floor))
            return _id_page(request, "contacts", ids, store.contact, store.served_contacts(floor))

    async def show_contact(request: Request) -> JSONResponse:
        return JSONResponse({"contact": store.contact(_path_id(request, "contact_id", "Contact"))})

    async def update_contact(request: Request) -> JSONResponse:
        contact_id = _path_id(request, "contact_id", "Contact")
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            raise invalid("Request body must be valid JSON") from None
        return JSONResponse({"contact": store.update_contact(contact_id, body)})

    def auction_list(table: str):
        async def endpoint(request: Request) -> JSONResponse:
            auction_id = _path_id(request, "auction_id", "Auction")
            with store.lock:
                as_is = store.served_of_auction(table, auction_id)  # 404 for an unknown auction
                rows = getattr(store, table)
                return _id_page(request, table, of_auction(table, auction_id), lambda i: copy_tree(rows[i]), as_is)

        return endpoint

    async def list_bidders(request: Request) -> JSONResponse:
        auction_id = _path_id(request, "auction_id", "Auction")
        with store.lock:
            store.auction(auction_id)  # 404 for an unknown auction
            return _id_page(request, "bidders", of_auction("bidders", auction_id), bidder, [])

    async def handbid_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HandbidError)
        return JSONResponse({"error": exc.code, "message": exc.message}, status_code=exc.status)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        return JSONResponse({"error": code, "message": str(exc.detail)}, status_code=exc.status_code)

    manager = "/v3/manager"
    routes = [
        Route(f"{manager}/organizations/{{org_id}}/auctions", list_auctions, methods=["GET"]),
        Route(f"{manager}/organizations/{{org_id}}/contacts", list_contacts, methods=["GET"]),
        Route(f"{manager}/contacts/{{contact_id}}", show_contact, methods=["GET"]),
        Route(f"{manager}/contacts/{{contact_id}}", update_contact, methods=["PUT"]),
        Route(f"{manager}/auctions/{{auction_id}}/receipts", auction_list("receipts"), methods=["GET"]),
        Route(f"{manager}/auctions/{{auction_id}}/payments", auction_list("payments"), methods=["GET"]),
        Route(f"{manager}/auctions/{{auction_id}}/items", auction_list("items"), methods=["GET"]),
        Route(f"{manager}/auctions/{{auction_id}}/bidders", list_bidders, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HandbidError: handbid_error, HTTPException: http_error})
    expected = f"Bearer {token}".encode()

    def headers_auth(headers: dict[str, str]) -> str | None:
        given = headers.get("authorization", "").strip().encode()
        return token if hmac.compare_digest(given, expected) else None

    def error_body(status: int) -> dict[str, Any]:
        if status == 429:
            return {"error": "rate_limited", "message": "Too many requests"}
        return {"error": "server_error", "message": "Internal server error"}

    return FaultMiddleware(app, api="handbid", knobs=knobs, request_log=request_log, headers_auth=headers_auth,
                           unauthorized={"error": "unauthorized", "message": "Missing or invalid token"},
                           error_body=error_body)
