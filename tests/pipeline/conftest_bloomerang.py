"""Fixtures running the Bloomerang simulator alone on loopback (no WeGive/Handbid needed).

``bloomerang_server`` yields a ``BloomerangServer`` with a fresh seeded store, the base URL, a
``requests.Session`` carrying the sandbox key, and the request log (bodies captured, so the contract
checker can validate every answer). A pytest plugin, registered by ``tests/conftest.py``: a test asks for
``bloomerang_server`` by name, no import; the constants (``TEST_KEY``, ``SEED_WORLD``) are imported as code.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn

from bloom_pipeline.sandbox.bloomerang.app import create_app
from bloom_pipeline.sandbox.bloomerang.store import BloomerangStore
from bloom_pipeline.sandbox.faults import Knobs, RequestLog

TEST_KEY = "test-bloomerang-key-0001"

SEED_WORLD: dict[str, list[dict[str, Any]]] = {
    "funds": [{"Name": "General Fund"}, {"Name": "Gala Fund"}, {"Name": "Old Fund", "IsActive": False}],
    "campaigns": [{"Name": "Annual Campaign 2025", "Goal": 50000}],
    "appeals": [{"Name": "Spring Mailer"}],
    "constituents": [
        {"Type": "Individual", "FirstName": "Robert", "LastName": "Smith",
         "PrimaryEmail": {"Type": "Home", "Value": "robert.smith@example.org"},
         "PrimaryPhone": {"Type": "Mobile", "Number": "(317) 555-9090"},
         "PrimaryAddress": {"Type": "Home", "Street": "98123 Main Street", "City": "Indianapolis",
                            "State": "IN", "PostalCode": "46250", "Country": "United States"},
         "CustomValues": [{"FieldId": 901, "Value": "wg-1001"}]},
        {"Type": "Organization", "FullName": "Acme Foundation",
         "PrimaryEmail": {"Type": "Work", "Value": "grants@acme.example.org"}},
    ],
}


@dataclass
class BloomerangServer:
    store: BloomerangStore
    url: str
    session: requests.Session
    request_log: RequestLog
    knobs: Knobs


def _serve(app: Any) -> tuple[uvicorn.Server, threading.Thread, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("bloomerang simulator did not start")
        time.sleep(0.01)
    return server, thread, sock.getsockname()[1]


@pytest.fixture(scope="module")
def bloomerang_module_server() -> Iterator[tuple[BloomerangServer, Any]]:
    """One uvicorn server per test module; the store is swapped per test through a holder app."""
    holder: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await holder["app"](scope, receive, send)

    server, thread, port = _serve(app)
    try:
        yield holder, f"http://127.0.0.1:{port}/v2"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def bloomerang_server(bloomerang_module_server: tuple[dict[str, Any], str]) -> Iterator[BloomerangServer]:
    holder, url = bloomerang_module_server
    store = BloomerangStore.from_world({k: [dict(x) for x in v] for k, v in SEED_WORLD.items()})
    knobs = Knobs(rate_limit=None)
    log = RequestLog(capture_bodies=True)
    holder["app"] = create_app(store, knobs, log, TEST_KEY)
    session = requests.Session()
    session.headers["X-API-KEY"] = TEST_KEY
    try:
        yield BloomerangServer(store=store, url=url, session=session, request_log=log, knobs=knobs)
    finally:
        session.close()
        _record_for_contract_check(log)


def _record_for_contract_check(log: RequestLog) -> None:
    """Every captured 2xx body must validate against the official OpenAPI document."""
    contract_dir = str(Path(__file__).resolve().parents[1] / "contract")
    if contract_dir not in sys.path:
        sys.path.insert(0, contract_dir)
    from openapi_check import validate_bloomerang_exchange

    problems = [p for entry in log.entries for p in validate_bloomerang_exchange(entry)]
    if problems:
        pytest.fail("Bloomerang answers that break the OpenAPI contract:\n" + "\n".join(problems[:20]))
