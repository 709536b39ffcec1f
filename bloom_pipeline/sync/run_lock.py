"""One run per org at a time, across processes: an OS file lock beside the org's staging file.

The Dagster run queue already keeps one run per org (tag limits); the lock covers everything else — two
terminals, a cron job beside the scheduler — so one writer per org file always holds. The operating
system releases the lock when the process dies, which is how a later run knows a ``running`` row in
``sync_runs`` belongs to a dead process.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bloom_pipeline.errors import DataError


class RunInProgressError(DataError):
    """Another live process is running a sync of the same org."""


@contextmanager
def run_lock(staging_file: Path, org: str) -> Iterator[None]:
    """Hold ``<staging file>.run.lock`` for the duration of the block, or refuse at once."""
    path = staging_file.with_name(staging_file.name + ".run.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise RunInProgressError(f"a sync of org {org!r} is already running ({holder}); "
                                     "wait for it to finish") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
