"""Indexes of the Bloomerang simulator store, so a request costs O(log n + page), not O(n).

The store's tables stay plain dicts keyed by Id (tests read them directly); these indexes sit beside them and
are kept by the store's own write methods. Two shapes cover every lookup the list endpoints and the write
rules need:

* ``Postings`` — key → the ids filed under it (a constituent's emails, a transaction's designations, the
  records holding a custom value, the constituents of one last name). Entries may go stale when a record
  changes outside the store's methods, so every reader checks the record it gets back: a posting only
  narrows the candidates, it never decides a match.
* ``ModifiedOrder`` — ``(LastModifiedDate, Id)`` in ascending order: the ``lastModified`` filter and the
  ``orderBy=LastModifiedDate`` order of constituents and transactions, answered by bisection instead of a
  scan and a sort of the whole table on every page. The same shape keyed by ``Date`` is the default
  (``Date``) order of the transaction list (``store.transactions_by_date``): a reconciliation pages through
  every transaction in it, and each page sorted the whole table.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Hashable, Iterable
from datetime import datetime


class Postings:
    """key → set of ids; ``ids(key)`` is a sorted copy (callers verify each id against its record)."""

    def __init__(self) -> None:
        self._ids: dict[Hashable, set[int]] = {}

    def add(self, key: Hashable, record_id: int) -> None:
        self._ids.setdefault(key, set()).add(record_id)

    def discard(self, key: Hashable, record_id: int) -> None:
        ids = self._ids.get(key)
        if ids is not None:
            ids.discard(record_id)
            if not ids:
                del self._ids[key]

    def ids(self, key: Hashable) -> list[int]:
        return sorted(self._ids.get(key, ()))

    def drop(self, key: Hashable) -> None:
        self._ids.pop(key, None)


class ModifiedOrder:
    """Ids ordered by ``(modified, Id)``: a sorted list kept by bisection (insert/move cost one memmove)."""

    def __init__(self) -> None:
        self._keys: list[tuple[datetime, int]] = []

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, modified: datetime, record_id: int) -> None:
        insort(self._keys, (modified, record_id))

    def remove(self, modified: datetime, record_id: int) -> None:
        at = bisect_left(self._keys, (modified, record_id))
        if at < len(self._keys) and self._keys[at] == (modified, record_id):
            del self._keys[at]

    def move(self, old: datetime, new: datetime, record_id: int) -> None:
        if old != new:
            self.remove(old, record_id)
            self.add(new, record_id)

    def start_after(self, since: datetime | None) -> int:
        """Position of the first key modified strictly after ``since`` (0 without a filter)."""
        if since is None:
            return 0
        return bisect_right(self._keys, (since, float("inf")))

    def ids(self, start: int, stop: int) -> list[int]:
        return [record_id for _, record_id in self._keys[start:stop]]

    def ids_after(self, since: datetime | None) -> Iterable[int]:
        return self.ids(self.start_after(since), len(self._keys))
