"""The per-key budget: sliding window, max wait, key never stored, and shared across processes."""

from __future__ import annotations

import multiprocessing as mp
import time

import pytest
from client_test_server import ScriptedServer

from bloom_pipeline.clients.http import ApiSession, RateLimitedError
from bloom_pipeline.clients.ratelimit import RateBudgetExhausted, SharedRateBudget, default_budget_dir, key_id

KEY = "budget-key-0c9e2b7a4c556d1f"


def test_budget_admits_up_to_the_limit_then_waits_for_the_window(tmp_path):
    budget = SharedRateBudget(KEY, limit=3, period=0.5, budget_dir=tmp_path, api="t1", max_wait=5)
    started = time.monotonic()
    for _ in range(3):
        assert budget.acquire() == 0.0
    assert budget.used() == 3
    waited = budget.acquire()
    assert 0.2 < waited < 1.5 and time.monotonic() - started >= 0.4


def test_exhausted_budget_fails_fast_with_a_clear_message(tmp_path):
    budget = SharedRateBudget(KEY, limit=2, period=60, budget_dir=tmp_path, api="t2", max_wait=1)
    budget.acquire()
    budget.acquire()
    started = time.monotonic()
    with pytest.raises(RateBudgetExhausted) as err:
        budget.acquire()
    assert time.monotonic() - started < 0.5  # did not sleep out the max wait first
    assert 55 < err.value.retry_in <= 60 + budget.guard  # the slot frees when the request left the window + guard
    assert "2 requests per 60 s" in str(err.value) and KEY not in str(err.value)


def test_budget_file_is_named_by_key_hash_and_never_holds_the_key(tmp_path):
    budget = SharedRateBudget(KEY, limit=5, period=60, budget_dir=tmp_path, api="t3")
    budget.acquire()
    assert budget.path.name == f"t3-{key_id(KEY)}.sqlite"
    for file in tmp_path.iterdir():
        assert KEY.encode() not in file.read_bytes()
    assert KEY not in repr(budget) and key_id(KEY)[:12] in repr(budget)


def test_default_budget_dir_follows_bloom_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("BLOOM_DATA_DIR", str(tmp_path))
    assert default_budget_dir() == tmp_path / "ratelimit"
    monkeypatch.delenv("BLOOM_DATA_DIR")
    assert str(default_budget_dir()) == "data/ratelimit"


def test_two_budget_objects_for_one_key_share_the_count(tmp_path):
    a = SharedRateBudget(KEY, limit=2, period=60, budget_dir=tmp_path, api="t4", max_wait=0)
    b = SharedRateBudget(KEY, limit=2, period=60, budget_dir=tmp_path, api="t4", max_wait=0)
    a.acquire()
    b.acquire()
    with pytest.raises(RateBudgetExhausted):
        a.acquire()
    other_key = SharedRateBudget("another-key-123456", limit=2, period=60, budget_dir=tmp_path, api="t4")
    assert other_key.acquire() == 0.0


def _spend(budget_dir: str, count: int, queue) -> None:
    budget = SharedRateBudget(KEY, limit=5, period=1.0, budget_dir=budget_dir, api="mp", max_wait=10)
    stamps = []
    for _ in range(count):
        budget.acquire()
        stamps.append(time.time())
    queue.put(stamps)


def test_budget_is_shared_by_two_processes(tmp_path):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_spend, args=(str(tmp_path), 6, queue)) for _ in range(2)]
    for proc in procs:
        proc.start()
    stamps = sorted(queue.get(timeout=60) + queue.get(timeout=60))
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    assert len(stamps) == 12
    # never more than the 5 allowed at once across both processes (two private budgets would let 10 through
    # in the first instant). Stamps are taken after acquire() returns, so a loaded machine can delay one;
    # a half-second window keeps the check meaningful without timing flakiness.
    assert max(sum(1 for u in stamps if t <= u < t + 0.5) for t in stamps) <= 5
    assert stamps[-1] - stamps[0] >= 2.0  # 12 requests at 5/s need at least two further windows


def test_session_turns_an_exhausted_budget_into_rate_limited_error(tmp_path):
    budget = SharedRateBudget(KEY, limit=1, period=60, budget_dir=tmp_path, api="t5", max_wait=0)
    with ScriptedServer() as server:
        api = ApiSession("bloomerang", server.url, {"X-API-KEY": KEY}, [KEY], rate_budget=budget)
        api.get("funds")
        with pytest.raises(RateLimitedError) as err:
            api.get("funds")
        assert len(server.requests) == 1  # the second request never left the process
    assert err.value.retry_after is not None and KEY not in str(err.value)


def test_a_slot_frees_only_a_guard_after_its_request_left_the_window(tmp_path):
    now = [1000.0]
    budget = SharedRateBudget(KEY, limit=1, period=60, budget_dir=tmp_path, api="t6", max_wait=0, guard=0.5,
                              clock=lambda: now[0])
    budget.acquire()
    now[0] += 60.2  # out of a 60 s window, but within the guard: the API may not have counted it out yet
    with pytest.raises(RateBudgetExhausted) as err:
        budget.acquire()
    assert err.value.retry_in == pytest.approx(0.3)
    assert budget.used() == 1
    now[0] += 0.31
    budget.acquire()
    assert budget.used() == 1


def test_the_default_guard_is_half_a_second_and_never_more_than_a_hundredth_of_the_period(tmp_path):
    assert SharedRateBudget(KEY, limit=5, period=3600, budget_dir=tmp_path, api="t7").guard == 0.5
    assert SharedRateBudget(KEY, limit=5, period=1.0, budget_dir=tmp_path, api="t8").guard == pytest.approx(0.01)
