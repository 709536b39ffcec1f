"""What a quiet night costs: wall, CPU and non-HTTP time and requests of a no-change rerun, by org size.

For each size in ``--donors`` (default 2,000, 20,000 and 100,000 WeGive donors) the sandbox is generated and
served in a child process (the pipeline never shares its interpreter lock with the simulators, as with real
APIs elsewhere), and the demo org runs three times against it, both directions, rate limit off:

1. the first load (everything is written);
2. a first rerun (it reads back once the constituents and gifts the load wrote: Bloomerang's
   ``lastModified`` filter cannot tell our writes from a person's);
3. a **quiet rerun** — nothing changed anywhere: the nightly cost. The WeGive donor list scan (WeGive's donor
   list has no modified filter) is the only part that should grow with the org.

Per phase it prints wall time, CPU time (this process and any mapping workers it reaped), the time spent
waiting for HTTP answers (measured in ``clients/http.py``: ``HTTP_WAIT``), non-HTTP time = wall − HTTP wait,
and requests per API; the 1-minute load average at the start and end of each size.

Targets (2 cores), on the quiet rerun: 2,000 donors ≤ 3 s non-HTTP; 100,000 donors ≤ 30 s wall; the
100,000 / 2,000 ratio of non-HTTP time ≤ 15. Exit status 0 when every target that the sizes run can check is
met, else 1. Like ``api_cost.py``, the org runs with a short ``clock_skew_tolerance`` (``--skew``) that is waited
out between phases (nights are hours apart; phases here are seconds apart).

    python benchmarks/nightly_cost.py                         # 2,000, 20,000 and 100,000 donors
    python benchmarks/nightly_cost.py --quick                 # 2,000 and 20,000 donors
    python benchmarks/nightly_cost.py --donors 2000 --profile quiet.prof   # cProfile of the quiet rerun
    python benchmarks/nightly_cost.py --donors 2000 --quiet-runs 5          # median of five quiet reruns
    python benchmarks/nightly_cost.py --donors 2000 --keep /tmp/nightly     # keep each size's data folders

``--quiet-runs N`` repeats the quiet rerun N times against the same loaded sandbox (one process, one first
load) and checks the targets on the median run; this is the way to iterate on the nightly cost without paying
for a first load per measurement. ``--keep DIR`` copies the data folder after the first load and after the last
quiet rerun into ``DIR/data-<donors>-first-load`` / ``DIR/data-<donors>-quiet`` (with several quiet reruns:
``-quiet-<n>`` after each) for offline measurement — the snapshot publish of one quiet night, say: the staging
file of ``-quiet-2`` with the snapshot of ``-quiet-1``. It never feeds a kept folder back into a run: the sandbox lives
in memory in its child process and cannot be put back in the state that folder matches, and a data folder run
against a freshly generated sandbox would measure a first rerun against strangers, not a quiet night.
"""

from __future__ import annotations

import argparse
import cProfile
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from targets import demo_mappings, report  # benchmarks/targets.py, beside this script

QUIET_NON_HTTP_2K_S = 3.0
QUIET_WALL_100K_S = 30.0
RATIO_100K_2K = 15.0


@dataclass
class Phase:
    name: str
    wall: float
    cpu: float
    http_wait: float
    exit_code: int
    requests: Counter = field(default_factory=Counter)

    @property
    def non_http(self) -> float:
        return max(0.0, self.wall - self.http_wait)


def _cpu() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _serve(donors: int, seed: int, conn: Any) -> None:
    """Child process: generate the world, serve the three simulators, report their urls."""
    from bloom_pipeline.sandbox.faults import Knobs
    from bloom_pipeline.sandbox.server import Sandbox

    started = time.monotonic()
    sandbox = Sandbox(donors=donors, seed=seed, knobs=Knobs(rate_limit=None)).start()
    conn.send({"urls": sandbox.urls, "handbid_org_id": sandbox.handbid_org_id,
               "startup_s": time.monotonic() - started,
               "constituents": len(sandbox.stores["bloomerang"].constituents)})
    conn.recv()
    sandbox.stop()



def run_phase(name: str, setup: dict[str, Any], data_dir: Path, mappings: Path, gap: float,
              profile: Path | None = None) -> Phase:
    from bloom_pipeline.clients.http import HTTP_WAIT
    from bloom_pipeline.sync.cli import run_org

    time.sleep(gap)  # the previous phase's writes fall out of the overlap window, as between two nights
    waited, counted = HTTP_WAIT.seconds, Counter(HTTP_WAIT.requests)
    profiler = cProfile.Profile() if profile else None
    wall, cpu = time.monotonic(), _cpu()
    if profiler:
        profiler.enable()
    report = run_org("demo", direction="both", dry_run=False, since=None, mappings_dir=str(mappings),
                     data_dir=str(data_dir), urls=setup["urls"], quiet=True,
                     overrides={"handbid_org_id": setup["handbid_org_id"]})
    if profiler:
        profiler.disable()
        profiler.dump_stats(str(profile))
    phase = Phase(name, time.monotonic() - wall, _cpu() - cpu, HTTP_WAIT.seconds - waited, report.exit_code,
                  Counter(HTTP_WAIT.requests) - counted)
    print(f"  {name:<28} wall {phase.wall:7.1f} s  CPU {phase.cpu:7.1f} s  HTTP wait {phase.http_wait:7.1f} s  "
          f"non-HTTP {phase.non_http:7.1f} s  exit {phase.exit_code}  requests {dict(sorted(phase.requests.items()))}",
          flush=True)
    return phase


def _keep(data_dir: Path, keep: Path | None, name: str) -> None:
    """Copy a data folder aside (``--keep``) while no run holds it."""
    if keep is None:
        return
    target = keep / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(data_dir, target)
    print(f"  data folder kept in {target}", flush=True)


def median_phase(runs: list[Phase]) -> Phase:
    """The quiet rerun whose non-HTTP time is the median (the lower middle one of an even count): a real run,
    so its wall, CPU, HTTP time and requests belong together."""
    ranked = sorted(runs, key=lambda phase: phase.non_http)
    middle = ranked[(len(ranked) - 1) // 2]
    return Phase(f"median of {len(runs)}", middle.wall, middle.cpu, middle.http_wait,
                 max(phase.exit_code for phase in runs), middle.requests)


def run_size(donors: int, args: argparse.Namespace, scratch: Path, mappings: Path) -> Phase:
    context = multiprocessing.get_context("spawn")  # the parent holds DuckDB threads after a size
    parent, child = context.Pipe()
    server = context.Process(target=_serve, args=(donors, args.seed, child), daemon=True)
    server.start()
    try:
        setup = parent.recv()
        print(f"\n== {donors:,} donors: sandbox generated and serving in {setup['startup_s']:.1f} s "
              f"({setup['constituents']:,} Bloomerang constituents seeded); load average {os.getloadavg()[0]:.2f}",
              flush=True)
        data_dir = scratch / f"data-{donors}"
        gap = args.skew + 1.0
        run_phase("first load", setup, data_dir, mappings, 0.0)
        _keep(data_dir, args.keep, f"data-{donors}-first-load")
        run_phase("first rerun (reads back)", setup, data_dir, mappings, gap)
        runs = []
        for n in range(1, args.quiet_runs + 1):
            profile = args.profile.with_suffix(f".{donors}.prof" if n == 1 else f".{donors}.{n}.prof") \
                if args.profile else None
            label = "quiet rerun (nightly cost)" + (f" {n}/{args.quiet_runs}" if args.quiet_runs > 1 else "")
            runs.append(run_phase(label, setup, data_dir, mappings, gap, profile))
            _keep(data_dir, args.keep, f"data-{donors}-quiet" + (f"-{n}" if args.quiet_runs > 1 else ""))
        quiet = median_phase(runs) if len(runs) > 1 else runs[0]
        if len(runs) > 1:
            print(f"  median quiet rerun: wall {quiet.wall:.1f} s  CPU {quiet.cpu:.1f} s  HTTP wait "
                  f"{quiet.http_wait:.1f} s  non-HTTP {quiet.non_http:.1f} s (each: "
                  + ", ".join(f"{phase.non_http:.1f}" for phase in runs) + " s non-HTTP)", flush=True)
        print(f"  load average {os.getloadavg()[0]:.2f}")
        return quiet
    finally:
        parent.send("stop")
        server.join(timeout=60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--donors", type=lambda text: [int(n) for n in text.split(",")], default=None,
                        help="comma-separated sizes (default 2000,20000,100000)")
    parser.add_argument("--quick", action="store_true", help="2,000 and 20,000 donors only")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skew", type=int, default=5, help="the demo org's clock_skew_tolerance, seconds")
    parser.add_argument("--profile", type=Path, default=None,
                        help="write a cProfile of each quiet rerun to PATH.<donors>.prof (rerun n > 1: "
                             "PATH.<donors>.<n>.prof)")
    parser.add_argument("--quiet-runs", type=int, default=1, metavar="N",
                        help="quiet reruns per size against the same loaded sandbox; the median is checked (default 1)")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="copy each size's data folder after the first load and after the quiet reruns to DIR "
                             "(for offline measurement; never reused by a run)")
    args = parser.parse_args(argv)
    if args.quiet_runs < 1:
        parser.error("--quiet-runs must be at least 1")
    sizes = args.donors or ([2000, 20_000] if args.quick else [2000, 20_000, 100_000])

    quiet: dict[int, Phase] = {}
    with tempfile.TemporaryDirectory(prefix="bloom-nightly-") as scratch:
        mappings = demo_mappings(Path(scratch), skew_seconds=args.skew)
        for donors in sizes:
            quiet[donors] = run_size(donors, args, Path(scratch), mappings)

    print(f"\n{'quiet rerun':<14} {'wall s':>8} {'CPU s':>8} {'HTTP s':>8} {'non-HTTP s':>11} {'requests':>9}")
    for donors, phase in quiet.items():
        print(f"{donors:>14,} {phase.wall:>8.1f} {phase.cpu:>8.1f} {phase.http_wait:>8.1f} {phase.non_http:>11.1f} "
              f"{sum(phase.requests.values()):>9}")
    checks = [(f"{donors:,} donors: quiet rerun exit status {p.exit_code} == 0", p.exit_code == 0)
              for donors, p in quiet.items()]
    if 2000 in quiet:
        checks.append((f"2,000 donors: quiet rerun {quiet[2000].non_http:.1f} s non-HTTP <= {QUIET_NON_HTTP_2K_S:g} s",
                       quiet[2000].non_http <= QUIET_NON_HTTP_2K_S))
    if 100_000 in quiet:
        checks.append((f"100,000 donors: quiet rerun {quiet[100_000].wall:.1f} s wall <= {QUIET_WALL_100K_S:g} s",
                       quiet[100_000].wall <= QUIET_WALL_100K_S))
    if 2000 in quiet and 100_000 in quiet:
        ratio = quiet[100_000].non_http / max(quiet[2000].non_http, 1e-9)
        checks.append((f"non-HTTP time 100k / 2k = {ratio:.1f} <= {RATIO_100K_2K:g}", ratio <= RATIO_100K_2K))
    return report(checks)


if __name__ == "__main__":
    sys.exit(main())
