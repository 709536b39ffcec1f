"""The apply step's write pool without a network: its size, and the ordering rules that keep its results
those of one write at a time (a follower after its leader, one record's writes never overlapping, the pending
marker before each create, results in plan order, failures recorded and the others going on)."""

from __future__ import annotations

import json
import threading
import time

import pandas as pd
import pytest

from bloom_pipeline.clients.http import OutcomeUnknownError
from bloom_pipeline.errors import ApiError
from bloom_pipeline.sync.apply.loop import apply_plan
from bloom_pipeline.sync.apply.pool import PoolSize, connections_needed
from bloom_pipeline.sync.apply.refs import RefResolver


class Budget:
    def __init__(self, limit: int, period: float, used: int) -> None:
        self.limit, self.period, self._used = limit, period, used

    def used(self) -> int:
        return self._used


def test_free_slots_beyond_the_writes_in_flight_use_every_connection():
    assert connections_needed(8, 3, Budget(1000, 3600, used=10), latency=0.2) == 8


def test_a_spent_budget_needs_only_its_pace_times_the_latency_plus_one():
    # 600 a minute = 10 a second; 0.2 s each → 2 in flight keep the pace, one more to spare
    assert connections_needed(8, 3, Budget(600, 60, used=600), latency=0.2) == 3
    assert connections_needed(8, 1, Budget(1000, 3600, used=1000), latency=0.2) == 2  # Bloomerang's default
    assert connections_needed(4, 1, Budget(100_000, 60, used=100_000), latency=0.2) == 4  # never above the cap


def test_a_cap_of_one_is_the_serial_path_and_no_budget_or_latency_means_the_cap():
    assert connections_needed(1, 0, Budget(10, 60, used=0), latency=0.2) == 1
    assert connections_needed(6, 0, None, latency=0.2) == 6
    assert connections_needed(6, 0, Budget(10, 60, used=10), latency=None) == 6


class SlowBloomerang:
    """A writer whose requests take a little while on whatever thread sends them; it notes what overlapped."""

    entity = "constituents"

    def __init__(self, fail=(), lose=()):
        self.lock = threading.Lock()
        self.ids = iter(range(500, 10_000))
        self.active: set[int | str] = set()
        self.overlaps: list[tuple] = []
        self.peak = 0
        self.fail, self.lose = set(fail), set(lose)
        self.created: dict[str, int] = {}

    def _send(self, what):
        with self.lock:
            if what in self.active:
                self.overlaps.append(what)
            self.active.add(what)
            self.peak = max(self.peak, len(self.active))
        time.sleep(0.02)
        with self.lock:
            self.active.discard(what)

    def create(self, source, source_id, payload):
        self._send(f"new:{source_id}")
        if source_id in self.fail:
            raise ApiError(400, f"rejected {source_id}", "POST", "/constituent")
        with self.lock:
            self.created[source_id] = next(self.ids)
        if source_id in self.lose:
            raise OutcomeUnknownError(None, "connection dropped", "POST", "/constituent")
        return {"Id": self.created[source_id], **payload}

    def update(self, bloomerang_id, payload):
        self._send(bloomerang_id)
        return {"Id": bloomerang_id, **payload}

    def find_existing(self, source, source_id, payload):
        raise ApiError(503, "still down", "GET", "/constituents")


class Ledger:
    def __init__(self, writer):
        self.writer, self.events = writer, []

    def mark_pending(self, entity, source, source_id, payload_hash):
        self.events.append(("pending", source_id, f"new:{source_id}" in self.writer.active))

    def record(self, result, written):
        self.events.append(("record", result.source_id, result.action))


def rows(*specs):
    return pd.DataFrame([{"source": "wegive", "source_id": sid, "bloomerang_id": bid, "action": action,
                          "payload": json.dumps({"FirstName": sid}), "diff": None, "payload_hash": "h",
                          "reason": None, "target_ref": target} for sid, action, bid, target in specs])


def run(plan, writer, cap):
    resolver = RefResolver()

    def remember(result, written):
        resolver.add("wegive", "donors", result.source_id, result.bloomerang_id)

    ledger = Ledger(writer)
    pool = PoolSize(cap)
    try:
        return apply_plan(plan, writer, resolver, ledger, on_written=remember, pool=pool), ledger, pool
    finally:
        pool.close()


PLAN = [(str(i), "create", None, None) for i in range(1, 11)] + [
    ("u1", "update", 42, None), ("u2", "update", 42, None),  # two writes to one Bloomerang record
    ("f3", "update", None, "ref:wegive.donors:3"),  # a follower of a record this plan creates
    ("x", "create", None, None), ("gone", "update", None, "ref:wegive.donors:nobody"),
]


@pytest.mark.parametrize("cap", [1, 4])
def test_the_pool_gives_the_serial_results_in_plan_order(cap):
    writer = SlowBloomerang(fail={"x"})
    results, ledger, pool = run(rows(*PLAN), writer, cap)
    assert [r.source_id for r in results] == [spec[0] for spec in PLAN]
    actions = {r.source_id: r.action for r in results}
    assert actions == {**{str(i): "created" for i in range(1, 11)}, "u1": "updated", "u2": "updated",
                       "f3": "updated", "x": "failed", "gone": "failed"}
    follower = next(r for r in results if r.source_id == "f3")
    assert follower.bloomerang_id == writer.created["3"]
    assert "unresolved reference ref:wegive.donors:nobody" in next(r.error for r in results if r.source_id == "gone")
    assert writer.overlaps == []  # u1 and u2 never in flight together
    assert pool.peak == cap and writer.peak <= cap  # filled to its cap, never beyond
    # each create's pending marker was written before its request was sent, and every row was recorded once
    assert all(not sent for kind, _, sent in ledger.events if kind == "pending")
    marked = [sid for kind, sid, _ in ledger.events if kind == "pending"]
    assert marked == [str(i) for i in range(1, 11)] + ["x"]
    assert sorted(sid for kind, sid, _ in ledger.events if kind == "record") == sorted(s[0] for s in PLAN)


def test_a_lost_answer_in_the_pool_keeps_its_pending_marker_for_the_next_run():
    writer = SlowBloomerang(lose={"2"})
    results, ledger, _ = run(rows(*PLAN[:4]), writer, 4)
    lost = next(r for r in results if r.source_id == "2")
    assert lost.action == "failed" and lost.extra.get("pending")
    recorded = ledger.events.index(("record", "2", "failed"))
    assert ledger.events[recorded + 1] == ("pending", "2", False)  # marked again at once, for the next run's lookup


def test_a_follower_right_behind_its_leader_waits_for_the_leaders_id():
    writer = SlowBloomerang()
    results, _, _ = run(rows(("1", "create", None, None), ("f1", "update", None, "ref:wegive.donors:1")), writer, 4)
    assert [(r.source_id, r.action) for r in results] == [("1", "created"), ("f1", "updated")]
    assert results[1].bloomerang_id == results[0].bloomerang_id == writer.created["1"]


class CountedBudget(Budget):
    def __init__(self, limit: int, period: float, used: int) -> None:
        super().__init__(limit, period, used)
        self.reads = 0

    def used(self) -> int:
        self.reads += 1
        return super().used()


class Session:
    def __init__(self, budget: Budget) -> None:
        self.rate_budget, self.latency = budget, 0.2


def test_a_roomy_budget_is_read_once_per_batch_of_writes_and_a_tight_one_before_each():
    roomy = CountedBudget(100_000, 3600, used=10)
    pool = PoolSize(4, Session(roomy))
    assert [pool(3) for _ in range(99)] == [4] * 99
    assert roomy.reads == 3  # 1 read, READ_EVERY (32) calls without, ...
    tight = CountedBudget(1000, 3600, used=1000 - 30)  # room for fewer than cap + READ_EVERY more writes
    pool = PoolSize(4, Session(tight))
    assert [pool(1) for _ in range(10)] == [4] * 10  # 30 free slots > 1 in flight: still the cap
    assert tight.reads == 10
    tight._used = 1000  # the window is full: the pace decides, read before every write
    assert pool(1) == 2 and tight.reads == 11
