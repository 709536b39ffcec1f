"""Serving-side indexes over a simulator store's tables, so a list page costs O(page + log n), not O(n).

Why here and not in the stores: a saved sandbox state (``state.py``) is refused when a module that decides
what a store holds changes, and remaking the 20,000-donor world costs half an hour of both cores. These
indexes decide only *how* an answer is computed from the records a store holds — which ids a page cuts, in
which order — never what a store holds, so they live in a serving-only module (``state._SERVING_ONLY``) and
are built from the records at start and brought up to date before each use.

What "up to date" means. A store's tables are plain dicts keyed by id that its write methods change (and that
tests change directly). Each index remembers the table's *stamp* — the store's ``writes`` counter where it has
one, the table's size and its last inserted id — and refreshes when the stamp moved: three passes over the table
in C (its keys, the indexed column, a comparison with the last ones), then Python-level work only for the
records that were added, removed or changed. A page read while nothing was written costs the stamp check and
a bisection. What the stamp cannot see: a record's indexed value edited in place by hand (a test writing
``table[id]["updated_at"]``) with no write through a counting method and no change in the table's size. Such
an edit is seen at the next stamp change; readers check every candidate against the live record, so a stale
entry never lists a record that does not match — it can only miss one whose value moved into a range.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Hashable, Iterable
from operator import methodcaller
from typing import Any

_MISSING = object()


class TableIndex:
    """The ids of one table in its dict order, and one column's values, as of the table's last stamp.

    ``table``: returns the live dict (looked up on every refresh: a store attribute may be rebound).
    ``column``: the indexed key of each record (``None``: the ids only). ``writes``: the store's write counter
    (a constant where the store keeps none). Subclasses say what to do with a rebuild, an added / removed
    record and a changed value."""

    def __init__(self, table: Callable[[], dict[Any, Any]], column: str | None = None,
                 writes: Callable[[], int] = lambda: 0) -> None:
        self._table, self._column, self._writes = table, column, writes
        self._get = methodcaller("get", column) if column is not None else None
        self._stamp: tuple[Any, ...] | None = None
        self._keys: list[Any] = []
        self._values: list[Any] = []

    def refresh(self) -> None:
        """Bring the index up to the live table (callers hold the store's lock)."""
        table = self._table()
        stamp = (id(table), self._writes(), len(table), next(reversed(table), _MISSING))
        if stamp == self._stamp:
            return
        keys = list(table)
        values = list(map(self._get, table.values())) if self._get is not None else []
        held = len(self._keys)
        if self._stamp is None or len(keys) < held or keys[:held] != self._keys:
            self._rebuild(keys, values)  # a record removed or the order changed: rare, build again
        else:  # unchanged or appended to: change what moved, add what is new
            if self._get is not None and values[:held] != self._values:
                old = self._values
                for at in range(held):
                    if values[at] is not old[at] and values[at] != old[at]:
                        self._changed(keys[at], old[at], values[at])
            for at in range(held, len(keys)):
                self._added(keys[at], values[at] if self._get is not None else None)
        self._keys, self._values, self._stamp = keys, values, stamp

    def _rebuild(self, keys: list[Any], values: list[Any]) -> None:
        raise NotImplementedError

    def _added(self, key: Any, value: Any) -> None:
        raise NotImplementedError

    def _changed(self, key: Any, old: Any, new: Any) -> None:
        raise NotImplementedError


class IdOrder(TableIndex):
    """A table's ids in ascending order (the default order of every list): ``ids`` is the live sorted list,
    sliced by the page that is cut."""

    def __init__(self, table: Callable[[], dict[Any, Any]], writes: Callable[[], int] = lambda: 0) -> None:
        super().__init__(table, None, writes)
        self.ids: list[int] = []
        self.refresh()

    def sorted_ids(self) -> list[int]:
        self.refresh()
        return self.ids

    def _rebuild(self, keys: list[Any], values: list[Any]) -> None:
        self.ids = sorted(keys)

    def _added(self, key: Any, value: Any) -> None:
        insort(self.ids, key)  # a new id is the largest: an append

    def _changed(self, key: Any, old: Any, new: Any) -> None:  # pragma: no cover - no column
        pass


class ValueOrder(TableIndex):
    """Ids ordered by ``(value, id)`` of a text column (the stored ``…Z`` timestamps): a range filter is two
    bisections. A value that is not text (``None``, a number a test planted) is kept apart in ``odd``: a range
    query hands those ids to the reader to check, as the text comparison of the filter itself decides them."""

    def __init__(self, table: Callable[[], dict[Any, Any]], column: str,
                 writes: Callable[[], int] = lambda: 0) -> None:
        super().__init__(table, column, writes)
        self._order: list[tuple[str, int]] = []
        self._odd: set[Any] = set()
        self.refresh()

    def between(self, start: str | None, end: str | None) -> list[Any]:
        """Candidate ids whose value may lie in ``[start, end]`` (either side open): every id whose text value
        does, and the ids of values that are not text. Unordered; callers check each record."""
        self.refresh()
        low = 0 if start is None else bisect_left(self._order, (start,))
        high = len(self._order) if end is None else bisect_right(self._order, (end, float("inf")))
        return [record_id for _, record_id in self._order[low:high]] + list(self._odd)

    def _rebuild(self, keys: list[Any], values: list[Any]) -> None:
        self._order = sorted((v, k) for k, v in zip(keys, values, strict=True) if type(v) is str)
        self._odd = {k for k, v in zip(keys, values, strict=True) if type(v) is not str and v is not None}

    def _added(self, key: Any, value: Any) -> None:
        if type(value) is str:
            insort(self._order, (value, key))
        elif value is not None:
            self._odd.add(key)

    def _changed(self, key: Any, old: Any, new: Any) -> None:
        if type(old) is str:
            at = bisect_left(self._order, (old, key))
            if at < len(self._order) and self._order[at] == (old, key):
                del self._order[at]
        self._odd.discard(key)
        self._added(key, new)


class ValueGroups(TableIndex):
    """value → ids holding it (a transaction's ``pledge_id``, a receipt's ``auctionId``): ``ids(value)`` lists
    the candidates of an equality filter, in no particular order; unhashable values are kept apart and always
    handed over. Callers check each record."""

    def __init__(self, table: Callable[[], dict[Any, Any]], column: str,
                 writes: Callable[[], int] = lambda: 0) -> None:
        super().__init__(table, column, writes)
        self._groups: dict[Hashable, set[Any]] = {}
        self._odd: set[Any] = set()
        self.refresh()

    def ids(self, value: Hashable) -> Iterable[Any]:
        self.refresh()
        found = self._groups.get(value, ())
        return [*found, *self._odd] if self._odd else list(found)

    def _rebuild(self, keys: list[Any], values: list[Any]) -> None:
        self._groups, self._odd = {}, set()
        for key, value in zip(keys, values, strict=True):
            self._added(key, value)

    def _added(self, key: Any, value: Any) -> None:
        try:
            self._groups.setdefault(value, set()).add(key)
        except TypeError:  # an unhashable value: checked by every reader
            self._odd.add(key)

    def _changed(self, key: Any, old: Any, new: Any) -> None:
        try:
            group = self._groups.get(old)
        except TypeError:
            group = None
        if group is not None:
            group.discard(key)
            if not group:
                del self._groups[old]
        self._odd.discard(key)
        self._added(key, new)
