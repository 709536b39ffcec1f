"""Pytest plugin: every Bloomerang sandbox answer produced in the test suite must match the OpenAPI spec.

Wiring (in ``tests/conftest.py``)::

    import sys, pathlib
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "contract"))
    pytest_plugins = ["plugin"]

What it does: at configure time it registers a ``Sandbox`` observer (``server.register_observer``)
that switches every Sandbox's ``RequestLog`` to ``capture_bodies=True`` and remembers it. After each
test the new exchanges are validated (``openapi_check.validate_bloomerang_exchange``; 2xx Bloomerang
answers only) and their bodies dropped to keep memory flat. Problems are attributed to the test that
produced them, reported in the terminal summary, and make the session exit non-zero.
Standalone logs (a test serving the app itself) can be handed over with ``collect_log(log)``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from openapi_check import validate_bloomerang_exchange  # noqa: E402
from wegive_check import validate_wegive_exchange  # noqa: E402

_logs: list[Any] = []
_seen: dict[int, int] = {}
_problems: list[tuple[str, str]] = []
_checked = {"count": 0}


def collect_log(log: Any) -> None:
    """Track a RequestLog (capturing bodies) so its answers are validated."""
    log.capture_bodies = True
    if all(existing is not log for existing in _logs):
        _logs.append(log)


def _observe(sandbox: Any) -> None:
    collect_log(sandbox.request_log)


_CHECKERS = {"bloomerang": validate_bloomerang_exchange, "wegive": validate_wegive_exchange}


def _drain(where: str) -> None:
    for log in _logs:
        entries = log.entries
        start = _seen.get(id(log), 0)
        for entry in entries[start:]:
            checker = _CHECKERS.get(entry.api)
            if checker is None or entry.body is None:
                continue
            _checked["count"] += 1
            for problem in checker(entry):
                _problems.append((where, f"{entry.api}: {problem}"))
            entry.body = None
            entry.request_body = None
        _seen[id(log)] = len(entries)


def pytest_configure(config: pytest.Config) -> None:
    from bloom_pipeline.sandbox.server import register_observer

    register_observer(_observe)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """After a test's teardown, validate the answers it produced; a nonconforming answer fails the test (its
    teardown report), so the failure reaches the terminal from any worker process (pytest-xdist)."""
    outcome = yield
    if call.when != "teardown":
        return
    before = len(_problems)
    _drain(item.nodeid)
    new = _problems[before:]
    report = outcome.get_result()
    if new and report.outcome == "passed":
        report.outcome = "failed"
        report.longrepr = "sandbox answers that do not conform to the OpenAPI documents:\n" + "\n".join(
            problem for _, problem in new[:20])


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _drain("session teardown")
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the figures to the controller
        workeroutput["contract_checked"] = _checked["count"]
        workeroutput["contract_problems"] = [list(p) for p in _problems]
    if _problems and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """The xdist controller collects each worker's figures for the terminal summary."""
    output = getattr(node, "workeroutput", None) or {}
    _checked["count"] += int(output.get("contract_checked", 0))
    _problems.extend((str(where), str(problem)) for where, problem in output.get("contract_problems", []))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not _checked["count"] and not _problems:
        return
    terminalreporter.section("Bloomerang / WeGive OpenAPI contract")
    if not _problems:
        terminalreporter.write_line(
            f"{_checked['count']} Bloomerang and WeGive answers conform to their OpenAPI documents"
        )
        return
    terminalreporter.write_line(
        f"{len(_problems)} problem(s) in {_checked['count']} Bloomerang / WeGive answers:", red=True
    )
    for where, problem in _problems[:50]:
        terminalreporter.write_line(f"[{where}] {problem}")
