"""One HTTP session per API client: timeouts, bounded retries, Retry-After, a shared rate budget,
and errors that never carry a secret.

Why a policy of our own instead of urllib3's ``Retry``: the decision depends on *whether a write may
have been applied*. A GET or PUT is idempotent and is retried on 429, 5xx, connection errors and
read timeouts. A POST (create) is retried only when the server certainly did not apply it:

* 429 and 503 (the server refused the request — our documented decision for 503),
* a failure to *connect* (nothing was sent).

Any other lost answer to a POST — the connection dropped after sending, a read timeout, a 500, 502
or 504 — raises :class:`OutcomeUnknownError`; the caller looks the record up by its correlation id
before trying again (Bloomerang has no idempotency keys). A POST the caller marks ``idempotent``
(e.g. WeGive's find-or-create) is treated like a PUT.

Secrets: every message passes through :class:`Redactor`; exceptions from ``requests`` are never
chained or quoted (their text holds URLs), only their class name; reprs show the base URL only.
"""

from __future__ import annotations

import email.utils
import json as jsonlib
import logging
import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from bloom_pipeline.clients.ratelimit import RateBudgetExhausted, SharedRateBudget
from bloom_pipeline.errors import ApiError

logger = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_NUMERIC_SEGMENT = re.compile(r"/\d+(?=/|$)")
_MESSAGE_LIMIT = 500


class HttpWait:
    """Process-wide time spent waiting for HTTP answers, and the requests waited for, per API.

    Why: a sync's wall time is mostly the APIs' time; what the pipeline itself costs is the rest. The
    benchmarks (``benchmarks/nightly_cost.py``) read ``HTTP_WAIT`` before and after a run and subtract. Time of
    requests that overlap (several threads) is summed, so it can exceed the wall time it covers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds = 0.0
        self.requests: Counter[str] = Counter()

    def add(self, api: str, seconds: float) -> None:
        with self._lock:
            self.seconds += seconds
            self.requests[api] += 1


HTTP_WAIT = HttpWait()


def path_template(path: str) -> str:
    """``/v2/constituent/123`` → ``/v2/constituent/{id}`` (same rule as the sandbox's RequestLog)."""
    return _NUMERIC_SEGMENT.sub("/{id}", path)


class Redactor:
    """Replaces every known secret (and its URL-encoded and token-part forms) with ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if not secret:
                continue
            forms.update({secret, quote(secret, safe=""), quote(secret)})
            if "|" in secret:  # Sanctum tokens are "{id}|{secret}": the secret part alone is sensitive too
                forms.add(secret.split("|", 1)[1])
        self._forms = sorted((f for f in forms if len(f) >= 4), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            text = text.replace(form, "***")
        return text

    def __repr__(self) -> str:
        return f"Redactor({len(self._forms)} forms)"


class AuthError(ApiError):
    """401/403: the key or token is missing, wrong or lacks permission."""


class RateLimitedError(ApiError):
    """Still throttled after the allowed retries, or the shared budget has no slot in time."""

    def __init__(self, status: int | None, message: str, method: str, path: str, api: str = "api",
                 retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(status, message, method, path, api)


class ApiUnavailableError(ApiError):
    """An idempotent request kept failing with 5xx / connection errors until the attempts ran out."""


class OutcomeUnknownError(ApiError):
    """A non-idempotent write lost its answer: it may or may not have been applied.

    ``body`` is the request body that was sent (bodies carry no credentials), so the caller can
    look the record up by its correlation id and only then decide to retry.
    """

    def __init__(self, status: int | None, message: str, method: str, path: str, api: str = "api",
                 body: Any = None) -> None:
        self.body = body
        super().__init__(status, message, method, path, api)


def utc_iso(value: datetime | date | str) -> str:
    """A timestamp query value as ISO 8601 UTC with ``Z``, whole seconds rounded *down*.

    Rounding down makes a "modified after" filter re-read at most one extra second rather than miss
    anything. Naive datetimes are taken as UTC; strings pass through unchanged; a date means midnight UTC.
    """
    if isinstance(value, str):
        return value
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def backoff_delay(attempt: int, base: float, cap: float, rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**(attempt-1)))."""
    return rng() * min(cap, base * (2 ** max(0, attempt - 1)))


class PageRepeats:
    """Drops a row a paged list serves again *unchanged* (offset paging shifts when records are inserted
    between two page reads, so the same row reappears on the next page), and nothing else.

    A second row with the same id but other content is not a repeat: it is a conflicting record and is
    passed on, so the mapping step quarantines both copies as ``duplicate id`` instead of one of them
    vanishing unseen. Rows without a usable id are always passed on (the mapping quarantines them).
    """

    def __init__(self) -> None:
        # the first row of each id, as served (a shallow copy: the caller may add keys to what it is handed);
        # rows are serialised only once their id comes again, so a scan without repeats serialises nothing
        self._first: dict[tuple[str, Any], dict[str, Any]] = {}
        self._seen: dict[tuple[str, Any], set[str]] = {}
        self.skipped = 0

    def is_repeat(self, row: Any) -> bool:
        rid = row.get("id") if isinstance(row, dict) else None
        if rid is None or isinstance(rid, (dict, list)):
            return False
        key = (type(rid).__name__, rid)  # 5 and "5" are different ids, as their JSON texts are
        first = self._first.get(key)
        if first is None:
            self._first[key] = dict(row)
            return False
        copies = self._seen.get(key)
        if copies is None:
            copies = self._seen[key] = {jsonlib.dumps(first, sort_keys=True, default=str)}
        content = jsonlib.dumps(row, sort_keys=True, default=str)
        if content in copies:
            self.skipped += 1
            logger.info("a row with id %s was served again unchanged by the next page; read once", rid)
            return True
        copies.add(content)
        return False


def _is_connect_failure(exc: requests.RequestException) -> bool:
    """True when the request certainly never reached the server (no TCP connection was made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError):
        return False
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # MaxRetryError wraps the urllib3 cause
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def error_message(response: requests.Response) -> str:
    """The API's own error text: Bloomerang ``Message``, WeGive ``message`` (+ ``errors``), Handbid ``error``."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason or "").strip()[:_MESSAGE_LIMIT]
    if not isinstance(body, dict):
        return str(body)[:_MESSAGE_LIMIT]
    message = body.get("Message") or body.get("message") or body.get("error") or ""
    if isinstance(body.get("errors"), dict):
        details = "; ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
                            for k, v in body["errors"].items())
        message = f"{message} ({details})" if message else details
    return str(message or response.reason or "")[:_MESSAGE_LIMIT]


class _HeaderAuth(requests.auth.AuthBase):
    """Adds the credential header per request; its repr never shows the value."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = dict(headers)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.update(self._headers)
        return request

    def __repr__(self) -> str:
        return "_HeaderAuth(***)"


def _environment_read_once(session: requests.Session, base_url: str) -> None:
    """What ``requests`` reads from the environment on *every* request, read once for this session's host.

    Why: with ``trust_env`` a Session scans the environment for proxies (twice) and a CA bundle per request,
    ~0.4 ms of CPU each — a tenth of what the pipeline spends per write. Every request of a session goes to one
    host (``base_url``), so the answer cannot differ between its requests: the same proxies (``*_proxy`` /
    ``no_proxy``) and CA bundle (``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``) apply, taken when the session is
    made. ``.netrc`` is not consulted either way (the session carries its own auth)."""
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle


class ApiSession:
    """A ``requests.Session`` with the retry policy above; ``request()`` returns parsed JSON.

    ``request_counts`` counts every request sent (retries included) by (method, path template).

    Safe to share between threads (the apply step's write pool): each thread sends on its own
    ``requests.Session`` (a Session is not documented as thread-safe), the counter is updated under a
    lock, and ``latency`` is the observed seconds per answered request (a moving average), which the
    write pool reads to size itself.
    """

    LATENCY_WEIGHT = 0.2  # weight of the newest answer in the moving average of ``latency``

    def __init__(
        self,
        api: str,
        base_url: str,
        auth_headers: Mapping[str, str],
        secrets: Iterable[str],
        *,
        env_hint: str | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_retry_after: float = 120.0,
        rate_budget: SharedRateBudget | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.api = api
        self.base_url = base_url.rstrip("/")
        self.env_hint = env_hint
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self.rate_budget = rate_budget
        self.request_counts: Counter[tuple[str, str]] = Counter()
        self._sleep = sleep
        self._rng = rng
        self._redact = Redactor(secrets)
        self._auth = _HeaderAuth(auth_headers)
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self.latency: float | None = None
        self._base_path = urlsplit(self.base_url).path

    def __repr__(self) -> str:
        return f"ApiSession(api={self.api!r}, base_url={self.base_url!r})"

    @property
    def _session(self) -> requests.Session:
        """This thread's ``requests.Session`` (created on first use; all closed by ``close``)."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.auth = self._auth
            session.headers.update({"Accept": "application/json", "User-Agent": "bloom-pipeline/0.1"})
            _environment_read_once(session, self.base_url)
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        self._local = threading.local()

    def _send(self, method: str, url: str, params: Mapping[str, Any], body: Any) -> requests.Response:
        """What ``Session.request`` does, without re-merging the session's settings into each request.

        Why: ``Session.request`` merges the session's headers, params, hooks, cookies, proxies, stream, verify and
        cert into every request, and each merge tests its values against ``requests``' runtime-checked typing
        protocols (~20 µs a test): together ~0.5 ms of CPU per request, about what the rest of the request costs.
        Nothing of a session here changes after it is made (``_session``), so the request is prepared straight
        from the session's own headers, auth, cookies and hooks — what the merge gives when the request brings
        none of its own — and ``Session.send`` fills in stream / verify / cert / proxies from the session as
        ``Session.request`` would (redirects are followed, as there)."""
        session = self._session
        prepared = requests.PreparedRequest()
        prepared.prepare(method=method, url=url, headers=session.headers, params=params or None, json=body,
                         auth=session.auth, cookies=session.cookies, hooks=session.hooks)
        return session.send(prepared, timeout=self.timeout, allow_redirects=True)

    def _observe_latency(self, seconds: float) -> None:
        previous = self.latency
        self.latency = seconds if previous is None else previous + self.LATENCY_WEIGHT * (seconds - previous)

    # -- public verbs -----------------------------------------------------------------------
    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None, *, params: Mapping[str, Any] | None = None,
             idempotent: bool = False) -> Any:
        return self.request("POST", path, params=params, json=body, idempotent=idempotent)

    def put(self, path: str, body: Any = None, *, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("PUT", path, params=params, json=body)

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None,
                idempotent: bool | None = None) -> Any:
        """Send with the retry policy; return the decoded JSON body (None when empty)."""
        method = method.upper()
        safe = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        url = f"{self.base_url}/{path.lstrip('/')}"
        full_path = f"{self._base_path}/{path.lstrip('/')}"
        template = path_template(full_path)
        clean_params = {k: v for k, v in (params or {}).items() if v is not None}
        last_problem, last_status = "", None
        for attempt in range(1, self.max_attempts + 1):
            self._take_budget(method, full_path)
            with self._lock:
                self.request_counts[(method, template)] += 1
            sent_at = time.perf_counter()
            try:
                response = self._send(method, url, clean_params, json)
                self._observe_latency(time.perf_counter() - sent_at)
            except requests.RequestException as exc:
                HTTP_WAIT.add(self.api, time.perf_counter() - sent_at)
                sent = not _is_connect_failure(exc)
                last_problem, last_status = self._describe(exc, sent), None
                if sent and not safe:
                    raise OutcomeUnknownError(None, self._redact(last_problem + "; look the record up before retrying"),
                                              method, full_path, self.api, body=json) from None
                self._pause(attempt, None, method, full_path, last_problem)
                continue
            HTTP_WAIT.add(self.api, time.perf_counter() - sent_at)
            if response.status_code < 400:
                return self._decode(response, method, full_path)
            status = last_status = response.status_code
            last_problem = f"HTTP {status}: {error_message(response)}"
            if status in (401, 403):
                hint = f" (check the credential in ${self.env_hint})" if self.env_hint else ""
                raise AuthError(status, self._redact(f"{self.api} rejected the credential{hint}: "
                                                     f"{error_message(response)}"), method, full_path, self.api)
            if status not in RETRY_STATUSES:
                raise ApiError(status, self._redact(error_message(response)), method, full_path, self.api)
            if not safe and status not in (429, 503):
                raise OutcomeUnknownError(status, self._redact(last_problem + "; the write may have been applied"),
                                          method, full_path, self.api, body=json)
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None and retry_after > self.max_retry_after:
                raise RateLimitedError(status, self._redact(
                    f"{last_problem}; Retry-After {retry_after:.0f} s exceeds the allowed {self.max_retry_after:g} s"),
                    method, full_path, self.api, retry_after=retry_after)
            if attempt == self.max_attempts:
                break
            self._pause(attempt, retry_after, method, full_path, last_problem)
        return self._give_up(method, full_path, last_status, last_problem)

    # -- internals -----------------------------------------------------------------------------
    def _take_budget(self, method: str, path: str) -> None:
        if self.rate_budget is None:
            return
        try:
            waited = self.rate_budget.acquire()
        except RateBudgetExhausted as exc:
            raise RateLimitedError(None, self._redact(str(exc)), method, path, self.api,
                                   retry_after=exc.retry_in) from None
        if waited > 1.0:
            logger.info("%s rate budget: waited %.1f s for a slot", self.api, waited)

    def _pause(self, attempt: int, retry_after: float | None, method: str, path: str, problem: str) -> None:
        if attempt >= self.max_attempts:
            return
        delay = retry_after if retry_after is not None else backoff_delay(attempt, self.backoff_base,
                                                                          self.backoff_cap, self._rng)
        logger.warning("%s %s %s: %s; retry %d/%d in %.2f s", self.api, method, path,
                       self._redact(problem), attempt + 1, self.max_attempts, delay)
        self._sleep(delay)

    def _give_up(self, method: str, path: str, status: int | None, problem: str) -> Any:
        text = self._redact(f"gave up after {self.max_attempts} attempts; last: {problem}")
        if status == 429:
            raise RateLimitedError(429, text, method, path, self.api)
        raise ApiUnavailableError(status, text, method, path, self.api)

    @staticmethod
    def _describe(exc: requests.RequestException, sent: bool) -> str:
        if isinstance(exc, requests.ReadTimeout):
            return "read timeout"
        if not sent:
            return f"could not connect ({type(exc).__name__})"
        return f"connection lost after sending ({type(exc).__name__})"

    def _decode(self, response: requests.Response, method: str, path: str) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except (ValueError, jsonlib.JSONDecodeError):
            raise ApiError(response.status_code, "answer is not JSON", method, path, self.api) from None


def build_session(api: str, what: str, base_url: str, headers: Mapping[str, str], secret: str, *,
                  rate_budget: int | None, rate_period: float, budget_dir: Any, env_hint: str | None,
                  timeout: tuple[float, float], max_attempts: int, max_wait: float,
                  sleep: Callable[[float], None]) -> ApiSession:
    """The one way every client gets its session: the key checked, its shared rate budget attached."""
    if not secret:
        hint = f" (set ${env_hint})" if env_hint else ""
        raise ValueError(f"{what} is empty{hint}")
    budget = (SharedRateBudget(secret, rate_budget, rate_period, budget_dir, api=api, max_wait=max_wait)
              if rate_budget else None)
    return ApiSession(api, base_url, headers, [secret], env_hint=env_hint, timeout=timeout,
                      max_attempts=max_attempts, rate_budget=budget, sleep=sleep)


class ApiClient:
    """What every API client shares: its session, base URL, request counts, and a repr without secrets."""

    http: ApiSession

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.http.base_url!r})"

    @property
    def base_url(self) -> str:
        return self.http.base_url

    @property
    def request_counts(self) -> Counter[tuple[str, str]]:
        return self.http.request_counts

    def close(self) -> None:
        self.http.close()
