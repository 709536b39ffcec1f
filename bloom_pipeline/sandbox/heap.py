"""``paused_gc()``: build a large, acyclic tree of records without the cyclic garbage collector walking it.

Generating a world and seeding the stores from it allocate millions of dicts and lists that all stay alive.
Each allocation burst triggers a collection, and the collector walks every live object it tracks: at 10,000
donors about half of the stores' build time was collections that found nothing to free (the records are plain
trees; reference counting frees whatever they drop). So the collector is paused for the build.

Re-enabling it is not enough: the objects made during the pause are all still "young", and the first requests
served would pay for walking them (measured: 8.6 ms CPU per request over the first five seconds instead of
~3). On leaving a *large* build (``FREEZE_AT`` young objects or more: a world of roughly 8,000 donors and up,
i.e. the demo, the CLI and the benchmark, not the tests' small worlds) the survivors are therefore moved to the
permanent generation (``gc.freeze()``), which no later collection walks. ``gc.freeze`` is process-wide: frozen
objects are still freed by reference counting as soon as nothing holds them, but a reference *cycle* among them
is not collected while the process runs — the records have none; anything else of the process that was alive
at the freeze and later becomes cyclic garbage waits until exit. That is why small builds are left to the
collector as usual. At exit everything is unfrozen again, so the interpreter's last collection sees it all
(extension modules such as DuckDB's report frozen, never-collected objects of theirs as leaks).
"""

from __future__ import annotations

import atexit
import gc
from collections.abc import Iterator
from contextlib import contextmanager

FREEZE_AT = 250_000  # young objects at the end of a paused build above which its survivors are frozen
_unfreeze_at_exit = False


@contextmanager
def paused_gc() -> Iterator[None]:
    """No automatic collection inside the block; on leaving it, freeze the survivors of a large build and restore
    the collector's previous state (nested blocks leave it off until the outermost one ends)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_count()[0] >= FREEZE_AT:
            global _unfreeze_at_exit
            if not _unfreeze_at_exit:
                atexit.register(gc.unfreeze)
                _unfreeze_at_exit = True
            gc.freeze()
        if was_enabled:
            gc.enable()
