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
from urllib.parse import quote, urljoin, urlsplit

import requests
import urllib3
from requests.adapters import DEFAULT_CA_BUNDLE_PATH
from requests.auth import _basic_auth_str
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from bloom_pipeline import jsontext
from bloom_pipeline.clients import exchange
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


def error_message(response: Any) -> str:
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


_REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 30  # requests' own limit


class _Answer:
    """What an API answered: the part of a ``requests.Response`` this module reads."""

    __slots__ = ("content", "headers", "reason", "status_code")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes, reason: str | None) -> None:
        self.status_code, self.headers, self.content, self.reason = status_code, headers, content, reason

    def json(self) -> Any:
        return jsontext.loads(self.content)  # bytes: UTF-8/16/32 detected as requests does for JSON

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


# (urllib3 exception classes, the requests exception they become), first match wins — in the order requests'
# HTTPAdapter.send / Response.iter_content test them
_READING_ERRORS: tuple[tuple[Any, Any], ...] = (
    (urllib3.exceptions.ProtocolError, requests.exceptions.ChunkedEncodingError),
    (urllib3.exceptions.DecodeError, requests.exceptions.ContentDecodingError),
    (urllib3.exceptions.ReadTimeoutError, requests.ConnectionError),
    (urllib3.exceptions.SSLError, requests.exceptions.SSLError),
)
_SENDING_ERRORS: tuple[tuple[Any, Any], ...] = (
    (urllib3.exceptions.ProtocolError | OSError | urllib3.exceptions.ClosedPoolError, requests.ConnectionError),
    (NewConnectionError, requests.ConnectionError),
    (ConnectTimeoutError, requests.ConnectTimeout),
    (urllib3.exceptions.ProxyError, requests.exceptions.ProxyError),
    (urllib3.exceptions.SSLError, requests.exceptions.SSLError),
    (urllib3.exceptions.ReadTimeoutError, requests.ReadTimeout),
    (urllib3.exceptions.InvalidHeader, requests.exceptions.InvalidHeader),
    (urllib3.exceptions.LocationValueError, requests.exceptions.InvalidURL),
)


def _as_requests_error(exc: Exception, *, reading: bool) -> Exception:
    """The ``requests`` exception ``HTTPAdapter.send`` (``reading``: ``Response.content``) raises for a urllib3 one.

    Why keep requests' classes: the retry policy tells a failure to connect from a lost answer by them
    (``_is_connect_failure``), and the messages name them (``could not connect (ConnectTimeout)``)."""
    for raised, becomes in _READING_ERRORS if reading else _SENDING_ERRORS:
        if isinstance(exc, raised):
            return becomes(exc)
    return exc


class _Transport:
    """Sends requests on urllib3's connection pools directly — what ``requests.Session`` + ``HTTPAdapter`` do
    for this module's requests, without their per-request CPU.

    Why: a request through ``requests`` cost ~0.9 ms of CPU against ~0.5 ms on urllib3 directly
    (``benchmarks/README.md``): preparing the request (URL parsing twice, a case-insensitive header dict, the
    cookie jar), the adapter's proxy / TLS / pool look-ups, building the response (headers copied, cookies
    extracted twice), all per request. A first load sends ~12,500 requests. What is kept, as ``requests`` does it:

    * the environment, read once when the session is made (``*_proxy`` / ``no_proxy`` for the base URL's host,
      ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``, else certifi's bundle; socks proxies and a proxy's
      ``user:password``); ``.netrc`` is not consulted (the session carries its own credential);
    * the request on the wire: requests' default headers (``Accept-Encoding``, ``Connection: keep-alive``), the
      query as ``requests`` encodes and re-quotes it, a JSON body as ``requests`` serialises it (NaN refused);
    * keep-alive connections (one pool, shared by the threads of the write pool; urllib3 is thread-safe);
    * the exceptions (``_as_requests_error``) and redirects (up to 30; a 303, and a 301/302 of anything but a
      HEAD, become a GET without a body).

    Not kept: cookies (the APIs authenticate each request by its key; none of them documents a cookie), and on
    a redirect to another host the credential headers are dropped instead of sent there (``requests`` drops only
    ``Authorization``)."""

    POOL_SIZE = 16  # connections kept per host: the write pool's cap (org YAML ``write_connections`` ≤ 16)

    def __init__(self, base_url: str, headers: Mapping[str, str], credential_headers: Mapping[str, str],
                 timeout: tuple[float, float]) -> None:
        self.base_url = base_url
        self.proxies = requests.utils.get_environ_proxies(base_url)
        self.verify: bool | str = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.headers = {**requests.utils.default_headers(), **headers, **credential_headers}
        self._credentials = frozenset(credential_headers)
        self.timeout = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        self._timeouts = (self.timeout.connect_timeout, self.timeout.read_timeout)
        # the header lines of each set of headers sent on a kept connection (``exchange.header_block``): the
        # session's own, the same with Content-Type, a redirect's few
        self._blocks: dict[tuple[tuple[str, str], ...], bytes | None] = {}
        self._managers: dict[str | None, urllib3.PoolManager] = {}
        # (proxy, scheme, host:port) -> its connection pool, as the manager handed it out. Why: the manager's own
        # look-up parses the URL again and builds a pool key per request (~7% of a write thread's CPU on a first
        # load); a session talks to one origin. A pool the manager has since closed (evicted) is asked for again.
        self._pools: dict[tuple[str | None, str, str], urllib3.HTTPConnectionPool] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"_Transport(base_url={self.base_url!r})"

    def close(self) -> None:
        with self._lock:
            managers, self._managers = list(self._managers.values()), {}
            self._pools = {}
        for manager in managers:
            manager.clear()

    def _tls(self, url: str) -> dict[str, Any]:
        """``HTTPAdapter.cert_verify``: the CA bundle (or folder) an https request is verified with."""
        if url[:5].lower() != "https":
            return {}
        if self.verify is False:
            return {"cert_reqs": "CERT_NONE"}
        where = self.verify if isinstance(self.verify, str) else DEFAULT_CA_BUNDLE_PATH
        if not where or not os.path.exists(where):
            raise OSError(f"Could not find a suitable TLS CA certificate bundle, invalid path: {where}")
        return {"cert_reqs": "CERT_REQUIRED", ("ca_cert_dir" if os.path.isdir(where) else "ca_certs"): where}

    def _manager(self, proxy: str | None, url: str) -> urllib3.PoolManager:
        """The pool manager of ``proxy`` (None: direct), made once (``HTTPAdapter.proxy_manager_for``)."""
        manager = self._managers.get(proxy)
        if manager is not None:
            return manager
        tls = self._tls(url)
        with self._lock:
            manager = self._managers.get(proxy)
            if manager is None:
                sizes = {"num_pools": 10, "maxsize": self.POOL_SIZE, "block": False, **tls}
                if proxy is None:
                    manager = urllib3.PoolManager(**sizes)
                elif proxy.lower().startswith("socks"):
                    from urllib3.contrib.socks import SOCKSProxyManager

                    username, password = requests.utils.get_auth_from_url(proxy)
                    manager = SOCKSProxyManager(proxy, username=username, password=password, **sizes)
                else:
                    username, password = requests.utils.get_auth_from_url(proxy)
                    auth = {"Proxy-Authorization": _basic_auth_str(username, password)} if username else {}
                    manager = urllib3.proxy_from_url(proxy, proxy_headers=auth, **sizes)
                self._managers[proxy] = manager
        return manager

    def _send_once(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> _Answer:
        proxy = requests.utils.select_proxy(url, self.proxies) if self.proxies else None
        if proxy:
            proxy = requests.utils.prepend_scheme_if_needed(proxy, "http")
            if not urllib3.util.parse_url(proxy).host:
                raise requests.exceptions.InvalidProxyURL("Please check proxy URL. It is malformed "
                                                          "and could be missing the host.")
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if proxy and parts.scheme != "https" and not proxy.lower().startswith("socks"):
            target = requests.utils.urldefragauth(url)  # a plain HTTP proxy is sent the whole URL
        key = (proxy, parts.scheme.lower(), parts.netloc.lower())
        pool = self._pools.get(key)
        if pool is not None and pool.pool is None:  # closed by its manager since (evicted): asked for again
            pool = None
        if pool is not None and proxy is None:
            answer = self._send_kept(pool, method, target, body, headers)
            if answer is not None:
                return answer
        manager = None if pool is not None else self._manager(proxy, url)  # no CA bundle: OSError, as requests
        try:
            if pool is None:
                pool = self._pools[key] = manager.connection_from_url(url)
            response = pool.urlopen(method, target, body=body, headers=headers, redirect=False,
                                    assert_same_host=False, preload_content=False, decode_content=False,
                                    retries=False, timeout=self.timeout, chunked=False)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _as_requests_error(exc, reading=False) from exc
        try:
            content = response.read(decode_content=True)
        except urllib3.exceptions.HTTPError as exc:
            raise _as_requests_error(exc, reading=True) from exc
        finally:
            response.release_conn()
        return _Answer(response.status, response.headers, content, response.reason)

    def _send_kept(self, pool: urllib3.HTTPConnectionPool, method: str, target: str, body: bytes | None,
                   headers: Mapping[str, str]) -> _Answer | None:
        """The request on a connection the pool keeps open, sent and read by ``exchange`` (the bytes urllib3 would
        send, its exceptions); None when the pool has none open or urllib3 would add or leave out headers of its
        own — then urllib3 sends it (and connects)."""
        items = tuple(headers.items())
        block = self._blocks.get(items, False)
        if block is False:
            block = exchange.header_block(headers) if exchange.sendable(headers) else None  # raises as putheader
            if len(self._blocks) < 16:
                self._blocks[items] = block
        if block is None:
            return None

        def request(conn: Any, encoded: str) -> bytes:
            return exchange.request_bytes(method, encoded, exchange.host_header(conn), block, body)

        try:
            kept = exchange.exchange(pool, method, target, request, self._timeouts)
        except exchange.ExchangeError as exc:
            raise _as_requests_error(exc.cause, reading=exc.reading) from exc.cause
        except urllib3.exceptions.HTTPError as exc:  # the pool closed meanwhile
            raise _as_requests_error(exc, reading=False) from exc
        return None if kept is None else _Answer(kept.status, kept.headers, kept.content, kept.reason)

    def send(self, method: str, url: str, params: Mapping[str, Any], body: Any) -> _Answer:
        """``Session.request(method, url, params=params, json=body)`` as this module sends it."""
        query = requests.models.RequestEncodingMixin._encode_params(params) if params else ""
        url = requests.utils.requote_uri(f"{url}?{query}" if query else url)
        headers = self.headers
        data = None
        if body is not None:
            try:
                data = jsonlib.dumps(body, allow_nan=False).encode("utf-8")
            except ValueError as exc:
                raise requests.exceptions.InvalidJSONError(exc) from None
            headers = {**headers, "Content-Type": "application/json"}
        origin = urlsplit(url)[:2]
        for _ in range(MAX_REDIRECTS + 1):
            answer = self._send_once(method, url, data, headers)
            location = answer.headers.get("Location") if answer.status_code in _REDIRECTS else None
            if not location:
                return answer
            url = requests.utils.requote_uri(urljoin(url, location))
            if answer.status_code in (301, 302, 303) and method != "HEAD":
                method = "GET" if answer.status_code != 301 or method == "POST" else method
            if answer.status_code not in (307, 308):
                data = None
                headers = {k: v for k, v in headers.items() if k not in ("Content-Type", "Content-Length")}
            if urlsplit(url)[:2] != origin:
                headers = {k: v for k, v in headers.items() if k not in self._credentials}
        raise requests.TooManyRedirects(f"Exceeded {MAX_REDIRECTS} redirects.")


class ApiSession:
    """A session on urllib3's pools (``_Transport``) with the retry policy above; ``request()`` returns parsed
    JSON.

    ``request_counts`` counts every request sent (retries included) by (method, path template).

    Safe to share between threads (the apply step's write pool): the transport's pools are thread-safe, the
    counter is updated under a lock, and ``latency`` is the observed seconds per answered request (a moving
    average), which the write pool reads to size itself.
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
        self._transport = _Transport(self.base_url, {"Accept": "application/json", "User-Agent": "bloom-pipeline/0.1"},
                                     auth_headers, timeout)
        self._lock = threading.Lock()
        self.latency: float | None = None
        self._base_path = urlsplit(self.base_url).path

    def __repr__(self) -> str:
        return f"ApiSession(api={self.api!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        self._transport.close()

    def _send(self, method: str, url: str, params: Mapping[str, Any], body: Any) -> _Answer:
        return self._transport.send(method, url, params, body)

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

    def _decode(self, response: _Answer, method: str, path: str) -> Any:
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
