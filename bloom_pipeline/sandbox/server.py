"""Run the three API simulators as real HTTP servers on loopback.

``Sandbox`` is both the embedded default of ``bloom-pipeline demo`` and the test double of the
pipeline tests: each API gets its own uvicorn server in a background thread, its own mutable
``Knobs`` and a shared ``RequestLog``. Ports default to 0 (the OS picks free ones) so parallel
tests never collide.

Each simulator is a package (``sandbox/bloomerang``, ``sandbox/wegive``, ``sandbox/handbid``) with an
``app`` module (``create_app(store, knobs, log, key)``) and a ``store`` module; both are imported only
when a Sandbox starts, so importing this module stays cheap. The keys are the public sandbox constants
of ``bloom_pipeline.settings``: they only open the simulators, never a real API.

``messy=True`` plants the hostile records of ``sandbox/data/messy.py`` into the WeGive and Handbid stores
before they serve (a null id, a duplicate id, impossible dates and amounts, timestamps of year 9999); what
was planted is ``messy_manifest``. Off (the default), the stores are exactly the world's.

``state=PATH`` serves a state saved by ``save_state(PATH)`` instead of a generated world (``state.py``): the
same records, ids, modification times and id counters, so a loaded world (a first load that wrote everything)
is paid for once and served again. The file is checked before anything is built (format, code fingerprint, and
``donors`` / ``seed`` when given); ``world`` is then generated only if something asks for it.
"""

from __future__ import annotations

import importlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from bloom_pipeline.sandbox.faults import Knobs, RequestLog
from bloom_pipeline.sandbox.heap import paused_gc
from bloom_pipeline.settings import SANDBOX_KEYS

APIS = ("bloomerang", "wegive", "handbid")
_BASE_PATHS = {"bloomerang": "/v2", "wegive": "/api", "handbid": ""}
# simulator package and store class of each API (the package holds ``app.py`` and ``store.py``)
_SIMULATORS = {
    "bloomerang": ("bloom_pipeline.sandbox.bloomerang", "BloomerangStore"),
    "wegive": ("bloom_pipeline.sandbox.wegive", "WeGiveStore"),
    "handbid": ("bloom_pipeline.sandbox.handbid", "HandbidStore"),
}

# Callbacks told about every started Sandbox (the contract tests use this to capture bodies).
_observers: list[Callable[[Sandbox], None]] = []


def register_observer(callback: Callable[[Sandbox], None]) -> None:
    """Call ``callback(sandbox)`` before each Sandbox starts serving."""
    _observers.append(callback)


@dataclass
class _Served:
    server: uvicorn.Server
    thread: threading.Thread
    port: int


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class Sandbox:
    """The three simulators on loopback. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        donors: int | None = None,
        seed: int | None = None,
        knobs: Knobs | None = None,
        host: str = "127.0.0.1",
        ports: dict[str, int] | None = None,
        capture_bodies: bool = False,
        world: Any = None,
        messy: bool = False,
        state: str | Path | None = None,
    ) -> None:
        """``donors`` (default 2000) and ``seed`` (default 42) make the world; with ``state`` they are the saved
        file's, and when given they must be the file's (``state.SandboxStateError`` otherwise)."""
        if not host.startswith("127.") and host not in ("localhost", "::1"):
            raise ValueError("the sandbox only serves on loopback addresses")
        self._state_path = Path(state) if state is not None else None
        self._state_payload: dict[str, Any] | None = None
        if self._state_path is not None:
            from bloom_pipeline.sandbox import state as saved_state

            if world is not None:
                raise ValueError("a Sandbox serves either a world or a saved state, not both")
            header = saved_state.read_header(self._state_path, donors=donors, seed=seed)
            if messy and not header["messy"]:
                raise saved_state.SandboxStateError(self._state_path, "saved without the messy records")
            donors, seed, messy = header["donors"], header["seed"], header["messy"]
        self.donors = 2000 if donors is None else donors
        self.seed = 42 if seed is None else seed
        self.host = host
        self._ports = {api: 0 for api in APIS} | (ports or {})
        base = knobs or Knobs()
        self.knobs: dict[str, Knobs] = {api: base.copy() for api in APIS}
        self.request_log = RequestLog(capture_bodies=capture_bodies)
        self.keys = dict(SANDBOX_KEYS)
        self._world = world
        self.messy = messy
        self.messy_manifest: list[dict[str, Any]] = []  # sandbox/data/messy.py: one entry per hostile record
        self.stores: dict[str, Any] = {}
        self._served: dict[str, _Served] = {}

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> Sandbox:
        from bloom_pipeline.sandbox.data.world import generate_world
        from bloom_pipeline.sandbox.state import code_fingerprint

        code_fingerprint()  # taken before the build: it names the code that made the stores (state.py)
        if self._world is None and self._state_path is None:
            self._world = generate_world(donors=self.donors, seed=self.seed)
        for callback in _observers:
            callback(self)
        try:
            for api in APIS:
                package = _SIMULATORS[api][0]
                store = self.build_store(api)
                app = importlib.import_module(f"{package}.app").create_app(
                    store, self.knobs[api], self.request_log, self.keys[api])
                self._served[api] = self._serve(app, self._ports[api])
        except Exception:
            self.stop()
            raise
        return self

    def build_store(self, api: str) -> Any:
        """Seed ``api``'s store from the world (generated on first use), with the messy records planted when
        ``messy`` is on; kept in ``stores``. ``start`` serves what this builds; a test may call it alone.
        With ``state``, the store is the saved one instead."""
        if self._state_path is not None:
            return self._restore_store(api)
        if self._world is None:
            from bloom_pipeline.sandbox.data.world import generate_world

            self._world = generate_world(donors=self.donors, seed=self.seed)
        package, store_name = _SIMULATORS[api]
        store_class = getattr(importlib.import_module(f"{package}.store"), store_name)
        with paused_gc():  # millions of live records: collections during the seed find nothing (heap.py)
            store = store_class.from_world(self._world)
        if self.messy:
            from bloom_pipeline.sandbox.data import messy

            self.messy_manifest = [e for e in self.messy_manifest if e["api"] != api]
            self.messy_manifest += messy.plant(api, store, self._world, int(getattr(self._world, "seed", self.seed)))
        self.stores[api] = store
        return store

    def _restore_store(self, api: str) -> Any:
        from bloom_pipeline.sandbox import state as saved_state

        if self._state_payload is None:
            self._state_payload = saved_state.load(self._state_path)
            self.messy_manifest = list(self._state_payload["messy_manifest"])
        package, store_name = _SIMULATORS[api]
        store_class = getattr(importlib.import_module(f"{package}.store"), store_name)
        self.stores[api] = saved_state.restore_store(store_class, self._state_payload["stores"][api])
        if all(name in self.stores for name in APIS):
            self._state_payload = None  # the stores hold the records now; the payload's dict goes
        return self.stores[api]

    def save_state(self, path: str | Path) -> dict[str, Any]:
        """Write the three stores' whole state to ``path`` (``state.py``), serving or not; returns the file's
        header (format, code fingerprint, donors, seed, counts). A restored Sandbox serves the same answers."""
        from bloom_pipeline.sandbox import state as saved_state

        for api in APIS:
            if api not in self.stores:
                self.build_store(api)
        return saved_state.save(path, {api: self.stores[api] for api in APIS}, donors=self.donors,
                                seed=self.seed, messy=self.messy, messy_manifest=self.messy_manifest)

    def _serve(self, app: Any, port: int) -> _Served:
        sock = _bind(self.host, port)
        config = uvicorn.Config(
            app, log_level="critical", access_log=False, lifespan="off", timeout_keep_alive=30
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("sandbox server failed to start")
            time.sleep(0.01)
        return _Served(server=server, thread=thread, port=sock.getsockname()[1])

    def stop(self) -> None:
        for served in self._served.values():
            served.server.should_exit = True
        for served in self._served.values():
            served.thread.join(timeout=10)
        self._served.clear()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- facts for clients -----------------------------------------------------------
    @property
    def world(self) -> Any:
        """The generated world (generated on first use when the stores were restored from a saved state)."""
        if self._world is None:
            from bloom_pipeline.sandbox.data.world import generate_world

            self._world = generate_world(donors=self.donors, seed=self.seed)
        return self._world

    @property
    def urls(self) -> dict[str, str]:
        return {
            api: f"http://{self.host}:{served.port}{_BASE_PATHS[api]}" for api, served in self._served.items()
        }

    @property
    def handbid_org_id(self) -> int:
        if self._world is None and "handbid" in self.stores:
            return int(self.stores["handbid"].org_id)
        return int(self.world.handbid_org_id)

    def set_knobs(self, **changes: Any) -> None:
        """Change a knob on all three APIs at once (e.g. ``fault_rate=0.2``)."""
        for knobs in self.knobs.values():
            for name, value in changes.items():
                setattr(knobs, name, value)
