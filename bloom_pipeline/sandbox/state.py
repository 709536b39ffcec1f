"""The whole state of the three simulators in one file, and a ``Sandbox`` served from it again.

Why: a quiet night can only be measured against a *loaded* world — a first load that wrote everything — and the
first load costs ~6 requests per donor (about 12 minutes at 20,000 donors on an idle machine, an hour at
100,000). The simulators live in memory, so without this every measurement paid for its own first load. A saved
state and the data folder kept at the same moment (``benchmarks/nightly_cost.py --keep``) are a loaded world
that can be served again, as often as needed.

What is state: every attribute of each store (``BloomerangStore``, ``WeGiveStore``, ``HandbidStore``): the records,
the deletions and merges they record, custom fields, the modification times, the id counters, the indexes kept
beside the tables (``bloomerang/indexes.py``; carried as they are, so they stay consistent with the tables they
were kept with), the stores' own knobs and random streams; and the Sandbox's ``messy_manifest``. What is not:
the locks, the clocks (a restored store stamps writes with the time of day again — a test that set a clock sets
it again), the answer caches (``answer_text.TextCache``: they re-render on first use, the same bytes), and
everything of the servers (ports, threads, the request log, the ``Knobs`` — so the rate-limit budget starts
empty, as in any new process).

The file: a magic line, then a pickled header (format version, code fingerprint, donors, seed, messy, when it
was saved, record counts), then one pickle of the stores' attributes. Pickle is fine here: the file is the
sandbox's own, written by ``save``; it is never the product's data and is never read from anywhere else. The
header is read first and alone, so a file that does not match is refused before the (large) rest is loaded:
another format version, another seed or size than the caller asked for, or another *code fingerprint* — a
sha256 of the sandbox modules that decide what a store holds (the stores, their rules, the world generator;
not the HTTP apps, the response resources, the list pages' serving-side indexes, the fault middleware or the
commands). A state saved by other code
may hold records that code would never have made, and would be served wrongly; such a file is refused with a
message saying to make the world again.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import pickle
import threading
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from bloom_pipeline.errors import ConfigurationError
from bloom_pipeline.sandbox.answer_text import TextCache
from bloom_pipeline.sandbox.heap import paused_gc

FORMAT = 1
MAGIC = b"bloom-pipeline sandbox state\n"
_PACKAGE = Path(__file__).resolve().parent
# Modules that serve the stores but do not decide what they hold: a change to them keeps a saved state valid.
_SERVING_ONLY = {"__init__.py", "state.py", "server.py", "process.py", "cli.py", "faults.py", "app.py",
                 "resources.py", "queries.py", "strict.py",
                 # the serving-side indexes of the list pages: they decide which stored records a page cuts and
                 # in which order, computed from the records at start, never what a store holds
                 "page_index.py", "listing.py",
                 # the list pages' record texts kept from their first render: how an answer is encoded, from
                 # the stored records, never what a store holds
                 "kept_texts.py"}
_NOT_STATE = ("lock", "clock")  # attribute names a store re-creates itself
_NOT_STATE_TYPES = (TextCache, type(threading.RLock()), type(threading.Lock()))


class SandboxStateError(ConfigurationError):
    """A saved sandbox state cannot be served: not such a file, or saved by other code or for another world.
    Its text is one line naming the file."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = path
        super().__init__(f"{path}: {problem}")


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """sha256 of the sandbox modules that decide what a store holds (see the module docstring), computed once
    per process: ``Sandbox.start`` takes it before it builds, so it names the code that made the state."""
    digest = hashlib.sha256()
    for path in sorted(_PACKAGE.rglob("*.py")):
        if path.name in _SERVING_ONLY:
            continue
        digest.update(path.relative_to(_PACKAGE).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _is_state(name: str, value: Any) -> bool:
    return name not in _NOT_STATE and not isinstance(value, _NOT_STATE_TYPES)


def store_attributes(store: Any) -> dict[str, Any]:
    """What of ``store`` is state: every attribute but its lock, its clock and its answer caches."""
    return {name: value for name, value in vars(store).items() if _is_state(name, value)}


def _record_counts(attributes: dict[str, Any]) -> dict[str, int]:
    """Records per table (a dict of records keyed by id), for the header: what a reader sees before loading."""
    return {name: len(value) for name, value in attributes.items()
            if type(value) is dict and value and all(type(key) is int for key in list(value)[:3])}


def save(path: str | Path, stores: dict[str, Any], *, donors: int, seed: int, messy: bool,
         messy_manifest: list[dict[str, Any]]) -> dict[str, Any]:
    """Write ``stores`` (api → store) to ``path`` (atomically: a partial file is never left under that name);
    hold each store's lock while it is read so a request in flight never tears it. Returns the header."""
    path = Path(path)
    locks = [stores[api].lock for api in sorted(stores)]
    for lock in locks:
        lock.acquire()
    try:
        payload = {"stores": {api: {"class": type(store).__name__, "attributes": store_attributes(store)}
                              for api, store in stores.items()},
                   "messy_manifest": messy_manifest}
        header = {"format": FORMAT, "code": code_fingerprint(), "donors": donors, "seed": seed, "messy": messy,
                  "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
                  "counts": {api: _record_counts(payload["stores"][api]["attributes"]) for api in stores}}
        partial = path.with_name(path.name + ".partial")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as out:
            out.write(MAGIC)
            pickle.dump(header, out, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.dump(payload, out, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        for lock in reversed(locks):
            lock.release()
    os.replace(partial, path)
    return header


def _open_header(path: Path) -> tuple[IO[bytes], dict[str, Any]]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - returned open to the caller, which closes it
    except OSError as exc:
        raise SandboxStateError(path, f"cannot be read ({exc.strerror or exc})") from None
    try:
        if handle.read(len(MAGIC)) != MAGIC:
            raise SandboxStateError(path, "not a saved sandbox state")
        header = pickle.load(handle)  # noqa: S301 - the sandbox's own file (module docstring)
        if not isinstance(header, dict) or "format" not in header:
            raise SandboxStateError(path, "not a saved sandbox state (no header)")
    except SandboxStateError:
        handle.close()
        raise
    except Exception as exc:  # a truncated or foreign file: pickle raises many kinds
        handle.close()
        raise SandboxStateError(path, f"not a readable sandbox state ({type(exc).__name__})") from None
    return handle, header


def read_header(path: str | Path, *, donors: int | None = None, seed: int | None = None) -> dict[str, Any]:
    """The header of the state at ``path``, checked: this format, this code, and ``donors`` / ``seed`` when the
    caller names them. Raises ``SandboxStateError`` saying what differs."""
    path = Path(path)
    handle, header = _open_header(path)
    handle.close()
    again = "make the world again (benchmarks/nightly_cost.py --keep, or Sandbox.save_state)"
    if header["format"] != FORMAT:
        raise SandboxStateError(path, f"saved in state format {header['format']}, this code reads format {FORMAT}; "
                                      f"{again}")
    if header.get("code") != code_fingerprint():
        raise SandboxStateError(path, f"saved by other sandbox code (fingerprint {header.get('code')}, this code "
                                      f"{code_fingerprint()}): its records may not be what this code would hold; "
                                      f"{again}")
    for name, asked in (("donors", donors), ("seed", seed)):
        if asked is not None and header.get(name) != asked:
            raise SandboxStateError(path, f"saved for {name} {header.get(name)}, not {asked}")
    return header


def load(path: str | Path) -> dict[str, Any]:
    """The payload of a state whose header ``read_header`` accepted: ``{"stores": {api: {"class",
    "attributes"}}, "messy_manifest"}``. The collector is paused while millions of records are made (heap.py)."""
    path = Path(path)
    handle, _header = _open_header(path)
    with handle, paused_gc():
        try:
            return pickle.load(handle)  # noqa: S301 - the sandbox's own file (module docstring)
        except Exception as exc:
            raise SandboxStateError(path, f"the saved stores cannot be read ({type(exc).__name__})") from None


def restore_store(store_class: type, saved: dict[str, Any]) -> Any:
    """A new ``store_class`` (its own lock, clock and empty answer caches) holding the saved attributes. The
    constructor's required arguments (Handbid's ``org_id``) are taken from the saved attributes."""
    if saved["class"] != store_class.__name__:
        raise ValueError(f"saved state of a {saved['class']}, not a {store_class.__name__}")
    attributes = saved["attributes"]
    required = [p.name for p in inspect.signature(store_class).parameters.values()
                if p.default is inspect.Parameter.empty and p.kind is not inspect.Parameter.VAR_KEYWORD]
    store = store_class(**{name: attributes[name] for name in required})
    missing = set(store_attributes(store)) - set(attributes)
    if missing:  # the fingerprint should have caught this; a store without an attribute would fail mid-request
        raise ValueError(f"saved state of a {store_class.__name__} lacks {sorted(missing)}")
    vars(store).update(attributes)
    return store
