"""ApiSession's retry policy over real loopback HTTP: which failures are retried, which surface as
"outcome unknown", how long it waits, and what its errors say."""

from __future__ import annotations

import socket
from datetime import UTC, date, datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import requests
from client_test_server import ScriptedServer

from bloom_pipeline.clients.http import (
    ApiSession,
    ApiUnavailableError,
    AuthError,
    OutcomeUnknownError,
    RateLimitedError,
    Redactor,
    backoff_delay,
    parse_retry_after,
    path_template,
    utc_iso,
)
from bloom_pipeline.errors import ApiError

KEY = "live-key-5f0c2b7e9d1a4c33"


class Sleeps(list):
    """Records requested sleeps instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def session(url: str, sleeps: Sleeps, **kw) -> ApiSession:
    kw.setdefault("timeout", (1.0, 1.0))
    return ApiSession("bloomerang", url, {"X-API-KEY": KEY}, [KEY], env_hint="DEMO_BLOOMERANG_API_KEY",
                      sleep=sleeps, rng=lambda: 0.5, **kw)


@pytest.fixture
def server():
    with ScriptedServer() as srv:
        yield srv


# -- pure policy -----------------------------------------------------------------------------------
def test_backoff_is_exponential_with_full_jitter_and_capped():
    assert backoff_delay(1, 0.5, 30, rng=lambda: 1.0) == 0.5
    assert backoff_delay(2, 0.5, 30, rng=lambda: 1.0) == 1.0
    assert backoff_delay(4, 0.5, 30, rng=lambda: 1.0) == 4.0
    assert backoff_delay(10, 0.5, 30, rng=lambda: 1.0) == 30  # capped
    assert backoff_delay(3, 0.5, 30, rng=lambda: 0.0) == 0.0  # full jitter reaches zero
    assert backoff_delay(3, 0.5, 30, rng=lambda: 0.25) == 0.5


def test_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(header, now=now.timestamp()) == pytest.approx(30)
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now.timestamp()) == 0


def test_path_template_groups_numeric_segments():
    assert path_template("/v2/constituent/123") == "/v2/constituent/{id}"
    assert path_template("/v3/manager/auctions/45/payments") == "/v3/manager/auctions/{id}/payments"
    assert path_template("/v2/customFields/Constituent/") == "/v2/customFields/Constituent/"


def test_utc_iso_sends_z_times_rounded_down():
    cet = timezone(timedelta(hours=1))
    assert utc_iso(datetime(2026, 3, 4, 3, 58, 14, 999000, tzinfo=cet)) == "2026-03-04T02:58:14Z"
    assert utc_iso(datetime(2026, 3, 4, 2, 58, 14)) == "2026-03-04T02:58:14Z"  # naive = UTC
    assert utc_iso(date(2026, 1, 31)) == "2026-01-31T00:00:00Z"
    assert utc_iso("2026-01-31") == "2026-01-31"


def test_redactor_hides_key_in_every_form():
    token = "7|abcdef0123456789"
    redact = Redactor([token])
    text = f"Bearer {token} url=?t=7%7Cabcdef0123456789 part=abcdef0123456789"
    assert token not in redact(text) and "abcdef0123456789" not in redact(text)
    assert "***" in redact(text)


# -- idempotent requests -------------------------------------------------------------------------------
def test_429_waits_retry_after_then_succeeds(server):
    sleeps = Sleeps()
    server.script.extend([(429, {"Retry-After": "3"}, {"Message": "slow down"}), (200, {}, {"Id": 1})])
    assert session(server.url, sleeps).get("constituent/1") == {"Id": 1}
    assert sleeps == [3.0]
    assert len(server.requests) == 2
    assert server.requests[0]["headers"]["X-API-KEY"] == KEY


def test_5xx_on_get_is_retried_with_backoff(server):
    sleeps = Sleeps()
    server.script.extend([(503, {}, {}), (502, {}, {}), (500, {}, {}), (200, {}, [1])])
    assert session(server.url, sleeps, backoff_base=1.0).get("funds") == [1]
    assert sleeps == [0.5, 1.0, 2.0]  # rng 0.5 * 1, 2, 4


def test_dropped_get_is_retried(server):
    sleeps = Sleeps()
    server.script.extend(["drop", (200, {}, {"Id": 5})])
    assert session(server.url, sleeps).get("constituent/5") == {"Id": 5}
    assert len(server.requests) == 2 and len(sleeps) == 1


def test_dropped_put_is_retried_because_put_is_idempotent(server):
    server.script.extend(["drop", (200, {}, {"Id": 5, "FirstName": "Ada"})])
    assert session(server.url, Sleeps()).put("constituent/5", {"FirstName": "Ada"})["FirstName"] == "Ada"
    assert [r["method"] for r in server.requests] == ["PUT", "PUT"]


def test_read_timeout_on_get_is_retried(server):
    server.script.extend([("slow", 0.6, (200, {}, {})), (200, {}, {"Id": 2})])
    assert session(server.url, Sleeps(), timeout=(1.0, 0.2)).get("constituent/2") == {"Id": 2}


def test_exhausted_retries_raise_with_the_last_problem(server):
    server.script.extend([(503, {}, {"Message": "down"})] * 3)
    with pytest.raises(ApiUnavailableError) as err:
        session(server.url, Sleeps(), max_attempts=3).get("funds")
    assert err.value.status == 503 and "down" in str(err.value) and "3 attempts" in str(err.value)
    assert len(server.requests) == 3


def test_429_until_attempts_run_out_is_rate_limited(server):
    server.script.extend([(429, {"Retry-After": "1"}, {})] * 2)
    with pytest.raises(RateLimitedError):
        session(server.url, Sleeps(), max_attempts=2).get("funds")


def test_retry_after_beyond_the_cap_fails_at_once_without_sleeping(server):
    sleeps = Sleeps()
    server.script.append((429, {"Retry-After": "3600"}, {}))
    with pytest.raises(RateLimitedError) as err:
        session(server.url, sleeps, max_retry_after=60).get("funds")
    assert sleeps == [] and err.value.retry_after == 3600


# -- POST: never blindly retried ---------------------------------------------------------------------------
def test_dropped_post_is_outcome_unknown_and_not_resent(server):
    server.script.append("drop")
    body = {"Type": "Individual", "FirstName": "Ada", "LastName": "Lovelace"}
    with pytest.raises(OutcomeUnknownError) as err:
        session(server.url, Sleeps()).post("constituent", body)
    assert err.value.method == "POST" and err.value.path == "/v2/constituent" and err.value.body == body
    assert err.value.status is None
    assert len(server.requests) == 1


def test_post_read_timeout_is_outcome_unknown(server):
    server.script.append(("slow", 0.6, (200, {}, {"Id": 9})))
    with pytest.raises(OutcomeUnknownError, match="read timeout"):
        session(server.url, Sleeps(), timeout=(1.0, 0.2)).post("transaction", {"Amount": 5})
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 504])
def test_post_5xx_that_may_have_committed_is_outcome_unknown(server, status):
    server.script.append((status, {}, {"Message": "boom"}))
    with pytest.raises(OutcomeUnknownError) as err:
        session(server.url, Sleeps()).post("transaction", {"Amount": 5})
    assert err.value.status == status and len(server.requests) == 1


@pytest.mark.parametrize("status", [429, 503])
def test_post_refused_with_429_or_503_is_retried(server, status):
    server.script.extend([(status, {"Retry-After": "1"}, {}), (200, {}, {"Id": 3})])
    assert session(server.url, Sleeps()).post("transaction", {"Amount": 5}) == {"Id": 3}
    assert len(server.requests) == 2


def test_post_that_could_not_connect_is_retried_not_unknown():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps = Sleeps()
    with pytest.raises(ApiUnavailableError, match="could not connect"):
        session(f"http://127.0.0.1:{port}/v2", sleeps, max_attempts=3).post("constituent", {"Type": "Individual"})
    assert len(sleeps) == 2


def test_idempotent_post_is_retried_after_a_drop(server):
    server.script.extend(["drop", (200, {}, {"data": {"id": 1}})])
    api = session(server.url, Sleeps())
    assert api.post("dashboard/donors/find-or-create", {"email": "a@b.org"}, idempotent=True) == {"data": {"id": 1}}


# -- errors and accounting ---------------------------------------------------------------------------
def test_401_is_auth_error_naming_the_env_var_not_the_key(server):
    server.script.append((401, {}, {"Message": "Invalid API key", "ErrorCode": 1}))
    with pytest.raises(AuthError) as err:
        session(server.url, Sleeps()).get("user/current")
    assert "DEMO_BLOOMERANG_API_KEY" in str(err.value) and KEY not in str(err.value) and KEY not in repr(err.value)


def test_4xx_is_api_error_with_the_apis_message(server):
    server.script.append((400, {}, {"Message": "Cannot set FullName for individuals", "ErrorCode": 3}))
    with pytest.raises(ApiError) as err:
        session(server.url, Sleeps()).post("constituent", {"FullName": "x"})
    assert err.value.status == 400 and err.value.message == "Cannot set FullName for individuals"
    assert len(server.requests) == 1


def test_wegive_validation_errors_are_summarised(server):
    server.script.append((422, {}, {"message": "The given data was invalid.", "errors": {"email": ["required"]}}))
    with pytest.raises(ApiError, match="email: required"):
        session(server.url, Sleeps()).put("dashboard/donors/1", {})


def test_an_echoed_key_is_scrubbed_from_error_text(server):
    server.script.append((400, {}, {"Message": f"bad key {KEY}"}))
    with pytest.raises(ApiError) as err:
        session(server.url, Sleeps()).get("funds")
    assert KEY not in str(err.value) and "***" in err.value.message


def test_request_counts_group_by_method_and_template(server):
    server.script.extend([(200, {}, {}), (503, {}, {}), (200, {}, {}), (200, {}, {})])
    api = session(server.url, Sleeps())
    api.get("constituent/1")
    api.get("constituent/2")  # 503 then 200: two requests sent
    api.put("constituent/3", {})
    assert api.request_counts == {("GET", "/v2/constituent/{id}"): 3, ("PUT", "/v2/constituent/{id}"): 1}


def test_repr_shows_only_the_base_url(server):
    api = session(server.url, Sleeps())
    assert repr(api) == f"ApiSession(api='bloomerang', base_url='{server.url}')"
    assert KEY not in repr(api._transport)


def test_query_params_none_are_not_sent(server):
    session(server.url, Sleeps()).get("constituents", {"skip": 0, "take": 50, "lastModified": None})
    assert server.requests[0]["path"] == "/v2/constituents?skip=0&take=50"


def test_non_json_success_is_an_error(server):
    server.script.append((200, {}, b"<html>"))
    with pytest.raises(ApiError, match="not JSON"):
        session(server.url, Sleeps()).get("funds")


def test_requests_exceptions_are_not_chained(server):
    server.script.append("drop")
    with pytest.raises(OutcomeUnknownError) as err:
        session(server.url, Sleeps()).post("constituent", {})
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert not isinstance(err.value, requests.RequestException)
