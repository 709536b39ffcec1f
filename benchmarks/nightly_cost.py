"""What a quiet night costs: wall, CPU and non-HTTP time and requests of a no-change rerun, by org size.

For each size in ``--donors`` (default 2,000, 20,000 and 100,000 WeGive donors) the sandbox is generated and
served in a child process (the pipeline never shares its interpreter lock with the simulators, as with real
APIs elsewhere), and the demo org runs three times against it, both directions, rate limit off
(the sandbox's and the org's own budget, ``UNLIMITED_BUDGET``):

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
load) and checks the targets on the median run. ``--keep DIR`` keeps a **loaded world** after the first load and
after each quiet rerun: the data folder copied to ``DIR/data-<donors>-first-load`` / ``DIR/data-<donors>-quiet``
(with several quiet reruns: ``-quiet-<n>`` after each) and, beside each, the whole state of the sandbox at that
moment, ``DIR/data-<donors>-<stage>.sandbox`` (``bloom_pipeline/sandbox/state.py``) — the two belong together:
the data folder is what the pipeline knows of exactly that sandbox. A kept folder also serves offline
measurement (the snapshot publish of one quiet night: the staging file of ``-quiet-2`` with the snapshot of
``-quiet-1``).

``--from DIR`` starts each size from a world kept there instead of a first load: the sandbox child serves the
saved state (no world is generated, nothing is written), the pipeline runs on a *copy* of the kept data folder
(the kept one is never run on, so the world can be reused any number of times), and only the reruns run. Which
world: ``--from-stage`` ``quiet`` (the most recently kept quiet world of that size), ``first-load``, or ``auto``
(default: quiet if kept, else first-load). From a first-load world the first rerun (it reads back) runs first,
then the quiet reruns. The output names the resumed world. The first rerun after a code change may re-map every
record (staging keys its changed-only cache on a digest of the mapping code), so after a resume the first quiet
rerun is printed on its own and, with ``--quiet-runs`` 2 or more, the median is taken over the others. A state
saved by other sandbox code, or for another seed, is refused (make the world again). Use the ``--skew`` the
world was kept with (the demo org's YAML is part of the mapping digest).

    python benchmarks/nightly_cost.py --donors 20000 --quiet-runs 2 --keep /work/worlds   # make a world, once
    python benchmarks/nightly_cost.py --donors 20000 --quiet-runs 3 --from /work/worlds   # reuse it

``--fresh-process`` runs each quiet rerun in a new Python process instead, as a nightly schedule starts a sync
(cron, or Dagster's run worker, a process per run): its wall time then includes the interpreter start and every
import and first call of the run. The targets are checked on whichever figure was measured.

    python benchmarks/nightly_cost.py --donors 2000 --quiet-runs 4 --from /work/worlds --fresh-process

After each phase the sandbox child's resident memory (now / peak) and this process's peak are printed.
"""

from __future__ import annotations

import argparse
import cProfile
import multiprocessing
import os
import re
import resource
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
# "Rate limit off" is both sides: the sandbox's limit (Knobs(rate_limit=None)) and the org's own budget, which
# the pipeline spends before any request leaves. The demo org's 100,000 an hour is below a 100,000-donor first
# load (~600,000 requests): it would fail most writes there with "budget used up", not measure a quiet night.
UNLIMITED_BUDGET = 100_000_000
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


def _memory_mib() -> dict[str, float]:
    """This process's resident memory now and at its peak, MiB (Linux ``/proc``; elsewhere the peak only)."""
    try:
        status = Path("/proc/self/status").read_text()
        found = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, flags=re.MULTILINE))
        return {"rss": int(found["VmRSS"]) / 1024, "peak": int(found["VmHWM"]) / 1024}
    except (OSError, KeyError):
        return {"rss": float("nan"), "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _serve(donors: int, seed: int, state: str | None, conn: Any) -> None:
    """Child process: generate the world (or restore a saved state), serve the three simulators, report their
    urls; then answer ``("save", path)`` (write the sandbox state) and ``("memory",)`` until ``("stop",)``."""
    from bloom_pipeline.sandbox.faults import Knobs
    from bloom_pipeline.sandbox.server import Sandbox
    from bloom_pipeline.sandbox.state import SandboxStateError

    started = time.monotonic()
    try:
        sandbox = Sandbox(donors=donors, seed=seed, knobs=Knobs(rate_limit=None), state=state).start()
    except SandboxStateError as exc:
        conn.send({"error": str(exc)})
        return
    conn.send({"urls": sandbox.urls, "handbid_org_id": sandbox.handbid_org_id,
               "startup_s": time.monotonic() - started, "memory": _memory_mib(),
               "constituents": len(sandbox.stores["bloomerang"].constituents)})
    while True:
        command, *arguments = conn.recv()
        if command == "save":
            began = time.monotonic()
            sandbox.save_state(arguments[0])
            conn.send({"seconds": time.monotonic() - began, "bytes": Path(arguments[0]).stat().st_size})
        elif command == "memory":
            conn.send(_memory_mib())
        else:
            break
    sandbox.stop()



def run_phase(name: str, setup: dict[str, Any], data_dir: Path, mappings: Path, gap: float,
              profile: Path | None = None) -> Phase:
    from bloom_pipeline.clients.http import HTTP_WAIT

    time.sleep(gap)  # the previous phase's writes fall out of the overlap window, as between two nights
    waited, counted = HTTP_WAIT.seconds, Counter(HTTP_WAIT.requests)
    profiler = cProfile.Profile() if profile else None
    wall, cpu = time.monotonic(), _cpu()
    if profiler:
        profiler.enable()
    report = _sync(setup, data_dir, mappings)
    if profiler:
        profiler.disable()
        profiler.dump_stats(str(profile))
    phase = Phase(name, time.monotonic() - wall, _cpu() - cpu, HTTP_WAIT.seconds - waited, report.exit_code,
                  Counter(HTTP_WAIT.requests) - counted)
    print(f"  {name:<28} wall {phase.wall:7.1f} s  CPU {phase.cpu:7.1f} s  HTTP wait {phase.http_wait:7.1f} s  "
          f"non-HTTP {phase.non_http:7.1f} s  exit {phase.exit_code}  requests {dict(sorted(phase.requests.items()))}",
          flush=True)
    return phase


def _sync(setup: dict[str, Any], data_dir: Path | str, mappings: Path | str) -> Any:
    """One sync of the demo org against the served sandbox, both directions, quiet: what every phase runs."""
    from bloom_pipeline.sync.cli import run_org

    return run_org("demo", direction="both", dry_run=False, since=None, mappings_dir=str(mappings),
                   data_dir=str(data_dir), urls=setup["urls"], quiet=True,
                   overrides={"handbid_org_id": setup["handbid_org_id"]})


def _run_fresh(setup: dict[str, Any], data_dir: str, mappings: str, conn: Any) -> None:
    """Child process of ``--fresh-process``: one sync as a nightly schedule starts it (a new interpreter: every
    import and first call paid); sends back its CPU time, HTTP wait, exit status and requests."""
    began = time.monotonic()
    from bloom_pipeline.clients.http import HTTP_WAIT
    from bloom_pipeline.sync.cli import run_org  # noqa: F401 - imported here to time the sync's first imports

    imported = time.monotonic()
    report = _sync(setup, data_dir, mappings)
    conn.send({"cpu": _cpu(), "http_wait": HTTP_WAIT.seconds, "exit_code": report.exit_code,
               "requests": dict(HTTP_WAIT.requests), "imports": imported - began,
               "run": time.monotonic() - imported})


def run_fresh_phase(name: str, setup: dict[str, Any], data_dir: Path, mappings: Path, gap: float) -> Phase:
    """``run_phase`` in a new Python process: wall from its start to its exit (interpreter start, imports, the
    run), CPU its own (``os.times`` in the child, mapping workers included)."""
    time.sleep(gap)
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    wall = time.monotonic()
    worker = context.Process(target=_run_fresh, args=(setup, str(data_dir), str(mappings), child))
    worker.start()
    answer = parent.recv()
    answered = time.monotonic()
    worker.join()
    phase = Phase(name, time.monotonic() - wall, answer["cpu"], answer["http_wait"], answer["exit_code"],
                  Counter(answer["requests"]))
    print(f"  {name:<28} wall {phase.wall:7.1f} s  CPU {phase.cpu:7.1f} s  HTTP wait {phase.http_wait:7.1f} s  "
          f"non-HTTP {phase.non_http:7.1f} s  exit {phase.exit_code}  requests {dict(sorted(phase.requests.items()))}"
          f" (a new process: started {answered - wall - answer['imports'] - answer['run']:.1f} s, the sync's first "
          f"imports {answer['imports']:.1f} s, run_org {answer['run']:.1f} s, exit {time.monotonic() - answered:.1f} "
          "s)", flush=True)
    return phase


def _keep(data_dir: Path, keep: Path | None, name: str, conn: Any) -> None:
    """Keep a loaded world (``--keep``) while no run holds it: the data folder copied to ``keep/name`` and the
    sandbox child's state saved beside it, ``keep/name.sandbox``, at the same moment."""
    if keep is None:
        return
    target = keep / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(data_dir, target)
    conn.send(("save", str(target.with_name(f"{name}.sandbox"))))
    saved = conn.recv()
    print(f"  world kept: data folder {target}, sandbox state {target.name}.sandbox "
          f"({saved['bytes'] / 2**20:,.0f} MiB, saved in {saved['seconds']:.1f} s)", flush=True)


def _memory_line(conn: Any) -> None:
    conn.send(("memory",))
    child = conn.recv()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  {'':<28} sandbox child RSS {child['rss']:,.0f} MiB (peak {child['peak']:,.0f} MiB); "
          f"this process peak {own:,.0f} MiB", flush=True)


def kept_world(root: Path, donors: int, stage: str) -> str:
    """The name of the kept world of ``donors`` to resume (``--from``): ``quiet`` — the most recently saved
    ``data-<donors>-quiet[-<n>]``; ``first-load``; ``auto`` — quiet if one is kept, else first-load. Only a name
    whose data folder and ``.sandbox`` state are both there counts."""
    def complete(name: str) -> bool:
        return (root / name).is_dir() and (root / f"{name}.sandbox").is_file()

    quiet = sorted((path.stat().st_mtime, path.stem) for path in root.glob(f"data-{donors}-quiet*.sandbox")
                   if re.fullmatch(rf"data-{donors}-quiet(-\d+)?", path.stem) and complete(path.stem))
    first = f"data-{donors}-first-load"
    if stage in ("quiet", "auto") and quiet:
        return quiet[-1][1]
    if stage in ("first-load", "auto") and complete(first):
        return first
    raise SystemExit(f"--from {root}: no kept {stage if stage != 'auto' else ''} world of {donors:,} donors there "
                     f"(a data-{donors}-<stage> folder with its .sandbox state beside it; make one with --keep)")


def median_phase(runs: list[Phase]) -> Phase:
    """The quiet rerun whose non-HTTP time is the median (the lower middle one of an even count): a real run,
    so its wall, CPU, HTTP time and requests belong together."""
    ranked = sorted(runs, key=lambda phase: phase.non_http)
    middle = ranked[(len(ranked) - 1) // 2]
    return Phase(f"median of {len(runs)}", middle.wall, middle.cpu, middle.http_wait,
                 max(phase.exit_code for phase in runs), middle.requests)


def run_size(donors: int, args: argparse.Namespace, scratch: Path, mappings: Path) -> Phase:
    data_dir = scratch / f"data-{donors}"
    state = resumed = None
    if args.from_dir is not None:
        from bloom_pipeline.sandbox.state import SandboxStateError, read_header

        resumed = kept_world(args.from_dir, donors, args.from_stage)
        state = args.from_dir / f"{resumed}.sandbox"
        try:
            header = read_header(state, donors=donors, seed=args.seed)
        except SandboxStateError as exc:
            raise SystemExit(f"--from: {exc}") from None
        shutil.copytree(args.from_dir / resumed, data_dir)  # a copy: the kept world stays as it was kept
    context = multiprocessing.get_context("spawn")  # the parent holds DuckDB threads after a size
    parent, child = context.Pipe()
    server = context.Process(target=_serve, args=(donors, args.seed, str(state) if state else None, child),
                             daemon=True)
    server.start()
    try:
        setup = parent.recv()
        if "error" in setup:
            raise SystemExit(f"--from: {setup['error']}")
        how = "generated" if state is None else "restored from its saved state"
        print(f"\n== {donors:,} donors: sandbox {how} and serving in {setup['startup_s']:.1f} s "
              f"({setup['constituents']:,} Bloomerang constituents; child RSS {setup['memory']['rss']:,.0f} MiB); "
              f"load average {os.getloadavg()[0]:.2f}", flush=True)
        gap = args.skew + 1.0
        if resumed is None:
            run_phase("first load", setup, data_dir, mappings, 0.0)
            _memory_line(parent)
            _keep(data_dir, args.keep, f"data-{donors}-first-load", parent)
        else:
            print(f"  resumed world {resumed} of {args.from_dir} (kept {header['saved_at']}, sandbox code "
                  f"{header['code']}); the pipeline runs on a copy of its data folder. The first rerun after a "
                  "code change may re-map every record (staging keys its changed-only cache on a digest of the "
                  "mapping code): it is reported apart from the median.", flush=True)
        if resumed is None or resumed.endswith("-first-load"):
            run_phase("first rerun (reads back)", setup, data_dir, mappings, gap)
            _memory_line(parent)
        runs = []
        for n in range(1, args.quiet_runs + 1):
            profile = args.profile.with_suffix(f".{donors}.prof" if n == 1 else f".{donors}.{n}.prof") \
                if args.profile else None
            label = "quiet rerun (nightly cost)" + (f" {n}/{args.quiet_runs}" if args.quiet_runs > 1 else "")
            if resumed is not None and n == 1:
                label = "first quiet rerun after resume"
            if args.fresh_process and not (resumed is not None and n == 1):
                runs.append(run_fresh_phase(label, setup, data_dir, mappings, gap))
            else:
                runs.append(run_phase(label, setup, data_dir, mappings, gap, profile))
            _memory_line(parent)
            _keep(data_dir, args.keep, f"data-{donors}-quiet" + (f"-{n}" if args.quiet_runs > 1 else ""), parent)
        measured = runs[1:] if resumed is not None and len(runs) > 1 else runs
        quiet = median_phase(measured) if len(measured) > 1 else measured[0]
        left_out = "; the first rerun after the resume left out" if measured is not runs else ""
        if len(measured) > 1:
            print(f"  median quiet rerun: wall {quiet.wall:.1f} s  CPU {quiet.cpu:.1f} s  HTTP wait "
                  f"{quiet.http_wait:.1f} s  non-HTTP {quiet.non_http:.1f} s (each: "
                  + ", ".join(f"{phase.non_http:.1f}" for phase in measured) + f" s non-HTTP{left_out})", flush=True)
        elif left_out:
            print(f"  quiet rerun figure: rerun 2/2{left_out}", flush=True)
        elif resumed is not None:
            print("  (one quiet rerun after a resume: the figure below is that first rerun, which may have "
                  "re-mapped and paid this process's imports; --quiet-runs 2 or more leaves it out)", flush=True)
        print(f"  load average {os.getloadavg()[0]:.2f}")
        return quiet
    finally:
        parent.send(("stop",))
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
                        help="keep a loaded world after the first load and after each quiet rerun: the data folder "
                             "copied to DIR/data-<donors>-<stage> and the sandbox state beside it (.sandbox)")
    parser.add_argument("--from", dest="from_dir", type=Path, default=None, metavar="DIR",
                        help="start each size from a world kept in DIR by --keep (restored sandbox, a copy of the "
                             "data folder) and run the reruns only")
    parser.add_argument("--from-stage", choices=("auto", "quiet", "first-load"), default="auto",
                        help="which kept world --from resumes: the latest quiet one, the first-load one, or auto "
                             "(quiet if kept, else first-load; default)")
    parser.add_argument("--fresh-process", action="store_true",
                        help="run each quiet rerun in a new Python process, as a nightly schedule starts a sync "
                             "(cron, Dagster's run worker): its wall time includes the interpreter start and every "
                             "import (the first rerun after a --from resume still runs in this process)")
    args = parser.parse_args(argv)
    if args.quiet_runs < 1:
        parser.error("--quiet-runs must be at least 1")
    if args.from_dir is not None and args.keep is not None and args.keep.resolve() == args.from_dir.resolve():
        parser.error("--keep must not be the --from folder (it would overwrite the world being resumed)")
    sizes = args.donors or ([2000, 20_000] if args.quick else [2000, 20_000, 100_000])

    quiet: dict[int, Phase] = {}
    with tempfile.TemporaryDirectory(prefix="bloom-nightly-") as scratch:
        mappings = demo_mappings(Path(scratch), skew_seconds=args.skew, requests_per_hour=UNLIMITED_BUDGET)
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
