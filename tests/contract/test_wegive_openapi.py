"""Every WeGive simulator answer we produce conforms to wegive-openapi.json (see wegive_check.py)."""

from __future__ import annotations

import pytest
import requests
from wegive_check import validate_wegive_body, validate_wegive_exchange

from bloom_pipeline.sandbox.faults import Knobs
from bloom_pipeline.sandbox.server import Sandbox

pytestmark = pytest.mark.slow  # starts sandbox servers or a Dagster instance


@pytest.fixture(scope="module")
def sb():
    with Sandbox(donors=120, seed=5, knobs=Knobs(rate_limit=None), capture_bodies=True) as sandbox:
        yield sandbox


def test_every_wegive_answer_matches_the_openapi_document(sb):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {sb.keys['wegive']}"
    base = sb.urls["wegive"] + "/dashboard"
    world = sb.world.wegive
    for path in ("/donors", "/transactions", "/funds", "/fund-allocations", "/campaigns"):
        for page in (1, 2, 99):
            session.get(base + path, params={"count": 200, "page": page}, timeout=10)
    for donor in world["donors"][:20]:
        session.get(f"{base}/donors/{donor['id']}", timeout=10)
    for txn in world["transactions"][:60]:
        session.get(f"{base}/transactions/{txn['id']}", timeout=10)
    session.get(f"{base}/funds/1", timeout=10)
    session.put(f"{base}/funds/1", json={"bloomerang_id": 1001}, timeout=10)
    session.put(f"{base}/donors/{world['donors'][0]['id']}", json={"first_name": "Ann"}, timeout=10)
    session.put(f"{base}/donors/{world['donors'][0]['id']}", json={"email_1": "x"}, timeout=10)
    session.post(f"{base}/donors/find-or-create", json={"type": "company", "email": "co@example.org",
                                                        "first_name": "Acme"}, timeout=10)
    session.get(f"{base}/donors/1", timeout=10)
    session.get(f"{base}/transactions", params={"count": 500}, timeout=10)
    entries = [e for e in sb.request_log.entries if e.api == "wegive"]
    assert {e.status for e in entries} == {200, 404, 422}
    problems = [p for e in entries for p in validate_wegive_exchange(e)]
    assert problems == []


def test_the_checker_catches_shape_errors():
    bad_list = {"data": [{"id": 1}], "search_mode": False, "pagination": True, "sort": False,
                "meta": {"total": 1, "current_page": 1, "last_page": 1, "per_page": 25, "from": 1, "to": 1}}
    problems = validate_wegive_body("GET", "/api/dashboard/funds", 200, bad_list)
    assert any("meta/total" in p for p in problems) and any("data/0" in p for p in problems)
    assert validate_wegive_body("GET", "/api/dashboard/donors/5", 404, {"error": "x"})
    assert validate_wegive_body("PUT", "/api/dashboard/donors/5", 422, {"message": "m", "errors": {"a": "b"}})
