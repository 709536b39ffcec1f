"""Fault knobs for the sandbox simulators: rate limits, 5xx answers, latency and drop-after-commit.

The simulators exist to be hostile in the ways real APIs are, so that the clients and the sync are
tested against them: a per-key rate budget answering ``429`` with ``Retry-After``, a share of
``500/502/503`` answers, added latency, and *drop-after-commit* — the write is applied, then the
connection is cut before any answer, which is exactly the case that makes naive clients create
duplicates.

``FaultMiddleware`` is plain ASGI so it wraps any of the three Starlette apps. Order of checks:
authentication first (a bad key never consumes budget and gets its 401 even when faults are on),
then the rate budget, then scripted / random faults, then latency, then the request itself.

``Knobs.script`` holds forced outcomes consumed one per authenticated request before the random
ones, so tests can be exact: ``"429"``, ``"500"``, ``"502"``, ``"503"``, ``"drop"``, ``"ok"``.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_NUMERIC_SEGMENT = re.compile(r"/\d+(?=/|$)")


def path_template(path: str) -> str:
    """``/v2/constituent/123`` → ``/v2/constituent/{id}``: groups requests by endpoint."""
    return _NUMERIC_SEGMENT.sub("/{id}", path)


@dataclass
class Knobs:
    """Live, mutable fault settings of one simulated API (tests change them at run time)."""

    rate_limit: int | None = 1000
    rate_period: float = 3600.0
    fault_rate: float = 0.0
    drop_after_commit: float = 0.0
    latency_ms: float = 0.0
    seed: int = 0
    script: deque[str] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = {}

    def copy(self) -> Knobs:
        """A fresh Knobs with the same settings (own budget and random stream)."""
        return Knobs(
            rate_limit=self.rate_limit,
            rate_period=self.rate_period,
            fault_rate=self.fault_rate,
            drop_after_commit=self.drop_after_commit,
            latency_ms=self.latency_ms,
            seed=self.seed,
            script=deque(self.script),
        )

    def reset_budget(self) -> None:
        with self._lock:
            self._hits.clear()

    def take_budget(self, key: str, now: float | None = None) -> float | None:
        """Count one request for ``key``; return seconds to wait when over budget, else None."""
        if self.rate_limit is None:
            return None
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.rate_period:
                hits.popleft()
            if len(hits) >= self.rate_limit:
                return max(hits[0] + self.rate_period - now, 0.0)
            hits.append(now)
            return None

    def next_outcome(self, method: str) -> str:
        """The fault to apply to this request: a scripted one first, else a random draw."""
        with self._lock:
            if self.script:
                return self.script.popleft()
            if self.fault_rate and self._rng.random() < self.fault_rate:
                return self._rng.choice(("500", "502", "503"))
            if method in WRITE_METHODS and self.drop_after_commit and self._rng.random() < self.drop_after_commit:
                return "drop"
        return "ok"


@dataclass
class LogEntry:
    api: str
    method: str
    path: str
    path_template: str
    query: str
    status: int | None  # None when the connection was dropped without an answer
    content_type: str = ""
    body: bytes | None = None
    request_body: bytes | None = None
    received_at: float = field(default_factory=time.monotonic)  # when it arrived (benchmarks: budget use)


class RequestLog:
    """Every request the simulators answered (or dropped): the request counter of benchmarks and
    the evidence the contract tests validate against the OpenAPI documents."""

    def __init__(self, capture_bodies: bool = False) -> None:
        self.capture_bodies = capture_bodies
        self._entries: list[LogEntry] = []
        self._lock = threading.Lock()

    def add(self, entry: LogEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    @property
    def entries(self) -> list[LogEntry]:
        with self._lock:
            return list(self._entries)

    def counts(self, api: str | None = None) -> Counter[tuple[str, str, str]]:
        """Requests per (api, method, path template), optionally for one API."""
        return Counter(
            (e.api, e.method, e.path_template) for e in self.entries if api is None or e.api == api
        )

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _json_response(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None):
    body = json.dumps(payload).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]

    async def respond(send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})

    return respond


def _abort_connection(receive: Receive) -> None:
    """Cut the TCP connection with no answer (uvicorn exposes its transport on the cycle object)."""
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("drop-after-commit needs the uvicorn server (no transport on receive)")
    transport.abort()


class _ClientGone:
    """Whether the client went away before any answer started (a killed sync, a cut connection): then whatever
    the app made of the half-received request — Starlette answers a ``ClientDisconnect`` with a plain-text 500 —
    reached nobody, and the request is logged as answered by nothing (``status`` None, as a drop), not as an
    answer of the API the contract check would judge."""

    def __init__(self, entry: LogEntry) -> None:
        self.entry = entry
        self.before_answer = False

    def watch(self, receive: Receive) -> Receive:
        async def watched() -> Message:
            message = await receive()
            if message.get("type") == "http.disconnect" and self.entry.status is None:
                self.before_answer = True
            return message

        return watched

    def settle(self) -> None:
        if self.before_answer:
            self.entry.status, self.entry.body = None, None


class FaultMiddleware:
    """ASGI middleware applying one API's knobs and recording every exchange in the RequestLog.

    ``headers_auth(headers) -> str | None`` returns the caller's key when it is valid, else None;
    ``unauthorized`` is the JSON body the API answers with 401; ``error_body(status)`` builds the
    API's own error shape for injected 429/5xx answers.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        api: str,
        knobs: Knobs,
        request_log: RequestLog,
        headers_auth: Callable[[dict[str, str]], str | None],
        unauthorized: dict[str, Any],
        error_body: Callable[[int], dict[str, Any]],
    ) -> None:
        self.app = app
        self.api = api
        self.knobs = knobs
        self.request_log = request_log
        self.headers_auth = headers_auth
        self.unauthorized = unauthorized
        self.error_body = error_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        path = scope["path"]
        entry = LogEntry(
            api=self.api,
            method=method,
            path=path,
            path_template=path_template(path),
            query=scope.get("query_string", b"").decode("latin-1"),
            status=None,
        )
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        recorded_send = self._recording_send(send, entry)
        try:
            key = self.headers_auth(headers)
            if key is None:
                await _json_response(401, self.unauthorized)(recorded_send)
                return
            wait = self.knobs.take_budget(key)
            if wait is not None:
                retry_after = str(max(1, math.ceil(wait)))
                await _json_response(429, self.error_body(429), {"Retry-After": retry_after})(recorded_send)
                return
            outcome = self.knobs.next_outcome(method)
            if outcome == "429":
                await _json_response(429, self.error_body(429), {"Retry-After": "1"})(recorded_send)
                return
            if outcome in ("500", "502", "503"):
                status = int(outcome)
                await _json_response(status, self.error_body(status))(recorded_send)
                return
            if self.knobs.latency_ms:
                await asyncio.sleep(self.knobs.latency_ms / 1000.0)
            if outcome == "drop":
                await self._drop_after_commit(scope, receive, entry)
                return
            gone = _ClientGone(entry)
            try:
                await self.app(scope, gone.watch(self._recording_receive(receive, entry)), recorded_send)
            finally:
                gone.settle()
        finally:
            self.request_log.add(entry)

    async def _drop_after_commit(self, scope: Scope, receive: Receive, entry: LogEntry) -> None:
        """Run the request (so the write is committed), swallow the answer, cut the connection."""

        async def swallow(message: Message) -> None:
            return None

        await self.app(scope, self._recording_receive(receive, entry), swallow)
        entry.status = None
        _abort_connection(receive)

    def _recording_receive(self, receive: Receive, entry: LogEntry) -> Receive:
        if not self.request_log.capture_bodies:
            return receive

        async def wrapped() -> Message:
            message = await receive()
            if message.get("type") == "http.request":
                entry.request_body = (entry.request_body or b"") + message.get("body", b"")
            return message

        return wrapped

    def _recording_send(self, send: Send, entry: LogEntry) -> Send:
        capture = self.request_log.capture_bodies

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry.status = message["status"]
                for k, v in message.get("headers", []):
                    if k.lower() == b"content-type":
                        entry.content_type = v.decode("latin-1")
            elif message["type"] == "http.response.body" and capture:
                entry.body = (entry.body or b"") + message.get("body", b"")
            await send(message)

        return wrapped
