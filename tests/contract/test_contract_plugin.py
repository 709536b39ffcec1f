"""The contract plugin fails the test whose sandbox answer breaks the OpenAPI document — in one process and
under pytest-xdist workers alike (the failure is the test's teardown report, which workers hand back)."""

import os
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.slow  # two inner pytest sessions, one with worker processes

REPO = Path(__file__).resolve().parents[2]

INNER = """
from bloom_pipeline.sandbox.faults import LogEntry
from tests.contract import plugin

class Log:
    capture_bodies = False
    entries = []

def test_answers_a_constituent_without_its_required_fields():
    log = Log()
    plugin.collect_log(log)
    log.entries.append(LogEntry(api="bloomerang", method="GET", path="/v2/constituent/7",
                                path_template="/v2/constituent/{id}", query="", status=200,
                                content_type="application/json", body=b'{"Id": "seven"}'))

def test_clean():
    assert True
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
def test_a_nonconforming_answer_fails_its_test(pytester: pytest.Pytester, workers: list[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_subprocess("-p", "tests.contract.plugin", "-p", "no:cacheprovider", *workers)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*do not conform to the OpenAPI documents*"])
    assert result.ret != 0
