"""WeGive API simulator (Starlette): ``/api/dashboard/…`` as the contract README and the OpenAPI copy say.

Behaviour a client must cope with, and the choices we made where the spec is silent:

* ``Authorization: Bearer <token>``; anything else → 401 ``{"message": "Unauthenticated."}`` (before any
  rate limit or fault). 404 ``{"message"}``; 422 ``{"message", "errors": {field: [msg]}}``.
* Lists: ``page`` (default 1; junk or < 1 → 1, as Laravel) and ``count`` (default 25). The spec declares
  ``count`` with ``maximum: 200`` so, like a Laravel validator, **count > 200 or < 1 → 422** (a client
  bug shows instead of silently getting fewer rows). Envelope ``{data, search_mode, pagination, sort,
  meta{total (a *string*), current_page, last_page, per_page, from, to}}``; an empty page has
  ``from = to = 0`` (the schema types them as integers).
* Default order is ``id`` ascending (stable under appends); ``sort[key]=asc|desc`` overrides it and sets
  the envelope's ``sort`` to true. Unknown query parameters are ignored.
* Range filters ``x[start]`` / ``x[end]`` are inclusive ISO-8601 instants (``Z``/offset; naive = UTC);
  a date-only ``end`` covers that whole day. A bad date → 422. Transactions: ``updated_at``,
  ``created`` (on ``created_at``), ``succeeded_at``, ``refunded_at``, ``failed_at``. Donors have **no**
  updated filter (the client scans and diffs).
* Amounts are integer cents unless ``store.amount_units == "dollars"``.
* Rows ``store.served_as_is`` holds (a null or repeated id; ``sandbox/data/messy.py``) come after every row of
  the table, in the order given, whatever ``sort`` asks (the table's rows page exactly as without them); the
  list's filters apply to them as to the table's rows (``_in_ranges``: text order, so a value that is no
  timestamp compares by its characters).
* Schedules: ``/pledges[/{id}]`` (``PledgeViewResource``, list rows too; the detail adds
  ``donor_accounts`` / ``donor_users``) and ``/scheduled-donations[/{id}]`` (rows ``ScheduledDonationResource``,
  the detail ``ScheduledDonationOrganizationViewResource``); filters ``donor_id``, ``installment_frequency`` /
  ``frequency``, scheduled donations also ``created_at`` / ``updated_at`` ranges; ``view`` (``all`` / ``active``
  / absent: not archived; ``archived``: only the archived, those with ``deleted_at``).
* Shapes (``resources``): a donor list row is a ``DonorTableResource`` (``first_name`` and ``name``, the
  address as ``mailing_address_object`` and the ``mailingAddress`` string, no last or middle name); the
  detail ``GET /donors/{id}`` and every donor write answer a ``DonorViewResource``.
"""

from __future__ import annotations

import hmac
import json
import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, time
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bloom_pipeline.sandbox.answer_text import compact, page_text
from bloom_pipeline.sandbox.faults import FaultMiddleware, Knobs, RequestLog
from bloom_pipeline.sandbox.tree import copy_tree
from bloom_pipeline.sandbox.wegive.listing import AllocationTexts, DonorRowTexts, ScheduleRender, WeGiveIndexes
from bloom_pipeline.sandbox.wegive.store import Invalid, NotFound, WeGiveStore

__all__ = ["WeGiveStore", "create_app"]

MAX_COUNT = 200
_BRACKET = re.compile(r"^([A-Za-z_]+)\[([A-Za-z_]*)\]$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _brackets(request: Request) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for key, value in request.query_params.multi_items():
        match = _BRACKET.match(key)
        if match:
            out.setdefault(match.group(1), {})[match.group(2)] = value
    return out


def _instant(text: str, field: str, end: bool) -> str:
    """Normalise a filter bound to the stored ``…%fZ`` form so string order equals time order."""
    raw = text.strip()
    try:
        if _DATE_ONLY.match(raw):
            day = datetime.fromisoformat(raw).date()
            value = datetime.combine(day, time.max if end else time.min, tzinfo=UTC)
        else:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "T", 1))
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except ValueError:
        raise Invalid({field: [f"The {field.replace('_', ' ')} field must be a valid date."]}) from None
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ranges(request: Request, mapping: dict[str, str]) -> list[tuple[str, str | None, str | None]]:
    """``[(stored key, start, end)]`` for the bracket ranges present in the query."""
    out = []
    for param, values in _brackets(request).items():
        if param in mapping:
            start = _instant(values["start"], f"{param}.start", False) if values.get("start") else None
            end = _instant(values["end"], f"{param}.end", True) if values.get("end") else None
            if start or end:
                out.append((mapping[param], start, end))
    return out


def _in_ranges(record: dict[str, Any], ranges: list[tuple[str, str | None, str | None]]) -> bool:
    """Whether the record's stored text lies in every range. The comparison is of text, as the bounds are
    normalised to the stored form: a stored value that is no timestamp (``"soon"``, ``"31/02/2025"``) is
    compared by its characters, as a database comparing the column as text would (``"soon"`` is after every
    ``"2…"`` start and after every end)."""
    for key, start, end in ranges:
        value = record.get(key)
        if value is None or (start and value < start) or (end and value > end):
            return False
    return True


def _page_numbers(request: Request) -> tuple[int, int]:
    """``page`` (1 when absent or unreadable) and ``count`` (validated as Laravel does)."""
    params = request.query_params
    try:
        page = max(1, int(params.get("page", "1")))
    except ValueError:
        page = 1
    try:
        count = int(params.get("count", "25"))
    except ValueError:
        raise Invalid({"count": ["The count field must be a number."]}) from None
    if count > MAX_COUNT:
        raise Invalid({"count": [f"The count field must not be greater than {MAX_COUNT}."]})
    if count < 1:
        raise Invalid({"count": ["The count field must be at least 1."]})
    return page, count


def _sorted(request: Request, rows: list[dict[str, Any]],
            sort_keys: dict[str, Callable[[dict[str, Any]], Any]]) -> tuple[list[dict[str, Any]], bool]:
    """``rows`` in the order of the request's ``sort[...]`` brackets (id order under them); whether any applied."""
    rows = sorted(rows, key=lambda r: int(r["id"]))
    sorts = [(k, v) for k, v in _brackets(request).get("sort", {}).items() if k in sort_keys]
    for key, direction in reversed(sorts):
        if direction.lower() not in ("asc", "desc"):
            raise Invalid({f"sort.{key}": ["The selected sort direction is invalid."]})
        rows.sort(key=lambda r, f=sort_keys[key]: (f(r) is None, f(r) if f(r) is not None else 0),
                  reverse=direction.lower() == "desc")
    return rows, bool(sorts)


def _sorts_asked(request: Request, sort_keys: dict[str, Callable[[dict[str, Any]], Any]]) -> bool:
    """Whether a ``sort[...]`` bracket of the request names one of the list's sort keys."""
    return any(key in sort_keys for key in _brackets(request).get("sort", {}))


class ScanCache:
    """The filtered, sorted ids of the list a client is paging through, so page N costs O(page), not O(n).

    A client walks a list as page 1, 2, … with the same filters; recomputing the filter and the sort of the
    whole table on every page made a scan of 100,000 donors quadratic. Page 1 (or any other page after a
    write through the store, or a change in the table's size) recomputes, so every write the API or a test
    makes through the store is seen on the next page, as a live database would show it."""

    def __init__(self, store: WeGiveStore, size: int = 16) -> None:
        self.store = store
        self.size = size
        self._scans: dict[tuple, tuple[tuple[int, int], list[int], bool]] = {}

    def rows(self, request: Request, table_name: str, matched: Callable[[], list[dict[str, Any]]],
             sort_keys: dict[str, Callable[[dict[str, Any]], Any]],
             ids: Callable[[], list[int]] | None = None) -> tuple[Sequence[dict[str, Any]], bool]:
        """``ids``: the matched ids already in id order, when the caller has them cheaper than ``matched()``
        and a sort (a list with no sort asked)."""
        _page_numbers(request)  # a bad count is refused before a sort is looked at, as without the cache
        table = getattr(self.store, table_name)
        key = (table_name, tuple(sorted((k, v) for k, v in request.query_params.multi_items() if k != "page")))
        stamp = (self.store.writes, len(table))
        hit = self._scans.get(key)
        if hit is None or hit[0] != stamp or request.query_params.get("page", "1") in ("1", ""):
            if ids is not None:
                hit = (stamp, ids(), False)
            else:
                rows, sorted_ = _sorted(request, matched(), sort_keys)
                hit = (stamp, [int(r["id"]) for r in rows], sorted_)
            self._scans.pop(key, None)
            self._scans[key] = hit
            while len(self._scans) > self.size:
                del self._scans[next(iter(self._scans))]
        return _IdRows(table, hit[1]), hit[2]


class _IdRows(Sequence):
    """The records of a cached scan, looked up only for the page that is cut (``_page`` slices it)."""

    def __init__(self, table: dict[int, dict[str, Any]], ids: list[int]) -> None:
        self.table, self.ids = table, ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [r for r in (self.table.get(i) for i in self.ids[index]) if r is not None]
        return self.table[self.ids[index]]


def _page(request: Request, rows: Sequence[dict[str, Any]], render: Callable[[dict[str, Any]], dict[str, Any]],
          sort_keys: dict[str, Callable[[dict[str, Any]], Any]],
          as_is: list[dict[str, Any]] | None = None, presorted: bool | None = None,
          text: Callable[[dict[str, Any]], str] | None = None) -> Response:
    """Sort, paginate and wrap ``rows`` in WeGive's list envelope.

    ``as_is``: rows already in answer shape (``store.served_as_is``, filtered), served after the sorted
    ``rows`` unsorted and unrendered: they may lack the id the sort and the renderers need, and putting them
    last keeps every page of the table's rows where it is without them. ``presorted``: ``rows`` come from
    ``ScanCache.rows`` already in order (the value says whether a ``sort[...]`` applied). ``text``: a row's JSON
    text, used instead of ``render`` (the page is then assembled from the texts: the same bytes)."""
    page, count = _page_numbers(request)
    if presorted is None:
        rows, sorted_ = _sorted(request, rows, sort_keys)
    else:
        sorted_ = presorted
    extra = as_is or []
    total = len(rows) + len(extra)
    start = (page - 1) * count
    tail = extra[max(0, start - len(rows)):max(0, start + count - len(rows))]
    if text is not None:  # each row's cached JSON text (answer_text.py); the same bytes as JSONResponse's
        chunk: list[Any] = [text(r) for r in rows[start:start + count]] + [_encode(r) for r in tail]
    else:
        chunk = [render(r) for r in rows[start:start + count]] + copy_tree(tail)
    meta = {"total": str(total), "current_page": page, "last_page": max(1, math.ceil(total / count)),
            "per_page": count, "from": start + 1 if chunk else 0, "to": start + len(chunk) if chunk else 0}
    envelope = {"data": chunk, "search_mode": False, "pagination": True, "sort": sorted_, "meta": meta}
    if text is not None:
        return Response(page_text(envelope, "data", chunk, _encode).encode(), media_type="application/json")
    return JSONResponse(envelope)


def _encode(payload: Any) -> str:
    """What ``JSONResponse`` makes of ``payload`` (as text)."""
    return compact(payload, ensure_ascii=False)


def _numeric(value: Any) -> float | None:
    """The number a database column would sort by: a JSON true is 1, a numeric text its value, else None."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _id(request: Request, name: str) -> int:
    value = request.path_params[name]
    if not value.isdigit():
        raise NotFound("Not found.")
    return int(value)


async def _json(request: Request) -> Any:
    body = await request.body()
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except ValueError:
        return None


def _eq(value: Any, wanted: str) -> bool:
    return value is not None and str(value).lower() == wanted.lower()


def _any_of(value: Any, wanted: str) -> bool:
    return value is not None and str(value).lower() in {w.strip().lower() for w in wanted.split(",")}


def _donor_of(txn: dict[str, Any]) -> Any:
    """The donor a transaction filter compares: the table's ``donor_id``, or the owner of a row served as is
    (a list row carries no ``donor_id``)."""
    return txn["donor_id"] if "donor_id" in txn else (txn.get("owner") or {}).get("id")


# ``view`` of the donor list (contracts/wegive-handbid.md §1.3): its meaning is not documented. The less convenient
# reading (**decided**): no view, ``all`` and ``active`` list the donors that are not archived; only ``archived``
# and ``both`` show the archived ones (with ``deleted_at`` set), so a sync that wants to see deletions must ask.
DONOR_VIEWS = ("all", "active", "archived", "both")


def archived_view(view: str | None, archived: bool) -> bool:
    """Whether a donor (archived or not) is listed under ``view``."""
    if view == "both":
        return True
    return archived if view == "archived" else not archived


def create_app(store: WeGiveStore, knobs: Knobs, request_log: RequestLog, token: str) -> Any:
    """The WeGive app wrapped in the fault middleware (auth is checked there, first)."""
    scans = ScanCache(store)
    indexes = WeGiveIndexes(store)  # built now from the records the store holds (listing.py)
    schedules = ScheduleRender(store, indexes)
    donor_rows = DonorRowTexts()  # each row's text kept from its first render (listing.py)

    def in_id_order(table_name: str) -> _IdRows:
        """A whole table in id order, from its index: what a scan with no filter and no sort pages through."""
        return _IdRows(getattr(store, table_name), indexes.ids[table_name].sorted_ids())

    async def list_donors(request: Request) -> JSONResponse:
        q = request.query_params
        donor_type = q.get("type")
        if donor_type and donor_type not in ("individual", "company", "recurring", "both"):
            raise Invalid({"type": ["The selected type is invalid."]})
        ranges = _ranges(request, {"created_at": "created_at"})
        view = q.get("view") or None
        if view not in (None, *DONOR_VIEWS):
            raise Invalid({"view": ["The selected view is invalid."]})

        def wanted(d: dict[str, Any]) -> bool:
            return (archived_view(view, d.get("deleted_at") is not None)
                    and (not q.get("email_1") or _eq(d.get("email_1"), q["email_1"]))
                    and (not q.get("bloomerang_id") or _eq(d.get("bloomerang_id"), q["bloomerang_id"]))
                    and (donor_type not in ("individual", "company") or d.get("type") == donor_type)
                    and _in_ranges(d, ranges))

        sort_keys = {"id": lambda d: d["id"], "created_at": lambda d: d["created_at"],
                     "name": lambda d: (d.get("name") or "").lower()}
        with store.lock:
            only_view = (not q.get("email_1") and not q.get("bloomerang_id") and not ranges
                         and donor_type not in ("individual", "company") and not _sorts_asked(request, sort_keys))
            if only_view and view == "both":
                rows, sorted_ = in_id_order("donors"), False  # the sync's full scan: no filter applies
            else:  # a view alone: its ids from the id index and the archived ones (listing.py), no sort
                rows, sorted_ = scans.rows(request, "donors",
                                           lambda: [d for d in store.donors.values() if wanted(d)], sort_keys,
                                           ids=(lambda: indexes.donors_in_view(view == "archived"))
                                           if only_view else None)
            return _page(request, rows, lambda d: store.render_donor_row(int(d["id"])), sort_keys,
                         [d for d in store.served_as_is.get("donors", []) if wanted(d)], presorted=sorted_,
                         text=donor_rows.text)

    async def show_donor(request: Request) -> JSONResponse:
        return JSONResponse({"data": store.render_donor(_id(request, "donor"))})

    async def update_donor(request: Request) -> JSONResponse:
        donor_id = _id(request, "donor")
        body = await _json(request)
        indexes.writes_elsewhere += 1  # a donor's write: no transaction index need refresh (listing.py)
        return JSONResponse({"data": store.update_donor(donor_id, body)})

    async def find_or_create(request: Request) -> JSONResponse:
        body = await _json(request)
        indexes.writes_elsewhere += 1
        return JSONResponse({"data": store.find_or_create_donor(body)})

    async def list_transactions(request: Request) -> JSONResponse:
        q = request.query_params
        ranges = _ranges(request, {"updated_at": "updated_at", "created": "created_at",
                                   "succeeded_at": "succeeded_at", "refunded_at": "refunded_at",
                                   "failed_at": "failed_at"})

        def wanted(t: dict[str, Any]) -> bool:
            return (_in_ranges(t, ranges)
                    and (not q.get("status") or _any_of(t.get("status"), q["status"]))
                    and (not q.get("source_type") or _any_of(t.get("source_type"), q["source_type"]))
                    and (not q.get("donor_id") or _eq(_donor_of(t), q["donor_id"]))
                    and (not q.get("bloomerang_id") or _eq(t.get("bloomerang_id"), q["bloomerang_id"]))
                    and (not q.get("fund") or any(_eq(a["fund"]["id"], q["fund"]) for a in t["fund_allocations"])))

        sort_keys = {"id": lambda t: t["id"], "created": lambda t: t["created_at"],
                     "updated_at": lambda t: t["updated_at"], "amount": lambda t: _numeric(t["amount"]),
                     "donor": lambda t: t["donor_id"]}
        filtered = ranges or any(q.get(k) for k in ("status", "source_type", "donor_id", "bloomerang_id", "fund"))
        indexed = [(column, start, end) for column, start, end in ranges if column in indexes.by_time]

        def matched() -> list[dict[str, Any]]:
            if not indexed:
                return [t for t in store.transactions.values() if wanted(t)]
            column, start, end = indexed[0]  # the candidates of one indexed range; every filter checks each
            table = store.transactions
            return [t for t in (table.get(i) for i in indexes.by_time[column].between(start, end))
                    if t is not None and wanted(t)]

        with store.lock:
            if not filtered and not _sorts_asked(request, sort_keys):
                rows, sorted_ = in_id_order("transactions"), False
            else:
                rows, sorted_ = scans.rows(request, "transactions", matched, sort_keys)
            return _page(request, rows, lambda t: store.render_transaction_row(int(t["id"])), sort_keys,
                         [t for t in store.served_as_is.get("transactions", []) if wanted(t)], presorted=sorted_)

    async def show_transaction(request: Request) -> JSONResponse:
        return JSONResponse({"data": store.render_transaction(_id(request, "transaction"))})

    async def list_funds(request: Request) -> JSONResponse:
        q = request.query_params
        with store.lock:
            rows = [f for f in store.funds.values()
                    if (not q.get("bloomerang_id") or _eq(f.get("bloomerang_id"), q["bloomerang_id"]))
                    and (not q.get("search") or q["search"].lower() in f["name"].lower())]
            return _page(request, rows, lambda f: store.render_fund(int(f["id"])),
                         {"id": lambda f: f["id"], "name": lambda f: f["name"].lower(),
                          "created_at": lambda f: f["created_at"]})

    async def show_fund(request: Request) -> JSONResponse:
        return JSONResponse({"data": store.render_fund(_id(request, "fund"))})

    async def update_fund(request: Request) -> JSONResponse:
        fund_id = _id(request, "fund")
        body = await _json(request)
        indexes.writes_elsewhere += 1
        return JSONResponse({"data": store.update_fund(fund_id, body)})

    async def list_allocations(request: Request) -> JSONResponse:
        q = request.query_params
        def wanted(a: dict[str, Any]) -> bool:
            return bool((not q.get("transaction_id") or _eq(a.get("transaction_id"), q["transaction_id"]))
                        and (not q.get("fund") or _eq(a["fund"]["id"], q["fund"])))

        sort_keys = {"id": lambda a: a["id"]}
        with store.lock:  # a full scan pages through every allocation in id order (its index)
            if not q.get("transaction_id") and not q.get("fund") and not _sorts_asked(request, sort_keys):
                rows, sorted_ = in_id_order("fund_allocations"), False
            else:
                rows, sorted_ = scans.rows(request, "fund_allocations",
                                           lambda: [a for a in store.fund_allocations.values() if wanted(a)],
                                           sort_keys)
            return _page(request, rows, store.render_allocation, sort_keys, presorted=sorted_,
                         text=AllocationTexts(store).text)

    async def list_campaigns(request: Request) -> JSONResponse:
        with store.lock:
            return _page(request, list(store.campaigns.values()), store.render_campaign,
                         {"id": lambda c: c["id"], "name": lambda c: c["name"].lower(),
                          "created_at": lambda c: c["created_at"]})

    def schedule_view(request: Request, views: tuple[str, ...]) -> Callable[[dict[str, Any]], bool]:
        """``view``: absent, ``all`` or ``active`` serve the rows not archived (Laravel's soft-delete scope);
        ``archived`` only the archived ones — the less convenient reading: a cancelled schedule is listed
        only when asked for."""
        view = request.query_params.get("view") or "all"
        if view not in views:
            raise Invalid({"view": ["The selected view is invalid."]})
        return (lambda r: r.get("deleted_at") is not None) if view == "archived" else (
            lambda r: r.get("deleted_at") is None)

    async def list_pledges(request: Request) -> JSONResponse:
        q = request.query_params
        in_view = schedule_view(request, ("all", "active", "archived", "ended"))
        sort_keys = {"id": lambda p: p["id"], "start_date": lambda p: p.get("start_date") or "",
                     "end_date": lambda p: p.get("end_date") or "",
                     "total_amount": lambda p: _numeric(p["total_amount"])}
        with store.lock:  # filtered and sorted once per scan (ScanCache); each row's payments from the index
            rows, sorted_ = scans.rows(request, "pledges", lambda: [
                p for p in store.pledges.values() if in_view(p)
                and (not q.get("donor_id") or _eq(p.get("donor_id"), q["donor_id"]))
                and (not q.get("installment_frequency")
                     or _eq(p.get("installment_frequency"), q["installment_frequency"]))], sort_keys)
            return _page(request, rows, lambda p: schedules.pledge(int(p["id"])), sort_keys, presorted=sorted_)

    async def show_pledge(request: Request) -> JSONResponse:
        return JSONResponse({"data": schedules.pledge(_id(request, "pledge")), "donor_accounts": "[]",
                             "donor_users": []})

    async def list_scheduled_donations(request: Request) -> JSONResponse:
        q = request.query_params
        ranges = _ranges(request, {"created_at": "created_at", "updated_at": "updated_at"})
        in_view = schedule_view(request, ("all", "active", "archived"))
        sort_keys = {"id": lambda s: s["id"], "start_date": lambda s: s.get("start_date") or "",
                     "amount": lambda s: _numeric(s["amount"]), "created_at": lambda s: s["created_at"]}
        with store.lock:  # as list_pledges
            rows, sorted_ = scans.rows(request, "scheduled_donations", lambda: [
                s for s in store.scheduled_donations.values() if in_view(s)
                and (not q.get("donor_id") or _eq(s.get("donor_id"), q["donor_id"]))
                and (not q.get("frequency") or _eq(s.get("frequency"), q["frequency"]))
                and _in_ranges(s, ranges)], sort_keys)
            return _page(request, rows, lambda s: schedules.scheduled_donation(int(s["id"])), sort_keys,
                         presorted=sorted_)

    async def show_scheduled_donation(request: Request) -> JSONResponse:
        return JSONResponse({"data": schedules.scheduled_donation(_id(request, "scheduledDonation"), detail=True)})

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Invalid)
        return JSONResponse({"message": str(exc), "errors": exc.errors}, status_code=422)

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"message": str(exc) or "Not found."}, status_code=404)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        message = {404: f"The route {request.url.path.lstrip('/')} could not be found.",
                   405: f"The {request.method} method is not supported for route {request.url.path.lstrip('/')}."}
        return JSONResponse({"message": message.get(exc.status_code, str(exc.detail))}, status_code=exc.status_code)

    base = "/api/dashboard"
    routes = [
        Route(f"{base}/donors", list_donors, methods=["GET"]),
        Route(f"{base}/donors/find-or-create", find_or_create, methods=["POST"]),
        Route(f"{base}/donors/{{donor}}", show_donor, methods=["GET"]),
        Route(f"{base}/donors/{{donor}}", update_donor, methods=["PUT"]),
        Route(f"{base}/transactions", list_transactions, methods=["GET"]),
        Route(f"{base}/transactions/{{transaction}}", show_transaction, methods=["GET"]),
        Route(f"{base}/funds", list_funds, methods=["GET"]),
        Route(f"{base}/funds/{{fund}}", show_fund, methods=["GET"]),
        Route(f"{base}/funds/{{fund}}", update_fund, methods=["PUT"]),
        Route(f"{base}/fund-allocations", list_allocations, methods=["GET"]),
        Route(f"{base}/campaigns", list_campaigns, methods=["GET"]),
        Route(f"{base}/pledges", list_pledges, methods=["GET"]),
        Route(f"{base}/pledges/{{pledge}}", show_pledge, methods=["GET"]),
        Route(f"{base}/scheduled-donations", list_scheduled_donations, methods=["GET"]),
        Route(f"{base}/scheduled-donations/{{scheduledDonation}}", show_scheduled_donation, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={Invalid: invalid, NotFound: not_found,
                                                       HTTPException: http_error})
    expected = f"Bearer {token}".encode()

    def headers_auth(headers: dict[str, str]) -> str | None:
        given = headers.get("authorization", "").strip().encode()
        return token if hmac.compare_digest(given, expected) else None

    def error_body(status: int) -> dict[str, Any]:
        return {"message": "Too Many Attempts." if status == 429 else "Server Error"}

    return FaultMiddleware(app, api="wegive", knobs=knobs, request_log=request_log, headers_auth=headers_auth,
                           unauthorized={"message": "Unauthenticated."}, error_body=error_body)

