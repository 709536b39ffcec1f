"""How many writes the apply step keeps in flight: enough to spend the rate budget, never more than the cap.

Why a pool at all: one connection sending one request at a time spends at most ``1 / latency`` requests a
second — 5 a second (18,000 an hour) at 200 ms — whatever the budget allows. By Little's law, spending
``rate`` requests a second at ``latency`` seconds each needs ``rate × latency`` requests in flight.

The size follows the shared budget (``clients/ratelimit.py``) and the latency the session observed:

* while the budget holds more free slots than there are writes in flight (the first burst of a window, or
  slots freed while the run did something else), every connection up to the cap is used: the free slots are
  spent as fast as the API answers;
* once the budget is the bottleneck, ``ceil(limit / period × latency) + 1`` — what keeps the budget's pace
  with one request to spare; more would only wait on the budget holding records half-written.

The budget stays the only throttle: the pool never sleeps, it only declines to start another write.
``write_connections`` in the org YAML is the cap (``1``: one write at a time, the serial path).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol


class Budget(Protocol):
    """The parts of ``SharedRateBudget`` the pool reads."""

    limit: int
    period: float

    def used(self) -> int: ...


def connections_needed(cap: int, in_flight: int, budget: Budget | None, latency: float | None, *,
                       free: int | None = None) -> int:
    """The most writes to have in flight now (1 ≤ n ≤ cap); ``free``: the budget's free slots, when just read."""
    if cap <= 1:
        return 1
    if budget is None or latency is None:
        return cap  # no budget to pace, or nothing observed yet: the cap
    if (budget.limit - budget.used() if free is None else free) > in_flight:
        return cap
    pace = budget.limit / budget.period * latency
    return max(1, min(cap, math.ceil(pace) + 1))


class PoolSize:
    """``connections_needed`` for one client's session (its budget and its observed latency), and the threads
    the writes run on: one set for a whole run (each thread keeps its HTTP connection), shut down by ``close``."""

    def __init__(self, cap: int, session: Any = None) -> None:
        self.cap = max(1, int(cap))
        self.session = session
        self.peak = 1 if self.cap == 1 else 0  # the most writes that were in flight at once (reported)
        self._executor: ThreadPoolExecutor | None = None
        self._roomy = 0  # calls left before the budget is read again (READ_EVERY)

    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.cap, thread_name_prefix="bloomerang-write")
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # Writes started between two reads of a budget seen roomy. Why: the question is asked before every write,
    # and each read of the shared budget is a SQLite statement on the thread that prepares and records the writes
    # (13,000 on a first load). A budget with more free slots than the cap plus these writes cannot fill up before
    # the next read but by other processes' requests — then a few writes wait in the budget instead of here
    # (it stays the only throttle: nothing is ever sent without a slot).
    READ_EVERY = 32

    def __call__(self, in_flight: int) -> int:
        if self._roomy > 0:
            self._roomy -= 1
            return self.cap
        budget = getattr(self.session, "rate_budget", None)
        latency = getattr(self.session, "latency", None)
        if self.cap <= 1 or budget is None or latency is None:
            return connections_needed(self.cap, in_flight, budget, latency)
        free = budget.limit - budget.used()
        if free > in_flight + self.cap + self.READ_EVERY:
            self._roomy = self.READ_EVERY
        return connections_needed(self.cap, in_flight, budget, latency, free=free)
