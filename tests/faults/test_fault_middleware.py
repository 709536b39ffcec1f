"""The fault knobs behave as documented, on a tiny app served by real uvicorn over loopback."""

import socket
import threading
import time

import pytest
import requests
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from bloom_pipeline.sandbox.faults import FaultMiddleware, Knobs, RequestLog, path_template


def _make_app(knobs, log, writes):
    async def create(request):
        body = await request.json()
        writes.append(body)
        return JSONResponse({"Id": len(writes)})

    async def read(request):
        return JSONResponse({"Id": int(request.path_params["id"])})

    app = Starlette(routes=[Route("/v2/thing", create, methods=["POST"]), Route("/v2/thing/{id}", read)])
    return FaultMiddleware(
        app,
        api="test",
        knobs=knobs,
        request_log=log,
        headers_auth=lambda h: h.get("x-api-key") if h.get("x-api-key") == "good" else None,
        unauthorized={"Message": "Unauthorized", "ErrorCode": 401},
        error_body=lambda status: {"Message": f"status {status}", "ErrorCode": status},
    )


@pytest.fixture
def served():
    knobs, log, writes = Knobs(rate_limit=None), RequestLog(capture_bodies=True), []
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(_make_app(knobs, log, writes), log_level="critical", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/v2"
    yield url, knobs, log, writes
    server.should_exit = True
    thread.join(5)


GOOD = {"X-API-KEY": "good"}


def test_bad_key_gets_401_before_any_budget_or_fault(served):
    url, knobs, log, _ = served
    knobs.rate_limit, knobs.fault_rate = 1, 1.0
    for _ in range(3):
        assert requests.get(f"{url}/thing/1", headers={"X-API-KEY": "bad"}, timeout=5).status_code == 401
    assert knobs.take_budget("good") is None  # the 401s consumed nothing


def test_rate_limit_answers_429_with_retry_after(served):
    url, knobs, _, _ = served
    knobs.rate_limit, knobs.rate_period = 2, 30
    assert [requests.get(f"{url}/thing/1", headers=GOOD, timeout=5).status_code for _ in range(2)] == [200, 200]
    third = requests.get(f"{url}/thing/1", headers=GOOD, timeout=5)
    assert third.status_code == 429
    assert 1 <= int(third.headers["Retry-After"]) <= 30


def test_scripted_5xx_then_ok(served):
    url, knobs, log, _ = served
    knobs.script.extend(["503", "500"])
    codes = [requests.get(f"{url}/thing/7", headers=GOOD, timeout=5).status_code for _ in range(3)]
    assert codes == [503, 500, 200]
    assert [e.status for e in log.entries] == [503, 500, 200]
    assert log.counts()[("test", "GET", "/v2/thing/{id}")] == 3


def test_drop_after_commit_applies_the_write_and_closes_without_answer(served):
    url, knobs, log, writes = served
    knobs.script.append("drop")
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{url}/thing", json={"Name": "x"}, headers=GOOD, timeout=5)
    assert writes == [{"Name": "x"}]  # committed although the client saw no answer
    assert log.entries[-1].status is None
    ok = requests.post(f"{url}/thing", json={"Name": "y"}, headers=GOOD, timeout=5)
    assert ok.json() == {"Id": 2}


def test_a_client_gone_mid_request_gets_no_answer_logged(served):
    """A sync killed while its request body was on the way: the app fails on the half-read body (Starlette's
    plain 500 goes to nobody); the log says no answer was given, so nothing judges that 500 as the API's."""
    url, _, log, writes = served
    host, port = url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(b"POST /v2/thing HTTP/1.1\r\nHost: x\r\nX-API-KEY: good\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 100\r\n\r\n{\"Name\": ")
        time.sleep(0.2)  # the app is waiting for the rest of the body
    deadline = time.monotonic() + 5
    while not log.entries and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [e.status for e in log.entries] == [None] and writes == []
    assert requests.post(f"{url}/thing", json={"Name": "y"}, headers=GOOD, timeout=5).json() == {"Id": 1}


def test_random_faults_follow_the_configured_share():
    knobs = Knobs(fault_rate=0.2, seed=3)
    outcomes = [knobs.next_outcome("GET") for _ in range(2000)]
    share = sum(o != "ok" for o in outcomes) / len(outcomes)
    assert 0.17 < share < 0.23
    assert Knobs(drop_after_commit=1.0).next_outcome("GET") == "ok"  # reads are never dropped at random


def test_path_template_groups_ids():
    assert path_template("/v2/constituent/123/timeline") == "/v2/constituent/{id}/timeline"
    assert path_template("/api/dashboard/donors") == "/api/dashboard/donors"
