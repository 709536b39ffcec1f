"""Progress of a running sync: what a person watching an eight-hour first load needs to see.

At Bloomerang's 1,000 requests an hour a first load of 2,000 donors and 6,000 gifts takes about eight hours.
Without progress a slow run and a stuck one look the same, so the sync reports, per phase and entity, records
done / total, writes, failures, the write rate and an ETA:

* on a terminal, one live line updated in place (carriage return), kept when the entity is done;
* when stderr is not a terminal (Dagster logs, CI, a pipe), plain lines: at the start and end of each entity
  and every ``every`` seconds (30) or each ``step`` (10 %) of it, whichever comes first (never closer than
  ``min_gap``), so a log shows the run moving without a line per record;
* always, a small JSON file beside the org's DuckDB files (``<data dir>/<org>_progress.json``), replaced
  atomically like the analyst snapshot, that ``bloom-pipeline status`` reads. Why a file: the apply step holds
  the staging database open for writing for hours, and DuckDB lets no other process open it meanwhile.

Why the ETA uses the rate budget: the first 1,000 requests of an hour go out at full speed, then the budget
grants one every 3.6 s; a rate measured during the burst would promise minutes for a run of hours. The ETA is
the longer of "the remaining writes at the rate seen over the last two minutes" and "the time the shared budget
needs to grant the requests they cost" (its free slots now, then ``limit`` per ``period``).

The reporter is obtained by the steps with :func:`current` (the runner installs one with :func:`reporting`);
outside a CLI sync (Dagster assets, tests) it is a silent no-op.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
import os
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

STATE_SUFFIX = "_progress.json"
WINDOW_SECONDS = 120.0  # the write rate is measured over this much recent time
TICK_SECONDS = 0.5  # at most this often the reporter looks at the clock's consequences (render, state file)
STATE_EVERY = 2.0  # seconds between two writes of the state file
STALE_AFTER = 300.0  # status flags a run whose progress has not moved for this long


@dataclass(frozen=True)
class Budget:
    """The shared rate budget as it stands: ``used`` of ``limit`` requests in the rolling ``period`` seconds."""

    limit: int
    period: float
    used: int


# -- pure helpers (unit-tested) --------------------------------------------------------------------------


def fmt_duration(seconds: float | None) -> str:
    """``42s``, ``12m05s``, ``3h12m``; ``?`` when unknown."""
    if seconds is None or math.isnan(seconds) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m"


def budget_seconds(requests: float, budget: Budget) -> float:
    """Seconds until the budget has granted ``requests`` more: its free slots at once, then ``limit`` per
    ``period`` (the sliding window frees the old slots at that pace once it is full)."""
    free = max(0, budget.limit - budget.used)
    if requests <= free:
        return 0.0
    return (requests - free) * budget.period / budget.limit


def eta_seconds(remaining_writes: float, *, rate: float | None, requests_per_write: float = 1.0,
                budget: Budget | None = None) -> float | None:
    """Seconds until the last remaining write: the longer of the observed ``rate`` (writes/s) and what the rate
    budget allows. None when nothing is known yet (no rate, and the budget has room for everything)."""
    if remaining_writes <= 0:
        return 0.0
    by_rate = remaining_writes / rate if rate else None
    by_budget = budget_seconds(remaining_writes * max(1.0, requests_per_write), budget) if budget else 0.0
    if by_rate is None:
        return by_budget or None
    return max(by_rate, by_budget)


def format_line(phase: str, entity: str | None, done: int, total: int, *, writes: int = 0, failed: int = 0,
                rate: float | None = None, eta: float | None = None, per: str = "writes") -> str:
    """``apply constituents: 1200/2089 (57%), 1150 writes, 3 failed, 16.7 writes/min, ETA 3h12m``."""
    label = f"{phase} {entity}" if entity else phase
    pct = f" ({100 * done // total}%)" if total else ""
    parts = [f"{label}: {done}/{total}{pct}", f"{writes} writes", f"{failed} failed"]
    if rate is not None:
        parts.append(f"{rate * 60:.1f} {per}/min")
    parts.append(f"ETA {fmt_duration(eta)}" if done < total else "done")
    return ", ".join(parts)


def plain_line_due(now: float, last: float, *, every: float, step: float, min_gap: float, fraction: float,
                   last_fraction: float) -> bool:
    """Whether a plain (non-terminal) progress line is due: ``every`` seconds passed, or a ``step`` of the
    entity was crossed at least ``min_gap`` seconds after the last line."""
    if now - last >= every:
        return True
    crossed = step > 0 and math.floor(fraction / step + 1e-9) > math.floor(last_fraction / step + 1e-9)
    return crossed and now - last >= min_gap


def state_path(data_dir: str | os.PathLike[str], org: str) -> Path:
    """``<data dir>/<org>_progress.json``: where a running sync publishes its progress."""
    return Path(data_dir) / f"{org}{STATE_SUFFIX}"


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def read_state(data_dir: str | os.PathLike[str], org: str) -> dict[str, Any] | None:
    """The progress a live sync of ``org`` published, or None (no sync running, or it died: its pid is gone)."""
    try:
        state = json.loads(state_path(data_dir, org).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not _alive(state.get("pid")):
        return None
    return state


def state_lines(state: Mapping[str, Any], *, now: float | None = None) -> list[str]:
    """What ``status`` prints about a running sync: who, since when, when it last moved, each step's line."""
    now = time.time() if now is None else now
    age = max(0.0, now - float(state.get("updated_at") or now))
    started = state.get("started_at") or "?"
    stale = f"; no progress for {fmt_duration(age)}: waiting on the API or the rate budget, or stuck" \
        if age >= STALE_AFTER else ""
    lines = [f"Running now: run {state.get('run_id')} (pid {state.get('pid')}, started {started} UTC, "
             f"last progress {fmt_duration(age)} ago{stale})"]
    lines += [f"  {line}" for line in state.get("finished") or []]
    if state.get("line"):
        lines.append(f"  {state['line']}")
    return lines


# -- the reporter ----------------------------------------------------------------------------------------


class Progress:
    """Counts records per phase and entity and shows them (see the module docstring for where and how often).

    ``live``: update one line in place (default: when ``stream`` is a terminal). ``transient``: erase the live
    line when an entity ends (the demo, whose printed story stays as documented). ``quiet``: print nothing
    (the state file is still written when ``state_file`` is given).
    """

    def __init__(self, stream: IO[str] | None = None, *, live: bool | None = None, transient: bool = False,
                 quiet: bool = False, every: float = 30.0, step: float = 0.1, min_gap: float = 5.0,
                 state_file: str | os.PathLike[str] | None = None, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if live is None:
            isatty = getattr(self.stream, "isatty", None)
            live = bool(isatty and isatty())
        self.live, self.transient, self.quiet = live, transient, quiet
        self.every, self.step, self.min_gap = every, step, min(min_gap, every)
        self.state_file = Path(state_file) if state_file is not None else None
        self.clock, self.wall = clock, wall
        self.run_id: str | None = None
        self.org: str | None = None
        self._requests: Callable[[], int] | None = None
        self._budget: Callable[[], Budget | None] | None = None
        self._planned: dict[str, int] = {}
        self._started_entities: set[str] = set()
        self._finished: list[str] = []
        self._live_len = 0
        self._started_wall = wall()
        self._state_at = -math.inf
        self._phase = ""
        self._phase_started = clock()
        self._requests_at_phase = 0
        self._entity: str | None = None
        self._apply_requests0: int | None = None
        self._apply_writes = 0  # write attempts of every entity so far (for requests per write)

    # -- wiring -------------------------------------------------------------------------------------------
    def attach(self, *, run_id: str, org: str, requests: Callable[[], int] | None = None,
               budget: Callable[[], Budget | None] | None = None) -> None:
        """The run being reported, and how to read its Bloomerang request count and rate budget."""
        self.run_id, self.org, self._requests, self._budget = run_id, org, requests, budget
        self._started_wall = self.wall()
        self._save(force=True)

    def planned(self, writes: Mapping[str, int]) -> None:
        """Writes (creates + updates) the plan holds per entity: the ETA covers those not started yet too."""
        self._planned = {k: int(v) for k, v in writes.items()}

    # -- phases -------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """A step of the run (extract, stage, plan, apply); ends with ``<name>: done in 12s (...)``."""
        self._phase, self._phase_started = name, self.clock()
        self._requests_at_phase = self._request_count()
        if self.live and not self.quiet:
            self._show_live(f"{name} ...")
        self._save(force=True)
        yield
        spent = self._request_count() - self._requests_at_phase
        line = f"{name}: done in {fmt_duration(self.clock() - self._phase_started)}"
        if self._requests is not None:
            line += f" ({spent} Bloomerang requests)"
        self._finished.append(line)
        self._end_live(line)
        self._save(force=True)

    # -- entities (the apply loop) ----------------------------------------------------------------------------
    def start_entity(self, entity: str, total: int, writes: int) -> None:
        """The apply loop starts ``total`` records of ``entity``, ``writes`` of them creates or updates."""
        now = self.clock()
        if self._apply_requests0 is None:
            self._apply_requests0 = self._request_count()
        self._entity, self._total, self._writes_planned = entity, int(total), int(writes)
        self._started_entities.add(entity)
        self._done = self._written = self._failed = self._attempted = 0
        self._entity_started = now
        self._samples: deque[tuple[float, int]] = deque([(now, 0)])
        self._tick_at = now
        self._printed_at, self._printed_fraction = now, 0.0
        if not self.live and not self.quiet:
            self._emit(self.line())
        self._save(force=True)

    def record(self, action: str, *, attempted_write: bool = False) -> None:
        """One record done (``action`` as in ``sync_log``); ``attempted_write``: a create or update was sent."""
        if self._entity is None:
            return
        self._done += 1
        self._written += action in ("created", "updated")
        self._failed += action == "failed"
        if attempted_write:
            self._attempted += 1
            self._apply_writes += 1
        now = self.clock()
        if now - self._tick_at < TICK_SECONDS and self._done < self._total:
            return
        self._tick_at = now
        self._samples.append((now, self._attempted))
        while len(self._samples) > 2 and now - self._samples[1][0] >= WINDOW_SECONDS:
            self._samples.popleft()
        if not self.quiet:
            if self.live:
                self._show_live(self.line())
            elif plain_line_due(now, self._printed_at, every=self.every, step=self.step, min_gap=self.min_gap,
                                fraction=self._done / max(1, self._total), last_fraction=self._printed_fraction):
                self._printed_at, self._printed_fraction = now, self._done / max(1, self._total)
                self._emit(self.line())
        self._save()

    def end_entity(self) -> None:
        if self._entity is None:
            return
        line = self.line()
        self._finished.append(line)
        self._entity = None
        self._end_live(line)
        self._save(force=True)

    def close(self) -> None:
        """The run ended (well or not): finish a live line, remove the state file."""
        if self._live_len:
            self._end_live(None)
        if self.state_file is not None:
            with contextlib.suppress(OSError):
                self.state_file.unlink()

    # -- numbers ------------------------------------------------------------------------------------------
    def rate(self) -> float | None:
        """Write attempts per second over the recent window (over the whole entity while it is younger)."""
        if self._entity is None or not self._samples:
            return None
        (t0, w0), (t1, w1) = self._samples[0], self._samples[-1]
        if t1 - t0 < 1.0 or w1 == w0:
            return None
        return (w1 - w0) / (t1 - t0)

    def remaining_writes(self) -> int:
        """Writes still to send: the rest of this entity's and all of the entities not started yet."""
        rest = max(0, self._writes_planned - self._attempted) if self._entity else 0
        return rest + sum(n for e, n in self._planned.items() if e not in self._started_entities)

    def eta(self) -> float | None:
        requests_per_write = 1.0
        if self._apply_requests0 is not None and self._apply_writes and self._requests is not None:
            requests_per_write = (self._request_count() - self._apply_requests0) / self._apply_writes
        budget = self._budget() if self._budget is not None else None
        return eta_seconds(self.remaining_writes(), rate=self.rate(), requests_per_write=requests_per_write,
                           budget=budget)

    def line(self) -> str:
        """The current entity's progress line."""
        if self._entity is None:
            return f"{self._phase} ..."
        return format_line(self._phase or "apply", self._entity, self._done, self._total, writes=self._written,
                           failed=self._failed, rate=self.rate(), eta=self.eta())

    # -- output -------------------------------------------------------------------------------------------
    def _request_count(self) -> int:
        return int(self._requests()) if self._requests is not None else 0

    def _emit(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def _show_live(self, line: str) -> None:
        width = max(20, shutil.get_terminal_size((100, 24)).columns - 1)
        line = line[:width]
        self.stream.write("\r" + line.ljust(self._live_len))
        self.stream.flush()
        self._live_len = len(line)

    def _end_live(self, line: str | None) -> None:
        """Finish a step: a live line is kept (or erased when transient); a plain line is printed."""
        if self.quiet:
            return
        if self.live:
            if self.transient or line is None:
                if self._live_len:
                    self.stream.write("\r" + " " * self._live_len + "\r")
            else:
                self._show_live(line)
                self.stream.write("\n")
            self.stream.flush()
            self._live_len = 0
        elif line is not None:
            self._emit(line)

    def _save(self, *, force: bool = False) -> None:
        """Publish the state file (at most every STATE_EVERY seconds unless forced); atomic replace."""
        if self.state_file is None or self.run_id is None:
            return
        now = self.clock()
        if not force and now - self._state_at < STATE_EVERY:
            return
        self._state_at = now
        state = {
            "run_id": self.run_id, "org": self.org, "pid": os.getpid(),
            "started_at": datetime.fromtimestamp(self._started_wall, UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "updated_at": self.wall(), "phase": self._phase, "finished": self._finished,
            "line": self.line() if self._phase else None,
        }
        tmp = self.state_file.with_name(f".{self.state_file.name}.{os.getpid()}.tmp")
        try:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(state), encoding="utf-8")
            os.replace(tmp, self.state_file)
        except OSError:  # progress is a courtesy: a full disk must not fail the sync
            with contextlib.suppress(OSError):
                tmp.unlink()


class _Silent(Progress):
    """The reporter when none is installed: counts nothing, prints nothing."""

    def __init__(self) -> None:
        super().__init__(stream=sys.stderr, live=False, quiet=True)

    def start_entity(self, entity: str, total: int, writes: int) -> None:
        return None

    def record(self, action: str, *, attempted_write: bool = False) -> None:
        return None

    def end_entity(self) -> None:
        return None

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        yield


_SILENT = _Silent()
_CURRENT: contextvars.ContextVar[Progress | None] = contextvars.ContextVar("bloom_progress", default=None)


def current() -> Progress:
    """The reporter of the run in progress in this thread / context, or a silent one."""
    return _CURRENT.get() or _SILENT


@contextlib.contextmanager
def reporting(progress: Progress | None) -> Iterator[Progress]:
    """Install ``progress`` for the block (None: the silent reporter); closes it at the end."""
    if progress is None:
        yield _SILENT
        return
    token = _CURRENT.set(progress)
    try:
        yield progress
    finally:
        _CURRENT.reset(token)
        progress.close()


def budget_of(client: Any) -> Callable[[], Budget | None]:
    """Read the client's shared rate budget (``SharedRateBudget``) as a :class:`Budget`, if it has one."""
    shared = getattr(getattr(client, "http", None), "rate_budget", None)

    def read() -> Budget | None:
        if shared is None:
            return None
        return Budget(shared.limit, shared.period, shared.used())

    return read


def planned_writes(plan: Any) -> dict[str, int]:
    """Creates + updates per entity of a push plan (a DataFrame with ``entity`` and ``action``)."""
    if plan is None or len(plan) == 0:
        return {}
    writes = plan[plan["action"].isin(["create", "update"])]
    return {str(k): int(v) for k, v in writes.groupby("entity").size().items()}
