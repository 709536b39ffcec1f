"""Sandbox throughput at real org sizes: world generation time, requests per second, memory.

1. generates the world of ``--donors`` WeGive donors (wall and CPU time: the figure a test or the demo waits
   for before the first request);
2. builds the three stores and serves them in a child process (forked with the world already built, so the
   client below never shares an interpreter lock with the servers — as a real API is elsewhere);
3. sends a realistic mix for ``--seconds`` from ``--clients`` threads, one keep-alive connection per API each:
   creates (``POST /constituent`` with a correlation custom value), updates (``PUT /constituent/{id}``),
   ``GET /constituents`` by correlation value, paged constituent lists in ``LastModifiedDate`` and in Id
   order, changed transactions by ``lastModified``, pages of the WeGive donor list scan, and **a quiet
   night's list scans**: a random page of the WeGive lists the pipeline pages through whole every night (donors
   ``view=both``, fund allocations, pledges and scheduled donations of both views, transactions changed since
   a cursor — each list drawn as often as it has pages, deep pages included) and of Handbid's (contacts changed
   since a cursor, an event's receipts and bidders): the pages whose cost once grew with the store;
4. prints requests per second overall and per kind (median and 95th percentile latency), the CPU the
   servers and the client threads spent per request, the child's RSS, the 1-minute load average, and the
   targets.

The client threads share the machine's cores with the servers, so they are kept as cheap as an honest
client can be: plain ``http.client`` keep-alive connections, request bodies encoded by ``json.dumps`` and
answers read whole and checked for their status (only a create's answer is parsed, for its ``Id``) — no
``requests`` session, whose per-request overhead was about as much CPU as the sandbox's own. The client's
CPU per request is printed beside the servers' so the figure can be read as the servers'.

``--profile PATH`` runs every server thread of the child under ``cProfile`` while the mix runs and writes the
merged statistics to ``PATH`` (read with ``python -m pstats PATH``); the request rate is then the profiler's,
not the servers'.

Targets (2 cores): generation of 100,000 donors <= 30 s; >= 300 requests/s at 100,000 donors on loopback.
Exit status 0 when every target is met, else 1. A benchmark, not a test.

    python benchmarks/sandbox_throughput.py                  # 100,000 donors, 20 s of requests
    python benchmarks/sandbox_throughput.py --quick          # 20,000 donors, 5 s
    python benchmarks/sandbox_throughput.py --donors 2000 --seconds 10
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import json
import multiprocessing
import os
import pstats
import random
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from typing import Any
from urllib.parse import urlencode, urlsplit

import psutil
from targets import report  # benchmarks/targets.py, beside this script

from bloom_pipeline.sandbox.data.world import generate_world
from bloom_pipeline.sandbox.faults import Knobs
from bloom_pipeline.sandbox.server import Sandbox
from bloom_pipeline.settings import SANDBOX_KEYS

GENERATION_TARGET_S = 30.0
RPS_TARGET = 300.0
# request kind -> weight in the mix
MIX = {"create": 20, "update": 10, "by_correlation": 30, "changed_constituents": 10, "id_page": 10,
       "changed_transactions": 5, "wegive_donor_page": 15, "nightly_scan_page": 10, "handbid_page": 3}
WEGIVE_PAGE = 200  # rows a page, as the pipeline asks (clients/wegive.py)
HANDBID_PAGE = 100


def _scan_lists(sandbox: Sandbox) -> dict[str, list[tuple[str, dict[str, Any], int]]]:
    """The lists a quiet night pages through whole, as ``(path, query, pages)`` per API: WeGive's donors,
    fund allocations, schedules and changed transactions (extract/wegive.py), Handbid's changed contacts and each
    event's receipts and bidders (extract/handbid.py)."""
    wegive, handbid = sandbox.stores["wegive"], sandbox.stores["handbid"]

    def pages(rows: int, size: int) -> int:
        return max(1, -(-rows // size))

    archived = {name: sum(r.get("deleted_at") is not None for r in getattr(wegive, name).values())
                for name in ("pledges", "scheduled_donations")}
    lists = [("/dashboard/donors", {"view": "both"}, pages(len(wegive.donors), WEGIVE_PAGE)),
             ("/dashboard/fund-allocations", {}, pages(len(wegive.fund_allocations), WEGIVE_PAGE)),
             ("/dashboard/transactions", {"updated_at[start]": "2026-12-01T00:00:00Z"}, 1)]
    for name, path in (("pledges", "/dashboard/pledges"), ("scheduled_donations", "/dashboard/scheduled-donations")):
        total = len(getattr(wegive, name))
        lists += [(path, {"view": "all"}, pages(total - archived[name], WEGIVE_PAGE)),
                  (path, {"view": "archived"}, pages(archived[name], WEGIVE_PAGE))]
    org = f"/v3/manager/organizations/{handbid.org_id}"
    events = [(f"/v3/manager/auctions/{a}/{table}", {}, pages(sum(r["auctionId"] == a for r in
                                                                  getattr(handbid, table).values()), HANDBID_PAGE))
              for a in handbid.auctions for table in ("receipts", "bidders")]
    return {"wegive": lists,
            "handbid": [(f"{org}/contacts", {"updatedSince": int(time.time()) - 86_400}, 1), *events]}


class _ThreadProfiles:
    """cProfile in every thread started after ``install()`` (the uvicorn server threads): ``threading.setprofile``
    hands each new thread a hook whose first call swaps in that thread's own enabled profiler."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []

    def install(self) -> None:
        def first_call(frame: Any, event: str, arg: Any) -> None:
            profile = cProfile.Profile()
            self.profiles.append(profile)
            profile.enable()

        threading.setprofile(first_call)

    def dump(self, path: str) -> None:
        threading.setprofile(None)  # type: ignore[arg-type]
        stats = pstats.Stats(*self.profiles) if self.profiles else None
        if stats is not None:
            stats.dump_stats(path)


def _serve(world: Any, conn: Any, profile_path: str | None = None) -> None:
    """Child process: build the stores from the (inherited) world, serve, report urls and build time."""
    started, started_cpu = time.monotonic(), time.process_time()
    profiles = _ThreadProfiles() if profile_path else None
    if profiles is not None:
        profiles.install()
    sandbox = Sandbox(world=world, knobs=Knobs(rate_limit=None)).start()
    bloomerang = sandbox.stores["bloomerang"]
    values = [v["Value"] for c in bloomerang.constituents.values() for v in [c["_custom"].get(901)] if v]
    conn.send({"urls": sandbox.urls, "build_s": time.monotonic() - started,
               "build_cpu_s": time.process_time() - started_cpu, "ids": list(bloomerang.constituents),
               "values": values, "donor_pages": max(1, len(sandbox.stores["wegive"].donors) // 200),
               "scan_lists": _scan_lists(sandbox)})
    conn.recv()  # until the parent is done
    sandbox.stop()
    if profiles is not None and profile_path:
        profiles.dump(profile_path)
    conn.send("stopped")


class Load:
    """One client thread's share of the mix: one keep-alive connection per API, own random stream."""

    def __init__(self, urls: dict[str, str], setup: dict[str, Any], seed: int, deadline: float) -> None:
        self.urls, self.setup, self.deadline = urls, setup, deadline
        self.rng = random.Random(seed)
        self.seed = seed
        self.base = {api: urlsplit(url) for api, url in urls.items()}
        self.connections: dict[str, http.client.HTTPConnection] = {}
        self.headers = {
            "bloomerang": {"X-API-KEY": SANDBOX_KEYS["bloomerang"], "Content-Type": "application/json"},
            "wegive": {"Authorization": f"Bearer {SANDBOX_KEYS['wegive']}"},
            "handbid": {"Authorization": f"Bearer {SANDBOX_KEYS['handbid']}"},
        }
        # a list drawn as often as it has pages: a random page of a quiet night's scans
        self.scans = {api: (lists, [n for _, _, n in lists]) for api, lists in setup["scan_lists"].items()}
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.created = 0

    def _send(self, api: str, method: str, path: str, query: dict[str, Any] | None = None,
              body: Any = None) -> tuple[int, bytes]:
        """One request on ``api``'s keep-alive connection (re-opened once when the server closed it)."""
        base = self.base[api]
        target = base.path + path + (f"?{urlencode(query)}" if query else "")
        payload = None if body is None else json.dumps(body).encode()
        for attempt in (1, 2):
            connection = self.connections.get(api)
            if connection is None:
                connection = self.connections[api] = http.client.HTTPConnection(base.hostname, base.port)
            try:
                connection.request(method, target, body=payload, headers=self.headers[api])
                answer = connection.getresponse()
                return answer.status, answer.read()
            except (http.client.HTTPException, ConnectionError):
                connection.close()
                del self.connections[api]
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def request(self, kind: str) -> None:
        rng = self.rng
        ids, values = self.setup["ids"], self.setup["values"]
        started = time.perf_counter()
        if kind == "create":
            self.created += 1
            value = f"bench-{self.seed}-{self.created}"
            status, body = self._send("bloomerang", "POST", "/constituent", body={
                "Type": "Individual", "FirstName": "Bench", "LastName": f"Load{self.created}",
                "PrimaryEmail": {"Type": "Home", "Value": f"bench{self.seed}.{self.created}@example.org"},
                "CustomValues": [{"FieldId": 901, "Value": value}]})
            if status == 200:
                ids.append(json.loads(body)["Id"])
                values.append(value)
        elif kind == "update":
            status, _ = self._send("bloomerang", "PUT", f"/constituent/{rng.choice(ids)}",
                                   body={"JobTitle": f"Title {rng.random()}"})
        elif kind == "by_correlation":
            status, _ = self._send("bloomerang", "GET", "/constituents",
                                   {"customFieldId": 901, "customFieldValue": rng.choice(values)})
        elif kind == "changed_constituents":
            status, _ = self._send("bloomerang", "GET", "/constituents", {
                "orderBy": "LastModifiedDate", "orderDirection": "Asc", "take": 50,
                "skip": rng.randrange(max(1, len(ids) - 50))})
        elif kind == "id_page":
            status, _ = self._send("bloomerang", "GET", "/constituents",
                                   {"take": 50, "skip": rng.randrange(max(1, len(ids) - 50))})
        elif kind == "changed_transactions":
            status, _ = self._send("bloomerang", "GET", "/transactions", {
                "lastModified": "2026-11-01T00:00:00Z", "orderBy": "LastModifiedDate", "orderDirection": "Asc"})
        elif kind == "nightly_scan_page":
            lists, weights = self.scans["wegive"]
            path, query, pages = rng.choices(lists, weights)[0]
            status, _ = self._send("wegive", "GET", path,
                                   {**query, "page": rng.randrange(1, pages + 1), "count": WEGIVE_PAGE})
        elif kind == "handbid_page":
            lists, weights = self.scans["handbid"]
            path, query, pages = rng.choices(lists, weights)[0]
            status, _ = self._send("handbid", "GET", path, {**query, "limit": HANDBID_PAGE,
                                                             "offset": rng.randrange(pages) * HANDBID_PAGE})
        else:
            status, _ = self._send("wegive", "GET", "/dashboard/donors",
                                   {"page": rng.randrange(1, self.setup["donor_pages"] + 1), "count": 200})
        self.latencies[kind].append(time.perf_counter() - started)
        if status != 200:
            self.errors[f"{kind} {status}"] += 1

    def run(self) -> None:
        kinds, weights = list(MIX), list(MIX.values())
        try:
            while time.monotonic() < self.deadline:
                self.request(self.rng.choices(kinds, weights)[0])
        finally:
            for connection in self.connections.values():
                connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--donors", type=int, default=None, help="generated WeGive donors (default 100,000)")
    parser.add_argument("--seconds", type=float, default=None, help="length of the request mix (default 20)")
    parser.add_argument("--clients", type=int, default=2, help="client threads (keep-alive session each)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--quick", action="store_true", help="20,000 donors and 5 s of requests")
    parser.add_argument("--profile", metavar="PATH", default=None,
                        help="cProfile the server threads during the mix; merged pstats written to PATH")
    args = parser.parse_args(argv)
    donors = args.donors or (20_000 if args.quick else 100_000)
    seconds = args.seconds or (5.0 if args.quick else 20.0)

    wall, cpu = time.monotonic(), time.process_time()
    world = generate_world(donors=donors, seed=args.seed)
    generation_wall, generation_cpu = time.monotonic() - wall, time.process_time() - cpu
    print(f"world: {donors:,} donors, {len(world.wegive['transactions']):,} transactions, "
          f"{len(world.bloomerang['constituents']):,} Bloomerang constituents; "
          f"generated in {generation_wall:.1f} s wall, {generation_cpu:.1f} s CPU")

    context = multiprocessing.get_context("fork")
    parent, child = context.Pipe()
    server = context.Process(target=_serve, args=(world, child, args.profile), daemon=True)
    server.start()
    setup = parent.recv()
    del world
    print(f"stores built and serving in {setup['build_s']:.1f} s wall, {setup['build_cpu_s']:.1f} s CPU "
          f"(child process; load {os.getloadavg()[0]:.1f})")
    server_process = psutil.Process(server.pid)
    cpu_before = server_process.cpu_times()
    client_cpu_before = time.thread_time(), time.process_time()

    deadline = time.monotonic() + seconds
    loads = [Load(setup["urls"], setup, args.seed + n, deadline) for n in range(args.clients)]
    threads = [threading.Thread(target=load.run) for load in loads]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    cpu_after = server_process.cpu_times()
    # the client threads' CPU: the whole process's less the (idle, joining) main thread's
    client_cpu = ((time.process_time() - client_cpu_before[1]) - (time.thread_time() - client_cpu_before[0]))
    rss = server_process.memory_info().rss
    parent.send("stop")
    parent.recv()  # stopped (and the profile written)
    server.join(timeout=30)

    latencies: dict[str, list[float]] = defaultdict(list)
    errors: Counter[str] = Counter()
    for load in loads:
        for kind, values in load.latencies.items():
            latencies[kind] += values
        errors.update(load.errors)
    total = sum(len(v) for v in latencies.values())
    rps = total / elapsed
    server_cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    print(f"\n{total:,} requests in {elapsed:.1f} s from {args.clients} clients = {rps:.0f} requests/s; "
          f"sandbox CPU {server_cpu:.1f} s ({server_cpu / total * 1000:.2f} ms/request); "
          f"client CPU {client_cpu:.1f} s ({client_cpu / total * 1000:.2f} ms/request); "
          f"sandbox RSS {rss / 2**20:.0f} MiB; load average {os.getloadavg()[0]:.2f}")
    print(f"{'kind':<22} {'requests':>9} {'median ms':>10} {'p95 ms':>8}")
    for kind in MIX:
        values = sorted(latencies.get(kind, []))
        if values:
            p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
            print(f"{kind:<22} {len(values):>9} {statistics.median(values) * 1000:>10.2f} {p95 * 1000:>8.2f}")
    if errors:
        print(f"errors: {dict(errors)}")
    if args.profile:
        print(f"server profile: {args.profile} (python -m pstats {args.profile}); the rate above is the profiler's")

    checks = [
        (f"generation of {donors:,} donors: {generation_wall:.1f} s <= {GENERATION_TARGET_S:.0f} s",
         generation_wall <= GENERATION_TARGET_S),
        (f"{rps:.0f} requests/s >= {RPS_TARGET:.0f} at {donors:,} donors", rps >= RPS_TARGET),
        (f"no failed request ({sum(errors.values())})", not errors),
    ]
    return report(checks)


if __name__ == "__main__":
    sys.exit(main())
