"""The serving-side list indexes (sandbox/page_index.py) answer as a scan of the live table does, through adds,
removals and counted in-place changes, whatever order they come in."""

from __future__ import annotations

import random
from typing import Any

from bloom_pipeline.sandbox.page_index import IdOrder, ValueGroups, ValueOrder


class _Store:
    """A table and a write counter, as a simulator store has them."""

    def __init__(self) -> None:
        self.table: dict[int, dict[str, Any]] = {}
        self.writes = 0


def _stamp(rng: random.Random) -> Any:
    # mostly timestamps in the stored text form; sometimes what a hostile record holds
    return rng.choice([f"2026-11-{rng.randint(1, 28):02d}T0{rng.randint(0, 9)}:00:00.000000Z"] * 6
                      + [None, 7, "soon", "9999-12-31T23:59:59.000000Z"])


def _scan_between(table: dict[int, dict[str, Any]], start: str | None, end: str | None) -> list[int]:
    out = []
    for key, record in table.items():
        value = record.get("at")
        if value is None:
            continue
        if type(value) is not str:
            out.append(key)  # not text: handed to the reader, which decides
        elif (start is None or value >= start) and (end is None or value <= end):
            out.append(key)
    return sorted(out)


def test_indexes_follow_adds_removals_and_counted_changes_as_a_scan_would() -> None:
    rng = random.Random(20261202)
    store = _Store()
    for key in range(1, 41):
        store.table[key] = {"at": _stamp(rng), "group": rng.choice([1, 2, 3, None])}
    ids = IdOrder(lambda: store.table)
    by_time = ValueOrder(lambda: store.table, "at", lambda: store.writes)
    groups = ValueGroups(lambda: store.table, "group", lambda: store.writes)
    next_key = 41
    for step in range(400):
        action = rng.random()
        if action < 0.35:  # a record made (the next id), as the store's add methods do
            store.table[next_key] = {"at": _stamp(rng), "group": rng.choice([1, 2, 3, [4]])}
            next_key += 1
            store.writes += 1
        elif action < 0.5 and store.table:  # a record removed (a deletion, or a test dropping one)
            del store.table[rng.choice(list(store.table))]
        elif store.table:  # a record changed through a counting write method
            record = store.table[rng.choice(list(store.table))]
            record.update(at=_stamp(rng), group=rng.choice([1, 2, 3, None]))
            store.writes += 1
        start = rng.choice([None, "2026-11-10T00:00:00.000000Z", "2026-11-20"])
        end = rng.choice([None, "2026-11-15T00:00:00.000000Z", "zz"])
        assert ids.sorted_ids() == sorted(store.table), step
        assert sorted(by_time.between(start, end)) == _scan_between(store.table, start, end), step
        for value in (1, 2, 3, None):
            wanted = sorted(k for k, r in store.table.items() if r["group"] == value)
            assert sorted(k for k in groups.ids(value) if store.table.get(k, {}).get("group") == value) == wanted
            assert set(groups.ids(value)) >= set(wanted), step  # candidates never miss a match


def test_a_read_with_nothing_written_touches_nothing_and_an_append_is_added_not_rebuilt() -> None:
    store = _Store()
    store.table.update({key: {"at": "2026-11-01T00:00:00.000000Z"} for key in range(1, 6)})
    order = ValueOrder(lambda: store.table, "at", lambda: store.writes)
    calls = []
    order._rebuild = lambda *a: calls.append("rebuild")  # type: ignore[method-assign]
    order._added = lambda *a: calls.append("added")  # type: ignore[method-assign]
    order.between(None, None)
    assert calls == []
    store.table[6] = {"at": "2026-11-02T00:00:00.000000Z"}
    order.between(None, None)
    assert calls == ["added"], "an appended record is added, not the index rebuilt"
