"""The budget's request count is kept by triggers (``tally``) instead of counting the window on every request:
it must always be the count the old queries gave, in a file made before the tally existed too."""

from __future__ import annotations

import contextlib
import sqlite3

import pytest

from bloom_pipeline.clients.ratelimit import RateBudgetExhausted, SharedRateBudget

KEY = "tally-test-key-0123456789"


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _counts(budget: SharedRateBudget, now: float) -> tuple[int, int, int]:
    """(tally, rows in the file, rows inside the window) read straight from the file."""
    with sqlite3.connect(budget.path) as con:
        (tally,) = con.execute("SELECT n FROM tally").fetchone()
        (rows,) = con.execute("SELECT COUNT(*) FROM hits").fetchone()
        (inside,) = con.execute("SELECT COUNT(*) FROM hits WHERE ts > ?", (now - budget._window,)).fetchone()
    return tally, rows, inside


def test_the_tally_follows_takes_and_expiries(tmp_path) -> None:
    clock = Clock()
    budget = SharedRateBudget(KEY, limit=5, period=10, budget_dir=tmp_path, api="t", max_wait=0, guard=0,
                              clock=clock, sleep=lambda s: None)
    for step in range(40):
        clock.now += 0.7 if step % 3 else 3.1
        with contextlib.suppress(RateBudgetExhausted):
            budget.acquire()
        tally, rows, inside = _counts(budget, clock.now)
        assert tally == rows and budget.used() == inside <= 5
    clock.now += 4.0  # some hits leave the window without a take to delete them: used() still leaves them out
    assert budget.used() == _counts(budget, clock.now)[2] < _counts(budget, clock.now)[1]


def test_a_budget_file_from_before_the_tally_is_counted_once(tmp_path) -> None:
    clock = Clock()
    old = SharedRateBudget(KEY, limit=3, period=10, budget_dir=tmp_path, api="old", guard=0, clock=clock)
    with sqlite3.connect(old.path) as con:  # the file as the code before the tally left it
        con.execute("DROP TRIGGER hits_counted")
        con.execute("DROP TRIGGER hits_uncounted")
        con.execute("DROP TABLE tally")
        con.executemany("INSERT INTO hits (ts) VALUES (?)", [(clock.now - 20,), (clock.now - 1,), (clock.now,)])
    for _ in range(2):  # opening it twice makes the tally once, from the rows it holds
        budget = SharedRateBudget(KEY, limit=3, period=10, budget_dir=tmp_path, api="old", max_wait=0, guard=0,
                                  clock=clock)
    assert _counts(budget, clock.now)[:2] == (3, 3) and budget.used() == 2
    budget.acquire()  # the third slot; the expired hit is deleted on the way
    assert _counts(budget, clock.now) == (3, 3, 3)
    with pytest.raises(RateBudgetExhausted):
        budget.acquire()
