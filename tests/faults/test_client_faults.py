"""The clients against a hostile sandbox: 429 + Retry-After, 5xx, dropped connections after commit,
random faults — over real HTTP, with the sandbox's scripted fault knobs."""

from __future__ import annotations

import pytest

from bloom_pipeline.clients.bloomerang import BloomerangClient
from bloom_pipeline.clients.http import OutcomeUnknownError
from bloom_pipeline.clients.wegive import WeGiveClient
from bloom_pipeline.sandbox.faults import Knobs
from bloom_pipeline.sandbox.server import Sandbox

pytestmark = pytest.mark.slow  # starts sandbox servers or a Dagster instance

FIELD = 901


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(scope="module")
def sb():
    with Sandbox(donors=40, seed=5, knobs=Knobs(rate_limit=None)) as sandbox:
        yield sandbox


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def bc(sb, sleeps):
    sb.knobs["bloomerang"].script.clear()
    client = BloomerangClient(sb.urls["bloomerang"], sb.keys["bloomerang"], rate_budget=None, sleep=sleeps)
    yield client
    client.close()


def person(tag: str) -> dict:
    return {"Type": "Individual", "FirstName": "Fault", "LastName": tag,
            "CustomValues": [{"FieldId": FIELD, "Value": tag}]}


def statuses(sb, since: int) -> list[int | None]:
    return [e.status for e in sb.request_log.entries[since:] if e.api == "bloomerang"]


def test_429_waits_retry_after_then_succeeds(sb, bc, sleeps):
    sb.knobs["bloomerang"].script.extend(["429"])
    mark = len(sb.request_log.entries)
    assert bc.current_user()["Id"]
    assert statuses(sb, mark) == [429, 200]
    assert sleeps == [1.0]  # the sandbox's Retry-After


def test_real_rate_limit_429_is_waited_out(sb):
    """The sandbox's own per-key budget answers 429 + Retry-After; the client sleeps it (for real)."""
    knobs = sb.knobs["bloomerang"]
    knobs.rate_limit, knobs.rate_period = 3, 1.0
    knobs.reset_budget()
    try:
        client = BloomerangClient(sb.urls["bloomerang"], sb.keys["bloomerang"], rate_budget=None)
        mark = len(sb.request_log.entries)
        for _ in range(4):
            client.current_user()
        assert statuses(sb, mark) == [200, 200, 200, 429, 200]
    finally:
        knobs.rate_limit = None


def test_a_client_budget_below_the_servers_never_sees_429(sb, tmp_path):
    knobs = sb.knobs["bloomerang"]
    knobs.rate_limit, knobs.rate_period = 4, 1.0
    knobs.reset_budget()
    try:
        client = BloomerangClient(sb.urls["bloomerang"], sb.keys["bloomerang"], rate_budget=3, rate_period=1.0,
                                  budget_dir=tmp_path)
        mark = len(sb.request_log.entries)
        for _ in range(9):
            client.current_user()
        assert statuses(sb, mark) == [200] * 9
    finally:
        knobs.rate_limit = None


def test_5xx_on_get_is_retried(sb, bc, sleeps):
    sb.knobs["bloomerang"].script.extend(["500", "502", "503"])
    assert len(list(bc.iter_funds())) >= 1
    assert len(sleeps) == 3


def test_drop_after_commit_on_get_is_retried(sb, bc):
    sb.knobs["bloomerang"].script.extend(["drop"])
    mark = len(sb.request_log.entries)
    assert bc.current_user()["Id"]
    assert statuses(sb, mark) == [None, 200]


def test_drop_after_commit_on_post_is_outcome_unknown_and_resolved_by_lookup(sb, bc):
    sb.knobs["bloomerang"].script.extend(["drop"])
    body = person("drop-post-1")
    with pytest.raises(OutcomeUnknownError) as err:
        bc.create_constituent(body)
    assert err.value.body == body and err.value.path == "/v2/constituent"
    # the caller's resolution: look the record up by its correlation id — the write did commit, once
    found = bc.find_constituents_by_custom_field(FIELD, "drop-post-1")
    assert len(found) == 1 and found[0]["LastName"] == "drop-post-1"


def test_post_500_is_outcome_unknown_but_503_and_429_are_retried(sb, bc):
    sb.knobs["bloomerang"].script.extend(["500"])
    with pytest.raises(OutcomeUnknownError):
        bc.create_constituent(person("post-500"))
    sb.knobs["bloomerang"].script.extend(["503", "429"])
    made = bc.create_constituent(person("post-503"))
    assert [c["Id"] for c in bc.find_constituents_by_custom_field(FIELD, "post-503")] == [made["Id"]]


def test_dropped_put_is_retried_and_applied(sb, bc):
    cid = bc.create_constituent(person("put-drop"))["Id"]
    sb.knobs["bloomerang"].script.extend(["drop"])
    updated = bc.update_constituent(cid, {"Type": "Individual", "FirstName": "Again", "LastName": "put-drop"})
    assert updated["FirstName"] == "Again"


def test_wegive_find_or_create_survives_a_drop_without_duplicates(sb, sleeps):
    sb.knobs["wegive"].script.extend(["drop"])
    wg = WeGiveClient(sb.urls["wegive"], sb.keys["wegive"], sleep=sleeps)
    donor = wg.find_or_create_donor({"type": "individual", "email": "drop.twice@example.org",
                                     "first_name": "Drop", "last_name": "Twice"})
    matches = [d for d in wg.iter_donors() if d.get("email_1") == "drop.twice@example.org"]
    assert [d["id"] for d in matches] == [donor["id"]]


def test_full_scans_complete_under_random_faults(sb, sleeps):
    knobs = sb.knobs["wegive"]
    knobs.fault_rate = 0.3
    try:
        wg = WeGiveClient(sb.urls["wegive"], sb.keys["wegive"], sleep=sleeps, max_attempts=8)
        assert len(list(wg.iter_transactions())) == len(sb.world.wegive["transactions"])
        assert len(list(wg.iter_donors())) >= len(sb.world.wegive["donors"])
    finally:
        knobs.fault_rate = 0.0
