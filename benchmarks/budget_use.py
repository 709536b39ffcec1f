"""Budget use of a first load: how much of the Bloomerang rate budget the apply step spends, at 0 and 200 ms.

A first load at Bloomerang's 1,000 requests an hour is budget-bound for hours; whether the run spends the
whole budget (no idle gaps, no 429s) decides how many hours. This benchmark makes the same question fit in
minutes: the sandbox's Bloomerang limit is a tight window (default 300 requests per 60 s) and the org's
budget (the pipeline's shared per-key budget, ``clients/ratelimit.py``) is set to the same window, so the run
spans several windows. It runs the demo org's first load (both directions) once per added latency (default
0 ms and 200 ms on all three sandbox APIs; the limit on Bloomerang only), each against a fresh sandbox and an
empty data folder.

**Share of the budget used** = the time the budget needed to grant the Bloomerang requests the run sent
between its first and its last write ÷ the time the run took to send them (first to last write, as the
sandbox received them). "Needed" is found by replaying the window: starting from the requests admitted in the
``period`` before the first write (the extract's reads), a client sending the moment a slot is free gets the
free remainder of the window at once (the initial burst), then one slot each time an earlier request leaves
the window; the time its last request of that many goes out is what the budget forced. 1.0: the run was as
fast as the budget allows; an idle gap (free slots, nothing sent), a slow burst or a 429's wait lowers it.
Every Bloomerang request counts, reads included: they spend the same budget. Why time and not requests: a
sliding window grants its slots in bursts a period apart, so "requests allowed up to the last write" jumps
by a whole window at each boundary and would score a run by where its end falls.

Also printed: 429s received (the sandbox's limit refusing a request the pipeline's budget let through),
writes per record (Bloomerang POST/PUT requests ÷ the records the run created or updated — funds,
constituents, transactions, recurring schedules, tributes, and what the people steps write: interactions,
custom field values, communication preferences, inactivations; a refunded gift costs two), idle gaps (longer than
``--gap`` seconds with free slots in the window), wall time and the
1-minute load average (the machine is shared).

    python benchmarks/budget_use.py                              # 150 donors, 300 requests / 60 s, 0 and 200 ms
    python benchmarks/budget_use.py --donors 600 --limit 600     # bigger
    python benchmarks/budget_use.py --latency 200 --connections 1   # the serial path, for comparison

Targets: share ≥ 0.95 at 0 ms and ≥ 0.90 at any added latency; 0 429s; ≤ 1.01 writes per record. Exit
status 0 when every target is met, else 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from targets import demo_mappings, report  # benchmarks/targets.py, beside this script

from bloom_pipeline.clients.bloomerang import BloomerangClient
from bloom_pipeline.mapping.loader import load_org
from bloom_pipeline.sandbox.faults import Knobs, LogEntry
from bloom_pipeline.sandbox.server import Sandbox
from bloom_pipeline.staging.store import StagingStore
from bloom_pipeline.sync.endpoints import build_clients, resolve_endpoints
from bloom_pipeline.sync.runner import RunOptions, run_sync

WRITES = frozenset({"POST", "PUT", "DELETE"})


def budget_seconds(before: list[float], start: float, count: int, limit: int, period: float) -> float:
    """Seconds from ``start`` until a sliding window of ``limit`` requests per ``period`` could have granted
    ``count`` requests, given those admitted before ``start``: its free slots at once (the initial burst), then
    one each time an earlier request leaves the window. 0 when all fit in the free slots."""
    window = deque(t for t in sorted(before) if t > start - period)
    now = start
    for _ in range(count):
        while window and window[0] <= now - period:
            window.popleft()
        if len(window) >= limit:
            now = window.popleft() + period  # the next slot frees when the oldest request leaves the window
        window.append(now)
    return now - start


@dataclass
class Result:
    latency_ms: float
    seconds: float
    exit_code: int
    limit: int
    period: float
    sent: int = 0  # admitted Bloomerang requests between the first and the last write
    needed: float = 0.0  # seconds the budget needed to grant them (budget_seconds)
    writes: int = 0
    records: int = 0
    throttled: int = 0  # 429s the sandbox answered
    span: float = 0.0  # seconds from the first to the last write
    gaps: list[tuple[float, float, str, str]] = field(default_factory=list)  # (at, seconds, before, after)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def share(self) -> float:
        """The time the budget forced ÷ the time the run took; NaN when the budget never bound."""
        return min(1.0, self.needed / self.span) if self.needed > 0 and self.span > 0 else float("nan")

    @property
    def writes_per_record(self) -> float:
        return self.writes / self.records if self.records else float("nan")



# Records the people steps write to Bloomerang, each in a log of its own (sync/people/): (table, what counts
# one record, condition). Custom field values are logged per field and written per constituent (one PUT).
PEOPLE_WRITES = (
    ("event_interaction_log", "count(*)", "action IN ('created', 'updated')"),
    ("custom_field_log", "count(DISTINCT bloomerang_id)", "action = 'updated' AND direction = 'push'"),
    ("communication_log", "count(*)", "action = 'updated' AND direction = 'push'"),
    ("source_deletions", "count(*)", "action = 'inactivated'"),
)


def records_written(data_dir: Path, run_id: str, created_in_sandbox: int) -> int:
    """Records the run created or updated in Bloomerang: its sync_log rows created / updated (pushed), the
    recurring schedules it created, what the people steps wrote (interactions, custom field values,
    communication preferences, inactivations: their own logs) and ``created_in_sandbox`` (records no log
    counts, read from the sandbox: a refunded gift's refund, a tribute)."""
    store = StagingStore.for_org("demo", data_dir=data_dir)
    logged = store.read_frame(
        "SELECT count(*) AS n FROM sync_log WHERE run_id = ? AND action IN ('created', 'updated') "
        "AND coalesce(direction, 'push') = 'push'", [run_id])
    schedules = store.read_frame(
        "SELECT count(*) AS n FROM sync_state WHERE entity = 'schedules' AND last_run_id = ?", [run_id])
    tables = set(store.read_frame("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'")["table_name"])
    people = sum(int(store.read_frame(f"SELECT {counted} AS n FROM {table} WHERE run_id = ? AND {condition}",
                                      [run_id])["n"].iloc[0])
                 for table, counted, condition in PEOPLE_WRITES if table in tables)
    return int(logged["n"].iloc[0]) + int(schedules["n"].iloc[0]) + people + created_in_sandbox


def measure(entries: list[LogEntry], limit: int, period: float, gap: float) -> Result:
    result = Result(latency_ms=0.0, seconds=0.0, exit_code=0, limit=limit, period=period)
    bloomerang = sorted((e for e in entries if e.api == "bloomerang"), key=lambda e: e.received_at)
    result.throttled = sum(e.status == 429 for e in bloomerang)
    admitted = [e for e in bloomerang if e.status != 429]
    writes = [e for e in admitted if e.method in WRITES]
    result.writes = len(writes)
    if not writes:
        return result
    start, end = writes[0].received_at, writes[-1].received_at
    result.span = end - start
    inside = [e for e in admitted if start <= e.received_at <= end]
    result.sent = len(inside)
    before = [e.received_at for e in admitted if e.received_at < start]
    result.needed = budget_seconds(before, start, result.sent, limit, period)
    times = deque(t for t in before if t > start - period)
    previous = None
    for entry in inside:
        if previous is not None and entry.received_at - previous.received_at > gap:
            while times and times[0] <= previous.received_at - period:
                times.popleft()
            if len(times) < limit:  # the budget had free slots: an idle gap, not a wait for the budget
                result.gaps.append((previous.received_at - start, entry.received_at - previous.received_at,
                                    f"{previous.method} {previous.path_template}",
                                    f"{entry.method} {entry.path_template}"))
        times.append(entry.received_at)
        previous = entry
    return result


def run_once(args: argparse.Namespace, latency_ms: float, mappings: Path, scratch: Path) -> Result:
    knobs = Knobs(rate_limit=None, latency_ms=latency_ms)
    data_dir = scratch / f"data-{latency_ms:g}ms"
    with Sandbox(donors=args.donors, seed=args.seed, knobs=knobs) as sb:
        # the tight window on Bloomerang only: the budget under test (WeGive and Handbid have none of theirs)
        sb.knobs["bloomerang"].rate_limit, sb.knobs["bloomerang"].rate_period = args.limit, args.period
        org = load_org("demo", mappings_dir=str(mappings))
        endpoints = resolve_endpoints(org, urls=sb.urls, handbid_org_id=sb.handbid_org_id)
        clients = build_clients(org, endpoints, budget_dir=data_dir / "ratelimit")
        clients.bloomerang.close()
        # the org's budget matched to the sandbox's window (the YAML says per hour; here: per --period seconds)
        clients.bloomerang = BloomerangClient(endpoints.bloomerang.base_url, endpoints.bloomerang.key,
                                              rate_budget=args.limit, rate_period=args.period,
                                              budget_dir=data_dir / "ratelimit", max_wait=args.period * 2)
        store = StagingStore.for_org(org.name, data_dir=data_dir)
        bloomerang = sb.stores["bloomerang"]
        created_before = len(bloomerang.refunds) + len(bloomerang.tributes)
        started = time.monotonic()
        try:
            report = run_sync(org, store, clients, RunOptions(direction="both"))
        finally:
            clients.close()
        seconds = time.monotonic() - started
        result = measure(sb.request_log.entries, args.limit, args.period, args.gap)
        created_in_sandbox = len(bloomerang.refunds) + len(bloomerang.tributes) - created_before
    result.latency_ms, result.seconds, result.exit_code = latency_ms, seconds, report.exit_code
    result.counts = report.counts
    result.records = records_written(data_dir, report.run_id, created_in_sandbox)
    return result


def print_result(r: Result) -> None:
    print(f"\n== {r.latency_ms:g} ms added latency: {r.seconds:.1f} s wall, exit {r.exit_code}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"  budget {r.limit} requests / {r.period:g} s")
    print(f"  {r.sent} requests from the first to the last write took {r.span:.1f} s; the budget needed "
          f"{r.needed:.1f} s to grant them: share used {r.share:.3f}")
    print(f"  429s received {r.throttled}; writes {r.writes} for {r.records} records written: "
          f"{r.writes_per_record:.3f} writes per record")
    lost = sum(g[1] for g in r.gaps)
    print(f"  idle gaps (free slots, nothing sent): {len(r.gaps)}, {lost:.1f} s in all")
    for at, seconds, before, after in sorted(r.gaps, key=lambda g: -g[1])[:5]:
        print(f"    at +{at:.1f} s: {seconds:.1f} s between {before} and {after}")
    for entity in ("funds", "constituents", "transactions"):
        counts = {k: v for k, v in r.counts.get(entity, {}).items() if v}
        print(f"  {entity}: {counts}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--donors", type=int, default=150)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--limit", type=int, default=300, help="requests per --period (sandbox and org budget)")
    parser.add_argument("--period", type=float, default=60.0, help="the budget's window, seconds")
    parser.add_argument("--latency", type=float, action="append", default=None,
                        help="added latency in ms on every sandbox API (repeatable; default 0 and 200)")
    parser.add_argument("--connections", type=int, default=None,
                        help="the demo org's bloomerang.write_connections (default: the org's own)")
    parser.add_argument("--gap", type=float, default=1.0, help="a pause longer than this (s) is an idle gap")
    args = parser.parse_args(argv)
    latencies = args.latency or [0.0, 200.0]

    results = []
    with tempfile.TemporaryDirectory(prefix="bloom-budget-use-") as scratch:
        mappings = demo_mappings(Path(scratch), write_connections=args.connections)
        for latency in latencies:
            result = run_once(args, latency, mappings, Path(scratch))
            print_result(result)
            results.append(result)

    checks = []
    for r in results:
        target = 0.95 if r.latency_ms == 0 else 0.90
        checks += [
            (f"{r.latency_ms:g} ms: share of the budget used {r.share:.3f} >= {target}", r.share >= target),
            (f"{r.latency_ms:g} ms: {r.throttled} 429s received == 0", r.throttled == 0),
            (f"{r.latency_ms:g} ms: {r.writes_per_record:.3f} writes per record <= 1.01",
             r.writes_per_record <= 1.01),
            (f"{r.latency_ms:g} ms: run exit status {r.exit_code} == 0", r.exit_code == 0),
        ]
    return report(checks)


if __name__ == "__main__":
    sys.exit(main())
