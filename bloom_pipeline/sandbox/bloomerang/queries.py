"""List endpoints of the Bloomerang simulator: query-parameter parsing, filters, order and paging.

Kept apart from the routes so the (many) list rules read in one place: ``skip`` ≥ 0, ``take`` 1–50
(**decided**: more than 50 → 400 so a client bug shows), pipe-joined id filters, ``lastModified``
strictly after (UTC), ``orderBy``/``orderDirection`` per the spec (constituents default ``Id Asc``,
transactions/refunds/designations/interactions/notes default ``Date Desc``), integers in ASCII digits
within int64 (``skip``/``take`` int32), numbers finite, and the envelope
``{Total, TotalFiltered, Start, ResultCount, Results}``. Unknown query parameters are ignored.
Filters run on the stored records; only the requested page is rendered. A constituent page's records are
sent as texts kept from their first render while their inputs are unchanged (``ConstituentTexts``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from itertools import islice
from typing import Any

from bloom_pipeline.sandbox.answer_text import JsonText, compact, page_text
from bloom_pipeline.sandbox.bloomerang.indexes import ModifiedOrder
from bloom_pipeline.sandbox.bloomerang.validation import (
    ERR_QUERY,
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    BloomerangError,
    parse_timestamp,
)
from bloom_pipeline.sandbox.kept_texts import KeptTexts, compact_encoder

Record = dict[str, Any]


_INTEGER = re.compile(r"-?[0-9]{1,19}", re.ASCII)
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?", re.ASCII)


def query_error(message: str) -> BloomerangError:
    return BloomerangError(400, message, ERR_QUERY)


def _strict_int(raw: str) -> int | None:
    """An int64 written in ASCII digits, else None: Python's ``int()`` also reads ``1_000``, ``" 5 "`` and
    non-ASCII digits, which the real (.NET) binder refuses."""
    if not _INTEGER.fullmatch(raw):
        return None
    value = int(raw)
    return value if INT64_MIN <= value <= INT64_MAX else None


def int_param(params: Mapping[str, str], name: str, default: int, low: int, high: int | None = None) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    value = _strict_int(raw)
    if value is None or not INT32_MIN <= value <= INT32_MAX:
        raise query_error(f"{name} must be an integer")
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise query_error(f"{name} must be {bounds}")
    return value


def pipe_ints(params: Mapping[str, str], name: str) -> set[int] | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    values = {_strict_int(part.strip()) for part in raw.replace(",", "|").split("|") if part.strip()}
    if None in values:
        raise query_error(f"{name} must be a pipe-separated list of integers")
    return values  # type: ignore[return-value]


def pipe_strings(params: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> set[str] | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    values = {part.strip() for part in raw.split("|") if part.strip()}
    unknown = values - set(allowed)
    if unknown:
        raise query_error(f"Invalid {name} '{sorted(unknown)[0]}'. Valid values: {', '.join(allowed)}")
    return values


def choice(params: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str | None) -> str | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    for option in allowed:  # the .NET backend binds enums case-insensitively
        if option.lower() == raw.lower():
            return option
    raise query_error(f"Invalid {name} '{raw}'. Valid values: {', '.join(allowed)}")


def bool_param(params: Mapping[str, str], name: str) -> bool | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() not in ("true", "false"):
        raise query_error(f"{name} must be true or false")
    return raw.lower() == "true"


def number_param(params: Mapping[str, str], name: str) -> float | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    first = raw.split("|")[0].strip()
    value = float(first) if _NUMBER.fullmatch(first) else math.nan
    if not math.isfinite(value):
        raise query_error(f"{name} must be a number")
    return value


def last_modified(params: Mapping[str, str]) -> datetime | None:
    raw = params.get("lastModified")
    return parse_timestamp(raw, "lastModified") if raw else None


def custom_field_filter(params: Mapping[str, str]) -> tuple[int, str] | None:
    field_id, value = params.get("customFieldId"), params.get("customFieldValue")
    if not field_id and value is None:
        return None
    if not field_id or value is None:
        raise query_error("customFieldId and customFieldValue must be used together")
    number = _strict_int(field_id)
    if number is None:
        raise query_error("customFieldId must be an integer")
    return number, value


class ConstituentTexts:
    """``store.constituent_text`` — ``render_constituent`` as compact JSON text — kept from the first render
    (``kept_texts``) instead of the second: a constituent listed again is not rendered again. The inputs
    checked are the store's own (``_constituent_inputs``: the record, its contact records, the names its
    render shows). Callers hold the store's lock."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._texts = KeptTexts(compact_encoder())  # compact's text

    def text(self, record: Record) -> str:
        store, record_id = self.store, record["Id"]
        live = store.constituents.get(record_id)
        if live is None:
            return store.constituent_text(record_id)  # raises the store's own not-found
        return self._texts.text(record_id, store._constituent_inputs(live),
                                lambda: store.render_constituent(record_id))


class Page:
    """``skip``/``take`` of one list request plus the envelope builder."""

    def __init__(self, params: Mapping[str, str]) -> None:
        self.skip = int_param(params, "skip", 0, 0)
        self.take = int_param(params, "take", 50, 1, 50)

    def envelope(self, total: int, matched: list[Record], render: Callable[[Record], Record]) -> Record:
        return self.window(total, len(matched), matched[self.skip : self.skip + self.take], render)

    def window(self, total: int, filtered: int, records: Iterable[Record], render: Callable[[Record], Record]
               ) -> Record:
        """The envelope of an already cut page (an index gave the ``filtered`` count and this page's records)."""
        rows = [render(r) for r in records]
        return {"Total": total, "TotalFiltered": filtered, "Start": self.skip,
                "ResultCount": len(rows), "Results": rows}

    def window_text(self, total: int, filtered: int, records: Iterable[Record], text: Callable[[Record], str]
                    ) -> JsonText:
        """``window`` as JSON text, from each record's own text (``answer_text``): the same bytes ``_json``
        makes of ``window``'s envelope."""
        texts = [text(r) for r in records]
        return page_text({"Total": total, "TotalFiltered": filtered, "Start": self.skip,
                          "ResultCount": len(texts)}, "Results", texts, compact)

    def envelope_text(self, total: int, matched: list[Record], text: Callable[[Record], str]) -> JsonText:
        return self.window_text(total, len(matched), matched[self.skip : self.skip + self.take], text)

    def in_modified_order(self, order: ModifiedOrder, since: datetime | None, direction: str | None,
                          table: Mapping[int, Record]) -> tuple[int, list[Record]]:
        """``(TotalFiltered, this page)`` of the records modified after ``since`` in ``(LastModifiedDate, Id)``
        order, cut from the index by position: O(log n + page), whatever the table's size."""
        start = order.start_after(since)
        filtered = len(order) - start
        if direction == "Desc":
            stop = len(order) - self.skip
            ids = order.ids(max(start, stop - self.take), stop)[::-1] if stop > start else []
        else:
            ids = order.ids(start + self.skip, min(len(order), start + self.skip + self.take))
        return filtered, [table[i] for i in ids]

    def in_id_order(self, table: Mapping[int, Record], direction: str | None) -> list[Record]:
        """This page of a whole table in Id order: tables are filled in Id order (ids only grow and a
        record is never re-inserted), so the dict's own order is the Id order."""
        values = reversed(table.values()) if direction == "Desc" else iter(table.values())
        return list(islice(values, self.skip, self.skip + self.take))


def modified_after(record: Record, since: datetime | None) -> bool:
    return since is None or record["_audit"]["modified"] > since


def order(records: Iterable[Record], key: Callable[[Record], Any], direction: str | None) -> list[Record]:
    """Sort by ``key`` then Id, both in the requested direction (stable paging across requests)."""
    return sorted(records, key=lambda r: (key(r), r["Id"]), reverse=direction == "Desc")


def audit_key(order_by: str | None) -> Callable[[Record], Any]:
    if order_by == "CreatedDate":
        return lambda r: r["_audit"]["created"]
    if order_by == "LastModifiedDate":
        return lambda r: r["_audit"]["modified"]
    return lambda r: r["Id"]


def simple_list(
    params: Mapping[str, str],
    table: Mapping[int, Record],
    render: Callable[[Record], Record],
    *,
    name_search: bool = False,
    modified: bool = False,
    extra: Callable[[Record], bool] | None = None,
    id_param: str = "id",
) -> Record:
    """Funds, campaigns, appeals, emails, phones, addresses, refunds: filter → Id order → page."""
    page = Page(params)
    ids = pipe_ints(params, id_param)
    active = bool_param(params, "isActive")
    since = last_modified(params) if modified else None
    search = (params.get("search") or "").strip().lower() if name_search else ""
    matched = [
        r for r in table.values()
        if (ids is None or r["Id"] in ids)
        and (active is None or r.get("IsActive") == active)
        and modified_after(r, since)
        and (not search or search in r.get("Name", "").lower())
        and (extra is None or extra(r))
    ]
    return page.envelope(len(table), order(matched, audit_key(None), "Asc"), render)
