"""Root of the test suite: the plugins every run loads, and the rule that keeps the fast tier fast.

Plugins (registered here, the top-level conftest, so every test directory gets them and no test module
imports a fixture by hand):

* ``tests.contract.plugin`` — validates every Bloomerang and WeGive answer the sandbox gives during the
  run against the vendor OpenAPI documents (see its docstring);
* ``tests.pipeline.conftest_bidir`` — the shared bidirectional world (``bidir_world``);
* ``tests.pipeline.conftest_bloomerang`` — the Bloomerang simulator alone on loopback (``bloomerang_server``).

Their helper classes and constants (``BidirWorld``, ``ORG``, ``TEST_KEY``...) are imported from those modules
as ordinary code; the per-directory fixtures stay in each directory's ``conftest.py``.

Tiers: a test that starts a sandbox server or a Dagster instance is marked ``slow`` (usually the whole
module: ``pytestmark = pytest.mark.slow``), so ``pytest -m "not slow"`` is the fast tier. A test that starts
a ``Sandbox`` without the mark fails here with the reason, so a new slow test cannot creep into the fast tier.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest_plugins = ["tests.contract.plugin", "tests.pipeline.conftest_bidir", "tests.pipeline.conftest_bloomerang"]

# fixtures that start a server of their own (not through ``Sandbox``)
SERVER_FIXTURES = {"bloomerang_module_server": "the Bloomerang simulator"}

_running: dict[str, pytest.Item | None] = {"item": None}


def _require_slow(what: str) -> None:
    """Fail the running test when it starts ``what`` without the ``slow`` mark (no test: collection)."""
    item = _running["item"]
    if item is not None and item.get_closest_marker("slow") is None:
        pytest.fail(f"{item.nodeid} starts {what} but is not marked slow: add `pytestmark = pytest.mark.slow` "
                    "to its module (the fast tier, `pytest -m \"not slow\"`, must not start servers)",
                    pytrace=False)


def _sandbox_started(sandbox: Any) -> None:
    _require_slow("a sandbox server")


def pytest_configure(config: pytest.Config) -> None:
    from bloom_pipeline.sandbox.server import register_observer

    register_observer(_sandbox_started)


def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> None:
    if fixturedef.argname in SERVER_FIXTURES:
        _require_slow(SERVER_FIXTURES[fixturedef.argname])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    _running["item"] = item
    try:
        return (yield)
    finally:
        _running["item"] = None
