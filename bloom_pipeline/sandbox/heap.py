"""``paused_gc()``: build a large, acyclic tree of records without the cyclic garbage collector walking it.

Generating a world and seeding the stores from it allocate millions of dicts and lists that all stay alive.
Each allocation burst triggers a collection, and the collector walks every live object it tracks: at 10,000
donors about half of the stores' build time was collections that found nothing to free (the records are plain
trees; reference counting frees whatever they drop). So the collector is paused for the build.

Re-enabling it is not enough: the objects made during the pause are all still "young", and the first requests
served would pay for walking them (measured: 8.6 ms CPU per request over the first five seconds instead of
~3). On leaving the block the survivors are therefore moved to the permanent generation (``gc.freeze()``),
which no later collection walks. Frozen objects are still freed by reference counting as soon as nothing holds
them (a test's world and stores go when the test drops them); only a reference *cycle* that was already garbage
when the block ended is not collected while the process runs — the records have none, so that costs a few
stray objects at most. At exit everything is unfrozen again, so the interpreter's last collection sees it all
(extension modules such as DuckDB's report frozen, never-collected objects of theirs as leaks).
"""

from __future__ import annotations

import atexit
import gc
from collections.abc import Iterator
from contextlib import contextmanager

_unfreeze_at_exit = False


@contextmanager
def paused_gc() -> Iterator[None]:
    """No automatic collection inside the block; on leaving it, freeze the survivors and restore the collector's
    previous state (nested blocks leave it off until the outermost one ends)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        global _unfreeze_at_exit
        if not _unfreeze_at_exit:
            atexit.register(gc.unfreeze)
            _unfreeze_at_exit = True
        gc.freeze()
        if was_enabled:
            gc.enable()
