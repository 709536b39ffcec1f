"""ApiSession sends on urllib3's pools directly, not through ``requests``: what reaches the server must be what a
``requests.Session`` with the same headers sends (query encoding and re-quoting, JSON bodies, default headers),
and redirects are followed the way ``requests`` follows them — except that the credential never goes to another
host. Real loopback servers; nothing mocked."""

from __future__ import annotations

import pytest
import requests
from client_test_server import ScriptedServer

from bloom_pipeline.clients.http import ApiSession, ApiUnavailableError

KEY = "k-5f0c2b7e9d1a4c33"
HEADERS = {"Accept": "application/json", "User-Agent": "bloom-pipeline/0.1"}

CALLS = [
    ("GET", "constituent/1", {"skip": 0, "take": 50}, None),
    ("GET", "constituents", {"id": [1, 2, 3], "search": "Zoë O'Neil & co", "flag": True, "x": ["a", None, "b"]},
     None),
    ("GET", "path with space/ünï", None, None),
    ("POST", "constituent", None, {"FirstName": "Zoë", "n": 1.5, "l": [1, None], "e": {}}),
    ("POST", "empty", None, None),
    ("PUT", "constituent/5", {"q": "1"}, {"a": "b"}),
    ("PUT", "constituent/6", None, None),
]


def _seen(server: ScriptedServer) -> list[tuple]:
    return [(r["method"], r["path"], {k.lower(): v for k, v in r["headers"].items() if k.lower() != "host"},
             r["body"]) for r in server.requests]


def _session(url: str, **kw) -> ApiSession:
    return ApiSession("bloomerang", url, {"X-API-KEY": KEY}, [KEY], timeout=(1.0, 1.0), max_attempts=1, **kw)


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def test_the_wire_request_is_what_a_requests_session_sends() -> None:
    with ScriptedServer() as by_requests, ScriptedServer() as by_us:
        reference = requests.Session()
        reference.headers.update({**HEADERS, "X-API-KEY": KEY})
        for method, path, params, body in CALLS:
            reference.request(method, f"{by_requests.url}/{path}", params=params, json=body, timeout=(1.0, 1.0))
        reference.close()
        ours = _session(by_us.url)
        answers = [ours.request(method, path, params=params, json=body) for method, path, params, body in CALLS]
        ours.close()
    assert answers == [{"ok": True}] * len(CALLS)
    assert _seen(by_us) == _seen(by_requests)
    assert _seen(by_us)[1][1] == "/v2/constituents?id=1&id=2&id=3&search=Zo%C3%AB+O%27Neil+%26+co&flag=True&x=a&x=b"


def test_keep_alive_one_connection_for_many_requests() -> None:
    with ScriptedServer() as server:
        api = _session(server.url)
        for n in range(5):
            api.get(f"constituent/{n}")
        ports = {r["client_port"] for r in server.requests}
    assert len(ports) == 1, "every request reused the kept-alive connection"


def test_redirects_change_method_and_body_as_requests_does() -> None:
    with ScriptedServer() as server:
        api = _session(server.url)
        server.script.extend([(303, {"Location": "/v2/done?z=1"}, {}), (200, {}, {"Id": 7})])
        assert api.post("start", {"a": 1}) == {"Id": 7}
        server.script.extend([(307, {"Location": f"{server.url}/again"}, {}), (200, {}, {"Id": 8})])
        assert api.post("start", {"a": 1}) == {"Id": 8}
        server.script.extend([(301, {"Location": "/v2/moved"}, {}), (200, {}, {"Id": 9})])
        assert api.put("start", {"a": 1}) == {"Id": 9}
    seen = [(m, p, b) for m, p, _, b in _seen(server)]
    assert seen == [("POST", "/v2/start", b'{"a": 1}'), ("GET", "/v2/done?z=1", b""),
                    ("POST", "/v2/start", b'{"a": 1}'), ("POST", "/v2/again", b'{"a": 1}'),
                    ("PUT", "/v2/start", b'{"a": 1}'), ("PUT", "/v2/moved", b"")]  # 301: the method stays, the body not
    assert all(h.get("x-api-key") == KEY for _, _, h, _ in _seen(server))


def test_a_redirect_to_another_host_does_not_carry_the_key() -> None:
    with ScriptedServer() as api_host, ScriptedServer() as elsewhere:
        # 127.0.0.1 and localhost are different origins, as any two hosts are
        other = elsewhere.url.replace("127.0.0.1", "localhost")
        api_host.script.append((302, {"Location": f"{other}/x"}, {}))
        assert _session(api_host.url).get("start") == {"ok": True}
        (request,) = _seen(elsewhere)
    assert request[1] == "/v2/x" and "x-api-key" not in request[2]


def test_too_many_redirects_is_given_up_on() -> None:
    with ScriptedServer() as server:
        server.script.extend([(302, {"Location": "/v2/loop"}, {})] * 40)
        with pytest.raises(ApiUnavailableError, match="TooManyRedirects"):
            _session(server.url, sleep=lambda s: None).get("loop")
        assert len(server.requests) == 31  # the request and 30 redirects, as requests allows


def test_a_pool_its_manager_closed_is_asked_for_again() -> None:
    """The transport keeps each origin's pool instead of asking the manager per request; a pool since closed (what
    urllib3 1.x's manager does to a pool it evicts past ``num_pools``) is not sent on but replaced."""
    with ScriptedServer() as server:
        session = _session(server.url)
        try:
            assert session.get("one") == {"ok": True}
            kept = list(session._transport._pools.values())
            assert len(kept) == 1
            session._transport._managers[None].pools.clear()  # evicted from the manager ...
            kept[0].close()  # ... and closed
            assert session.get("two") == {"ok": True}
            assert [p for p in session._transport._pools.values()] != kept
        finally:
            session.close()
        assert [r["path"] for r in server.requests] == ["/v2/one", "/v2/two"]
