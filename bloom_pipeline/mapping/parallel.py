"""Map the chunks of a large input on several cores: the calling process plus spawned worker processes.

Why: the mapping runs on one core (pandas/pyarrow kernels hold the GIL between calls), and every rule is
row-local, so a million-row backfill splits into independent chunks. Small inputs (every sync run) never
come here: starting a worker costs about a second of imports.

Why the caller maps too: with `workers=2` the calling process is one of the two. It maps chunks itself
instead of idling while it waits, which saves one process start and the transfer of its share of the
rows; it hands the worker chunks ahead (`IN_FLIGHT` each) so the worker never waits for the caller.

Why "spawn": a forked child inherits the caller's threads and locks (Dagster, uvicorn and the sync run
threads), which can deadlock; a spawned child starts clean. It sets no global state either (a
forkserver's preload list is process-wide and Dagster's executor uses its own).

Why pickle, not Arrow: measured on 100,000 WeGive donors, a pickled frame chunk is 8.6 MB and takes
0.06 s to dump and 0.08 s to load, Arrow IPC 18 MB and about the same time; for transactions Arrow is
slower (0.2 s to load) and turns lists of dicts into arrays, so the worker would not see what the caller
holds. Pickle keeps every value exactly as given, so the output is identical to the serial path. Results
(about 60 MB per 100,000 donors, mostly payload text) come back pickled too (Arrow was no cheaper), by
`dump`, which skips the pickle memo.

If the pool cannot start or a worker dies, the chunks it had are mapped in-process (a genuine mapping
error then raises here, as it would serially). As with any spawned process, the caller's main module is
imported again in the worker, so it must be import-safe (`if __name__ == "__main__":`); the Dagster, uvicorn,
pytest and benchmark entry points are. If it is not, the worker fails to start and the mapping falls back.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import pickle
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import pandas as pd

log = logging.getLogger(__name__)

PARALLEL_MIN_ROWS = 200_000  # inputs at least this long are mapped on several cores (below: start-up dominates)
CHUNK_ROWS = 50_000  # half the serial chunk: the two processes finish closer together, and each holds half the
# intermediates (1M donors on 2 cores: 11.1 s and 2.48 GB summed peak RSS, against 10.9-12.9 s and 2.53-2.76 GB
# with 100,000-row chunks; 25,000 rows: 11.9 s, the per-chunk costs start to show)
IN_FLIGHT = 2  # chunks handed to each worker ahead: one running, one waiting, so it never idles
PANDAS_OPTIONS = ("future.infer_string", "mode.copy_on_write")  # options that change the frames a worker builds

R = TypeVar("R")
_state: dict[str, Any] = {}


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask in a container, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_workers() -> int:
    """Processes mapping a large input: two where there are two cores (more cost memory for little gain on
    the machines this runs on: each holds a chunk and its intermediates)."""
    return min(2, cpu_count())


def _options() -> dict[str, Any]:
    out = {}
    for name in PANDAS_OPTIONS:
        try:
            out[name] = pd.get_option(name)
        except (KeyError, pd.errors.OptionError):
            continue
    return out


def _init(map_one: Callable[..., Any], org: Any, options: dict[str, Any]) -> None:
    """Worker start: the mapping function and org travel once per worker, not once per chunk."""
    for name, value in options.items():
        pd.set_option(name, value)
    _state.update(map_one=map_one, org=org)


def _run(entity: str, chunk: Any) -> bytes:
    return dump(_state["map_one"](_state["org"], entity, chunk))


def dump(value: Any) -> bytes:
    """Pickle without the memo: 0.10 s instead of 0.42 s for 100,000 mapped donors (the memo tracks every
    payload string). Values repeated by reference come back as copies (about 10% more memory for those rows);
    a self-referencing value, which the memo-less pickler rejects, goes the usual way."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.fast = True  # deprecated spelling of "no memo", still the only one the C pickler has
    try:
        pickler.dump(value)
    except (ValueError, RecursionError):
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return buffer.getvalue()


def _start(map_one: Callable[..., R], org: Any, children: int) -> ProcessPoolExecutor | None:
    try:
        return ProcessPoolExecutor(max_workers=children, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init, initargs=(map_one, org, _options()))
    except (OSError, ValueError, RuntimeError) as exc:  # no semaphores, no /dev/shm, process limits
        log.warning("mapping worker pool did not start (%s); mapping in one process", exc)
        return None


def _ahead(left: int, workers: int) -> int:
    """Chunks the workers may hold: IN_FLIGHT each while there is plenty left; near the end one each, so no
    worker sits on a queued chunk while this process, done with its own, waits for it."""
    return (workers - 1) * (IN_FLIGHT if left > IN_FLIGHT * workers else 1)


def map_chunks(map_one: Callable[[Any, str, Any], R], org: Any, entity: str, chunks: Sequence[Any],
               workers: int) -> list[R]:
    """`[map_one(org, entity, c) for c in chunks]`, computed by this process and `workers - 1` spawned
    processes, in the order of `chunks`. `map_one` must be a module-level function (it is pickled by name)."""
    return list(map_stream(map_one, org, entity, chunks, workers))


def map_stream(map_one: Callable[[Any, str, Any], R], org: Any, entity: str, chunks: Iterable[Any],
               workers: int) -> Iterator[R]:
    """`map_chunks` over an iterable, yielding each result in the order of `chunks` as soon as it and those
    before it are done.

    Why a generator: a backfill of ten million records must never be in memory at once, input or output.
    Chunks are drawn from `chunks` only as they are mapped (at most `IN_FLIGHT` per worker, plus this
    process's own and one looked at in advance, to know whether the stream is ending), and results wait here
    only until those before them are done, so memory is bounded by the chunk size, not by the length of the
    stream. One pool serves the whole stream (a worker start costs about a second of imports)."""
    source = iter(chunks)
    queue: deque[tuple[int, Any]] = deque()  # drawn from `source`, not yet claimed
    drawn = 0
    exhausted = False

    def fill(upto: int) -> None:
        nonlocal drawn, exhausted
        while not exhausted and len(queue) < upto:
            try:
                queue.append((drawn, next(source)))
            except StopIteration:
                exhausted = True
                return
            drawn += 1

    fill(2)
    pool = _start(map_one, org, workers - 1) if workers > 1 and len(queue) > 1 else None
    pending: dict[Future[bytes], tuple[int, Any]] = {}
    done: dict[int, R] = {}
    emitted = 0
    by_workers = 0

    def collect(finished: set[Future[bytes]]) -> None:
        nonlocal pool, by_workers
        for future in finished:
            index, chunk = pending.pop(future)
            try:
                done[index] = pickle.loads(future.result())  # noqa: S301 - bytes from our own worker
                by_workers += 1
            except Exception as exc:  # noqa: BLE001 - any worker failure: map the chunk here (re-raises real errors)
                if isinstance(exc, BrokenProcessPool) and pool is not None:
                    log.warning("mapping worker pool broke (%s); mapping the rest in this process", exc)
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = None
                done[index] = map_one(org, entity, chunk)

    try:
        while True:
            fill(IN_FLIGHT * (workers - 1) + 2 if pool is not None else 2)  # those in flight, ours, one ahead
            while pool is not None and queue and len(pending) < _ahead(
                    len(queue) if exhausted else len(queue) + IN_FLIGHT * workers + 1, workers):
                index, chunk = queue[0]
                try:
                    pending[pool.submit(_run, entity, chunk)] = (index, chunk)
                except Exception as exc:  # noqa: BLE001 - pool cannot start (pickling, daemonic caller, limits)
                    log.warning("mapping worker pool unavailable (%s); mapping in this process", exc)
                    pool.shutdown(wait=False, cancel_futures=True)  # chunks it already had fail: mapped in collect
                    pool = None
                    break
                queue.popleft()
            if queue:
                index, chunk = queue.popleft()
                done[index] = map_one(org, entity, chunk)
                collect({f for f in pending if f.done()})
            elif pending:
                collect(wait(pending, return_when=FIRST_COMPLETED).done)
            while emitted in done:
                yield done.pop(emitted)
                emitted += 1
            if exhausted and not queue and not pending and not done:
                break
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    log.debug("mapped %d chunks of %s: %d by worker processes", drawn, entity, by_workers)
