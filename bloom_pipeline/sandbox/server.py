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
"""

from __future__ import annotations

import importlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
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
        donors: int = 2000,
        seed: int = 42,
        knobs: Knobs | None = None,
        host: str = "127.0.0.1",
        ports: dict[str, int] | None = None,
        capture_bodies: bool = False,
        world: Any = None,
        messy: bool = False,
    ) -> None:
        if not host.startswith("127.") and host not in ("localhost", "::1"):
            raise ValueError("the sandbox only serves on loopback addresses")
        self.donors = donors
        self.seed = seed
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

        if self._world is None:
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
        ``messy`` is on; kept in ``stores``. ``start`` serves what this builds; a test may call it alone."""
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
        return self._world

    @property
    def urls(self) -> dict[str, str]:
        return {
            api: f"http://{self.host}:{served.port}{_BASE_PATHS[api]}" for api, served in self._served.items()
        }

    @property
    def handbid_org_id(self) -> int:
        return int(self._world.handbid_org_id)

    def set_knobs(self, **changes: Any) -> None:
        """Change a knob on all three APIs at once (e.g. ``fault_rate=0.2``)."""
        for knobs in self.knobs.values():
            for name, value in changes.items():
                setattr(knobs, name, value)
