"""The indexes the WeGive simulator's list pages are cut from, and the schedule renders that use them.

Why: at 20,000 donors a quiet night spent most of its 78 s of HTTP wait in the WeGive sandbox: a page of 200
pledges or scheduled donations took ~4 s, because each row's payments were found by a scan of every
transaction (``WeGiveStore._payments``), and the first page of each scan filtered and sorted the whole table.
The indexes (``page_index``) are kept beside the store, built at start from the records it holds (a
restored state included) and refreshed before each use; they decide only which records a page holds, never
what the store holds, so a kept world stays valid (``state._SERVING_ONLY``).

``schedule_render`` renders a pledge or a scheduled donation with the store's own ``render_pledge`` /
``render_scheduled_donation`` — the same code, so the same bytes — run on a view of the store whose
``_payments`` answers from the index of transactions by schedule instead of scanning them. (The store's
module is not changed: it is part of the state's fingerprint.)

``AllocationTexts`` writes a fund-allocation row's JSON text around its fund's, encoded once per fund and page: a
scan sends every allocation (69,172 at 20,000 donors, 45 MB of JSON), each embedding the whole ``Fund`` model.

``DonorRowTexts`` keeps a donor list row's JSON text from its first render (``kept_texts``), checked against the
donor's values the row reads (their ``marshal`` bytes, compared in C), not against a row built again for each read.
"""

from __future__ import annotations

import marshal
from functools import partial
from itertools import compress
from operator import is_not, methodcaller
from typing import Any

from bloom_pipeline.sandbox.answer_text import compact
from bloom_pipeline.sandbox.kept_texts import KeptTexts, compact_encoder
from bloom_pipeline.sandbox.page_index import IdOrder, ValueGroups, ValueOrder
from bloom_pipeline.sandbox.wegive import resources
from bloom_pipeline.sandbox.wegive.store import WeGiveStore

# the columns of a transaction its list's range filters read (app.list_transactions: parameter -> column)
RANGE_COLUMNS = ("updated_at", "created_at")
PAYMENT_KEYS = ("pledge_id", "scheduled_donation_id")
_DELETED_AT = methodcaller("get", "deleted_at")


class WeGiveIndexes:
    """Sorted ids of the tables a sync pages through whole, transactions by modification and creation time,
    and transactions by the schedule they pay."""

    def __init__(self, store: WeGiveStore) -> None:
        self.store = store
        # Writes the app made through store methods that never touch a transaction (a donor's PUT and
        # find-or-create, a fund's PUT: each counts one write in ``store.writes`` as it starts). Left out of the
        # transactions' stamp, so a write-back of donors does not make every transaction index refresh (a refresh
        # reads a column of every transaction: ~35 ms each at 58,715 transactions).
        self.writes_elsewhere = 0
        writes = lambda: store.writes - self.writes_elsewhere  # noqa: E731 - read at each refresh
        with store.lock:
            self.ids = {name: IdOrder(lambda name=name: getattr(store, name))
                        for name in ("donors", "transactions", "fund_allocations")}
            self.by_time = {column: ValueOrder(lambda: store.transactions, column, writes)
                            for column in RANGE_COLUMNS}
            self.payments = {key: ValueGroups(lambda: store.transactions, key, writes) for key in PAYMENT_KEYS}

    def donors_in_view(self, archived: bool) -> list[int]:
        """The ids of the donors a donor list's ``view`` alone lists, in id order: the archived ones (with
        ``deleted_at``) or the others. One pass over the donors' ``deleted_at`` in C, not a filter and a sort
        in Python (which took ~0.3 s a first page at 100,000 donors); read where ``app.ScanCache`` recomputes
        a list (its first page, or after a write), so it is as live as the filtered listing was."""
        table = self.store.donors
        flags = map(partial(is_not, None), map(_DELETED_AT, table.values()))
        held = set(compress(table, flags))  # the archived donors' ids
        if archived:
            return sorted(held)
        ids = self.ids["donors"].sorted_ids()
        return [i for i in ids if i not in held] if held else list(ids)

    def payments_of(self, key: str, schedule_id: int) -> list[dict[str, Any]]:
        """What ``WeGiveStore._payments`` answers — the transactions whose ``key`` is ``schedule_id``, by
        ``(created_at, id)`` — from the index (each candidate checked against the live record)."""
        table = self.store.transactions
        found = [t for t in (table.get(i) for i in self.payments[key].ids(schedule_id))
                 if t is not None and t.get(key) == schedule_id]
        return sorted(found, key=lambda t: (t["created_at"], t["id"]))


class _IndexedStore:
    """The store as its schedule renders see it, but for ``_payments`` (answered from the index)."""

    def __init__(self, store: WeGiveStore, indexes: WeGiveIndexes) -> None:
        self._store = store
        self._payments = indexes.payments_of

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class ScheduleRender:
    """``render_pledge`` / ``render_scheduled_donation`` of the store, O(payments) per row instead of O(n)."""

    def __init__(self, store: WeGiveStore, indexes: WeGiveIndexes) -> None:
        self._view = _IndexedStore(store, indexes)

    def pledge(self, pledge_id: int) -> dict[str, Any]:
        return WeGiveStore.render_pledge(self._view, pledge_id)  # type: ignore[arg-type]

    def scheduled_donation(self, schedule_id: int, *, detail: bool = False) -> dict[str, Any]:
        return WeGiveStore.render_scheduled_donation(self._view, schedule_id, detail=detail)  # type: ignore[arg-type]


def _encode(payload: Any) -> str:
    return compact(payload, ensure_ascii=False)  # what JSONResponse sends


def _scalar(value: Any) -> str:
    """``_encode`` of one value, without the encoder's set-up for the ids and cents every row has."""
    if type(value) is int:
        return int.__repr__(value)  # what json's encoder writes for an int
    return "null" if value is None else _encode(value)


class AllocationTexts:
    """The JSON text of ``store.render_allocation(alloc)`` (``{id, fund, amount, transaction_id}``, the fund the
    ``Fund`` model as it is now), byte for byte, with each fund's text encoded once: one per page (the caller
    makes one for each answer, under the store's lock, so a fund changed since is seen)."""

    def __init__(self, store: WeGiveStore) -> None:
        self.store = store
        self._funds: dict[int, str] = {}

    def text(self, alloc: dict[str, Any]) -> str:
        store = self.store
        fund_id = int(alloc["fund"]["id"])
        if fund_id not in store.funds:  # the allocation's own copy of a fund the store no longer holds
            return _encode(store.render_allocation(alloc))
        fund = self._funds.get(fund_id)
        if fund is None:
            fund = self._funds[fund_id] = _encode(resources.fund_model(store.funds[fund_id]))
        return (f'{{"id":{_scalar(alloc["id"])},"fund":{fund},"amount":{_scalar(store.money(alloc["amount"]))},'
                f'"transaction_id":{_scalar(alloc.get("transaction_id"))}}}')


# everything ``resources.donor_row`` reads of a stored donor
DONOR_ROW_INPUTS = (*resources.DONOR_TABLE_KEYS, "mailing_address", "billing_address")


class DonorRowTexts:
    """The JSON text of ``store.render_donor_row(id)`` — what ``store.donor_row_text`` sends — byte for byte,
    rendered once while the donor's values the row reads are unchanged. Callers hold the store's lock."""

    def __init__(self) -> None:
        self._texts = KeptTexts(compact_encoder(ensure_ascii=False))  # _encode's text

    def text(self, donor: dict[str, Any]) -> str:
        """The row text of ``donor``, a live record of ``store.donors``. The inputs are the values' ``marshal``
        bytes (format 2: no back-references, so equal bytes are equal values of the same types — stricter than
        ``==``, which takes ``True`` for ``1``): written in C in about the time a copy of them takes to start,
        and a kept snapshot the garbage collector never walks (a copied one was a sixth of a first render's
        cost at 20,000 donors, in collections). A value marshal cannot write (a type a test planted) falls
        back to the values themselves, compared by ``==``."""
        values = list(map(donor.get, DONOR_ROW_INPUTS))
        try:
            inputs: Any = marshal.dumps(values, 2)
        except ValueError:
            inputs = values
        return self._texts.text(int(donor["id"]), inputs, lambda: resources.donor_row(donor))
