"""A request on a kept connection (``clients/exchange.py``) against the same request sent by urllib3: the same bytes
on the wire, and for every kind of answer — ordinary, chunked, to the connection's end, HTTP/1.0, 1xx, compressed,
odd headers, truncated, dropped, late — the same answer or the same exception, and the connection kept or closed
alike. Real loopback sockets answering scripted bytes; nothing mocked."""

from __future__ import annotations

import gzip
import socket
import threading
import time
import zlib
from collections import deque
from typing import Any

import pytest

from bloom_pipeline.clients import exchange
from bloom_pipeline.clients.http import _Transport

HEADERS = {"Accept": "application/json", "User-Agent": "bloom-pipeline/0.1"}
KEY = {"X-API-KEY": "k-5f0c2b7e9d1a4c33"}
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"


class RawServer:
    """Answers each request (read to its end by Content-Length) with the next scripted bytes; ``b""`` closes
    the connection without an answer, ``("close", data)`` answers and closes, ``("slow", s, data)`` waits first,
    ``("split", s, a, b)`` sends ``a``, waits, sends ``b``. Unscripted: ``OK``. Records every request's bytes and
    the client port it came from."""

    def __init__(self) -> None:
        self.script: deque[Any] = deque()
        self.requests: list[tuple[int, bytes]] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/v2"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, address = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, address[1]), daemon=True).start()

    def _serve(self, conn: socket.socket, port: int) -> None:
        buf = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buf) < length:
                    buf += conn.recv(65536)
                self.requests.append((port, head + b"\r\n\r\n" + buf[:length]))
                buf = buf[length:]
                step = self.script.popleft() if self.script else OK
                close = False
                if isinstance(step, tuple) and step[0] == "slow":
                    time.sleep(step[1])
                    step = step[2]
                if isinstance(step, tuple) and step[0] == "split":
                    conn.sendall(step[2])
                    time.sleep(step[1])
                    step = step[3]
                if isinstance(step, tuple) and step[0] == "close":
                    step, close = step[1], True
                if not step:
                    return
                try:
                    conn.sendall(step)
                except OSError:
                    return
                if close:
                    conn.shutdown(socket.SHUT_RDWR)
                    return

    def close(self) -> None:
        self._sock.close()


class _Urllib3Only(_Transport):
    """The transport as it was: every request through urllib3's ``urlopen``."""

    def _send_kept(self, *args: Any) -> None:
        return None


def _outcome(transport: _Transport, method: str, url: str, body: Any = None) -> tuple:
    try:
        answer = transport.send(method, url, {}, body)
    except Exception as exc:  # noqa: BLE001 - the exception is the outcome compared
        cause = exc.args[0] if exc.args else None
        return ("raised", type(exc).__name__, type(cause).__name__)
    return (answer.status_code, answer.reason, list(answer.headers.items()), answer.content)


def _run(step: Any, method: str = "GET", body: Any = None, timeout: float = 2.0) -> list[tuple]:
    """The same step answered to urllib3 and to the kept connection (each after a first, ordinary request that opens
    the connection, and before a last one): outcomes, the bytes the servers saw, how many connections each used."""
    results = []
    for cls in (_Urllib3Only, _Transport):
        server = RawServer()
        transport = cls(server.url, HEADERS, KEY, (timeout, timeout))
        try:
            first = _outcome(transport, "GET", f"{server.url}/first")
            server.script.append(step)
            outcome = _outcome(transport, method, f"{server.url}/step", body)
            last = _outcome(transport, "GET", f"{server.url}/last")
        finally:
            transport.close()
            server.close()
        wire = [data.replace(server.url.split("//")[1].split("/")[0].encode(), b"HOST") for _, data in server.requests]
        results.append((first, outcome, last, wire, len({port for port, _ in server.requests})))
    return results


GZIPPED = gzip.compress(b'{"z": 1}', mtime=0)
DEFLATED = zlib.compress(b"[1]")


def _answer(body: bytes, *headers: str, status: str = "200 OK", version: str = "HTTP/1.1") -> bytes:
    lines = "".join(f"{h}\r\n" for h in headers)
    return f"{version} {status}\r\n{lines}\r\n".encode("latin-1") + body


ANSWERS = {
    "ordinary": OK,
    "chunked, extension and trailer": _answer(b"4;ext=1\r\n{\"a\"\r\n3\r\n: 1\r\n1\r\n}\r\n0\r\nX-T: 1\r\n\r\n",
                                              "Transfer-Encoding: chunked", "Content-Type: application/json"),
    "no length: to the end": ("close", _answer(b"{\"end\": 1}", "Content-Type: application/json")),
    "HTTP/1.0 without keep-alive": ("close", _answer(b"{}", "Content-Length: 2", version="HTTP/1.0")),
    "HTTP/1.0 with keep-alive": _answer(b"{}", "Content-Length: 2", "Connection: keep-alive", version="HTTP/1.0"),
    "Connection: close": ("close", _answer(b"{}", "Content-Length: 2", "Connection: close")),
    "204 without a body": _answer(b"", status="204 No Content"),
    "304 with a length": _answer(b"", "Content-Length: 10", status="304 Not Modified"),
    "100 Continue first": _answer(b"", status="100 Continue") + _answer(b"{}", "Content-Length: 2"),
    "duplicated and odd headers": _answer(b"{}", "Content-Length: 2", "Retry-After: 5", "retry-after: 7",
                                          "X-Sp:   padded  ", "X-Empty:", "Location: /v2/x"),
    "a folded header": _answer(b"{}", "Content-Length: 2", "X-Fold: one", " two", "X-After: 1"),
    "a header line without a colon": _answer(b"{}", "Content-Length: 2", "Nonsense", "X-After: 1"),
    "a name with a blank": _answer(b"{}", "Content-Length: 2", "X Bad: 1", "X-After: 1"),
    "a bare CR in a value": _answer(b"{}", "Content-Length: 2", "X-Cr: a\rb"),
    "LF line ends": b"HTTP/1.1 200 OK\nContent-Length: 2\n\n{}",
    "gzip": _answer(GZIPPED, "Content-Encoding: gzip", f"Content-Length: {len(GZIPPED)}"),
    "deflate": _answer(DEFLATED, "Content-Encoding: deflate", f"Content-Length: {len(DEFLATED)}"),
    "an encoding urllib3 leaves alone": _answer(b"abc", "Content-Encoding: br", "Content-Length: 3"),
    "a broken gzip": _answer(b"not gzip", "Content-Encoding: gzip", "Content-Length: 8"),
    "an unreadable length": ("close", _answer(b"{}", "Content-Length: many")),
    "a 500 with a reason of words": _answer(b"{}", "Content-Length: 2", status="500 Internal  Server Error "),
    "a status without a reason": _answer(b"{}", "Content-Length: 2", status="201"),
    "bytes after the answer": OK + b"HTTP/1.1 200 OK\r\n",
    "dropped without an answer": b"",
    "a truncated body": ("close", _answer(b"{\"a\":", "Content-Length: 40")),
    "a truncated chunk": ("close", _answer(b"10\r\nabc", "Transfer-Encoding: chunked")),
    "a bad chunk size": ("close", _answer(b"zz\r\nabc\r\n0\r\n\r\n", "Transfer-Encoding: chunked")),
    "not HTTP": ("close", b"SSH-2.0-OpenSSH\r\n\r\n"),
    "a bad status code": ("close", b"HTTP/1.1 abc OK\r\n\r\n"),
    "an unknown protocol version": ("close", b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
    "too many headers": ("close", _answer(b"", *[f"X-{n}: 1" for n in range(101)])),
    "late: read timeout": ("slow", 0.8, OK),
    "late body: read timeout while reading": ("split", 0.8, _answer(b"{", "Content-Length: 2"), b"}"),
}


@pytest.mark.parametrize("name", list(ANSWERS))
def test_an_answer_on_a_kept_connection_is_what_urllib3_makes_of_it(name: str) -> None:
    by_urllib3, kept = _run(ANSWERS[name], timeout=0.4 if name.startswith("late") else 2.0)
    assert kept == by_urllib3


@pytest.mark.parametrize("method, body", [("GET", None), ("POST", {"FirstName": "Zoë", "n": [1, None]}),
                                          ("POST", None), ("PUT", {"a": "b"}), ("PUT", None), ("DELETE", None)])
def test_the_bytes_sent_on_a_kept_connection_are_urllib3s(method: str, body: Any) -> None:
    by_urllib3, kept = _run(OK, method, body)
    assert kept == by_urllib3
    assert kept[4] == 1, "the first, the step and the last request on one kept connection"


def test_the_session_headers_with_and_without_a_body_are_sent_whole() -> None:
    """The header lines are what http.client's ``putheader`` writes; unsendable sets are left to urllib3."""
    assert exchange.header_block({"A": "1", "B-c": "x y"}) == b"A: 1\r\nB-c: x y\r\n"
    with pytest.raises(ValueError, match="Invalid header value"):
        exchange.header_block({"A": "1\r\nInjected: 1"})
    assert exchange.sendable({"User-Agent": "u", "Accept-Encoding": "gzip"})
    assert not exchange.sendable({"User-Agent": "u"})  # http.client would add Accept-Encoding: identity
    assert not exchange.sendable({"User-Agent": "u", "Accept-Encoding": "gzip", "Content-Length": "3"})


@pytest.mark.parametrize("path", ["/a\x01b", "/a b", "/x/../y/./z", "/q?a=%c3%a9&b=\u00e9", "/%zz"])
def test_a_target_is_encoded_as_urlopen_encodes_it(path: str) -> None:
    """urllib3 percent-encodes what a target may not hold and resolves dot segments before http.client checks it;
    ``send`` requotes first, so these reach ``_send_once`` only from a redirect or a caller of its own."""
    seen = []
    for cls in (_Urllib3Only, _Transport):
        server = RawServer()
        transport = cls(server.url, HEADERS, KEY, (2.0, 2.0))
        try:
            transport.send("GET", f"{server.url}/first", {}, None)
            try:
                answer = transport._send_once("GET", f"{server.url}{path}", None, transport.headers)
                seen.append((answer.status_code, server.requests[-1][1].split(b"\r\n")[0], len(server.requests)))
            except Exception as exc:  # noqa: BLE001 - compared
                seen.append((type(exc).__name__, type(exc.args[0]).__name__ if exc.args else None))
        finally:
            transport.close()
            server.close()
    assert seen[1] == seen[0]
