"""A saved sandbox state over loopback HTTP: ``bloom-pipeline sandbox --save-state`` saves when stopped, ``--state``
serves the file again — the same answers to the same requests, and the id sequences continue.

The unit tier compares answers in process (``tests/unit/sandbox/test_sandbox_state.py``); this runs the
command as a child process (``SandboxProcess``, as the demo and ``benchmarks/nightly_cost.py`` run it) and an
in-process ``Sandbox(state=...)`` on real servers, so the start-up paths that skip the world are the ones tested.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from bloom_pipeline.sandbox.faults import Knobs
from bloom_pipeline.sandbox.process import SandboxProcess
from bloom_pipeline.sandbox.server import Sandbox
from bloom_pipeline.settings import SANDBOX_KEYS

pytestmark = pytest.mark.slow  # starts sandbox servers

HEADERS = {"bloomerang": {"X-API-KEY": SANDBOX_KEYS["bloomerang"]},
           "wegive": {"Authorization": f"Bearer {SANDBOX_KEYS['wegive']}"},
           "handbid": {"Authorization": f"Bearer {SANDBOX_KEYS['handbid']}"}}


def _reads(urls: dict[str, str], org_id: int) -> dict[str, tuple[int, str]]:
    paths = {"bloomerang": ["/constituents?take=50", "/constituents?take=50&orderBy=LastModifiedDate",
                            "/transactions?take=50", "/customFields/Constituent"],
             "wegive": ["/dashboard/donors?page=1&count=100", "/dashboard/transactions?page=2&count=25"],
             "handbid": [f"/v3/manager/organizations/{org_id}/contacts"]}
    answers = {}
    for api, api_paths in paths.items():
        for path in api_paths:
            answer = requests.get(urls[api] + path, headers=HEADERS[api], timeout=30)
            answers[f"{api} {path}"] = (answer.status_code, answer.text)
    return answers


def _create(urls: dict[str, str]) -> int:
    answer = requests.post(urls["bloomerang"] + "/constituent", headers=HEADERS["bloomerang"], timeout=30,
                           json={"Type": "Individual", "FirstName": "Saved", "LastName": "State"})
    assert answer.status_code == 200, answer.text
    return int(answer.json()["Id"])


def test_the_command_saves_when_stopped_and_serves_the_file_again(tmp_path: Path) -> None:
    path = tmp_path / "world.sandbox"
    with SandboxProcess(donors=30, seed=5, rate_limit="off", save_state=str(path)) as first:
        made = _create(first.urls)  # a write the saved state must hold
        before = _reads(first.urls, first.handbid_org_id or 0)
    assert path.is_file()
    with SandboxProcess(donors=30, seed=5, rate_limit="off", state=str(path)) as again:
        after = _reads(again.urls, again.handbid_org_id or 0)
        assert again.handbid_org_id == first.handbid_org_id
        following = _create(again.urls)
    assert [key for key in before if before[key] != after[key]] == []
    assert all(status == 200 for status, _text in before.values())
    assert f'"Id":{made}' in before["bloomerang /constituents?take=50"][1]
    assert following == made + 1  # the id counter continues: the next id, never one already given

    with Sandbox(state=path, knobs=Knobs(rate_limit=None)) as restored:  # in process, on loopback servers
        assert (restored.donors, restored.seed) == (30, 5)
        assert _reads(restored.urls, restored.handbid_org_id) == before
