"""ApiSession reads the environment's proxy settings once per session (not on every request, as ``requests``
does with ``trust_env``) and still honours them: a request to the API host goes through ``http_proxy``, unless
``no_proxy`` names the host. The "proxy" here is a scripted loopback server; the API host does not exist."""

from __future__ import annotations

import pytest
from client_test_server import ScriptedServer

from bloom_pipeline.clients.http import ApiSession

API = "http://bloomerang.invalid/v2"


def _session(base_url: str) -> ApiSession:
    return ApiSession("bloomerang", base_url, {"X-API-KEY": "k-123456"}, ["k-123456"], timeout=(1.0, 1.0),
                      max_attempts=1)


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                 "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with ScriptedServer() as srv:
        monkeypatch.setenv("HTTP_PROXY", srv.url.removesuffix("/v2"))
        yield srv


def test_requests_go_through_the_environments_proxy(proxy: ScriptedServer) -> None:
    api = _session(API)
    proxy.script.extend([(200, {}, {"Id": 1}), (200, {}, {"Id": 2})])
    assert api.get("constituent/1") == {"Id": 1}
    assert api.post("constituent", {"FirstName": "A"}) == {"Id": 2}
    assert [r["path"] for r in proxy.requests] == [f"{API}/constituent/1", f"{API}/constituent"]


def test_no_proxy_naming_the_host_sends_direct(proxy: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with ScriptedServer() as direct:
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        api = _session(direct.url)
        assert api.get("constituent/1") == {"ok": True}
        assert len(direct.requests) == 1 and proxy.requests == []


def test_ca_bundle_from_the_environment_is_the_sessions(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "bundle.pem"))
    assert _session("https://bloomerang.invalid/v2")._transport.verify == str(tmp_path / "bundle.pem")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    assert _session("https://bloomerang.invalid/v2")._transport.verify is True
