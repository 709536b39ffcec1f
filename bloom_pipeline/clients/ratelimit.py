"""A request budget per API key, shared by every process and thread that uses the key.

Bloomerang (and the sandbox that stands in for it) throttles per key: 1000 requests per rolling hour
by default. Several processes may use one key at once — a Dagster run per org, a backfill, a CLI
``sync`` — so a per-process counter would let them overspend together and collect 429s. The budget
therefore lives in a SQLite file beside the staging data, one file per key: a sliding-window log of
request times, read and written under SQLite's write lock (a take is one statement, a full window a
``BEGIN IMMEDIATE`` transaction: see ``_try_take``) so that processes take slots one at a time
(``tests/unit/clients/test_ratelimit.py`` checks this with two processes).

Why not pyrate-limiter's ``SQLiteBucket`` + file lock: with the installed filelock 4.x its
non-blocking acquire passes ``False`` positionally as FileLock's *timeout* and raises ``TypeError``,
and it needs a background leaker thread per bucket; thirty lines of SQL are easier to trust.

The key itself is never stored: the file is named after the sha256 of the key, and nothing else
about the key is written anywhere.

A slot is given back ``guard`` seconds after its request left the window (default 0.5 s, at most 1% of the
period): the API counts a request when it *arrives*, a little after the slot was taken here, and by a
varying delay — a request sent the instant its slot frees could otherwise land inside the API's window of
the request it replaces and be refused with a 429 (``benchmarks/budget_use.py`` measured one at 0 ms
added latency without the guard). The guard costs ``guard / period`` of the budget: 0.014% of an hourly one.

Acquiring is blocking with a maximum wait. When the next free slot is further away than that, the
acquire fails at once with :class:`RateBudgetExhausted` saying when the budget frees up, instead of
sleeping out the max wait first.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bloom_pipeline import settings
from bloom_pipeline.errors import MOVE_ASIDE, BloomPipelineError, UnusableFileError

_SCHEMA = "CREATE TABLE IF NOT EXISTS hits (ts REAL NOT NULL)"
_INDEX = "CREATE INDEX IF NOT EXISTS hits_ts ON hits (ts)"
# The number of rows in ``hits``, kept by triggers: counting the window's rows on every request cost time in
# proportion to the budget (a 100,000-an-hour budget holds thousands of rows; each request counted them all,
# twice with the write pool's sizing). Triggers live in the file, so every process and every version of this
# code that inserts or deletes a hit keeps the count right; the row is made, from a real count, in the same
# transaction as the triggers.
_TALLY = (
    "CREATE TABLE IF NOT EXISTS tally (id INTEGER PRIMARY KEY CHECK (id = 0), n INTEGER NOT NULL)",
    "CREATE TRIGGER IF NOT EXISTS hits_counted AFTER INSERT ON hits BEGIN UPDATE tally SET n = n + 1; END",
    "CREATE TRIGGER IF NOT EXISTS hits_uncounted AFTER DELETE ON hits BEGIN UPDATE tally SET n = n - 1; END",
    "INSERT OR IGNORE INTO tally (id, n) SELECT 0, COUNT(*) FROM hits",
)
# One slot, if the window (the hits after ?2) holds fewer than ?3: inserts one row or none.
_TAKE = ("INSERT INTO hits (ts) SELECT ?1 "
         "WHERE (SELECT n FROM tally) - (SELECT COUNT(*) FROM hits WHERE ts <= ?2) < ?3")


class RateBudgetExhausted(BloomPipelineError):
    """The shared per-key budget has no free slot within the allowed wait."""

    def __init__(self, message: str, retry_in: float) -> None:
        super().__init__(message)
        self.retry_in = retry_in


def key_id(secret: str) -> str:
    """The identity under which a key's budget is stored: sha256 hex, never the key."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def default_budget_dir() -> Path:
    """``$BLOOM_DATA_DIR/ratelimit``, else ``./data/ratelimit`` (read at call time, not import)."""
    return settings.data_dir() / "ratelimit"


class SharedRateBudget:
    """``limit`` requests per rolling ``period`` seconds for one key, across processes and threads.

    ``acquire()`` takes one slot, waiting up to ``max_wait`` seconds for it. ``guard``: see the module.
    """

    GUARD = 0.5  # seconds, and at most 1% of the period

    def __init__(
        self,
        secret: str,
        limit: int,
        period: float = 3600.0,
        budget_dir: str | os.PathLike[str] | None = None,
        api: str = "api",
        max_wait: float = 300.0,
        *,
        guard: float | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1:
            raise ValueError("a rate budget needs a limit of at least 1 request")
        if period <= 0:
            raise ValueError("a rate budget needs a positive period")
        self.api = api
        self.limit = int(limit)
        self.period = float(period)
        self.max_wait = float(max_wait)
        self.guard = min(self.GUARD, self.period / 100) if guard is None else max(0.0, float(guard))
        self._window = self.period + self.guard  # how long a request holds its slot here
        self.key_id = key_id(secret)
        directory = Path(budget_dir) if budget_dir is not None else default_budget_dir()
        self.path = directory / f"{api}-{self.key_id}.sqlite"
        self._clock = clock
        self._sleep = sleep
        self._schema_made = False  # connections opened from then on get the expiring trigger at once
        try:
            directory.mkdir(parents=True, exist_ok=True)
            with self._connect() as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in (_SCHEMA, _INDEX, *_TALLY):
                        conn.execute(statement)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                self._expire_on_take(conn)
                self._schema_made = True
        except OSError as exc:
            raise UnusableFileError(directory, f"cannot hold the rate budget: {exc.strerror or exc}") from None
        except sqlite3.DatabaseError as exc:
            raise UnusableFileError(self.path, f"not a usable rate budget ({exc}); {MOVE_ASIDE}") from None

    def __repr__(self) -> str:
        return (f"SharedRateBudget(api={self.api!r}, limit={self.limit}, period={self.period:g}, "
                f"key_id={self.key_id[:12]}…)")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection (opened once per thread and process: closing a WAL database costs a
        checkpoint, more than the request it guards). Idle connections hold no lock."""
        local = self.__dict__.setdefault("_local", threading.local())
        conn = getattr(local, "conn", None)
        if conn is None or getattr(local, "pid", None) != os.getpid():
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=True)
            # WAL without an fsync per commit: a budget counter need not survive a power cut, and a
            # synced commit per API request would cost more than the request itself.
            conn.execute("PRAGMA synchronous=NORMAL")
            if self._schema_made:
                self._expire_on_take(conn)
            local.conn, local.pid = conn, os.getpid()
        yield conn

    def _expire_on_take(self, conn: sqlite3.Connection) -> None:
        """This connection's takes delete the hits that left *its* window on the way (see ``_try_take``): a TEMP
        trigger lives in the connection, not the file, so other processes and versions are unaffected."""
        conn.execute(f"CREATE TEMP TRIGGER IF NOT EXISTS hits_expire BEFORE INSERT ON main.hits BEGIN "
                     f"DELETE FROM hits WHERE ts <= NEW.ts - {self._window!r}; END")

    def _try_take(self) -> float:
        """Take a slot if the window has room (return 0), else return seconds until one frees.

        A slot is taken in one statement: SQLite runs a statement as its own transaction, holding the write lock
        from its first read to its commit, so the count it reads is the count it adds to — as the ``BEGIN
        IMMEDIATE`` transaction below, but one statement instead of five per request (each one a release and
        re-take of the interpreter lock the write pool's threads contend for). The count is the window's: the
        tally less the hits already out of it; the connection's temp trigger deletes those before the row goes
        in. Only a full window takes the transaction, to find when the next slot frees."""
        now = self._clock()
        with self._connect() as conn:
            taken = conn.execute(_TAKE, (now, now - self._window, self.limit)).rowcount
            if taken == 1:
                return 0.0
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM hits WHERE ts <= ?", (now - self._window,))
                (count,) = conn.execute("SELECT n FROM tally").fetchone()
                if count < self.limit:
                    conn.execute("INSERT INTO hits (ts) VALUES (?)", (now,))
                    conn.execute("COMMIT")
                    return 0.0
                (oldest,) = conn.execute(
                    "SELECT ts FROM hits ORDER BY ts LIMIT 1 OFFSET ?", (count - self.limit,)
                ).fetchone()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return max(0.0, oldest + self._window - now)

    def acquire(self, max_wait: float | None = None) -> float:
        """Take one slot; return the seconds spent sleeping for it. Raises RateBudgetExhausted."""
        allowed = self.max_wait if max_wait is None else float(max_wait)
        slept = 0.0
        while True:
            retry_in = self._try_take()
            if retry_in == 0.0:
                return slept
            if slept + retry_in > allowed:
                raise RateBudgetExhausted(
                    f"{self.api} rate budget of {self.limit} requests per {self.period:g} s is used up for this "
                    f"key; next slot in {retry_in:.1f} s, beyond the allowed wait of {allowed:g} s",
                    retry_in,
                )
            self._sleep(retry_in + 0.001)
            slept += retry_in + 0.001

    def used(self) -> int:
        """Requests counted inside the current window (all processes)."""
        with self._connect() as conn:
            since = self._clock() - self._window
            # every hit less those already out of the window (only the few since the last take are still there)
            (count,) = conn.execute("SELECT (SELECT n FROM tally) - (SELECT COUNT(*) FROM hits WHERE ts <= ?)",
                                    (since,)).fetchone()
        return int(count)
